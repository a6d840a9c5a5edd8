/* The generator's parameters: one contiguous float buffer carved by a table
 * of {name, shape}. The names are the official ResnetGenerator state_dict
 * keys (without the G_A./G_B. prefix); one table drives loading, writing,
 * and, for the trainer, gradients and Adam moments. */
#pragma once

#include <cyclegan/cg-model.h>

G_BEGIN_DECLS

typedef struct
{
  char name[48];
  int n_dims;
  gint64 shape[4];
  gsize offset;                 /* in floats, into the parameter buffer */
  gsize n_elements;
} CgParamSpec;

typedef struct
{
  CgGeneratorConfig config;
  CgParamSpec *specs;
  guint n_specs;
  gsize n_floats;
  float *data;                  /* 64-byte aligned */
} CgGeneratorParams;

/* Module indices inside `model.N` of the official Sequential. */
#define CG_GEN_IDX_CONV_IN 1
#define CG_GEN_IDX_DOWN1 4
#define CG_GEN_IDX_DOWN2 7
#define CG_GEN_IDX_BLOCK0 10
#define CG_GEN_IDX_UP1(nb) (10 + (nb))
#define CG_GEN_IDX_UP2(nb) (13 + (nb))
#define CG_GEN_IDX_CONV_OUT(nb) (17 + (nb))
/* Inside a block's conv_block: conv 1, and the second conv at 5, or at 6
 * when the Dropout slot is there. */
#define CG_BLOCK_IDX_CONV1 1
#define CG_BLOCK_IDX_CONV2(dropout) ((dropout) ? 6 : 5)

/* Append a convolution's "MODULE.weight" [cout, cin, k, k] and (if bias)
 * "MODULE.bias" [cout] to a table of CgParamSpec being built, each tensor
 * at the next 64-byte boundary of the buffer. */
void cg_param_table_add_conv (GArray * specs, gsize * offset,
    const char *module, gint64 cout, gint64 cin, gint64 k, gboolean bias);

/* The table for an architecture; sets *n_specs and *n_floats. */
CgParamSpec *cg_generator_param_table (const CgGeneratorConfig * config,
    guint * n_specs, gsize * n_floats);

/* A new zeroed parameter buffer for an architecture; NULL if the memory
 * cannot be had. */
CgGeneratorParams *cg_generator_params_new (const CgGeneratorConfig * config);
void cg_generator_params_free (CgGeneratorParams * params);

/* The parameter `name` ("model.1.weight"), or NULL. */
float *cg_generator_params_find (const CgGeneratorParams * params,
    const char *name);

/* PyTorch's default initialization of Conv2d/ConvTranspose2d: weights and
 * biases uniform in +-1/sqrt(fan_in), from a seeded generator (benchmarks
 * and tests; the trainer uses the paper's N(0, 0.02)). */
void cg_generator_params_init_default (CgGeneratorParams * params,
    guint32 seed);

/* The parameters of one direction of the model, or NULL. */
const CgGeneratorParams *cg_model_get_params (const CgModel * model,
    CgDirection direction);

/* A model made from parameters in memory (the trainer, tests); takes
 * ownership of the parameter sets (b2a may be NULL). */
CgModel *cg_model_new_from_params (CgGeneratorParams * a2b,
    CgGeneratorParams * b2a, GHashTable * metadata);

/* Write a model file: both generators prefixed G_A./G_B. or, with b2a NULL,
 * one unprefixed generator. */
gboolean cg_model_write (const char *path, const CgGeneratorParams * a2b,
    const CgGeneratorParams * b2a, GHashTable * metadata, GError ** error);

G_END_DECLS
