#pragma once

#include <cyclegan/cg-error.h>

G_BEGIN_DECLS

/**
 * CgModel:
 *
 * A loaded model file: one generator (a2b only) or two (G_A for a2b, G_B for
 * b2a), immutable once loaded and reference counted, so it can be shared
 * between threads.
 */
typedef struct _CgModel CgModel;

typedef enum
{
  CG_DIRECTION_A2B,             /* G_A: domain A -> domain B */
  CG_DIRECTION_B2A,             /* G_B: domain B -> domain A */
} CgDirection;

/**
 * CgNorm:
 * @CG_NORM_INSTANCE: InstanceNorm (no affine) after every convolution but
 *   the last, as in the paper.
 * @CG_NORM_NONE: no normalization; as in the official code's `--norm none`,
 *   those convolutions have no bias either.
 *
 * The generator's normalization, told by its tensors: the first
 * convolution has a bias exactly when there is InstanceNorm.
 */
typedef enum
{
  CG_NORM_INSTANCE,
  CG_NORM_NONE,
} CgNorm;

/**
 * CgGeneratorConfig:
 *
 * The ResNet generator's architecture, as inferred from the tensors' names
 * and shapes.
 */
typedef struct
{
  int in_channels;              /* input_nc */
  int out_channels;             /* output_nc */
  int ngf;                      /* filters of the first layer */
  int n_blocks;                 /* residual blocks */
  gboolean dropout_layout;      /* conv_block has the Dropout slot (use_dropout) */
  CgNorm norm;
} CgGeneratorConfig;

/* "instance" / "none"; parse returns FALSE on anything else. */
CG_API const char *cg_norm_to_string (CgNorm norm);
CG_API gboolean cg_norm_from_string (const char *str, CgNorm * norm);

/* Load a safetensors model file. Every malformed or hostile file is refused
 * with a CG_ERROR naming the file and the problem. */
CG_API CgModel *cg_model_load (const char *path, GError ** error);

CG_API CgModel *cg_model_ref (CgModel * model);
CG_API void cg_model_unref (CgModel * model);

CG_API const char *cg_model_get_path (const CgModel * model);

CG_API gboolean cg_model_has_direction (const CgModel * model,
    CgDirection direction);

/* FALSE (and *config untouched) when the model has no such generator. */
CG_API gboolean cg_model_get_config (const CgModel * model,
    CgDirection direction, CgGeneratorConfig * config);

/* A value of the file's __metadata__, or NULL. */
CG_API const char *cg_model_get_metadata (const CgModel * model,
    const char *key);

/* "a2b" / "b2a"; parse returns FALSE on anything else. */
CG_API const char *cg_direction_to_string (CgDirection direction);
CG_API gboolean cg_direction_from_string (const char *str,
    CgDirection * direction);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CgModel, cg_model_unref)

G_END_DECLS
