/* The trainer against the PyTorch oracle (tests/golden/train/, written by
 * tests/reference/make_train_goldens.py in float64): every layer's
 * backward pass, the generator's and discriminator's parameter gradients,
 * two complete CycleGAN iterations; and the image pool, the lr schedule
 * and an exact resume from a checkpoint. */
#include "train-private.h"
#include "cpu.h"
#include "golden.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <string.h>

/* Largest |got - want| over the largest |want|: gradients span orders of
 * magnitude between tensors, so each is held to float32 accuracy
 * relative to its own scale. */
static void
assert_rel (const char *what, const float *got, const float *want, gsize n,
    double rtol)
{
  double scale = 0.0, d = max_abs_diff (got, want, n);
  for (gsize i = 0; i < n; i++)
    scale = MAX (scale, fabs (want[i]));
  g_test_message ("%s: max |diff| %.3g of max |value| %.3g (rtol %.1g)",
      what, d, scale, rtol);
  if (!(d <= rtol * MAX (scale, 1e-6)))
    g_error ("%s: max |diff| %.3g exceeds %.1g x %.3g", what, d, rtol,
        scale);
}

/* The weight gradient against a float64 sum on random shapes wide
 * enough for whole 16-pixel transposes, with tap counts that leave a
 * partial panel, both paddings, stride 1 and 2, k 3, 4, 5 and 7, through
 * each path: panels (stride 2, k 4), Winograd (3x3 stride 1), thin (7x7
 * from/to few channels, vector tails; k 5 the scalar fallback); on the
 * AVX-512 kernels (where the CPU has them) and on the portable ones. */
static void
test_dweight_random (void)
{
  static const struct
  {
    int cin, cout, k, stride, pad, h, w;
    CgPadMode mode;
  } cases[] = {
    {6, 9, 3, 1, 1, 37, 40, CG_PAD_REFLECT},
    {7, 16, 3, 2, 1, 33, 50, CG_PAD_ZERO},
    {5, 8, 4, 2, 1, 34, 36, CG_PAD_ZERO},
    {3, 13, 7, 1, 3, 21, 70, CG_PAD_REFLECT},
    {17, 3, 3, 1, 1, 19, 300, CG_PAD_REFLECT},
    {8, 5, 3, 1, 1, 13, 29, CG_PAD_ZERO},
    {16, 3, 7, 1, 3, 23, 45, CG_PAD_REFLECT},
    {5, 2, 5, 1, 2, 11, 19, CG_PAD_ZERO},
  };
  GRand *r = g_rand_new_with_seed (5);

  for (int portable = 0; portable < 2; portable++) {
    cg_cpu_force_portable (portable);
    for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
      CgConvShape s = { cases[c].cin, cases[c].cout, cases[c].k,
        cases[c].stride, cases[c].pad, cases[c].mode, 0
      };
      int h = cases[c].h, w = cases[c].w, oh, ow, k = s.k;
      gsize nx, ny, nw, cols;
      float *x, *w8, *dout, *dw, *want, *col;
      char what[96];

      cg_conv2d_out_size (&s, h, w, &oh, &ow);
      nx = (gsize) s.cin * h * w;
      ny = (gsize) s.cout * oh * ow;
      nw = (gsize) s.cout * s.cin * k * k;
      x = g_new (float, nx);
      w8 = g_new (float, nw);
      dout = g_new (float, ny);
      dw = g_new0 (float, nw);
      want = g_new0 (float, nw);
      for (gsize i = 0; i < nx; i++)
        x[i] = g_rand_double_range (r, -1, 1);
      for (gsize i = 0; i < nw; i++)
        w8[i] = g_rand_double_range (r, -1, 1);
      for (gsize i = 0; i < ny; i++)
        dout[i] = g_rand_double_range (r, -1, 1);
      /* a small budget: several bands */
      cols = cg_conv2d_backward_col_floats (&s, h, w, 20000);
      col = g_new (float, cols);
      cg_conv2d_backward (NULL, dw, NULL, dout, x, w8, NULL, &s, h, w, col,
          20000);

      for (int co = 0; co < s.cout; co++)
        for (int ci = 0; ci < s.cin; ci++)
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              double sum = 0.0;
              for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                  int iy = y * s.stride - s.pad + ky;
                  int ix = xx * s.stride - s.pad + kx;
                  if (s.pad_mode == CG_PAD_ZERO
                      && (iy < 0 || iy >= h || ix < 0 || ix >= w))
                    continue;
                  iy = cg_reflect_index (iy, h);
                  ix = cg_reflect_index (ix, w);
                  sum += (double) dout[((gsize) co * oh + y) * ow + xx] *
                      x[((gsize) ci * h + iy) * w + ix];
                }
              want[(((gsize) co * s.cin + ci) * k + ky) * k + kx] =
                  (float) sum;
            }
      g_snprintf (what, sizeof what, "dweight %d->%d k%d s%d %dx%d%s",
          s.cin, s.cout, k, s.stride, w, h, portable ? " (portable)" : "");
      assert_rel (what, dw, want, nw, 1e-5);
      g_free (x);
      g_free (w8);
      g_free (dout);
      g_free (dw);
      g_free (want);
      g_free (col);
    }
  }
  cg_cpu_force_portable (FALSE);
  g_rand_free (r);
}

static gsize
numel (const gint64 * shape, int n)
{
  gsize k = 1;
  for (int i = 0; i < n; i++)
    k *= shape[i];
  return k;
}

/* ---- layers ---- */

static CgSafetensors *lb;

static float *
lt (const char *kase, const char *what, gint64 * shape)
{
  char name[96];
  g_snprintf (name, sizeof name, "%s.%s", kase, what);
  return golden_tensor (lb, name, shape);
}

typedef struct
{
  const char *kase;
  CgConvShape shape;
  gboolean transposed;
  gsize budget;                 /* column budget: small ones force bands */
} ConvCase;

static void
test_conv_backward (gconstpointer data)
{
  const ConvCase *cc = data;
  const char *kase = cc->kase;
  gint64 is[3], os[3], ws[4];
  float *x = lt (kase, "input", is), *w = lt (kase, "weight", ws);
  float *b = lt (kase, "bias", NULL), *dout = lt (kase, "dout", os);
  float *y_want = lt (kase, "output", NULL);
  float *dx_want = lt (kase, "dinput", NULL);
  float *dw_want = lt (kase, "dweight", NULL);
  float *db_want = lt (kase, "dbias", NULL);
  gsize nx = numel (is, 3), ny = numel (os, 3), nw = numel (ws, 4);
  int cout = cc->transposed ? ws[1] : ws[0];
  float *y = g_new0 (float, ny), *dx = g_new0 (float, nx);
  float *dw = g_new0 (float, nw), *db = g_new0 (float, cout);
  gsize cols = cc->transposed ?
      cg_conv_transpose2d_col_floats (&cc->shape, is[1], is[2], cc->budget) :
      cg_conv2d_backward_col_floats (&cc->shape, is[1], is[2], cc->budget);
  float *col = g_new (float, cols);
  char what[96];

  if (cc->transposed) {
    cg_conv_transpose2d_forward (y, x, w, b, &cc->shape, is[1], is[2], col,
        cc->budget);
    cg_conv_transpose2d_backward (dx, dw, db, dout, x, w, &cc->shape, is[1],
        is[2], col, cc->budget);
  } else {
    cg_conv2d_forward (y, x, w, b, &cc->shape, is[1], is[2], col,
        cc->budget);
    cg_conv2d_backward (dx, dw, db, dout, x, w, NULL, &cc->shape, is[1],
        is[2], col, cc->budget);
  }
  g_snprintf (what, sizeof what, "%s output", kase);
  assert_rel (what, y, y_want, ny, 1e-5);
  g_snprintf (what, sizeof what, "%s dinput", kase);
  assert_rel (what, dx, dx_want, nx, 1e-5);
  g_snprintf (what, sizeof what, "%s dweight", kase);
  assert_rel (what, dw, dw_want, nw, 1e-5);
  g_snprintf (what, sizeof what, "%s dbias", kase);
  assert_rel (what, db, db_want, cout, 1e-5);

  /* accumulation: a second backward adds the same again */
  if (cc->transposed)
    cg_conv_transpose2d_backward (dx, dw, NULL, dout, x, w, &cc->shape,
        is[1], is[2], col, cc->budget);
  else
  {
    /* the second time with the adjoint transform made ahead, where it
     * applies */
    float *prep = NULL;
    if (cc->shape.k == 3 && cc->shape.stride == 1 && cc->shape.pad == 1) {
      prep = g_new (float, cg_conv2d_winograd_adjoint_floats (&cc->shape));
      cg_conv2d_winograd_adjoint_prepare (prep, w, &cc->shape);
    }
    cg_conv2d_backward (dx, dw, NULL, dout, x, w, prep, &cc->shape, is[1],
        is[2], col, cc->budget);
    g_free (prep);
  }
  for (gsize i = 0; i < nx; i++)
    dx_want[i] *= 2;
  for (gsize i = 0; i < nw; i++)
    dw_want[i] *= 2;
  g_snprintf (what, sizeof what, "%s dinput accumulated", kase);
  assert_rel (what, dx, dx_want, nx, 1e-5);
  g_snprintf (what, sizeof what, "%s dweight accumulated", kase);
  assert_rel (what, dw, dw_want, nw, 1e-5);

  g_free (x);
  g_free (w);
  g_free (b);
  g_free (dout);
  g_free (y_want);
  g_free (dx_want);
  g_free (dw_want);
  g_free (db_want);
  g_free (y);
  g_free (dx);
  g_free (dw);
  g_free (db);
  g_free (col);
}

static void
test_reflect_pad_backward (void)
{
  gint64 is[3], os[3];
  float *x = lt ("reflpad3", "input", is), *dout = lt ("reflpad3", "dout",
      os);
  float *want = lt ("reflpad3", "dinput", NULL), *y_want =
      lt ("reflpad3", "output", NULL);
  float *dx = g_new0 (float, numel (is, 3)), *y = g_new (float, numel (os,
          3));

  cg_reflect_pad_forward (y, x, is[0], is[1], is[2], 3);
  assert_close ("reflpad3 output", y, y_want, numel (os, 3), 0.0);
  cg_reflect_pad_backward (dx, dout, is[0], is[1], is[2], 3);
  assert_rel ("reflpad3 dinput", dx, want, numel (is, 3), 1e-6);
  g_free (x);
  g_free (dout);
  g_free (want);
  g_free (y_want);
  g_free (dx);
  g_free (y);
}

static void
test_instance_norm_backward (void)
{
  gint64 is[3];
  float *x = lt ("instnorm", "input", is), *dout = lt ("instnorm", "dout",
      NULL);
  float *want = lt ("instnorm", "dinput", NULL), *y_want =
      lt ("instnorm", "output", NULL);
  gsize n = numel (is, 3);
  float *dx = g_new0 (float, n), *y = g_new (float, n);
  int hw = is[1] * is[2];

  cg_instance_norm_forward (y, x, is[0], hw);
  assert_rel ("instnorm output", y, y_want, n, 1e-5);
  cg_instance_norm_backward (dx, dout, x, is[0], hw);
  /* The 0.05-spread channel's gradient is 20x its input's scale, and
   * cancellation in (g - mean g - xhat mean (g xhat)) costs digits. */
  assert_rel ("instnorm dinput", dx, want, n, 1e-4);
  g_free (x);
  g_free (dout);
  g_free (want);
  g_free (y_want);
  g_free (dx);
  g_free (y);
}

static void
test_activation_backward (gconstpointer data)
{
  const char *kase = data;
  gint64 is[3];
  float *x = lt (kase, "input", is), *dout = lt (kase, "dout", NULL);
  float *want = lt (kase, "dinput", NULL), *y_want = lt (kase, "output",
      NULL);
  gsize n = numel (is, 3);
  float *y = g_new (float, n), *dx = g_new (float, n);
  char what[64];

  if (g_str_equal (kase, "relu")) {
    cg_relu_forward (y, x, n);
    cg_relu_backward (dx, dout, y, n);
  } else if (g_str_equal (kase, "lrelu")) {
    cg_leaky_relu_forward (y, x, n);
    cg_leaky_relu_backward (dx, dout, y, n);
  } else {
    cg_tanh_forward (y, x, n);
    cg_tanh_backward (dx, dout, y, n);
  }
  g_snprintf (what, sizeof what, "%s output", kase);
  assert_rel (what, y, y_want, n, 1e-6);
  g_snprintf (what, sizeof what, "%s dinput", kase);
  assert_rel (what, dx, want, n, 1e-6);
  /* in place, as the tape runs them */
  memcpy (dx, dout, n * sizeof (float));
  if (g_str_equal (kase, "relu"))
    cg_relu_backward (dx, dx, y, n);
  else if (g_str_equal (kase, "lrelu"))
    cg_leaky_relu_backward (dx, dx, y, n);
  else
    cg_tanh_backward (dx, dx, y, n);
  g_snprintf (what, sizeof what, "%s dinput in place", kase);
  assert_rel (what, dx, want, n, 1e-6);
  g_free (x);
  g_free (dout);
  g_free (want);
  g_free (y_want);
  g_free (y);
  g_free (dx);
}

static void
test_add_backward (void)
{
  float acc[37], g[37];
  for (int i = 0; i < 37; i++) {
    acc[i] = i * 0.5f;
    g[i] = 1.0f - i;
  }
  cg_add_backward (acc, g, 37);
  for (int i = 0; i < 37; i++)
    g_assert_cmpfloat (acc[i], ==, i * 0.5f + 1.0f - i);
}

/* ---- whole networks ---- */

static void
load_params (CgTrainNet * net, CgSafetensors * st, const char *prefix)
{
  for (guint i = 0; i < net->n_specs; i++) {
    char name[96];
    float *v;
    g_snprintf (name, sizeof name, "%s%s", prefix, net->specs[i].name);
    v = golden_tensor (st, name, NULL);
    memcpy (net->param + net->specs[i].offset, v,
        net->specs[i].n_elements * sizeof (float));
    g_free (v);
  }
  cg_train_net_params_changed (net);
}

static void
check_net_grads (CgTrainNet * net, CgSafetensors * st, const char *prefix,
    const char *label, double rtol)
{
  for (guint i = 0; i < net->n_specs; i++) {
    const CgParamSpec *s = &net->specs[i];
    char name[96], what[128];
    float *want;
    g_snprintf (name, sizeof name, "%s%s", prefix, s->name);
    want = golden_tensor (st, name, NULL);
    g_snprintf (what, sizeof what, "%s %s", label, name);
    /* Biases before InstanceNorm: ours are exactly 0, autograd's ~1e-14;
     * the 1e-6 floor of the scale holds them to 1e-10. */
    assert_rel (what, net->grad + s->offset, want, s->n_elements, rtol);
    g_free (want);
  }
}

static void
run_net_grad (CgTrainNet * net, const char *file, int h, int w)
{
  CgSafetensors *st = golden_open (file);
  gint64 is[3], os[3];
  float *x = golden_tensor (st, "input", is), *dout = golden_tensor (st,
      "dout", os);
  float *y_want = golden_tensor (st, "output", NULL);
  float *dx_want = golden_tensor (st, "dinput", NULL);
  float *dx = g_new0 (float, numel (is, 3));
  CgTape *tape;
  const float *y;
  int oc, oh, ow;

  g_assert_cmpint (is[1], ==, h);
  g_assert_cmpint (is[2], ==, w);
  load_params (net, st, "param.");
  tape = cg_tape_new (net, h, w);
  g_assert_nonnull (tape);
  cg_tape_output_size (tape, &oc, &oh, &ow);
  g_assert_cmpint (oc, ==, os[0]);
  g_assert_cmpint (oh, ==, os[1]);
  g_assert_cmpint (ow, ==, os[2]);
  y = cg_tape_forward (tape, net, x);
  assert_rel ("output", y, y_want, numel (os, 3), 1e-5);
  cg_train_net_zero_grad (net);
  cg_tape_backward (tape, net, dout, dx, TRUE);
  assert_rel ("dinput", dx, dx_want, numel (is, 3), 1e-4);
  check_net_grads (net, st, "grad.", file, 1e-4);

  cg_tape_free (tape);
  g_free (x);
  g_free (dout);
  g_free (y_want);
  g_free (dx_want);
  g_free (dx);
  cg_safetensors_close (st);
}

static void
test_generator_grads (void)
{
  CgGeneratorConfig c = {.in_channels = 3,.out_channels = 3,.ngf = 4,
    .n_blocks = 2
  };
  CgTrainNet *net = cg_train_net_new_generator (&c);
  run_net_grad (net, "train/gen_grad.safetensors", 20, 28);
  cg_train_net_free (net);
}

static void
test_discriminator_grads (void)
{
  CgDiscConfig c = {.in_channels = 3,.ndf = 4,.n_layers = 3 };
  CgTrainNet *net = cg_train_net_new_discriminator (&c);
  static const char *keys[] = { "model.0.weight", "model.0.bias",
    "model.2.weight", "model.2.bias", "model.5.weight", "model.5.bias",
    "model.8.weight", "model.8.bias", "model.11.weight", "model.11.bias"
  };

  /* the official state_dict keys, in order */
  g_assert_cmpuint (net->n_specs, ==, G_N_ELEMENTS (keys));
  for (guint i = 0; i < net->n_specs; i++)
    g_assert_cmpstr (net->specs[i].name, ==, keys[i]);
  run_net_grad (net, "train/disc_grad.safetensors", 28, 36);
  cg_train_net_free (net);
}

/* ---- the iteration ---- */

static gboolean
always_swap_first (gpointer data, int size, int *pick)
{
  int *calls = data;
  (*calls)++;
  *pick = 0;
  return TRUE;
}

static void
step_config (CgTrainConfig * c)
{
  cg_train_config_defaults (c);
  c->ngf = 4;
  c->n_blocks = 1;
  c->ndf = 2;
  c->pool_size = 1;
  c->h = 24;
  c->w = 32;
}

/* Two iterations against the reference's (train/step*.safetensors; its
 * metadata names the norm of all four networks). */
static void
test_iterations (gconstpointer data)
{
  CgSafetensors *st = golden_open (data);
  CgTrainConfig c;
  CgTrainer *t;
  GError *error = NULL;
  const char *net_names[4] = { "G_A", "G_B", "D_A", "D_B" };
  int draws = 0;

  step_config (&c);
  g_assert_true (cg_norm_from_string (g_hash_table_lookup
          (cg_safetensors_metadata (st), "norm"), &c.norm));
  /* two threads: the GEMMs split by columns, the passes by channels, as
   * the real runs do (the other tests cover the single-thread paths) */
  c.threads = 2;
  t = cg_trainer_new (&c, 1, &error);
  g_assert_no_error (error);
  {
    CgTrainNet *nets[4] = { t->G_A, t->G_B, t->D_A, t->D_B };
    for (int k = 0; k < 4; k++) {
      char prefix[32];
      g_snprintf (prefix, sizeof prefix, "init.%s.", net_names[k]);
      load_params (nets[k], st, prefix);
    }
  }
  t->pool_draw = always_swap_first;
  t->pool_draw_data = &draws;

  for (int it = 0; it < 2; it++) {
    char name[96];
    float *a, *b, *losses, got[CG_N_LOSSES];
    CgTrainNet *nets[4] = { t->G_A, t->G_B, t->D_A, t->D_B };

    g_snprintf (name, sizeof name, "iter%d.real_A", it);
    a = golden_tensor (st, name, NULL);
    g_snprintf (name, sizeof name, "iter%d.real_B", it);
    b = golden_tensor (st, name, NULL);
    g_snprintf (name, sizeof name, "iter%d.losses", it);
    losses = golden_tensor (st, name, NULL);
    cg_trainer_step (t, a, b);
    for (int k = 0; k < CG_N_LOSSES; k++) {
      got[k] = (float) t->losses[k];
      g_test_message ("iteration %d loss %s: %.7f (PyTorch %.7f)", it,
          cg_loss_names[k], got[k], losses[k]);
    }
    g_snprintf (name, sizeof name, "iteration %d losses", it);
    assert_rel (name, got, losses, CG_N_LOSSES, 1e-5);
    for (int k = 0; k < 4; k++) {
      char prefix[64];
      if (it == 0) {
        g_snprintf (prefix, sizeof prefix, "iter0.grad.%s.", net_names[k]);
        check_net_grads (nets[k], st, prefix, "iteration 0 gradient", 1e-4);
      }
      /* After Adam, a parameter moves by about lr per step whatever its
       * gradient's size: compare against lr, not the parameter. Adam's
       * first step is lr g / (|g| + eps): where |g| is down at float32's
       * rounding of the gradient (a few 1e-6 of the tensor's largest;
       * 1e-5 allowed), its size and sign are rounding, and so is the
       * step. There the bound widens toward lr, by 2 gtol / (|g| + eps)
       * per step taken (with iteration 0's gradient: the only one the
       * reference saves). */
      g_snprintf (prefix, sizeof prefix, "iter%d.param.%s.", it,
          net_names[k]);
      for (guint i = 0; i < nets[k]->n_specs; i++) {
        const CgParamSpec *s = &nets[k]->specs[i];
        const float *p = nets[k]->param + s->offset;
        float *want, *g = NULL;
        double d = 0.0, gtol = 0.0;
        g_snprintf (name, sizeof name, "%s%s", prefix, s->name);
        want = golden_tensor (st, name, NULL);
        g_snprintf (name, sizeof name, "iter0.grad.%s.%s", net_names[k],
            s->name);
        g = golden_tensor (st, name, NULL);
        for (gsize e = 0; e < s->n_elements; e++)
          gtol = MAX (gtol, 1e-5 * fabs (g[e]));
        for (gsize e = 0; e < s->n_elements; e++) {
          double slack = (it + 1) * MIN (1.0, 2.0 * gtol / (fabs (g[e]) +
                  c.eps));
          double excess = fabs ((double) p[e] - want[e]) - slack * c.lr;
          d = MAX (d, excess);
        }
        g_snprintf (name, sizeof name, "%s%s", prefix, s->name);
        g_test_message ("%s: max |diff| beyond the rounding slack %.3g (lr "
            "%.1g)", name, d, c.lr);
        if (!(d <= 0.02 * c.lr))
          g_error ("%s: max |diff| %.3g exceeds 2%% of lr", name, d);
        g_free (want);
        g_free (g);
      }
    }
    g_free (a);
    g_free (b);
    g_free (losses);
  }
  /* pool size 1: the first iteration fills both pools, the second swaps */
  g_assert_cmpint (draws, ==, 2);
  cg_trainer_free (t);
  cg_safetensors_close (st);
}

/* ---- pool, schedule, resume ---- */

typedef struct
{
  int n;
  const gboolean *swap;
  const int *pick;
} Script;

static gboolean
scripted (gpointer data, int size, int *pick)
{
  Script *s = data;
  gboolean r = s->swap[s->n];
  *pick = s->pick[s->n++];
  g_assert_cmpint (*pick, <, size);
  return r;
}

static void
test_pool (void)
{
  CgImagePool pool;
  float img[6][2];
  const float *r;
  gboolean swap[] = { FALSE, TRUE, TRUE };
  int pick[] = { 0, 2, 2 };
  Script s = { 0, swap, pick };

  for (int i = 0; i < 6; i++)
    img[i][0] = img[i][1] = (float) i;
  cg_image_pool_init (&pool, 3, 2);
  /* filling: the new image comes back, and no draw is made */
  for (int i = 0; i < 3; i++) {
    r = cg_image_pool_query (&pool, img[i], scripted, &s);
    g_assert_true (r == img[i]);
  }
  g_assert_cmpint (s.n, ==, 0);
  /* full, no swap: the new image */
  r = cg_image_pool_query (&pool, img[3], scripted, &s);
  g_assert_true (r == img[3]);
  /* swap slot 2: the stored image 2 comes back, image 4 takes its place */
  r = cg_image_pool_query (&pool, img[4], scripted, &s);
  g_assert_cmpfloat (r[0], ==, 2.0f);
  r = cg_image_pool_query (&pool, img[5], scripted, &s);
  g_assert_cmpfloat (r[1], ==, 4.0f);
  g_assert_cmpint (s.n, ==, 3);
  cg_image_pool_clear (&pool);

  /* size 0: no pool at all */
  cg_image_pool_init (&pool, 0, 2);
  g_assert_true (cg_image_pool_query (&pool, img[1], scripted, &s) ==
      img[1]);
  cg_image_pool_clear (&pool);
}

static void
test_pool_default_draws (void)
{
  /* With the trainer's draws, about half the queries of a full pool swap. */
  CgRng rng;
  int swaps = 0, n = 2000, pick;
  cg_rng_seed (&rng, 5);
  for (int i = 0; i < n; i++) {
    if (cg_rng_uniform (&rng) > 0.5) {
      swaps++;
      pick = (int) cg_rng_below (&rng, 50);
      g_assert_cmpint (pick, <, 50);
    }
  }
  g_assert_cmpint (swaps, >, n * 0.45);
  g_assert_cmpint (swaps, <, n * 0.55);
}

static void
test_schedule (void)
{
  CgSafetensors *st = golden_open ("train/step.safetensors");
  GHashTable *meta = cg_safetensors_metadata (st);

  for (int k = 0; k < 3; k++) {
    char name[32];
    gint64 shape[1];
    int n_ep, n_dec, count;
    float *want;
    g_snprintf (name, sizeof name, "lr_factors.%d", k);
    g_assert_cmpint (sscanf (g_hash_table_lookup (meta, name), "%d %d %d",
            &n_ep, &n_dec, &count), ==, 3);
    want = golden_tensor (st, name, shape);
    for (int i = 0; i < shape[0]; i++)
      g_assert_cmpfloat_with_epsilon (cg_lr_factor (count + i, count, n_ep,
              n_dec), want[i], 1e-6);
    g_free (want);
  }
  cg_safetensors_close (st);
}

static void
random_image (CgRng * rng, float *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) (cg_rng_uniform (rng) * 2 - 1);
}

static void
test_resume (void)
{
  CgTrainConfig c;
  CgTrainer *full, *first, *second;
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cg-train-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "ckpt.safetensors", NULL);
  CgRng data;
  gsize n;
  float *imgs;
  GHashTable *extra, *meta;

  step_config (&c);
  c.pool_size = 2;              /* filled after 2 steps: swaps happen */
  n = (gsize) 3 * c.h * c.w;
  imgs = g_new (float, 12 * n);
  cg_rng_seed (&data, 9);
  random_image (&data, imgs, 12 * n);

  full = cg_trainer_new (&c, 42, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 6; i++)
    cg_trainer_step (full, imgs + 2 * i * n, imgs + (2 * i + 1) * n);

  first = cg_trainer_new (&c, 42, &error);
  for (int i = 0; i < 3; i++)
    cg_trainer_step (first, imgs + 2 * i * n, imgs + (2 * i + 1) * n);
  extra = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (extra, (gpointer) "epoch", (gpointer) "7");
  g_assert_true (cg_trainer_save (first, path, extra, &error));
  g_assert_no_error (error);
  g_hash_table_unref (extra);
  cg_trainer_free (first);

  second = cg_trainer_new (&c, 1234, &error);   /* other init, other RNG */
  meta = cg_trainer_load (second, path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (meta, "epoch"), ==, "7");
  g_hash_table_unref (meta);
  for (int i = 3; i < 6; i++)
    cg_trainer_step (second, imgs + 2 * i * n, imgs + (2 * i + 1) * n);

  {
    CgTrainNet *a[4] = { full->G_A, full->G_B, full->D_A, full->D_B };
    CgTrainNet *b[4] = { second->G_A, second->G_B, second->D_A, second->D_B };
    for (int k = 0; k < 4; k++) {
      g_assert_true (memcmp (a[k]->param, b[k]->param,
              a[k]->n_floats * sizeof (float)) == 0);
      g_assert_true (memcmp (a[k]->v, b[k]->v,
              a[k]->n_floats * sizeof (float)) == 0);
    }
    for (int k = 0; k < CG_N_LOSSES; k++)
      g_assert_cmpfloat (full->losses[k], ==, second->losses[k]);
  }
  cg_trainer_free (full);
  cg_trainer_free (second);
  g_free (imgs);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_checkpoint_mismatch (void)
{
  CgTrainConfig c;
  CgTrainer *t, *other;
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cg-train-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "ckpt.safetensors", NULL);

  step_config (&c);
  t = cg_trainer_new (&c, 1, &error);
  g_assert_true (cg_trainer_save (t, path, NULL, &error));
  c.ngf = 8;
  other = cg_trainer_new (&c, 1, &error);
  g_assert_null (cg_trainer_load (other, path, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  cg_trainer_free (t);
  cg_trainer_free (other);
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  static const ConvCase conv_cases[] = {
    {"conv7_reflect", {3, 5, 7, 1, 3, CG_PAD_REFLECT, 0}, FALSE, 1 << 20},
    {"conv7_reflect", {3, 5, 7, 1, 3, CG_PAD_REFLECT, 0}, FALSE, 1},
    {"conv3_reflect", {4, 4, 3, 1, 1, CG_PAD_REFLECT, 0}, FALSE, 1 << 20},
    {"conv3_reflect", {4, 4, 3, 1, 1, CG_PAD_REFLECT, 0}, FALSE, 1},
    {"conv3_s2", {4, 6, 3, 2, 1, CG_PAD_ZERO, 0}, FALSE, 1 << 20},
    {"conv3_s2", {4, 6, 3, 2, 1, CG_PAD_ZERO, 0}, FALSE, 80},
    {"conv3_s2_even", {3, 5, 3, 2, 1, CG_PAD_ZERO, 0}, FALSE, 1 << 20},
    {"conv4_s2", {3, 5, 4, 2, 1, CG_PAD_ZERO, 0}, FALSE, 1 << 20},
    {"conv4_s2", {3, 5, 4, 2, 1, CG_PAD_ZERO, 0}, FALSE, 100},
    {"conv4_s2_even", {4, 3, 4, 2, 1, CG_PAD_ZERO, 0}, FALSE, 1 << 20},
    {"conv4_s1", {6, 1, 4, 1, 1, CG_PAD_ZERO, 0}, FALSE, 1 << 20},
    {"conv4_s1", {6, 1, 4, 1, 1, CG_PAD_ZERO, 0}, FALSE, 1},
    {"convT", {6, 4, 3, 2, 1, CG_PAD_ZERO, 1}, TRUE, 1 << 20},
    {"convT", {6, 4, 3, 2, 1, CG_PAD_ZERO, 1}, TRUE, 1},
  };
  int ret;

  g_test_init (&argc, &argv, NULL);
  /* One thread: sums in a fixed order, so resumed runs compare bit for
   * bit and the margins in the log do not move between runs. */
  openblas_set_num_threads (1);
  lb = golden_open ("train/layers_bwd.safetensors");
  for (guint i = 0; i < G_N_ELEMENTS (conv_cases); i++) {
    char *path = g_strdup_printf ("/train/layers/%s/budget-%" G_GSIZE_FORMAT,
        conv_cases[i].kase, conv_cases[i].budget);
    g_test_add_data_func (path, &conv_cases[i], test_conv_backward);
    g_free (path);
  }
  g_test_add_func ("/train/layers/dweight-random", test_dweight_random);
  g_test_add_func ("/train/layers/reflpad3", test_reflect_pad_backward);
  g_test_add_func ("/train/layers/instnorm", test_instance_norm_backward);
  g_test_add_data_func ("/train/layers/relu", "relu",
      test_activation_backward);
  g_test_add_data_func ("/train/layers/lrelu", "lrelu",
      test_activation_backward);
  g_test_add_data_func ("/train/layers/tanh", "tanh",
      test_activation_backward);
  g_test_add_func ("/train/layers/add", test_add_backward);
  g_test_add_func ("/train/net/generator-grads", test_generator_grads);
  g_test_add_func ("/train/net/discriminator-grads",
      test_discriminator_grads);
  g_test_add_data_func ("/train/step/two-iterations",
      "train/step.safetensors", test_iterations);
  g_test_add_data_func ("/train/step/two-iterations-norm-none",
      "train/step_nonorm.safetensors", test_iterations);
  g_test_add_func ("/train/pool/semantics", test_pool);
  g_test_add_func ("/train/pool/default-draws", test_pool_default_draws);
  g_test_add_func ("/train/schedule", test_schedule);
  g_test_add_func ("/train/checkpoint/resume-exact", test_resume);
  g_test_add_func ("/train/checkpoint/mismatch", test_checkpoint_mismatch);
  ret = g_test_run ();
  cg_safetensors_close (lb);
  return ret;
}
