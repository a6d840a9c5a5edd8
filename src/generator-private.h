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

/* The convolution paths. AUTO lets the chooser in generator.c pick per
 * layer; the others force a path wherever the layer's shape allows it
 * (elsewhere im2col), so the tests cover each. */
typedef enum
{
  CG_CONV_PATH_AUTO,
  CG_CONV_PATH_IM2COL,
  CG_CONV_PATH_WINOGRAD,
  CG_CONV_PATH_WINOGRAD_FUSED,
  CG_CONV_PATH_THIN,
  CG_CONV_PATH_DIRECT,
} CgConvPath;

void cg_generator_force_path (CgGenerator * gen, CgConvPath path);
/* "im2col", "winograd", "winograd-fused", "thin", "direct", "auto";
 * parse returns FALSE otherwise */
const char *cg_conv_path_name (CgConvPath path);
gboolean cg_conv_path_from_name (const char *name, CgConvPath * path);

G_END_DECLS
