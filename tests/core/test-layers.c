/* Each layer of the generator against PyTorch (tests/golden/layers.*). */
#include "layers.h"
#include "golden.h"

#define TOL 1e-4

static CgSafetensors *layers;

static float *
t (const char *kase, const char *what, gint64 * shape)
{
  char name[64];
  g_snprintf (name, sizeof name, "%s.%s", kase, what);
  return golden_tensor (layers, name, shape);
}

static void
test_reflect_pad (gconstpointer data)
{
  const char *kase = data;
  int pad = g_str_equal (kase, "reflpad3") ? 3 : 1;
  gint64 is[3], os[3];
  float *in = t (kase, "input", is), *want = t (kase, "output", os);
  float *got = g_new (float, os[0] * os[1] * os[2]);

  cg_reflect_pad_forward (got, in, is[0], is[1], is[2], pad);
  assert_close (kase, got, want, os[0] * os[1] * os[2], 0.0);
  g_free (in);
  g_free (want);
  g_free (got);
}

/* Run a convolution case with a column budget `budget` floats: small
 * budgets force many bands, so the banding is tested on small shapes. */
static void
run_conv (const char *kase, const CgConvShape * s, gboolean transposed,
    gsize budget)
{
  gint64 is[3], os[3];
  float *in = t (kase, "input", is), *want = t (kase, "output", os);
  float *w = t (kase, "weight", NULL), *b = t (kase, "bias", NULL);
  gsize n_out = os[0] * os[1] * os[2];
  float *got = g_new (float, n_out);
  gsize col_n;
  float *col;
  int oh, ow;
  char what[80];

  if (transposed) {
    cg_conv_transpose2d_out_size (s, is[1], is[2], &oh, &ow);
    col_n = cg_conv_transpose2d_col_floats (s, is[1], is[2], budget);
  } else {
    cg_conv2d_out_size (s, is[1], is[2], &oh, &ow);
    col_n = cg_conv2d_col_floats (s, is[1], is[2], budget);
  }
  g_assert_cmpint (oh, ==, os[1]);
  g_assert_cmpint (ow, ==, os[2]);
  col = g_new (float, col_n);
  if (transposed)
    cg_conv_transpose2d_forward (got, in, w, b, s, is[1], is[2], col, budget);
  else
    cg_conv2d_forward (got, in, w, b, s, is[1], is[2], col, budget);
  g_snprintf (what, sizeof what, "%s (column budget %" G_GSIZE_FORMAT ")",
      kase, budget);
  assert_close (what, got, want, n_out, TOL);
  g_free (in);
  g_free (want);
  g_free (w);
  g_free (b);
  g_free (got);
  g_free (col);
}

typedef struct
{
  const char *kase;
  CgConvShape shape;
  gboolean transposed;
} ConvCase;

static const ConvCase conv_cases[] = {
  {"conv7_reflect", {3, 5, 7, 1, 3, CG_PAD_REFLECT, 0}, FALSE},
  {"conv3_reflect", {6, 6, 3, 1, 1, CG_PAD_REFLECT, 0}, FALSE},
  {"conv3_s2", {5, 6, 3, 2, 1, CG_PAD_ZERO, 0}, FALSE},
  {"conv3_s2_even", {5, 6, 3, 2, 1, CG_PAD_ZERO, 0}, FALSE},
  {"convT", {6, 4, 3, 2, 1, CG_PAD_ZERO, 1}, TRUE},
};

static void
test_conv (gconstpointer data)
{
  const ConvCase *c = data;
  /* whole image in one band; then one row per band */
  run_conv (c->kase, &c->shape, c->transposed, (gsize) 1 << 20);
  run_conv (c->kase, &c->shape, c->transposed, 1);
}

static void
test_instance_norm (gconstpointer data)
{
  const char *kase = data;
  gboolean relu = g_str_equal (kase, "instnorm_relu");
  gint64 s[3];
  float *in = t (kase, "input", s), *want = t (kase, "output", NULL);
  gsize n = s[0] * s[1] * s[2];
  float *got = g_new (float, n);

  if (relu)
    cg_instance_norm_relu_forward (got, in, s[0], s[1] * s[2]);
  else
    cg_instance_norm_forward (got, in, s[0], s[1] * s[2]);
  assert_close (kase, got, want, n, TOL);
  /* in place, as the generator runs it */
  if (relu)
    cg_instance_norm_relu_forward (in, in, s[0], s[1] * s[2]);
  else
    cg_instance_norm_forward (in, in, s[0], s[1] * s[2]);
  assert_close ("in place", in, want, n, TOL);
  g_free (in);
  g_free (want);
  g_free (got);
}

/* The residual block from its parts, the way the generator chains them:
 * the first conv's bias dropped (InstanceNorm cancels it). */
static void
test_resblock (void)
{
  gint64 s[3];
  float *x = t ("resblock", "input", s), *want = t ("resblock", "output",
      NULL);
  float *w1 = t ("resblock", "weight1", NULL);
  float *w2 = t ("resblock", "weight2", NULL);
  int c = s[0], h = s[1], w = s[2];
  gsize n = (gsize) c * h * w;
  CgConvShape shape = { c, c, 3, 1, 1, CG_PAD_REFLECT, 0 };
  gsize col_n = cg_conv2d_col_floats (&shape, h, w, 1 << 20);
  float *col = g_new (float, col_n), *t1 = g_new (float, n), *t2 =
      g_new (float, n);

  cg_conv2d_forward (t1, x, w1, NULL, &shape, h, w, col, 1 << 20);
  cg_instance_norm_relu_forward (t1, t1, c, h * w);
  cg_conv2d_forward (t2, t1, w2, NULL, &shape, h, w, col, 1 << 20);
  cg_instance_norm_add_forward (x, t2, x, c, h * w);
  assert_close ("resblock", x, want, n, TOL);
  g_free (x);
  g_free (want);
  g_free (w1);
  g_free (w2);
  g_free (col);
  g_free (t1);
  g_free (t2);
}

static void
test_tanh (void)
{
  gint64 s[3];
  float *in = t ("tanh", "input", s), *want = t ("tanh", "output", NULL);
  gsize n = s[0] * s[1] * s[2];

  cg_tanh_forward (in, in, n);
  assert_close ("tanh", in, want, n, 1e-6);
  g_free (in);
  g_free (want);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  layers = golden_open ("layers.safetensors");

  g_test_add_data_func ("/layers/reflect-pad/3", "reflpad3",
      test_reflect_pad);
  g_test_add_data_func ("/layers/reflect-pad/1", "reflpad1",
      test_reflect_pad);
  for (guint i = 0; i < G_N_ELEMENTS (conv_cases); i++) {
    char *path = g_strdup_printf ("/layers/conv/%s", conv_cases[i].kase);
    g_test_add_data_func (path, &conv_cases[i], test_conv);
    g_free (path);
  }
  g_test_add_data_func ("/layers/instance-norm/plain", "instnorm",
      test_instance_norm);
  g_test_add_data_func ("/layers/instance-norm/relu", "instnorm_relu",
      test_instance_norm);
  g_test_add_func ("/layers/resblock", test_resblock);
  g_test_add_func ("/layers/tanh", test_tanh);

  ret = g_test_run ();
  cg_safetensors_close (layers);
  return ret;
}
