/* The trainer (cyclegan-train, tests/train): networks with gradients and
 * Adam moments, their forward and backward passes over one activation
 * arena, the losses, the image pool, the lr schedule and the CycleGAN
 * iteration. Internal: not part of the public API. */
#pragma once

#include "model-private.h"
#include "layers.h"
#include "arena.h"

G_BEGIN_DECLS

/* ---- random numbers: PCG32, its whole state two integers, so a training
 * checkpoint can carry it and a resumed run draws what the uninterrupted
 * run would have. ---- */
typedef struct
{
  guint64 state, inc;
} CgRng;

void cg_rng_seed (CgRng * rng, guint64 seed);
guint32 cg_rng_next (CgRng * rng);
double cg_rng_uniform (CgRng * rng);    /* [0, 1), 53 bits */
guint32 cg_rng_below (CgRng * rng, guint32 n);  /* [0, n), unbiased */
double cg_rng_normal (CgRng * rng);

/* ---- a network being trained: one table of {name, shape}, and four
 * buffers in its layout: parameters, gradients, Adam's two moments. ---- */
typedef enum
{
  CG_NET_GENERATOR,
  CG_NET_DISCRIMINATOR,
} CgNetKind;

typedef struct
{
  int in_channels;
  int ndf;
  int n_layers;                 /* n_layers_D */
  CgNorm norm;                  /* none: no bias before the last conv */
} CgDiscConfig;

typedef struct
{
  CgNetKind kind;
  CgGeneratorConfig gconfig;    /* generators */
  CgDiscConfig dconfig;         /* discriminators */
  CgParamSpec *specs;
  guint n_specs;
  gsize n_floats;
  CgGeneratorParams *gparams;   /* generators: owns `param` */
  float *param, *grad, *m, *v;  /* n_floats each, 64-byte aligned */
  /* Winograd transforms of the weights (forward and adjoint), made by the
   * tape once per version of the parameters: a generator runs forward and
   * backward three times between two Adam steps. */
  guint64 version, wino_version;
  float *wino;
  gsize wino_floats;
} CgTrainNet;

/* Call after writing net->param directly (Adam, loading and init do). */
void cg_train_net_params_changed (CgTrainNet * net);

/* The PatchGAN's table: model.0, model.2, model.5, ... (conv weight
 * [out, in, 4, 4] and bias each), as the official NLayerDiscriminator. */
CgParamSpec *cg_disc_param_table (const CgDiscConfig * c, guint * n_specs,
    gsize * n_floats);

CgTrainNet *cg_train_net_new_generator (const CgGeneratorConfig * c);
CgTrainNet *cg_train_net_new_discriminator (const CgDiscConfig * c);
void cg_train_net_free (CgTrainNet * net);
float *cg_train_net_find (const CgTrainNet * net, const char *name,
    const float *buffer);
/* The official init_weights 'normal': conv weights N(0, gain), biases 0. */
void cg_train_net_init_normal (CgTrainNet * net, CgRng * rng, double gain);
void cg_train_net_zero_grad (CgTrainNet * net);

/* One Adam step of PyTorch's torch.optim.Adam (no weight decay): `step` is
 * the optimizer's step count after this step (1 for the first). */
void cg_adam_update (CgTrainNet * net, double lr, double beta1, double beta2,
    double eps, gint64 step);

/* ---- a tape: a network's layers planned for one input size, with the
 * activations the backward pass needs kept in one arena. One tape serves
 * any network of its architecture (G_A and G_B share a plan). ---- */
typedef struct _CgTape CgTape;

CgTape *cg_tape_new (const CgTrainNet * net, int h, int w);
void cg_tape_free (CgTape * tape);
void cg_tape_output_size (const CgTape * tape, int *c, int *h, int *w);
gsize cg_tape_arena_floats (const CgTape * tape);
/* Run `net` on `input` [in_c, h, w] (kept by pointer until the backward),
 * return the output inside the tape. */
const float *cg_tape_forward (CgTape * tape, const CgTrainNet * net,
    const float *input);
/* Backward of the last forward: `dout` is the output's gradient;
 * accumulates into `dinput` (may be NULL) and, if `param_grads`, into
 * net->grad. */
void cg_tape_backward (CgTape * tape, CgTrainNet * net, const float *dout,
    float *dinput, gboolean param_grads);

/* ---- losses: return scale * loss and write (not add) its gradient ---- */
/* scale * mean ((x - target)^2): GANLoss lsgan */
double cg_mse_loss (float *dx, const float *x, float target, gsize n,
    double scale);
/* scale * mean |x - y|: L1Loss (gradient sign (x - y), 0 at 0) */
double cg_l1_loss (float *dx, const float *x, const float *y, gsize n,
    double scale);

/* ---- the image pool of Shrivastava et al. (the official ImagePool,
 * batch size 1) ---- */
typedef struct
{
  int size, n;
  gsize image_floats;
  float *images;                /* size slots */
  float *out;                   /* the image handed back after a swap */
} CgImagePool;

/* The pool's draws: return TRUE to swap (random.uniform(0, 1) > 0.5), and
 * the slot in *pick (random.randint(0, size - 1)); tests inject theirs. */
typedef gboolean (*CgPoolDraw) (gpointer data, int size, int *pick);

void cg_image_pool_init (CgImagePool * pool, int size, gsize image_floats);
void cg_image_pool_clear (CgImagePool * pool);
/* While filling: stores and returns `image`. Full: either `image`, or a
 * stored one (which `image` replaces), valid until the next query. */
const float *cg_image_pool_query (CgImagePool * pool, const float *image,
    CgPoolDraw draw, gpointer data);

/* ---- the lr schedule ('linear'): the factor in epoch `epoch` (counted as
 * the official train.py counts, from epoch_count on), its LambdaLR stepped
 * at the start of each epoch as train.py does. ---- */
double cg_lr_factor (int epoch, int epoch_count, int n_epochs,
    int n_epochs_decay);

/* ---- the CycleGAN iteration ---- */
typedef struct
{
  int ngf, n_blocks, ndf, n_layers_D;
  CgNorm norm;                  /* of all four networks (official --norm) */
  double lr, beta1, beta2, eps;
  double lambda_A, lambda_B, lambda_identity;
  int pool_size;
  int h, w;                     /* the crop */
  int threads;                  /* compute threads; 0: all cores */
} CgTrainConfig;

void cg_train_config_defaults (CgTrainConfig * c);

enum
{
  CG_LOSS_D_A, CG_LOSS_G_A, CG_LOSS_CYCLE_A, CG_LOSS_IDT_A,
  CG_LOSS_D_B, CG_LOSS_G_B, CG_LOSS_CYCLE_B, CG_LOSS_IDT_B,
  CG_N_LOSSES
};
extern const char *const cg_loss_names[CG_N_LOSSES];

typedef struct
{
  CgTrainConfig config;
  CgTrainNet *G_A, *G_B, *D_A, *D_B;
  gint64 step_G, step_D;        /* Adam step counts */
  double lr;                    /* the current learning rate */
  CgImagePool pool_fake_B, pool_fake_A;
  CgRng rng;                    /* pool draws by default (and the data) */
  CgPoolDraw pool_draw;
  gpointer pool_draw_data;

  struct _CgPool *pool;         /* our threads; OpenBLAS runs with one */
  CgTape *tape_g1, *tape_g2, *tape_d;
  gsize img;                    /* floats of one image */
  float *fake_B, *rec_A, *fake_A, *rec_B, *dy, *dfake, *dpred;
  double losses[CG_N_LOSSES];
} CgTrainer;

/* A trainer with N(0, 0.02) networks drawn from `seed`; NULL if the
 * memory cannot be had or the crop is too small for the networks. */
CgTrainer *cg_trainer_new (const CgTrainConfig * config, guint64 seed,
    GError ** error);
void cg_trainer_free (CgTrainer * t);
/* One iteration on real_A, real_B [3, h, w] in [-1, 1]. */
void cg_trainer_step (CgTrainer * t, const float *real_A, const float *real_B);

/* The training checkpoint: the four networks, both Adam states, the pools,
 * the RNG and `extra` metadata (epoch, iteration, ...), written atomically.
 * Loading checks names and shapes against the trainer's architecture and
 * returns the metadata (g_hash_table_unref it). */
gboolean cg_trainer_save (const CgTrainer * t, const char *path,
    GHashTable * extra, GError ** error);
GHashTable *cg_trainer_load (CgTrainer * t, const char *path,
    GError ** error);

G_END_DECLS
