/* The ResNet generator's forward pass, planned as a list of layers over
 * one arena.
 *
 *   model.1     reflect-pad 3, conv 7x7, IN, ReLU         [ngf,  H,   W  ]
 *   model.4     conv 3x3 stride 2, IN, ReLU               [2ngf, H/2, W/2]
 *   model.7     conv 3x3 stride 2, IN, ReLU               [4ngf, H/4, W/4]
 *   model.10+i  n blocks: x + IN(conv(ReLU(IN(conv(x)))))  (reflect-pad 1)
 *   model.10+n  conv-transpose 3x3 stride 2, IN, ReLU     [2ngf, H/2, W/2]
 *   model.13+n  conv-transpose 3x3 stride 2, IN, ReLU     [ngf,  H,   W  ]
 *   model.17+n  reflect-pad 3, conv 7x7, tanh             [out,  H,   W  ]
 *
 * A convolution followed by InstanceNorm runs without its bias: the norm
 * subtracts the channel mean, which removes any per-channel constant.
 * Each layer names the convolution path it runs, so that faster paths can
 * be chosen per layer without touching the plan.
 */
#include "generator-private.h"
#include "gemm.h"
#include "model-private.h"
#include "layers.h"
#include "arena.h"
#include "pixels-private.h"
#include "parallel.h"

#include <cblas.h>
#include <string.h>

/* Column buffer budget (floats): large layers are run in bands of rows so
 * that their scratch never needs more than this (32 MiB), while each band
 * still gives the GEMMs thousands of columns. Winograd's staged path
 * reads each U[e] (256 KiB at 256 channels) from L3 once per band: at 16
 * MiB the official generator's residual blocks took two bands at 256x256,
 * at 32 MiB one, and the frame 168-172 ms against 179-185 (640x480: 829-866
 * against 909-915). */
#define COL_BUDGET ((gsize) 8 << 20)

typedef enum
{
  OP_CONV,
  OP_CONV_T,
} Op;

typedef enum
{
  POST_IN_RELU,                 /* InstanceNorm, ReLU */
  POST_IN_ADD,                  /* InstanceNorm, + residual */
  POST_RELU,                    /* the same two without norm */
  POST_ADD,
  POST_TANH,
} Post;

typedef enum
{
  SLOT_IN,
  SLOT_A,
  SLOT_B,
  SLOT_C,
  SLOT_OUT,
  SLOT_COL,
  N_SLOTS
} Slot;

typedef struct
{
  char name[40];                /* the module, "model.10.conv_block.1" */
  Op op;
  CgConvPath path;              /* never AUTO once planned */
  float *prepared;              /* weights transformed for the path */
  CgConvShape shape;
  const float *weight, *bias;
  Post post;
  Slot src, dst, residual;
  int in_h, in_w, out_h, out_w; /* set by the plan */
} Layer;

struct _CgGenerator
{
  CgModel *model;
  CgDirection direction;
  const CgGeneratorParams *params;
  int n_threads;

  Layer *layers;
  int n_layers;

  double *layer_ms;             /* profile, or NULL */
  CgPool *pool;                 /* threads of our own, for the non-GEMM passes */
  gsize thread_floats;          /* per-thread scratch the plan needs */
  gboolean threads_ready;       /* the pool's threads have it */
  CgConvPath forced;

  /* the plan: frame size, padded size, arena slots */
  int width, height;
  int pw, ph;
  CgArena arena;
  gsize slot[N_SLOTS];
  /* a layer's output moments, in parts: layer i's in moments[i % 2],
   * where layer i + 1 reads them as it writes its own */
  CgMoments *moments[2];
};

static void
add_layer (CgGenerator * gen, const char *module, Op op, int cin, int cout,
    int k, int stride, int pad, CgPadMode mode, Post post, Slot src, Slot dst,
    Slot residual)
{
  Layer *l = &gen->layers[gen->n_layers++];
  char name[64];

  g_strlcpy (l->name, module, sizeof l->name);
  l->op = op;
  l->shape = (CgConvShape) {
  .cin = cin,.cout = cout,.k = k,.stride = stride,.pad = pad,.pad_mode =
        mode,.output_padding = op == OP_CONV_T ? 1 : 0};
  g_snprintf (name, sizeof name, "%s.weight", module);
  l->weight = cg_generator_params_find (gen->params, name);
  /* Without norm the bias is there only for the last convolution; with
   * InstanceNorm it is cancelled, and left out. */
  if (gen->params->config.norm == CG_NORM_NONE)
    post = post == POST_IN_RELU ? POST_RELU : post == POST_IN_ADD ? POST_ADD :
        post;
  g_snprintf (name, sizeof name, "%s.bias", module);
  l->bias = post == POST_TANH ?
      cg_generator_params_find (gen->params, name) : NULL;
  g_assert (l->weight && (post != POST_TANH || l->bias));
  l->post = post;
  l->src = src;
  l->dst = dst;
  l->residual = residual;
}

static void
build_layers (CgGenerator * gen)
{
  const CgGeneratorConfig *c = &gen->params->config;
  int ngf = c->ngf, nb = c->n_blocks;
  char m[40];

  gen->layers = g_new0 (Layer, 6 + 2 * nb);
  add_layer (gen, "model.1", OP_CONV, c->in_channels, ngf, 7, 1, 3,
      CG_PAD_REFLECT, POST_IN_RELU, SLOT_IN, SLOT_A, 0);
  add_layer (gen, "model.4", OP_CONV, ngf, 2 * ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, SLOT_A, SLOT_B, 0);
  add_layer (gen, "model.7", OP_CONV, 2 * ngf, 4 * ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, SLOT_B, SLOT_A, 0);
  for (int i = 0; i < nb; i++) {
    g_snprintf (m, sizeof m, "model.%d.conv_block.%d", CG_GEN_IDX_BLOCK0 + i,
        CG_BLOCK_IDX_CONV1);
    add_layer (gen, m, OP_CONV, 4 * ngf, 4 * ngf, 3, 1, 1, CG_PAD_REFLECT,
        POST_IN_RELU, SLOT_A, SLOT_B, 0);
    g_snprintf (m, sizeof m, "model.%d.conv_block.%d", CG_GEN_IDX_BLOCK0 + i,
        CG_BLOCK_IDX_CONV2 (c->dropout_layout));
    add_layer (gen, m, OP_CONV, 4 * ngf, 4 * ngf, 3, 1, 1, CG_PAD_REFLECT,
        POST_IN_ADD, SLOT_B, SLOT_C, SLOT_A);
  }
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_UP1 (nb));
  add_layer (gen, m, OP_CONV_T, 4 * ngf, 2 * ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, SLOT_A, SLOT_B, 0);
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_UP2 (nb));
  add_layer (gen, m, OP_CONV_T, 2 * ngf, ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, SLOT_B, SLOT_A, 0);
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_CONV_OUT (nb));
  add_layer (gen, m, OP_CONV, ngf, c->out_channels, 7, 1, 3, CG_PAD_REFLECT,
      POST_TANH, SLOT_A, SLOT_OUT, 0);
}

/* The algorithm chooser. Measured with `cyclegan-bench --layers` (2
 * threads, OPENBLAS_CORETYPE Haswell and SkylakeX) on ngf 16/6 blocks at
 * 320x240 and 64/9 at 256x256:
 * - 3x3 stride 1 (the residual blocks): Winograd F(4,3) beats im2col at
 *   every channel count we run (16 to 256), 2.5-3.5x at 256 channels.
 * - 7x7 to 3 channels and 3 channels to ngf: direct convolution (the
 *   thin path). im2col's GEMM has M = 3 in the one and K = 147 with a
 *   147-row column matrix to write and pack in the other; directly, at
 *   1 thread: 16->3 at 320x240 8.3 ms (im2col 51), 3->16 7.1 ms (im2col
 *   15.4), 3->64 at 256x256 22.6 ms (im2col 33.8). With more channels
 *   on both sides im2col's GEMM wins (64->64 3x3: thin 7.5 ms, Winograd
 *   2.7), hence the thresholds.
 * - 3x3 stride 1 at 64 channels: Winograd in fused bands (each thread
 *   takes one or two tile rows through all stages, conv_winograd.c);
 *   ngf 16 at 320x240, whole frame: 19.8 -> 17.3 ms median, 640x480
 *   75 -> 68 ms. At 256 channels U no longer fits in L2 beside a band.
 * - the stride-2 transposed convolutions: direct (conv_direct.c) where the
 *   CPU has AVX-512; against the phase GEMMs, per layer with its norm,
 *   ngf 16 at 640x480 64->32 4.6 -> 3.2 ms and 32->16 7.2 -> 4.2 ms; ngf
 *   64 at 256x256 256->128 9.3 -> 8.9 ms and 128->64 11.3 -> 9.4 ms.
 * - the stride-2 convolutions: direct up to 32 input channels
 *   (cg_conv2d_direct_preferred has the figures; at 320x240 16->32 1.42
 *   -> 1.22 ms, 32->64 even).
 * - everything else: im2col, as GEMMs over column blocks gathered straight
 *   into the GEMM kernel's panels (conv_panels.c); transposed
 *   convolutions phase by phase the same way on other CPUs.
 * (Measured before the AVX-512 GEMM kernel and the panel paths; the
 * thin/im2col thresholds, in cg_conv2d_thin_preferred, still held when
 * rechecked with --path.) */

static CgConvPath
choose_path (const Layer * l, CgConvPath forced)
{
  const CgConvShape *s = &l->shape;
  gboolean winograd = l->op == OP_CONV && s->k == 3 && s->stride == 1
      && s->pad == 1;
  gboolean thin = l->op == OP_CONV && s->stride == 1
      && 2 * s->pad == s->k - 1;

  gboolean direct = l->op == OP_CONV_T ?
      cg_conv_transpose2d_direct_supported (s) :
      cg_conv2d_direct_supported (s);
  gboolean direct_auto = l->op == OP_CONV_T ? direct :
      cg_conv2d_direct_preferred (s);

  switch (forced) {
    case CG_CONV_PATH_IM2COL:
      return CG_CONV_PATH_IM2COL;
    case CG_CONV_PATH_DIRECT:
      return direct ? CG_CONV_PATH_DIRECT : CG_CONV_PATH_IM2COL;
    case CG_CONV_PATH_WINOGRAD:
    case CG_CONV_PATH_WINOGRAD_FUSED:
      return winograd ? forced : CG_CONV_PATH_IM2COL;
    case CG_CONV_PATH_THIN:
      return thin ? CG_CONV_PATH_THIN : CG_CONV_PATH_IM2COL;
    case CG_CONV_PATH_AUTO:
      break;
  }
  if (winograd)
    return cg_conv2d_winograd_fused_preferred (s) ?
        CG_CONV_PATH_WINOGRAD_FUSED : CG_CONV_PATH_WINOGRAD;
  if (l->op == OP_CONV && cg_conv2d_thin_preferred (s))
    return CG_CONV_PATH_THIN;
  if (direct_auto)
    return CG_CONV_PATH_DIRECT;
  return CG_CONV_PATH_IM2COL;
}

/* Transposed convolutions run phase by phase (conv_panels.c) where the
 * shape allows, which the generator's always do; col2im otherwise. */
static gboolean
use_phases (const Layer * l)
{
  return l->op == OP_CONV_T && l->path == CG_CONV_PATH_IM2COL
      && cg_conv_transpose2d_panels_supported (&l->shape);
}

/* Choose each layer's path and transform its weights for it. */
static void
plan_paths (CgGenerator * gen)
{
  for (int i = 0; i < gen->n_layers; i++) {
    Layer *l = &gen->layers[i];
    CgConvPath path = choose_path (l, gen->forced);
    if (path == l->path)
      continue;
    g_clear_pointer (&l->prepared, g_free);
    l->path = path;
    if (path == CG_CONV_PATH_WINOGRAD
        || path == CG_CONV_PATH_WINOGRAD_FUSED) {
      l->prepared = g_new (float, CG_WINOGRAD_PREPARED_FLOATS (&l->shape));
      cg_conv2d_winograd_prepare (l->prepared, l->weight, &l->shape);
    } else if (path == CG_CONV_PATH_IM2COL && l->op == OP_CONV) {
      l->prepared = g_new (float,
          cg_conv2d_panels_prepared_floats (&l->shape));
      cg_conv2d_panels_prepare (l->prepared, l->weight, &l->shape);
    } else if (path == CG_CONV_PATH_DIRECT && l->op == OP_CONV_T) {
      l->prepared = g_new (float,
          cg_conv_transpose2d_direct_prepared_floats (&l->shape));
      cg_conv_transpose2d_direct_prepare (l->prepared, l->weight,
          &l->shape);
    } else if (path == CG_CONV_PATH_DIRECT) {
      l->prepared = g_new (float,
          cg_conv2d_direct_prepared_floats (&l->shape));
      cg_conv2d_direct_prepare (l->prepared, l->weight, &l->shape);
    } else if (path == CG_CONV_PATH_IM2COL && use_phases (l)) {
      l->prepared = g_new (float,
          cg_conv_transpose2d_panels_prepared_floats (&l->shape));
      cg_conv_transpose2d_panels_prepare (l->prepared, l->weight,
          &l->shape);
    }
  }
  /* scratch needs may have changed: plan again at the next frame */
  cg_arena_clear (&gen->arena);
}

void
cg_generator_force_path (CgGenerator * gen, CgConvPath path)
{
  gen->forced = path;
  plan_paths (gen);
}

static const char *const path_names[] = {
  [CG_CONV_PATH_AUTO] = "auto",
  [CG_CONV_PATH_IM2COL] = "im2col",
  [CG_CONV_PATH_WINOGRAD] = "winograd",
  [CG_CONV_PATH_WINOGRAD_FUSED] = "winograd-fused",
  [CG_CONV_PATH_THIN] = "thin",
  [CG_CONV_PATH_DIRECT] = "direct",
};

const char *
cg_conv_path_name (CgConvPath path)
{
  return (unsigned) path < G_N_ELEMENTS (path_names) ? path_names[path] :
      NULL;
}

gboolean
cg_conv_path_from_name (const char *name, CgConvPath * path)
{
  for (guint i = 0; i < G_N_ELEMENTS (path_names); i++)
    if (g_strcmp0 (name, path_names[i]) == 0) {
      *path = i;
      return TRUE;
    }
  return FALSE;
}

CgGenerator *
cg_generator_new (CgModel * model, CgDirection direction, GError ** error)
{
  CgGenerator *gen;

  g_return_val_if_fail (model != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!cg_model_has_direction (model, direction)) {
    g_set_error (error, CG_ERROR, CG_ERROR_DIRECTION,
        "%s: holds one generator (A to B) only; direction %s needs G_B",
        cg_model_get_path (model), cg_direction_to_string (direction) ?
        cg_direction_to_string (direction) : "(invalid)");
    return NULL;
  }
  gen = g_new0 (CgGenerator, 1);
  gen->model = cg_model_ref (model);
  gen->direction = direction;
  gen->params = cg_model_get_params (model, direction);
  build_layers (gen);
  plan_paths (gen);
  return gen;
}

void
cg_generator_free (CgGenerator * gen)
{
  if (!gen)
    return;
  cg_arena_clear (&gen->arena);
  g_free (gen->moments[0]);
  g_free (gen->moments[1]);
  cg_pool_free (gen->pool);
  for (int i = 0; i < gen->n_layers; i++)
    g_free (gen->layers[i].prepared);
  g_free (gen->layers);
  cg_model_unref (gen->model);
  g_free (gen);
}

CgModel *
cg_generator_get_model (const CgGenerator * gen)
{
  return gen->model;
}

CgDirection
cg_generator_get_direction (const CgGenerator * gen)
{
  return gen->direction;
}

void
cg_generator_set_threads (CgGenerator * gen, int n_threads)
{
  g_return_if_fail (n_threads >= 0);
  gen->n_threads = n_threads;
}

int
cg_generator_get_threads (const CgGenerator * gen)
{
  return gen->n_threads;
}

/* Shared scratch (the arena's column slot) of a layer; the panel paths
 * work in per-thread scratch instead (layer_thread_scratch). */
static gsize
layer_scratch (const Layer * l)
{
  if (use_phases (l) || (l->path == CG_CONV_PATH_DIRECT
          && l->op == OP_CONV_T))
    return 0;
  if (l->op == OP_CONV_T)
    return cg_conv_transpose2d_col_floats (&l->shape, l->in_h, l->in_w,
        COL_BUDGET);
  switch (l->path) {
    case CG_CONV_PATH_WINOGRAD:
      return cg_conv2d_winograd_scratch_floats (&l->shape, l->in_h,
          l->in_w, COL_BUDGET);
    case CG_CONV_PATH_WINOGRAD_FUSED:
      return 0;
    case CG_CONV_PATH_THIN:
      return cg_conv2d_thin_scratch_floats (&l->shape, l->in_h, l->in_w);
    case CG_CONV_PATH_DIRECT:
      return cg_conv2d_direct_scratch_floats (&l->shape, l->in_h, l->in_w);
    default:
      return cg_conv2d_panels_scratch_floats (&l->shape, l->in_h, l->in_w);
  }
}

static gsize
layer_thread_scratch (const Layer * l)
{
  if (use_phases (l))
    return cg_conv_transpose2d_panels_thread_floats (&l->shape);
  if (l->op == OP_CONV_T)
    return 0;
  switch (l->path) {
    case CG_CONV_PATH_WINOGRAD:
    case CG_CONV_PATH_WINOGRAD_FUSED:
      return cg_conv2d_winograd_thread_floats (&l->shape, l->in_h, l->in_w,
          COL_BUDGET);
    case CG_CONV_PATH_THIN:
    case CG_CONV_PATH_DIRECT:
      return 0;
    default:
      return cg_conv2d_panels_thread_floats (&l->shape);
  }
}

/* Moments the layer's convolution gathers for the norm after it (its
 * parts, cg_moments_reduce), or 0 where the norm reads them itself. */
static gsize
layer_moments (const Layer * l)
{
  if (l->post != POST_IN_RELU && l->post != POST_IN_ADD)
    return 0;
  if (l->path == CG_CONV_PATH_WINOGRAD
      || l->path == CG_CONV_PATH_WINOGRAD_FUSED)
    return cg_conv2d_winograd_moments_len (&l->shape, l->in_h);
  if (l->path == CG_CONV_PATH_THIN)
    return cg_conv2d_thin_moments_len (&l->shape, l->in_h);
  if (l->path == CG_CONV_PATH_DIRECT && l->op == OP_CONV)
    return cg_conv2d_direct_moments_len (&l->shape, l->in_h);
  if (l->path == CG_CONV_PATH_DIRECT)
    return cg_conv_transpose2d_direct_moments_len (&l->shape, l->in_h);
  return 0;
}

/* Whether layer i's output is read after layer i + 1 (as a residual)
 * before it is overwritten. */
static gboolean
read_later (const CgGenerator * gen, int i)
{
  Slot d = gen->layers[i].dst;

  for (int j = i + 1; j < gen->n_layers; j++) {
    const Layer *l = &gen->layers[j];
    gboolean adds = l->post == POST_IN_ADD || l->post == POST_ADD;
    if ((j > i + 1 && l->src == d) || (adds && l->residual == d))
      return TRUE;
    if (l->dst == d)
      return FALSE;
  }
  return FALSE;
}

/* Layer i's norm and ReLU left to the next layer, which applies them as
 * it copies its input rows (the stride-2 convolutions' split, the
 * Winograd input transform, the thin kernel's ring): one pass over the
 * activation fewer, where nothing else reads it (ngf 16 at 640x480: the
 * down- and upsampling's 4.9M, 2.5M and 4.9M values, and each residual
 * block's middle 1.2M). */
static gboolean
norm_deferred (const CgGenerator * gen, int i)
{
  const Layer *l = &gen->layers[i], *next = l + 1;

  return l->post == POST_IN_RELU && layer_moments (l)
      && i + 1 < gen->n_layers && next->op == OP_CONV
      && next->src == l->dst && !read_later (gen, i)
      && (next->path == CG_CONV_PATH_DIRECT
      || next->path == CG_CONV_PATH_WINOGRAD
      || next->path == CG_CONV_PATH_WINOGRAD_FUSED
      || next->path == CG_CONV_PATH_THIN);
}

static void
layer_out_size (const Layer * l, int h, int w, int *oh, int *ow)
{
  if (l->op == OP_CONV)
    cg_conv2d_out_size (&l->shape, h, w, oh, ow);
  else
    cg_conv_transpose2d_out_size (&l->shape, h, w, oh, ow);
}

gboolean
cg_generator_prepare (CgGenerator * gen, int width, int height,
    GError ** error)
{
  const CgGeneratorConfig *c = &gen->params->config;
  gsize act = 0, col = 0, total = 0, thread = 0, moments = 0;
  int h, w;

  if (gen->arena.base && width == gen->width && height == gen->height)
    return TRUE;

  /* The padded frame must survive two halvings with a reflect pad of 1
   * left (H/4 >= 2), and the pad to a multiple of 4 must be a reflection
   * (at most 3 < H). Both hold from 5 on. */
  if (width < CG_MIN_FRAME_SIZE || height < CG_MIN_FRAME_SIZE
      || width > 32768 || height > 32768) {
    g_set_error (error, CG_ERROR, CG_ERROR_SIZE,
        "frame size %dx%d: the generator runs %d to 32768 pixels a side",
        width, height, CG_MIN_FRAME_SIZE);
    return FALSE;
  }

  gen->width = width;
  gen->height = height;
  gen->pw = (width + 3) & ~3;
  gen->ph = (height + 3) & ~3;

  h = gen->ph;
  w = gen->pw;
  for (int i = 0; i < gen->n_layers; i++) {
    Layer *l = &gen->layers[i];
    gsize lcol;
    l->in_h = h;
    l->in_w = w;
    layer_out_size (l, h, w, &l->out_h, &l->out_w);
    h = l->out_h;
    w = l->out_w;
    act = MAX (act, (gsize) l->shape.cout * h * w);
    moments = MAX (moments, layer_moments (l));
    lcol = layer_scratch (l);
    thread = MAX (thread, layer_thread_scratch (l));
    col = MAX (col, lcol);
  }
  g_assert (h == gen->ph && w == gen->pw);

  {
    gsize sizes[N_SLOTS] = {
      [SLOT_IN] = (gsize) c->in_channels * gen->ph * gen->pw,
      [SLOT_A] = act,[SLOT_B] = act,[SLOT_C] = act,
      [SLOT_OUT] = (gsize) c->out_channels * gen->ph * gen->pw,
      [SLOT_COL] = col,
    };
    for (int s = 0; s < N_SLOTS; s++) {
      gen->slot[s] = total;
      total += cg_arena_round (sizes[s]);
    }
  }

  gen->thread_floats = thread;
  gen->threads_ready = FALSE;
  for (int k = 0; k < 2; k++) {
    g_free (gen->moments[k]);
    gen->moments[k] = moments ? g_try_new (CgMoments, moments) : NULL;
  }
  if (!cg_arena_reserve (&gen->arena, total)
      || (moments && (!gen->moments[0] || !gen->moments[1]))) {
    gen->width = gen->height = 0;
    g_set_error (error, CG_ERROR, CG_ERROR_NO_MEMORY,
        "frame size %dx%d: no memory for the %" G_GSIZE_FORMAT
        " MiB of scratch space", width, height,
        total * sizeof (float) >> 20);
    return FALSE;
  }
  return TRUE;
}

static inline float *
slot_ptr (CgGenerator * gen, Slot s)
{
  return gen->arena.base + gen->slot[s];
}

static void
reserve_thread_scratch (gpointer data, int begin, int end)
{
  cg_thread_scratch (*(const gsize *) data);
  cg_gemm_reserve_thread ();
}

static void
apply_threads (CgGenerator * gen)
{
  int n = gen->n_threads ? gen->n_threads : (int) g_get_num_processors ();
  /* Our pool splits every GEMM and pass itself (see cg_sgemm). */
  if (openblas_get_num_threads () != 1)
    openblas_set_num_threads (1);
  if (!gen->pool || cg_pool_n_threads (gen->pool) != n) {
    cg_pool_free (gen->pool);
    gen->pool = cg_pool_new (n);
    gen->threads_ready = FALSE;
  }
  /* Each thread gets its scratch rows now, not in the middle of some
   * later frame: which thread takes which piece varies. */
  if (!gen->threads_ready) {
    cg_pool_each_thread (gen->pool, reserve_thread_scratch,
        &gen->thread_floats);
    gen->threads_ready = TRUE;
  }
}

static void
run_layer (CgGenerator * gen, const Layer * l)
{
  float *src = slot_ptr (gen, l->src);
  float *dst = slot_ptr (gen, l->dst);
  float *col = slot_ptr (gen, SLOT_COL);
  int hw = l->out_h * l->out_w;
  int i = (int) (l - gen->layers);
  CgMoments *moments = layer_moments (l) ? gen->moments[i % 2] : NULL;
  /* the layer before left its norm to this one */
  const CgMoments *in_norm = i > 0 && norm_deferred (gen, i - 1) ?
      gen->moments[(i - 1) % 2] : NULL;

  if (l->path == CG_CONV_PATH_DIRECT && l->op == OP_CONV_T)
    cg_conv_transpose2d_direct_forward (dst, src, l->prepared, l->bias,
        &l->shape, l->in_h, l->in_w, FALSE, moments);
  else if (l->path == CG_CONV_PATH_DIRECT)
    cg_conv2d_direct_forward (dst, src, in_norm, l->prepared, l->bias,
        &l->shape, l->in_h, l->in_w, moments, col);
  else if (use_phases (l))
    cg_conv_transpose2d_panels_forward (dst, src, l->prepared, l->bias,
        &l->shape, l->in_h, l->in_w);
  else if (l->op == OP_CONV_T)
    cg_conv_transpose2d_forward (dst, src, l->weight, l->bias, &l->shape,
        l->in_h, l->in_w, col, COL_BUDGET);
  else if (l->path == CG_CONV_PATH_WINOGRAD_FUSED)
    cg_conv2d_winograd_forward_fused (dst, src, in_norm, l->prepared,
        l->bias, &l->shape, l->in_h, l->in_w, moments);
  else if (l->path == CG_CONV_PATH_WINOGRAD)
    cg_conv2d_winograd_forward (dst, src, in_norm, l->prepared, l->bias,
        &l->shape, l->in_h, l->in_w, col, COL_BUDGET, moments);
  else if (l->path == CG_CONV_PATH_THIN)
    cg_conv2d_thin_forward (dst, src, in_norm, l->weight, l->bias,
        &l->shape, l->in_h, l->in_w, l->post == POST_TANH, moments, col);
  else
    cg_conv2d_panels_forward (dst, src, l->prepared, l->bias, &l->shape,
        l->in_h, l->in_w, col);

  switch (l->post) {
    case POST_IN_RELU:
      if (!norm_deferred (gen, i))
        cg_instance_norm_relu_apply (dst, dst, moments, l->shape.cout, hw);
      break;
    case POST_IN_ADD:{
      float *res = slot_ptr (gen, l->residual);
      cg_instance_norm_add_apply (res, dst, res, moments, l->shape.cout, hw);
      break;
    }
    case POST_RELU:
      cg_relu_forward (dst, dst, (gsize) l->shape.cout * hw);
      break;
    case POST_ADD:{
      float *res = slot_ptr (gen, l->residual);
      cg_add_forward (res, dst, res, (gsize) l->shape.cout * hw);
      break;
    }
    case POST_TANH:
      /* the thin kernel takes it as it stores */
      if (l->path != CG_CONV_PATH_THIN)
        cg_tanh_forward (dst, dst, (gsize) l->shape.cout * hw);
      break;
  }
}

/* The network on the padded input slot, into the output slot, on the
 * generator's pool (the caller's current one). */
static void
run_layers (CgGenerator * gen)
{
  for (int i = 0; i < gen->n_layers; i++) {
    gint64 t0 = gen->layer_ms ? g_get_monotonic_time () : 0;
    run_layer (gen, &gen->layers[i]);
    if (gen->layer_ms)
      gen->layer_ms[i] += (g_get_monotonic_time () - t0) / 1000.0;
  }
}

static void
run_network (CgGenerator * gen)
{
  apply_threads (gen);
  cg_pool_push (gen->pool);
  run_layers (gen);
  cg_pool_pop ();
}

typedef struct
{
  CgGenerator *gen;
  CgPixelFormat format;
  const guint8 *src;
  guint8 *dst;
  gsize src_stride, dst_stride;
  int width;
} PixelJob;

/* Rows [begin, end) of the frame into the input planes, and of the
 * output planes back into the frame, split over the pool: alone, the
 * conversions kept the other threads waiting (~1% of a frame at ngf 16). */
static void
pixels_in_rows (gpointer data, int begin, int end)
{
  const PixelJob *j = data;
  int pw = j->gen->pw;

  cg_pixels_to_planes (j->format, j->src + (gsize) begin * j->src_stride,
      j->src_stride, j->width, end - begin,
      slot_ptr (j->gen, SLOT_IN) + (gsize) begin * pw, pw,
      (gsize) j->gen->ph * pw);
}

static void
pixels_out_rows (gpointer data, int begin, int end)
{
  const PixelJob *j = data;
  int pw = j->gen->pw;

  /* In place (src == dst) the X/alpha bytes are still the input's. */
  cg_pixels_from_planes (j->format,
      slot_ptr (j->gen, SLOT_OUT) + (gsize) begin * pw, pw,
      (gsize) j->gen->ph * pw, j->width, end - begin,
      j->dst + (gsize) begin * j->dst_stride, j->dst_stride,
      j->src + (gsize) begin * j->src_stride, j->src_stride);
}

gboolean
cg_generator_run_planar (CgGenerator * gen, const float *src, float *dst,
    int width, int height, GError ** error)
{
  const CgGeneratorConfig *c = &gen->params->config;
  gsize plane = (gsize) width * height, pplane;
  float *in, *out;

  if (!cg_generator_prepare (gen, width, height, error))
    return FALSE;
  pplane = (gsize) gen->ph * gen->pw;
  in = slot_ptr (gen, SLOT_IN);
  out = slot_ptr (gen, SLOT_OUT);

  for (int ch = 0; ch < c->in_channels; ch++)
    for (int y = 0; y < height; y++)
      memcpy (in + ch * pplane + (gsize) y * gen->pw,
          src + ch * plane + (gsize) y * width, sizeof (float) * width);
  cg_reflect_extend (in, c->in_channels, height, width, gen->ph, gen->pw);

  run_network (gen);

  for (int ch = 0; ch < c->out_channels; ch++)
    for (int y = 0; y < height; y++)
      memcpy (dst + ch * plane + (gsize) y * width,
          out + ch * pplane + (gsize) y * gen->pw, sizeof (float) * width);
  return TRUE;
}

gboolean
cg_generator_run_pixels (CgGenerator * gen, CgPixelFormat format,
    const guint8 * src, gsize src_stride, guint8 * dst, gsize dst_stride,
    int width, int height, GError ** error)
{
  const CgGeneratorConfig *c = &gen->params->config;
  PixelJob job;
  int bpp;

  g_return_val_if_fail ((unsigned) format < CG_PIXEL_N_FORMATS, FALSE);
  bpp = cg_pixel_format_bpp (format);
  g_return_val_if_fail (src_stride >= (gsize) width * bpp, FALSE);
  g_return_val_if_fail (dst_stride >= (gsize) width * bpp, FALSE);

  if (c->in_channels != 3 || c->out_channels != 3) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: a generator of %d to %d channels cannot run on RGB pixels",
        cg_model_get_path (gen->model), c->in_channels, c->out_channels);
    return FALSE;
  }
  if (!cg_generator_prepare (gen, width, height, error))
    return FALSE;
  job = (PixelJob) {
  gen, format, src, dst, src_stride, dst_stride, width};

  apply_threads (gen);
  cg_pool_push (gen->pool);
  cg_parallel_for (height, pixels_in_rows, &job);
  cg_reflect_extend (slot_ptr (gen, SLOT_IN), 3, height, width, gen->ph,
      gen->pw);
  run_layers (gen);
  cg_parallel_for (height, pixels_out_rows, &job);
  cg_pool_pop ();
  return TRUE;
}

int
cg_generator_n_layers (const CgGenerator * gen)
{
  return gen->n_layers;
}

const char *
cg_generator_layer_name (const CgGenerator * gen, int i)
{
  g_return_val_if_fail (i >= 0 && i < gen->n_layers, NULL);
  return gen->layers[i].name;
}

static double
layer_macs (const Layer * l, int h, int w, int oh, int ow)
{
  /* A transposed convolution does its k*k products per input pixel. */
  return (double) l->shape.cin * l->shape.cout * l->shape.k * l->shape.k *
      (l->op == OP_CONV ? (double) oh * ow : (double) h * w);
}

double
cg_generator_layer_macs (const CgGenerator * gen, int i)
{
  const Layer *l = &gen->layers[i];
  return layer_macs (l, l->in_h, l->in_w, l->out_h, l->out_w);
}

char *
cg_generator_layer_describe (const CgGenerator * gen, int i)
{
  const Layer *l = &gen->layers[i];
  return g_strdup_printf ("%s %dx%d/%d %d->%d %dx%d %s",
      l->op == OP_CONV ? "conv" : "convT", l->shape.k, l->shape.k,
      l->shape.stride, l->shape.cin, l->shape.cout, l->out_w, l->out_h,
      l->op == OP_CONV ? cg_conv_path_name (l->path) :
      l->path == CG_CONV_PATH_DIRECT ? "direct" :
      use_phases (l) ? "phases" : "col2im");
}

void
cg_generator_set_layer_times (CgGenerator * gen, double *ms)
{
  gen->layer_ms = ms;
}

double
cg_generator_macs (const CgGenerator * gen, int width, int height)
{
  double macs = 0.0;
  int h = (height + 3) & ~3, w = (width + 3) & ~3;

  for (int i = 0; i < gen->n_layers; i++) {
    const Layer *l = &gen->layers[i];
    int oh, ow;
    layer_out_size (l, h, w, &oh, &ow);
    macs += layer_macs (l, h, w, oh, ow);
    h = oh;
    w = ow;
  }
  return macs;
}
