/* The networks being trained: parameter tables, buffers, initialization,
 * and the tape that runs a network forward keeping what its backward pass
 * needs, then backward.
 *
 * A network is a list of layers, each a convolution (or a transposed one)
 * and what follows it:
 *
 *   ResNet generator                      PatchGAN (n_layers_D = 3)
 *   model.1   conv 7x7 reflect, IN, ReLU  model.0   conv 4x4 s2, LReLU
 *   model.4   conv 3x3 s2, IN, ReLU       model.2   conv 4x4 s2, IN, LReLU
 *   model.7   conv 3x3 s2, IN, ReLU       model.5   conv 4x4 s2, IN, LReLU
 *   blocks    conv 3x3 reflect, IN, ReLU  model.8   conv 4x4 s1, IN, LReLU
 *             conv 3x3 reflect, IN, + x   model.11  conv 4x4 s1
 *   up        conv-T 3x3 s2, IN, ReLU (2x)
 *   out       conv 7x7 reflect, tanh
 *
 * Each layer keeps its convolution's output (InstanceNorm's input, from
 * which the backward pass recomputes the statistics) and its own output
 * (the next layer's input, whose sign is the activation's mask). The
 * reflection padding is folded into the convolutions, as in inference.
 */
#include "train-private.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Column buffer budget (floats): as in inference, bands of rows keep the
 * im2col matrix within it; training can afford a larger one (32 MiB). */
#define COL_BUDGET ((gsize) 8 << 20)

/* ---- random numbers ---- */

void
cg_rng_seed (CgRng * rng, guint64 seed)
{
  rng->state = 0;
  rng->inc = (seed << 1) | 1;
  cg_rng_next (rng);
  rng->state += 0x853c49e6748fea9bULL ^ seed;
  cg_rng_next (rng);
}

guint32
cg_rng_next (CgRng * rng)
{
  guint64 old = rng->state;
  guint32 xs, rot;

  rng->state = old * 6364136223846793005ULL + rng->inc;
  xs = (guint32) (((old >> 18) ^ old) >> 27);
  rot = (guint32) (old >> 59);
  return (xs >> rot) | (xs << ((-rot) & 31));
}

double
cg_rng_uniform (CgRng * rng)
{
  guint64 hi = cg_rng_next (rng) >> 5, lo = cg_rng_next (rng) >> 6;
  return (hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0);
}

guint32
cg_rng_below (CgRng * rng, guint32 n)
{
  guint32 limit = -n % n;       /* 2^32 mod n: reject below it */
  guint32 r;

  do
    r = cg_rng_next (rng);
  while (r < limit);
  return r % n;
}

double
cg_rng_normal (CgRng * rng)
{
  /* Box-Muller, one value per call: simple, and the state stays two
   * integers (no cached second value to checkpoint). */
  double u1 = 1.0 - cg_rng_uniform (rng), u2 = cg_rng_uniform (rng);
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

/* ---- parameter tables and buffers ---- */


/* Official NLayerDiscriminator module indices: the first conv at 0, then
 * conv/IN/LReLU triples from 2, the last conv after them. */
static int
disc_conv_index (int layer)
{
  return layer == 0 ? 0 : 3 * layer - 1;
}

static int
disc_channels (const CgDiscConfig * c, int layer)
{
  /* output channels of conv `layer` (0 .. n_layers + 1) */
  if (layer > c->n_layers)
    return 1;
  return c->ndf * MIN (1 << layer, 8);
}

CgParamSpec *
cg_disc_param_table (const CgDiscConfig * c, guint * n_specs,
    gsize * n_floats)
{
  GArray *specs = g_array_new (FALSE, TRUE, sizeof (CgParamSpec));
  gsize offset = 0;
  char name[48];

  for (int l = 0; l <= c->n_layers + 1; l++) {
    int cin = l == 0 ? c->in_channels : disc_channels (c, l - 1);
    int cout = disc_channels (c, l);
    g_snprintf (name, sizeof name, "model.%d", disc_conv_index (l));
    /* the first and last convolutions always have a bias, the others
     * only before InstanceNorm (the official NLayerDiscriminator) */
    cg_param_table_add_conv (specs, &offset, name, cout, cin, 4,
        l == 0 || l > c->n_layers || c->norm == CG_NORM_INSTANCE);
  }
  *n_specs = specs->len;
  *n_floats = offset;
  return (CgParamSpec *) g_array_free (specs, FALSE);
}

static float *
aligned_zeros (gsize n)
{
  void *mem = NULL;
  if (posix_memalign (&mem, 64, MAX (n, 1) * sizeof (float)) != 0)
    return NULL;
  memset (mem, 0, MAX (n, 1) * sizeof (float));
  return mem;
}

void
cg_train_net_params_changed (CgTrainNet * net)
{
  net->version++;
}

static CgTrainNet *
net_buffers (CgTrainNet * net)
{
  net->wino_version = G_MAXUINT64;
  if (!net->param)
    net->param = aligned_zeros (net->n_floats);
  net->grad = aligned_zeros (net->n_floats);
  net->m = aligned_zeros (net->n_floats);
  net->v = aligned_zeros (net->n_floats);
  if (!net->param || !net->grad || !net->m || !net->v) {
    cg_train_net_free (net);
    return NULL;
  }
  return net;
}

CgTrainNet *
cg_train_net_new_generator (const CgGeneratorConfig * c)
{
  CgTrainNet *net = g_new0 (CgTrainNet, 1);

  net->kind = CG_NET_GENERATOR;
  net->gconfig = *c;
  net->gparams = cg_generator_params_new (c);
  if (!net->gparams) {
    g_free (net);
    return NULL;
  }
  /* The table and the parameters are the inference model's own, so
   * cg_model_write saves them as they are. */
  net->specs = net->gparams->specs;
  net->n_specs = net->gparams->n_specs;
  net->n_floats = net->gparams->n_floats;
  net->param = net->gparams->data;
  return net_buffers (net);
}

CgTrainNet *
cg_train_net_new_discriminator (const CgDiscConfig * c)
{
  CgTrainNet *net = g_new0 (CgTrainNet, 1);

  net->kind = CG_NET_DISCRIMINATOR;
  net->dconfig = *c;
  net->specs = cg_disc_param_table (c, &net->n_specs, &net->n_floats);
  return net_buffers (net);
}

void
cg_train_net_free (CgTrainNet * net)
{
  if (!net)
    return;
  if (net->gparams)
    cg_generator_params_free (net->gparams);
  else {
    free (net->param);
    g_free (net->specs);
  }
  g_free (net->wino);
  free (net->grad);
  free (net->m);
  free (net->v);
  g_free (net);
}

float *
cg_train_net_find (const CgTrainNet * net, const char *name,
    const float *buffer)
{
  for (guint i = 0; i < net->n_specs; i++)
    if (strcmp (net->specs[i].name, name) == 0)
      return (float *) buffer + net->specs[i].offset;
  return NULL;
}

void
cg_train_net_init_normal (CgTrainNet * net, CgRng * rng, double gain)
{
  for (guint i = 0; i < net->n_specs; i++) {
    const CgParamSpec *s = &net->specs[i];
    float *x = net->param + s->offset;
    for (gsize j = 0; j < s->n_elements; j++)
      x[j] = s->n_dims == 4 ? (float) (gain * cg_rng_normal (rng)) : 0.0f;
  }
  cg_train_net_params_changed (net);
}

void
cg_train_net_zero_grad (CgTrainNet * net)
{
  cg_parallel_zero (net->grad, net->n_floats);
}

/* ---- the tape ---- */

typedef enum
{
  POST_NONE,
  POST_IN_RELU,
  POST_IN_ADD,                  /* InstanceNorm, + the output of `residual` */
  POST_IN_LRELU,
  POST_RELU,                    /* without norm: */
  POST_ADD,
  POST_LRELU,
  POST_TANH,
} Post;

/* A layer without a bias (norm none) */
#define NO_BIAS G_MAXSIZE

typedef enum
{
  PATH_IM2COL,
  PATH_WINOGRAD,                /* 3x3 stride 1 pad 1: the residual blocks */
  PATH_THIN,                    /* few outputs, "same" padding: to RGB */
  PATH_DIRECT,                  /* 3x3 stride 2 and its transpose (AVX-512) */
} Path;

typedef struct
{
  gboolean transposed;
  Path path;                    /* the forward's; backward uses columns */
  CgConvShape shape;
  gsize weight, bias;           /* offsets into the network's buffers */
  Post post;
  int src;                      /* the layer whose output is the input; -1:
                                 * the network's input */
  int residual;                 /* POST_IN_ADD */
  int in_h, in_w, out_h, out_w;
  /* offsets into net->wino, the weights prepared for the path: Winograd's
   * forward and adjoint, or the direct kernel's (wino_fwd) */
  gsize wino_fwd, wino_adj;
  gsize pre, out, gout;         /* arena offsets (floats) */
} Layer;

struct _CgTape
{
  Layer *layers;
  int n_layers;
  int in_c, h, w;
  CgArena arena;
  gsize col, gpre;              /* scratch: columns, pre-activation grad */
  gsize wino_floats;            /* the transforms of all Winograd layers */
  const float *input;
};

static void
add_layer (GArray * layers, const CgTrainNet * net, const char *module,
    gboolean transposed, int cin, int cout, int k, int stride, int pad,
    CgPadMode mode, Post post, int src, int residual)
{
  Layer l = { 0 };
  char name[64];
  const float *w, *b;

  l.transposed = transposed;
  l.shape = (CgConvShape) {
  .cin = cin,.cout = cout,.k = k,.stride = stride,.pad = pad,.pad_mode =
        mode,.output_padding = transposed ? 1 : 0};
  g_snprintf (name, sizeof name, "%s.weight", module);
  w = cg_train_net_find (net, name, net->param);
  g_snprintf (name, sizeof name, "%s.bias", module);
  b = cg_train_net_find (net, name, net->param);
  g_assert (w);
  l.weight = w - net->param;
  l.bias = b ? (gsize) (b - net->param) : NO_BIAS;
  if ((net->kind == CG_NET_GENERATOR ? net->gconfig.norm : net->dconfig.norm)
      == CG_NORM_NONE)
    post = post == POST_IN_RELU ? POST_RELU : post == POST_IN_ADD ? POST_ADD
        : post == POST_IN_LRELU ? POST_LRELU : post;
  l.post = post;
  l.src = src;
  l.residual = residual;
  g_array_append_val (layers, l);
}

static void
build_generator (GArray * L, const CgTrainNet * net)
{
  const CgGeneratorConfig *c = &net->gconfig;
  int ngf = c->ngf, nb = c->n_blocks;
  char m[48];

  add_layer (L, net, "model.1", FALSE, c->in_channels, ngf, 7, 1, 3,
      CG_PAD_REFLECT, POST_IN_RELU, -1, 0);
  add_layer (L, net, "model.4", FALSE, ngf, 2 * ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, 0, 0);
  add_layer (L, net, "model.7", FALSE, 2 * ngf, 4 * ngf, 3, 2, 1,
      CG_PAD_ZERO, POST_IN_RELU, 1, 0);
  for (int i = 0; i < nb; i++) {
    int x = (int) L->len - 1;   /* the block's input */
    g_snprintf (m, sizeof m, "model.%d.conv_block.%d", CG_GEN_IDX_BLOCK0 + i,
        CG_BLOCK_IDX_CONV1);
    add_layer (L, net, m, FALSE, 4 * ngf, 4 * ngf, 3, 1, 1, CG_PAD_REFLECT,
        POST_IN_RELU, x, 0);
    g_snprintf (m, sizeof m, "model.%d.conv_block.%d", CG_GEN_IDX_BLOCK0 + i,
        CG_BLOCK_IDX_CONV2 (c->dropout_layout));
    add_layer (L, net, m, FALSE, 4 * ngf, 4 * ngf, 3, 1, 1, CG_PAD_REFLECT,
        POST_IN_ADD, x + 1, x);
  }
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_UP1 (nb));
  add_layer (L, net, m, TRUE, 4 * ngf, 2 * ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, (int) L->len - 1, 0);
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_UP2 (nb));
  add_layer (L, net, m, TRUE, 2 * ngf, ngf, 3, 2, 1, CG_PAD_ZERO,
      POST_IN_RELU, (int) L->len - 1, 0);
  g_snprintf (m, sizeof m, "model.%d", CG_GEN_IDX_CONV_OUT (nb));
  add_layer (L, net, m, FALSE, ngf, c->out_channels, 7, 1, 3, CG_PAD_REFLECT,
      POST_TANH, (int) L->len - 1, 0);
}

static void
build_discriminator (GArray * L, const CgTrainNet * net)
{
  const CgDiscConfig *c = &net->dconfig;
  char m[48];

  for (int l = 0; l <= c->n_layers + 1; l++) {
    int cin = l == 0 ? c->in_channels : disc_channels (c, l - 1);
    Post post = l == 0 ? POST_LRELU : l <= c->n_layers ? POST_IN_LRELU :
        POST_NONE;
    g_snprintf (m, sizeof m, "model.%d", disc_conv_index (l));
    add_layer (L, net, m, FALSE, cin, disc_channels (c, l), 4,
        l < c->n_layers ? 2 : 1, 1, CG_PAD_ZERO, post, l - 1, 0);
  }
}

/* The forward's convolution path, as the inference generator chooses it
 * (generator.c has the measurements); the weights change every step, so
 * Winograd's transform is redone per forward (a few ms at ngf 64). */
static Path
choose_path (const Layer * l)
{
  const CgConvShape *s = &l->shape;
  if (l->transposed)
    return cg_conv_transpose2d_direct_supported (s) ? PATH_DIRECT :
        PATH_IM2COL;
  if (s->k == 3 && s->stride == 1 && s->pad == 1)
    return PATH_WINOGRAD;
  if (cg_conv2d_thin_preferred (s))
    return PATH_THIN;
  if (cg_conv2d_direct_preferred (s))
    return PATH_DIRECT;
  return PATH_IM2COL;
}

static gsize
layer_col_floats (const Layer * l)
{
  gsize n;
  if (l->transposed)
    return cg_conv_transpose2d_col_floats (&l->shape, l->in_h, l->in_w,
        COL_BUDGET);
  n = cg_conv2d_backward_col_floats (&l->shape, l->in_h, l->in_w,
      COL_BUDGET);
  if (l->path == PATH_WINOGRAD)
    n = MAX (n, cg_conv2d_winograd_scratch_floats (&l->shape, l->in_h,
            l->in_w, COL_BUDGET));
  else if (l->path == PATH_THIN)
    n = MAX (n, cg_conv2d_thin_scratch_floats (&l->shape, l->in_h,
            l->in_w));
  else if (l->path == PATH_DIRECT)
    n = MAX (n, MAX (cg_conv2d_panels_scratch_floats (&l->shape, l->in_h,
                l->in_w), cg_conv2d_direct_scratch_floats (&l->shape,
                l->in_h, l->in_w)));
  return n;
}

CgTape *
cg_tape_new (const CgTrainNet * net, int h, int w)
{
  GArray *L = g_array_new (FALSE, TRUE, sizeof (Layer));
  CgTape *tape = g_new0 (CgTape, 1);
  gsize total = 0, col = 0, gpre = 0, wino = 0;
  int ch = net->kind == CG_NET_GENERATOR ? net->gconfig.in_channels :
      net->dconfig.in_channels;

  if (net->kind == CG_NET_GENERATOR)
    build_generator (L, net);
  else
    build_discriminator (L, net);
  tape->n_layers = L->len;
  tape->layers = (Layer *) g_array_free (L, FALSE);
  tape->in_c = ch;
  tape->h = h;
  tape->w = w;

  for (int i = 0; i < tape->n_layers; i++) {
    Layer *l = &tape->layers[i];
    gsize n;
    l->in_h = l->src < 0 ? h : tape->layers[l->src].out_h;
    l->in_w = l->src < 0 ? w : tape->layers[l->src].out_w;
    if (l->transposed)
      cg_conv_transpose2d_out_size (&l->shape, l->in_h, l->in_w, &l->out_h,
          &l->out_w);
    else
      cg_conv2d_out_size (&l->shape, l->in_h, l->in_w, &l->out_h, &l->out_w);
    if (l->out_h < 1 || l->out_w < 1
        || (l->shape.pad_mode == CG_PAD_REFLECT
            && (l->in_h <= l->shape.pad || l->in_w <= l->shape.pad))) {
      cg_tape_free (tape);
      return NULL;
    }
    l->path = choose_path (l);
    if (l->path == PATH_WINOGRAD) {
      l->wino_fwd = wino;
      wino += cg_arena_round (CG_WINOGRAD_PREPARED_FLOATS (&l->shape));
      l->wino_adj = wino;
      wino += cg_arena_round (cg_conv2d_winograd_adjoint_floats (&l->shape));
    } else if (l->path == PATH_DIRECT) {
      l->wino_fwd = wino;
      wino += cg_arena_round (l->transposed ?
          cg_conv_transpose2d_direct_prepared_floats (&l->shape) :
          cg_conv2d_direct_prepared_floats (&l->shape));
    }
    n = cg_arena_round ((gsize) l->shape.cout * l->out_h * l->out_w);
    l->pre = total;
    total += n;
    if (l->post == POST_NONE)
      l->out = l->pre;
    else {
      l->out = total;
      total += n;
    }
    l->gout = total;
    total += n;
    col = MAX (col, layer_col_floats (l));
    gpre = MAX (gpre, n);
  }
  tape->col = total;
  total += cg_arena_round (col);
  tape->gpre = total;
  total += gpre;
  tape->wino_floats = wino;
  if (!cg_arena_reserve (&tape->arena, total)) {
    cg_tape_free (tape);
    return NULL;
  }
  return tape;
}

void
cg_tape_free (CgTape * tape)
{
  if (!tape)
    return;
  cg_arena_clear (&tape->arena);
  g_free (tape->layers);
  g_free (tape);
}

void
cg_tape_output_size (const CgTape * tape, int *c, int *h, int *w)
{
  const Layer *l = &tape->layers[tape->n_layers - 1];
  *c = l->shape.cout;
  *h = l->out_h;
  *w = l->out_w;
}

gsize
cg_tape_arena_floats (const CgTape * tape)
{
  return tape->arena.capacity;
}

#define SLOT(t, off) ((t)->arena.base + (off))

static const float *
layer_input (const CgTape * t, const Layer * l)
{
  return l->src < 0 ? t->input : SLOT (t, t->layers[l->src].out);
}

const float *
cg_tape_forward (CgTape * t, const CgTrainNet * net, const float *input)
{
  float *col = SLOT (t, t->col);

  t->input = input;
  if (t->wino_floats && net->wino_version != net->version) {
    CgTrainNet *mut = (CgTrainNet *) net;   /* the cache, not the model */
    if (mut->wino_floats < t->wino_floats) {
      g_free (mut->wino);
      mut->wino = g_new (float, t->wino_floats);
      mut->wino_floats = t->wino_floats;
    }
    for (int i = 0; i < t->n_layers; i++) {
      const Layer *l = &t->layers[i];
      if (l->path == PATH_DIRECT && l->transposed)
        cg_conv_transpose2d_direct_prepare (mut->wino + l->wino_fwd,
            net->param + l->weight, &l->shape);
      else if (l->path == PATH_DIRECT)
        cg_conv2d_direct_prepare (mut->wino + l->wino_fwd,
            net->param + l->weight, &l->shape);
      if (l->path != PATH_WINOGRAD)
        continue;
      cg_conv2d_winograd_prepare (mut->wino + l->wino_fwd,
          net->param + l->weight, &l->shape);
      cg_conv2d_winograd_adjoint_prepare (mut->wino + l->wino_adj,
          net->param + l->weight, &l->shape);
    }
    mut->wino_version = net->version;
  }
  for (int i = 0; i < t->n_layers; i++) {
    const Layer *l = &t->layers[i];
    const float *in = layer_input (t, l);
    float *pre = SLOT (t, l->pre), *out = SLOT (t, l->out);
    int c = l->shape.cout, hw = l->out_h * l->out_w;

    const float *weight = net->param + l->weight;
    const float *bias = l->bias == NO_BIAS ? NULL : net->param + l->bias;

    if (l->path == PATH_DIRECT && l->transposed)
      cg_conv_transpose2d_direct_forward (pre, in, net->wino + l->wino_fwd,
          bias, &l->shape, l->in_h, l->in_w, FALSE, NULL);
    else if (l->path == PATH_DIRECT)
      cg_conv2d_direct_forward (pre, in, NULL, net->wino + l->wino_fwd,
          bias, &l->shape, l->in_h, l->in_w, NULL, col);
    else if (l->transposed)
      cg_conv_transpose2d_forward (pre, in, weight, bias, &l->shape, l->in_h,
          l->in_w, col, COL_BUDGET);
    else if (l->path == PATH_WINOGRAD
        && cg_conv2d_winograd_fused_preferred (&l->shape))
      cg_conv2d_winograd_forward_fused (pre, in, NULL, net->wino + l->wino_fwd,
          bias, &l->shape, l->in_h, l->in_w, NULL);
    else if (l->path == PATH_WINOGRAD)
      cg_conv2d_winograd_forward (pre, in, NULL, net->wino + l->wino_fwd, bias,
          &l->shape, l->in_h, l->in_w, col, COL_BUDGET, NULL);
    else if (l->path == PATH_THIN)
      cg_conv2d_thin_forward (pre, in, NULL, weight, bias, &l->shape, l->in_h,
          l->in_w, FALSE, NULL, col);
    else
      cg_conv2d_forward (pre, in, weight, bias, &l->shape, l->in_h, l->in_w,
          col, COL_BUDGET);
    switch (l->post) {
      case POST_NONE:
        break;
      case POST_IN_RELU:
        cg_instance_norm_relu_forward (out, pre, c, hw);
        break;
      case POST_IN_ADD:
        cg_instance_norm_add_forward (out, pre, SLOT (t,
                t->layers[l->residual].out), c, hw);
        break;
      case POST_IN_LRELU:
        cg_instance_norm_forward (out, pre, c, hw);
        cg_leaky_relu_forward (out, out, (gsize) c * hw);
        break;
      case POST_RELU:
        cg_relu_forward (out, pre, (gsize) c * hw);
        break;
      case POST_ADD:
        cg_add_forward (out, pre, SLOT (t, t->layers[l->residual].out),
            (gsize) c * hw);
        break;
      case POST_LRELU:
        cg_leaky_relu_forward (out, pre, (gsize) c * hw);
        break;
      case POST_TANH:
        cg_tanh_forward (out, pre, (gsize) c * hw);
        break;
    }
  }
  return SLOT (t, t->layers[t->n_layers - 1].out);
}

void
cg_tape_backward (CgTape * t, CgTrainNet * net, const float *dout,
    float *dinput, gboolean param_grads)
{
  float *col = SLOT (t, t->col);
  float *gpre = SLOT (t, t->gpre);
  const Layer *last = &t->layers[t->n_layers - 1];

  /* Every output gradient is summed into from its consumers: zero them. */
  for (int i = 0; i < t->n_layers; i++) {
    const Layer *l = &t->layers[i];
    cg_parallel_zero (SLOT (t, l->gout),
        (gsize) l->shape.cout * l->out_h * l->out_w);
  }
  memcpy (SLOT (t, last->gout), dout,
      sizeof (float) * last->shape.cout * last->out_h * last->out_w);

  for (int i = t->n_layers - 1; i >= 0; i--) {
    const Layer *l = &t->layers[i];
    float *g = SLOT (t, l->gout);
    const float *pre = SLOT (t, l->pre), *out = SLOT (t, l->out);
    int c = l->shape.cout, hw = l->out_h * l->out_w;
    gsize n = (gsize) c * hw;
    const float *gp = gpre;
    float *din;
    /* A bias before InstanceNorm is cancelled by it: its gradient is
     * identically zero, so it is not computed (PyTorch's float32 autograd
     * returns rounding noise there, the float64 one ~1e-15). */
    gboolean bias_grad = l->bias != NO_BIAS && (l->post == POST_NONE
        || l->post == POST_RELU || l->post == POST_ADD
        || l->post == POST_LRELU || l->post == POST_TANH);

    switch (l->post) {
      case POST_NONE:
        gp = g;
        break;
      case POST_IN_RELU:
        cg_instance_norm_act_backward (gpre, g, out, 0.0f, pre, c, hw);
        break;
      case POST_IN_ADD:
        cg_add_backward (SLOT (t, t->layers[l->residual].gout), g, n);
        cg_instance_norm_act_backward (gpre, g, NULL, 0.0f, pre, c, hw);
        break;
      case POST_IN_LRELU:
        cg_instance_norm_act_backward (gpre, g, out, CG_LRELU_SLOPE, pre, c,
            hw);
        break;
      case POST_RELU:
        cg_relu_backward (gpre, g, out, n);
        break;
      case POST_ADD:
        cg_add_backward (SLOT (t, t->layers[l->residual].gout), g, n);
        gp = g;
        break;
      case POST_LRELU:
        cg_leaky_relu_backward (gpre, g, out, n);
        break;
      case POST_TANH:
        cg_tanh_backward (gpre, g, out, n);
        break;
    }
    din = l->src < 0 ? dinput : SLOT (t, t->layers[l->src].gout);
    if (l->transposed)
      cg_conv_transpose2d_backward (din,
          param_grads ? net->grad + l->weight : NULL,
          param_grads && bias_grad ? net->grad + l->bias : NULL, gp,
          layer_input (t, l), net->param + l->weight, &l->shape, l->in_h,
          l->in_w, col, COL_BUDGET);
    else
      cg_conv2d_backward (din, param_grads ? net->grad + l->weight : NULL,
          param_grads && bias_grad ? net->grad + l->bias : NULL, gp,
          layer_input (t, l), net->param + l->weight,
          l->path == PATH_WINOGRAD ? net->wino + l->wino_adj : NULL,
          &l->shape, l->in_h, l->in_w, col, COL_BUDGET);
  }
}
