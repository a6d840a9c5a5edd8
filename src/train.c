/* The CycleGAN iteration as the official code runs it (model cycle_gan,
 * batch size 1), with its losses, image pool, Adam and lr schedule, and
 * the training checkpoint.
 *
 * The official code runs the four generator passes, then one backward of
 * the summed generator loss. The sum's gradient is the sum of the terms'
 * gradients, so here each term's chain runs forward and straight back
 * while its activations are still in the tape: two generator tapes (G then
 * G of its output) suffice, and nothing waits for a combined backward.
 */
#include "train-private.h"
#include "cg-orc.h"
#include "parallel.h"
#include "safetensors.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cg_loss_names[CG_N_LOSSES] = {
  "D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B",
};

/* ---- Adam ---- */

typedef struct
{
  CgTrainNet *net;
  float beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step;
} AdamJob;

#define ADAM_PIECE 65536

static void
adam_pieces (gpointer data, int begin, int end)
{
  const AdamJob *j = data;
  CgTrainNet *net = j->net;
  gsize b = (gsize) begin * ADAM_PIECE;
  gsize n = MIN ((gsize) end * ADAM_PIECE, net->n_floats) - b;

  /* In place: ORC works element by element, so an output may alias the
   * input at the same index despite the generated prototype's restrict. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
  cg_orc_adam (net->param + b, net->m + b, net->v + b, net->param + b,
      net->m + b, net->v + b, net->grad + b, j->beta1, j->one_minus_beta1,
      j->beta2, j->one_minus_beta2, j->sqrt_bc2, j->eps, j->step, (int) n);
#pragma GCC diagnostic pop
}

void
cg_adam_update (CgTrainNet * net, double lr, double beta1, double beta2,
    double eps, gint64 step)
{
  double bc1 = 1.0 - pow (beta1, (double) step);
  double bc2 = 1.0 - pow (beta2, (double) step);
  /* PyTorch: denom = sqrt (v) / sqrt (bc2) + eps; p -= lr / bc1 * m / denom.
   * Padding between tensors has zero gradients and stays zero. Pieces of
   * the buffers go to the current pool. */
  AdamJob job = { net, (float) beta1, (float) (1.0 - beta1), (float) beta2,
    (float) (1.0 - beta2), (float) sqrt (bc2), (float) eps,
    (float) (-lr / bc1)
  };

  cg_parallel_for ((int) ((net->n_floats + ADAM_PIECE - 1) / ADAM_PIECE),
      adam_pieces, &job);
  cg_train_net_params_changed (net);
}

/* ---- losses ---- */

double
cg_mse_loss (float *dx, const float *x, float target, gsize n, double scale)
{
  double sum = 0.0;
  float k = (float) (2.0 * scale / n);

  for (gsize i = 0; i < n; i++) {
    double d = (double) x[i] - target;
    sum += d * d;
    if (dx)
      dx[i] = k * (x[i] - target);
  }
  return scale * sum / n;
}

double
cg_l1_loss (float *dx, const float *x, const float *y, gsize n, double scale)
{
  double sum = 0.0;
  float k = (float) (scale / n);

  for (gsize i = 0; i < n; i++) {
    float d = x[i] - y[i];
    sum += fabsf (d);
    if (dx)
      dx[i] = d > 0 ? k : d < 0 ? -k : 0.0f;
  }
  return scale * sum / n;
}

/* ---- the image pool ---- */

void
cg_image_pool_init (CgImagePool * pool, int size, gsize image_floats)
{
  memset (pool, 0, sizeof *pool);
  pool->size = size;
  pool->image_floats = image_floats;
  if (size > 0) {
    pool->images = g_new (float, (gsize) size * image_floats);
    pool->out = g_new (float, image_floats);
  }
}

void
cg_image_pool_clear (CgImagePool * pool)
{
  g_free (pool->images);
  g_free (pool->out);
  memset (pool, 0, sizeof *pool);
}

const float *
cg_image_pool_query (CgImagePool * pool, const float *image, CgPoolDraw draw,
    gpointer data)
{
  gsize bytes = pool->image_floats * sizeof (float);
  int pick = 0;
  float *slot;

  if (pool->size <= 0)
    return image;
  if (pool->n < pool->size) {
    memcpy (pool->images + (gsize) pool->n++ * pool->image_floats, image,
        bytes);
    return image;
  }
  if (!draw (data, pool->size, &pick))
    return image;
  g_assert (pick >= 0 && pick < pool->size);
  slot = pool->images + (gsize) pick * pool->image_floats;
  memcpy (pool->out, slot, bytes);
  memcpy (slot, image, bytes);
  return pool->out;
}

static gboolean
default_pool_draw (gpointer data, int size, int *pick)
{
  CgRng *rng = data;
  if (cg_rng_uniform (rng) <= 0.5)
    return FALSE;
  *pick = (int) cg_rng_below (rng, (guint32) size);
  return TRUE;
}

/* ---- lr schedule ---- */

double
cg_lr_factor (int epoch, int epoch_count, int n_epochs, int n_epochs_decay)
{
  /* LambdaLR calls the rule with the number of scheduler steps so far,
   * and the official train.py steps it at the start of every epoch: 1
   * during the first epoch of a run (epoch == epoch_count). So the lr
   * first drops in epoch n_epochs, and the last epoch runs at lr 0. */
  int steps = epoch - epoch_count + 1;
  return 1.0 - MAX (0, steps + epoch_count - n_epochs) /
      (double) (n_epochs_decay + 1);
}

/* ---- the trainer ---- */

void
cg_train_config_defaults (CgTrainConfig * c)
{
  *c = (CgTrainConfig) {
  .ngf = 64,.n_blocks = 9,.ndf = 64,.n_layers_D = 3,.lr = 0.0002,.beta1 =
        0.5,.beta2 = 0.999,.eps = 1e-8,.lambda_A = 10.0,.lambda_B =
        10.0,.lambda_identity = 0.5,.pool_size = 50,.h = 256,.w = 256,.threads =
        1};
}

void
cg_trainer_free (CgTrainer * t)
{
  if (!t)
    return;
  cg_train_net_free (t->G_A);
  cg_train_net_free (t->G_B);
  cg_train_net_free (t->D_A);
  cg_train_net_free (t->D_B);
  cg_tape_free (t->tape_g1);
  cg_tape_free (t->tape_g2);
  cg_tape_free (t->tape_d);
  if (t->pool)
    cg_pool_free (t->pool);
  cg_image_pool_clear (&t->pool_fake_B);
  cg_image_pool_clear (&t->pool_fake_A);
  g_free (t->fake_B);
  g_free (t->rec_A);
  g_free (t->fake_A);
  g_free (t->rec_B);
  g_free (t->dy);
  g_free (t->dfake);
  g_free (t->dpred);
  g_free (t);
}

CgTrainer *
cg_trainer_new (const CgTrainConfig * config, guint64 seed, GError ** error)
{
  CgTrainer *t = g_new0 (CgTrainer, 1);
  CgGeneratorConfig gc = {.in_channels = 3,.out_channels = 3,.ngf =
        config->ngf,.n_blocks = config->n_blocks,.norm = config->norm };
  CgDiscConfig dc = {.in_channels = 3,.ndf = config->ndf,.n_layers =
        config->n_layers_D,.norm = config->norm };
  int oc, oh, ow;

  t->config = *config;
  t->lr = config->lr;
  /* As the inference generator does (parallel.h): the trainer owns the
   * threads and splits each GEMM over them; OpenBLAS runs single-threaded,
   * so its spinning threads do not compete with the passes in between. */
  t->pool = cg_pool_new (config->threads > 0 ? config->threads :
      (int) g_get_num_processors ());
  openblas_set_num_threads (1);
  cg_rng_seed (&t->rng, seed);
  t->pool_draw = default_pool_draw;
  t->pool_draw_data = &t->rng;

  if (config->h % 4 || config->w % 4) {
    g_set_error (error, CG_ERROR, CG_ERROR_SIZE,
        "crop %dx%d: the generator needs multiples of 4", config->w,
        config->h);
    goto fail;
  }
  t->G_A = cg_train_net_new_generator (&gc);
  t->G_B = cg_train_net_new_generator (&gc);
  t->D_A = cg_train_net_new_discriminator (&dc);
  t->D_B = cg_train_net_new_discriminator (&dc);
  if (!t->G_A || !t->G_B || !t->D_A || !t->D_B)
    goto no_memory;
  /* The official order: netG_A, netG_B, then netD_A, netD_B. */
  cg_train_net_init_normal (t->G_A, &t->rng, 0.02);
  cg_train_net_init_normal (t->G_B, &t->rng, 0.02);
  cg_train_net_init_normal (t->D_A, &t->rng, 0.02);
  cg_train_net_init_normal (t->D_B, &t->rng, 0.02);

  t->tape_d = cg_tape_new (t->D_A, config->h, config->w);
  if (!t->tape_d) {
    g_set_error (error, CG_ERROR, CG_ERROR_SIZE,
        "crop %dx%d is too small for a discriminator with %d layers (or "
        "no memory)", config->w, config->h, config->n_layers_D);
    goto fail;
  }
  t->tape_g1 = cg_tape_new (t->G_A, config->h, config->w);
  t->tape_g2 = cg_tape_new (t->G_A, config->h, config->w);
  if (!t->tape_g1 || !t->tape_g2)
    goto no_memory;

  t->img = (gsize) 3 *config->h * config->w;
  cg_image_pool_init (&t->pool_fake_B, config->pool_size, t->img);
  cg_image_pool_init (&t->pool_fake_A, config->pool_size, t->img);
  t->fake_B = g_new (float, t->img);
  t->rec_A = g_new (float, t->img);
  t->fake_A = g_new (float, t->img);
  t->rec_B = g_new (float, t->img);
  t->dy = g_new (float, t->img);
  t->dfake = g_new (float, t->img);
  cg_tape_output_size (t->tape_d, &oc, &oh, &ow);
  t->dpred = g_new (float, (gsize) oc * oh * ow);
  return t;

no_memory:
  g_set_error (error, CG_ERROR, CG_ERROR_NO_MEMORY,
      "no memory for the networks at crop %dx%d", config->w, config->h);
fail:
  cg_trainer_free (t);
  return NULL;
}

static gsize
pred_floats (const CgTrainer * t)
{
  int c, h, w;
  cg_tape_output_size (t->tape_d, &c, &h, &w);
  return (gsize) c * h * w;
}

/* Identity term: lambda * L1 (G (x), x), forward and back through G. */
static double
identity_term (CgTrainer * t, CgTrainNet * G, const float *x, double lambda)
{
  const float *y = cg_tape_forward (t->tape_g1, G, x);
  double loss = cg_l1_loss (t->dy, y, x, t->img, lambda);
  cg_tape_backward (t->tape_g1, G, t->dy, NULL, TRUE);
  return loss;
}

/* fake = G (real), rec = G2 (fake); cycle loss against real, and the
 * adversarial loss of D on fake; gradients into G and G2 (D frozen). */
static void
cycle_chain (CgTrainer * t, CgTrainNet * G, CgTrainNet * G2, CgTrainNet * D,
    const float *real, double lambda, float *fake, float *rec,
    double *loss_gan, double *loss_cycle)
{
  const float *y, *pred;

  y = cg_tape_forward (t->tape_g1, G, real);
  memcpy (fake, y, t->img * sizeof (float));
  y = cg_tape_forward (t->tape_g2, G2, fake);
  memcpy (rec, y, t->img * sizeof (float));

  *loss_cycle = cg_l1_loss (t->dy, rec, real, t->img, lambda);
  memset (t->dfake, 0, t->img * sizeof (float));
  cg_tape_backward (t->tape_g2, G2, t->dy, t->dfake, TRUE);

  pred = cg_tape_forward (t->tape_d, D, fake);
  *loss_gan = cg_mse_loss (t->dpred, pred, 1.0f, pred_floats (t), 1.0);
  cg_tape_backward (t->tape_d, D, t->dpred, t->dfake, FALSE);

  cg_tape_backward (t->tape_g1, G, t->dfake, NULL, TRUE);
}

/* 0.5 (MSE (D (real), 1) + MSE (D (fake), 0)), gradients into D. */
static double
discriminator_term (CgTrainer * t, CgTrainNet * D, const float *real,
    const float *fake)
{
  gsize n = pred_floats (t);
  const float *pred;
  double loss;

  pred = cg_tape_forward (t->tape_d, D, real);
  loss = cg_mse_loss (t->dpred, pred, 1.0f, n, 0.5);
  cg_tape_backward (t->tape_d, D, t->dpred, NULL, TRUE);
  pred = cg_tape_forward (t->tape_d, D, fake);
  loss += cg_mse_loss (t->dpred, pred, 0.0f, n, 0.5);
  cg_tape_backward (t->tape_d, D, t->dpred, NULL, TRUE);
  return loss;
}

static void trainer_step (CgTrainer * t, const float *real_A,
    const float *real_B);

void
cg_trainer_step (CgTrainer * t, const float *real_A, const float *real_B)
{
  cg_pool_push (t->pool);
  trainer_step (t, real_A, real_B);
  cg_pool_pop ();
}

static void
trainer_step (CgTrainer * t, const float *real_A, const float *real_B)
{
  const CgTrainConfig *c = &t->config;
  double *L = t->losses;
  const float *fake;

  /* generators, the discriminators frozen */
  cg_train_net_zero_grad (t->G_A);
  cg_train_net_zero_grad (t->G_B);
  L[CG_LOSS_IDT_A] = L[CG_LOSS_IDT_B] = 0.0;
  if (c->lambda_identity > 0) {
    L[CG_LOSS_IDT_A] = identity_term (t, t->G_A, real_B,
        c->lambda_B * c->lambda_identity);
    L[CG_LOSS_IDT_B] = identity_term (t, t->G_B, real_A,
        c->lambda_A * c->lambda_identity);
  }
  cycle_chain (t, t->G_A, t->G_B, t->D_A, real_A, c->lambda_A, t->fake_B,
      t->rec_A, &L[CG_LOSS_G_A], &L[CG_LOSS_CYCLE_A]);
  cycle_chain (t, t->G_B, t->G_A, t->D_B, real_B, c->lambda_B, t->fake_A,
      t->rec_B, &L[CG_LOSS_G_B], &L[CG_LOSS_CYCLE_B]);
  t->step_G++;
  cg_adam_update (t->G_A, t->lr, c->beta1, c->beta2, c->eps, t->step_G);
  cg_adam_update (t->G_B, t->lr, c->beta1, c->beta2, c->eps, t->step_G);

  /* discriminators: D_A then D_B, each on a fake from its pool */
  cg_train_net_zero_grad (t->D_A);
  cg_train_net_zero_grad (t->D_B);
  fake = cg_image_pool_query (&t->pool_fake_B, t->fake_B, t->pool_draw,
      t->pool_draw_data);
  L[CG_LOSS_D_A] = discriminator_term (t, t->D_A, real_B, fake);
  fake = cg_image_pool_query (&t->pool_fake_A, t->fake_A, t->pool_draw,
      t->pool_draw_data);
  L[CG_LOSS_D_B] = discriminator_term (t, t->D_B, real_A, fake);
  t->step_D++;
  cg_adam_update (t->D_A, t->lr, c->beta1, c->beta2, c->eps, t->step_D);
  cg_adam_update (t->D_B, t->lr, c->beta1, c->beta2, c->eps, t->step_D);
}

/* ---- the training checkpoint ---- */

typedef struct
{
  const char *name;
  CgTrainNet *net;
} NamedNet;

static void
nets_of (const CgTrainer * t, NamedNet nets[4])
{
  nets[0] = (NamedNet) {
  "G_A", t->G_A};
  nets[1] = (NamedNet) {
  "G_B", t->G_B};
  nets[2] = (NamedNet) {
  "D_A", t->D_A};
  nets[3] = (NamedNet) {
  "D_B", t->D_B};
}

/* Buffers saved per network: the prefix before the network's name. */
static const char *const buffer_prefix[3] = { "", "adam_m.", "adam_v." };

static float *
net_buffer (CgTrainNet * net, int which)
{
  return which == 0 ? net->param : which == 1 ? net->m : net->v;
}

gboolean
cg_trainer_save (const CgTrainer * t, const char *path, GHashTable * extra,
    GError ** error)
{
  GArray *out = g_array_new (FALSE, TRUE, sizeof (CgTensorOut));
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  GHashTable *meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  const CgImagePool *pools[2] = { &t->pool_fake_B, &t->pool_fake_A };
  NamedNet nets[4];
  gboolean ok;

  nets_of (t, nets);
  for (int b = 0; b < 3; b++)
    for (int k = 0; k < 4; k++)
      for (guint i = 0; i < nets[k].net->n_specs; i++) {
        const CgParamSpec *s = &nets[k].net->specs[i];
        CgTensorOut o = { 0 };
        char *name = g_strdup_printf ("%s%s.%s", buffer_prefix[b],
            nets[k].name, s->name);
        g_ptr_array_add (names, name);
        o.name = name;
        o.dtype = CG_DTYPE_F32;
        o.n_dims = s->n_dims;
        memcpy (o.shape, s->shape, sizeof (gint64) * s->n_dims);
        o.data = net_buffer (nets[k].net, b) + s->offset;
        g_array_append_val (out, o);
      }
  for (int p = 0; p < 2; p++)
    for (int i = 0; i < pools[p]->n; i++) {
      CgTensorOut o = { 0 };
      char *name = g_strdup_printf ("pool_fake_%c.%d", p ? 'A' : 'B', i);
      g_ptr_array_add (names, name);
      o.name = name;
      o.dtype = CG_DTYPE_F32;
      o.n_dims = 3;
      o.shape[0] = 3;
      o.shape[1] = t->config.h;
      o.shape[2] = t->config.w;
      o.data = pools[p]->images + (gsize) i * pools[p]->image_floats;
      g_array_append_val (out, o);
    }

  if (extra) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, extra);
    while (g_hash_table_iter_next (&it, &k, &v))
      g_hash_table_insert (meta, g_strdup (k), g_strdup (v));
  }
  g_hash_table_insert (meta, g_strdup ("format"),
      g_strdup ("cyclegan-train checkpoint 1"));
  g_hash_table_insert (meta, g_strdup ("adam_step_G"),
      g_strdup_printf ("%" G_GINT64_FORMAT, t->step_G));
  g_hash_table_insert (meta, g_strdup ("adam_step_D"),
      g_strdup_printf ("%" G_GINT64_FORMAT, t->step_D));
  g_hash_table_insert (meta, g_strdup ("lr"), g_strdup_printf ("%.17g",
          t->lr));
  g_hash_table_insert (meta, g_strdup ("rng"),
      g_strdup_printf ("%016" G_GINT64_MODIFIER "x:%016" G_GINT64_MODIFIER
          "x", t->rng.state, t->rng.inc));
  g_hash_table_insert (meta, g_strdup ("arch"),
      g_strdup_printf ("ngf=%d n_blocks=%d ndf=%d n_layers_D=%d crop=%dx%d "
          "norm=%s", t->config.ngf, t->config.n_blocks, t->config.ndf,
          t->config.n_layers_D, t->config.w, t->config.h,
          cg_norm_to_string (t->config.norm)));

  ok = cg_safetensors_write (path, (CgTensorOut *) out->data, out->len, meta,
      error);
  g_array_free (out, TRUE);
  g_ptr_array_free (names, TRUE);
  g_hash_table_unref (meta);
  return ok;
}

static gboolean
parse_i64 (GHashTable * meta, const char *key, gint64 * v, const char *path,
    GError ** error)
{
  const char *s = g_hash_table_lookup (meta, key);
  if (!s || !g_ascii_string_to_signed (s, 10, 0, G_MAXINT64, v, NULL)) {
    g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
        "%s: metadata \"%s\" missing or not a count", path, key);
    return FALSE;
  }
  return TRUE;
}

GHashTable *
cg_trainer_load (CgTrainer * t, const char *path, GError ** error)
{
  CgSafetensors *st = cg_safetensors_open (path, error);
  GHashTable *meta, *result = NULL;
  CgImagePool *pools[2] = { &t->pool_fake_B, &t->pool_fake_A };
  NamedNet nets[4];
  const char *s;
  guint64 state, inc;
  char *end;

  if (!st)
    return NULL;
  meta = cg_safetensors_metadata (st);
  nets_of (t, nets);
  for (int b = 0; b < 3; b++)
    for (int k = 0; k < 4; k++)
      for (guint i = 0; i < nets[k].net->n_specs; i++) {
        const CgParamSpec *spec = &nets[k].net->specs[i];
        g_autofree char *name = g_strdup_printf ("%s%s.%s", buffer_prefix[b],
            nets[k].name, spec->name);
        const CgTensorView *v = cg_safetensors_find (st, name);
        gboolean same = v && v->dtype == CG_DTYPE_F32
            && v->n_dims == spec->n_dims;
        for (int d = 0; same && d < spec->n_dims; d++)
          same = v->shape[d] == spec->shape[d];
        if (!same) {
          g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
              "%s: tensor \"%s\" %s (this run: %s)", path, name,
              v ? "has another shape or dtype" : "is missing",
              (const char *) g_hash_table_lookup (meta, "arch"));
          goto out;
        }
        cg_tensor_view_to_f32 (v, net_buffer (nets[k].net, b) + spec->offset);
      }
  for (int p = 0; p < 2; p++) {
    pools[p]->n = 0;
    for (int i = 0; i < pools[p]->size; i++) {
      g_autofree char *name = g_strdup_printf ("pool_fake_%c.%d",
          p ? 'A' : 'B', i);
      const CgTensorView *v = cg_safetensors_find (st, name);
      if (!v)
        break;
      if (v->dtype != CG_DTYPE_F32
          || (gsize) v->n_elements != pools[p]->image_floats) {
        g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
            "%s: pool image \"%s\" is not of the crop size", path, name);
        goto out;
      }
      cg_tensor_view_to_f32 (v, pools[p]->images + (gsize) i *
          pools[p]->image_floats);
      pools[p]->n++;
    }
  }
  if (!parse_i64 (meta, "adam_step_G", &t->step_G, path, error)
      || !parse_i64 (meta, "adam_step_D", &t->step_D, path, error))
    goto out;
  s = g_hash_table_lookup (meta, "lr");
  if (s)
    t->lr = g_ascii_strtod (s, NULL);
  s = g_hash_table_lookup (meta, "rng");
  if (!s || (state = g_ascii_strtoull (s, &end, 16), *end != ':')) {
    g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
        "%s: metadata \"rng\" missing or malformed", path);
    goto out;
  }
  inc = g_ascii_strtoull (end + 1, NULL, 16);
  for (int k = 0; k < 4; k++)
    cg_train_net_params_changed (nets[k].net);
  t->rng.state = state;
  t->rng.inc = inc;
  result = g_hash_table_ref (meta);
out:
  if (result) {
    /* the table belongs to the reader: copy it out */
    GHashTable *copy = g_hash_table_new_full (g_str_hash, g_str_equal,
        g_free, g_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, result);
    while (g_hash_table_iter_next (&it, &k, &v))
      g_hash_table_insert (copy, g_strdup (k), g_strdup (v));
    g_hash_table_unref (result);
    result = copy;
  }
  cg_safetensors_close (st);
  return result;
}
