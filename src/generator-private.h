/* What the benchmark and the tests see of a generator's plan. */
#pragma once

#include <cyclegan/cg-generator.h>

G_BEGIN_DECLS

int cg_generator_n_layers (const CgGenerator * gen);
/* "model.10.conv_block.1" */
const char *cg_generator_layer_name (const CgGenerator * gen, int i);
/* "conv 3x3/1 256->256 64x64" (needs a prepared size) */
char *cg_generator_layer_describe (const CgGenerator * gen, int i);
/* Multiply-adds of layer i at the prepared size. */
double cg_generator_layer_macs (const CgGenerator * gen, int i);

/* When `ms` is set, every run adds each layer's wall time in milliseconds
 * (convolution and what is fused after it) into ms[i]. */
void cg_generator_set_layer_times (CgGenerator * gen, double *ms);

G_END_DECLS
