/* Each layer of the generator against PyTorch (tests/golden/layers.*). */
#include "layers.h"
#include "golden.h"
#include <math.h>

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

/* The fast paths on the golden cases they serve. */
static void
test_fast_path (gconstpointer data)
{
  const ConvCase *c = data;
  gboolean winograd = c->shape.k == 3;
  gint64 is[3], os[3];
  float *in = t (c->kase, "input", is), *want = t (c->kase, "output", os);
  float *w = t (c->kase, "weight", NULL), *b = t (c->kase, "bias", NULL);
  gsize n_out = os[0] * os[1] * os[2];
  float *got = g_new (float, n_out);
  float *prep = g_new (float, 36 * c->shape.cout * c->shape.cin * 49);

  /* a roomy budget, then the smallest: one band, then as many as can be */
  for (gsize budget = 1 << 20; budget; budget = budget > 1 ? 1 : 0) {
    gsize scratch_n = winograd ?
        cg_conv2d_winograd_scratch_floats (&c->shape, is[1], is[2], budget) :
        cg_conv2d_thin_scratch_floats (&c->shape, is[1], is[2]);
    float *scratch = g_new (float, scratch_n);
    char what[80];

    if (winograd) {
      cg_conv2d_winograd_prepare (prep, w, &c->shape);
      cg_conv2d_winograd_forward (got, in, NULL, prep, b, &c->shape, is[1],
          is[2], scratch, budget, NULL);
    } else {
      cg_conv2d_thin_forward (got, in, NULL, w, b, &c->shape, is[1], is[2],
          FALSE, NULL, scratch);
    }
    g_snprintf (what, sizeof what, "%s %s (budget %" G_GSIZE_FORMAT ")",
        c->kase, winograd ? "winograd" : "thin", budget);
    assert_close (what, got, want, n_out, TOL);
    g_free (scratch);
  }
  if (winograd) {
    memset (got, 0, n_out * sizeof (float));
    cg_conv2d_winograd_forward_fused (got, in, NULL, prep, b, &c->shape,
        is[1], is[2], NULL);
    assert_close ("winograd fused", got, want, n_out, TOL);
  }
  g_free (in);
  g_free (want);
  g_free (w);
  g_free (b);
  g_free (got);
  g_free (prep);
}

/* Within rtol of the largest |want| (at least 1). */
static void
assert_close_scaled (const char *what, const float *got, const float *want,
    gsize n, double rtol)
{
  double scale = 1.0;
  for (gsize j = 0; j < n; j++)
    scale = MAX (scale, fabs (want[j]));
  assert_close (what, got, want, n, rtol * scale);
}

/* n values uniform in [-range, range) */
static float *
random_floats (GRand * rand, gsize n, double range)
{
  float *x = g_new (float, n);
  for (gsize j = 0; j < n; j++)
    x[j] = g_rand_double_range (rand, -range, range);
  return x;
}

/* cg_gather_span writes exactly [x0, x1): spans of every length at each
 * end of a row, where the padded border (up to 3 wide) can be wider than
 * the span, against the definition; guard values after the span must
 * survive. */
static void
test_gather_span (void)
{
  float src[10], dst[16];

  for (int i = 0; i < 10; i++)
    src[i] = (float) (i + 1);
  for (int mode = 0; mode < 2; mode++)
    for (int stride = 1; stride <= 2; stride++)
      for (int off = -3; off <= 3; off++)
        for (int x0 = 0; x0 < 8; x0++)
          for (int x1 = x0; x1 <= 8; x1++) {
            CgPadMode pm = mode ? CG_PAD_REFLECT : CG_PAD_ZERO;
            for (int i = 0; i < 16; i++)
              dst[i] = -100.0f;
            cg_gather_span (dst, src, 10, x0, x1, stride, off, pm);
            for (int x = x0; x < x1; x++) {
              int ix = x * stride + off;
              float want = ix >= 0 && ix < 10 ? src[ix] :
                  pm == CG_PAD_ZERO ? 0.0f : src[cg_reflect_index (ix, 10)];
              g_assert_cmpfloat (dst[x - x0], ==, want);
            }
            for (int i = x1 - x0; i < 16; i++)
              g_assert_cmpfloat (dst[i], ==, -100.0f);
          }
}

/* The panel paths (conv_panels.c) on every golden convolution case. */
static void
test_panels (gconstpointer data)
{
  const ConvCase *c = data;
  gint64 is[3], os[3];
  float *in = t (c->kase, "input", is), *want = t (c->kase, "output", os);
  float *w = t (c->kase, "weight", NULL), *b = t (c->kase, "bias", NULL);
  gsize n_out = os[0] * os[1] * os[2];
  float *got = g_new (float, n_out);
  float *prep;
  char what[80];

  if (c->transposed) {
    g_assert_true (cg_conv_transpose2d_panels_supported (&c->shape));
    prep = g_new (float,
        cg_conv_transpose2d_panels_prepared_floats (&c->shape));
    cg_conv_transpose2d_panels_prepare (prep, w, &c->shape);
    cg_conv_transpose2d_panels_forward (got, in, prep, b, &c->shape, is[1],
        is[2]);
  } else {
    float *split = g_new (float,
        cg_conv2d_panels_scratch_floats (&c->shape, is[1], is[2]));
    prep = g_new (float, cg_conv2d_panels_prepared_floats (&c->shape));
    cg_conv2d_panels_prepare (prep, w, &c->shape);
    cg_conv2d_panels_forward (got, in, prep, b, &c->shape, is[1], is[2],
        split);
    g_free (split);
  }
  g_snprintf (what, sizeof what, "%s panels", c->kase);
  assert_close (what, got, want, n_out, TOL);
  if (!c->transposed && cg_conv2d_direct_supported (&c->shape)) {
    float *split = g_new (float,
        cg_conv2d_direct_scratch_floats (&c->shape, is[1], is[2]));
    g_free (prep);
    prep = g_new (float, cg_conv2d_direct_prepared_floats (&c->shape));
    cg_conv2d_direct_prepare (prep, w, &c->shape);
    memset (got, 0, n_out * sizeof (float));
    cg_conv2d_direct_forward (got, in, NULL, prep, b, &c->shape, is[1],
        is[2], NULL, split);
    g_snprintf (what, sizeof what, "%s direct", c->kase);
    assert_close (what, got, want, n_out, TOL);
    g_free (split);
  }
  if (c->transposed && cg_conv_transpose2d_direct_supported (&c->shape)) {
    g_free (prep);
    prep = g_new (float,
        cg_conv_transpose2d_direct_prepared_floats (&c->shape));
    cg_conv_transpose2d_direct_prepare (prep, w, &c->shape);
    memset (got, 0, n_out * sizeof (float));
    cg_conv_transpose2d_direct_forward (got, in, prep, b, &c->shape, is[1],
        is[2], FALSE, NULL);
    g_snprintf (what, sizeof what, "%s direct", c->kase);
    assert_close (what, got, want, n_out, TOL);
  }
  g_free (in);
  g_free (want);
  g_free (w);
  g_free (b);
  g_free (got);
  g_free (prep);
}

/* Each channel's count, mean and squared deviations against float64
 * sums over the planes. */
static void
assert_moments (const char *what, const CgMoments * m, const float *planes,
    int c, int hw)
{
  for (int ch = 0; ch < c; ch++) {
    const float *x = planes + (gsize) ch * hw;
    double mean = 0.0, m2 = 0.0;
    for (int i = 0; i < hw; i++)
      mean += x[i];
    mean /= hw;
    for (int i = 0; i < hw; i++)
      m2 += (x[i] - mean) * (x[i] - mean);
    if (m[ch].n != hw || fabs (m[ch].mean - mean) > 1e-6 * (1 + fabs (mean))
        || fabs (m[ch].m2 - m2) > 1e-5 * (1 + m2))
      g_error ("%s: channel %d moments n %g mean %.9g m2 %.9g, want %d %.9g "
          "%.9g", what, ch, m[ch].n, m[ch].mean, m[ch].m2, hw, mean, m2);
  }
}

/* A fast path given the input's moments (`in_norm`) against im2col on
 * ReLU (InstanceNorm (in)): the norm of the layer before, applied as the
 * input rows are copied, padding zeros left zero. The direct stride-2
 * kernel (prep its weights), Winograd in large and one-row bands and
 * fused, or the thin kernel, as s says. */
static void
check_in_norm (const char *shape, const float *in, const float *wt,
    const float *b, const float *prep, const CgConvShape * s, int h, int w,
    float *want, float *got, float *scratch)
{
  CgMoments *m = g_new (CgMoments, s->cin);
  float *normed = g_new (float, (gsize) s->cin * h * w);
  int oh, ow;
  gsize n_out;
  char what[128];

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  n_out = (gsize) s->cout * oh * ow;
  for (int ci = 0; ci < s->cin; ci++)
    cg_moments_of_span (&m[ci], in + (gsize) ci * h * w, (gsize) h * w);
  cg_instance_norm_relu_apply (normed, in, m, s->cin, h * w);
  cg_conv2d_forward (want, normed, wt, b, s, h, w, scratch, 1 << 20);
  if (s->stride == 2) {
    cg_conv2d_direct_forward (got, in, m, prep, b, s, h, w, NULL, scratch);
    g_snprintf (what, sizeof what, "%s in_norm", shape);
  } else if (s->k == 3) {
    for (int one_row = 0; one_row < 2; one_row++) {
      cg_conv2d_winograd_forward (got, in, m, prep, b, s, h, w, scratch,
          one_row ? 1 : 1 << 20, NULL);
      g_snprintf (what, sizeof what, "%s in_norm, %s bands", shape,
          one_row ? "one-row" : "large");
      assert_close_scaled (what, got, want, n_out, 1e-5);
    }
    memset (got, 0, n_out * sizeof (float));
    cg_conv2d_winograd_forward_fused (got, in, m, prep, b, s, h, w, NULL);
    g_snprintf (what, sizeof what, "%s in_norm, fused", shape);
  } else {
    cg_conv2d_thin_forward (got, in, m, wt, b, s, h, w, FALSE, NULL,
        scratch);
    g_snprintf (what, sizeof what, "%s in_norm", shape);
  }
  assert_close_scaled (what, got, want, n_out, 1e-5);
  g_free (normed);
  g_free (m);
}

/* The panel paths against im2col/col2im on random shapes: blocks that
 * span several output rows and end mid-row, several blocks per layer,
 * stride 1 and 2, both paddings, transposed with odd sizes, and a 7x7
 * whose blocks end just inside a row's reflected border. */
static void
test_panels_vs_im2col (void)
{
  /* 300 rows: the direct kernels' tasks then run more rows than they
   * sum before merging the moments */
  static const int sizes[][2] = { {5, 7}, {9, 13}, {31, 6}, {37, 40},
  {64, 72}, {9, 47}, {300, 9}
  };
  GRand *rand = g_rand_new_with_seed (11);

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (int variant = 0; variant < 5; variant++) {
      int h = sizes[i][0], w = sizes[i][1], oh, ow;
      gboolean transposed = variant == 3;
      CgConvShape s = { 3 + variant * 7 + i, 4 + variant * 5, 3,
        variant == 0 ? 1 : 2, 1,
        variant == 2 ? CG_PAD_REFLECT : CG_PAD_ZERO, transposed ? 1 : 0
      };
      gsize n_in, n_out, n_w, n_col;
      float *in, *wt, *b, *want, *got, *prep, *col;
      char what[96];

      if (variant == 4) {
        /* 7x7, pad 3, 1960 taps: one-panel blocks of 48 pixels over rows
         * of 47, so blocks end 1, 2, ... pixels into a row, where the
         * reflected left border is wider than the span gathered */
        if (w != 47)
          continue;
        s = (CgConvShape) {
        40, 5, 7, 1, 3, CG_PAD_REFLECT, 0};
      }
      if (transposed)
        cg_conv_transpose2d_out_size (&s, h, w, &oh, &ow);
      else
        cg_conv2d_out_size (&s, h, w, &oh, &ow);
      n_in = (gsize) s.cin * h * w;
      n_out = (gsize) s.cout * oh * ow;
      n_w = (gsize) s.cout * s.cin * s.k * s.k;
      in = random_floats (rand, n_in, 2.0);
      wt = random_floats (rand, n_w, 0.5);
      b = random_floats (rand, s.cout, 1.0);
      want = g_new (float, n_out);
      got = g_new (float, n_out);

      if (transposed) {
        n_col = cg_conv_transpose2d_col_floats (&s, h, w, 1 << 20);
        col = g_new (float, n_col);
        cg_conv_transpose2d_forward (want, in, wt, b, &s, h, w, col, 1 << 20);
        prep = g_new (float, cg_conv_transpose2d_panels_prepared_floats (&s));
        cg_conv_transpose2d_panels_prepare (prep, wt, &s);
        cg_conv_transpose2d_panels_forward (got, in, prep, b, &s, h, w);
        if (cg_conv_transpose2d_direct_supported (&s)) {
          float *dprep = g_new (float,
              cg_conv_transpose2d_direct_prepared_floats (&s));
          float *dgot = g_new (float, n_out);
          cg_conv_transpose2d_direct_prepare (dprep, wt, &s);
          CgMoments *m = g_new (CgMoments,
              MAX (cg_conv_transpose2d_direct_moments_len (&s, h), 1));
          cg_conv_transpose2d_direct_forward (dgot, in, dprep, b, &s, h, w,
              FALSE, m);
          g_snprintf (what, sizeof what, "direct convT %dx%d %d->%d", w, h,
              s.cin, s.cout);
          assert_close_scaled (what, dgot, want, n_out, 1e-5);
          /* the moments it gathers row by row */
          assert_moments (what, m, dgot, s.cout, oh * ow);
          g_free (m);
          g_free (dprep);
          g_free (dgot);
        }
      } else {
        n_col = MAX (cg_conv2d_col_floats (&s, h, w, 1 << 20),
            MAX (cg_conv2d_panels_scratch_floats (&s, h, w),
                cg_conv2d_direct_scratch_floats (&s, h, w)));
        col = g_new (float, n_col);
        cg_conv2d_forward (want, in, wt, b, &s, h, w, col, 1 << 20);
        prep = g_new (float, cg_conv2d_panels_prepared_floats (&s));
        cg_conv2d_panels_prepare (prep, wt, &s);
        cg_conv2d_panels_forward (got, in, prep, b, &s, h, w, col);
        if (cg_conv2d_direct_supported (&s)) {
          float *dprep = g_new (float, cg_conv2d_direct_prepared_floats (&s));
          float *dgot = g_new (float, n_out);
          cg_conv2d_direct_prepare (dprep, wt, &s);
          CgMoments *m = g_new (CgMoments,
              MAX (cg_conv2d_direct_moments_len (&s, h), 1));
          cg_conv2d_direct_forward (dgot, in, NULL, dprep, b, &s, h, w, m,
              col);
          g_snprintf (what, sizeof what, "direct conv %dx%d %d->%d %s", w,
              h, s.cin, s.cout,
              s.pad_mode == CG_PAD_ZERO ? "zero" : "reflect");
          assert_close_scaled (what, dgot, want, n_out, 1e-5);
          /* the moments it gathers row by row */
          assert_moments (what, m, dgot, s.cout, oh * ow);
          {
            float *dwant = g_new (float, n_out);
            check_in_norm (what, in, wt, b, dprep, &s, h, w, dwant, dgot,
                col);
            g_free (dwant);
          }
          {
            float *dwant = g_new (float, n_out);
            check_in_norm (what, in, wt, b, dprep, &s, h, w, dwant, dgot,
                col);
            g_free (dwant);
          }
          g_free (m);
          g_free (dprep);
          g_free (dgot);
        }
      }
      g_snprintf (what, sizeof what, "panels %s %dx%d %d->%d stride %d %s",
          transposed ? "convT" : "conv", w, h, s.cin, s.cout, s.stride,
          s.pad_mode == CG_PAD_ZERO ? "zero" : "reflect");
      /* float rounding, in sums of up to cin * 9 terms */
      assert_close_scaled (what, got, want, n_out, 1e-5);
      g_free (in);
      g_free (wt);
      g_free (b);
      g_free (want);
      g_free (got);
      g_free (prep);
      g_free (col);
    }
  g_rand_free (rand);
}

/* Fast paths against im2col on random shapes: sizes that are and are not
 * multiples of the Winograd tile, rows shorter and longer than the thin
 * path's 32-float blocks, both padding modes; and the thin path with
 * wider zero padding (a layer to RGB's input gradient: 3 -> many, pad
 * k - 1, output k - 1 wider and taller) and with narrower (the
 * discriminator's last layer: 4x4, pad 1, to one channel). */
static void
test_fast_vs_im2col (void)
{
  /* 48x100: Winograd bands of over 128 tiles, whose moments' float sums
   * the output transform folds into double on the way */
  static const int sizes[][2] = { {5, 7}, {8, 8}, {9, 13}, {16, 12},
  {2, 2}, {31, 6}, {9, 70}, {37, 40}, {48, 100}
  };
  GRand *rand = g_rand_new_with_seed (7);

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (int variant = 0; variant < 4; variant++) {
      int h = sizes[i][0], w = sizes[i][1], oh, ow;
      CgConvShape s = { 3 + variant * 5, 2 + variant * 3, 3, 1, 1,
        variant == 1 ? CG_PAD_ZERO : CG_PAD_REFLECT, 0
      };
      gsize n_in, n_out;
      gsize n_w;
      float *in, *wt, *b, *want, *got, *prep, *scratch;
      char what[96], shape[96];

      if (variant == 2) {       /* the thin path's 7x7, in and out layers */
        s.k = 7;
        s.pad = 3;
        s.cout = i % 2 ? 3 : 9;
        s.cin = i % 2 ? 13 : 3;
        if (h <= 3 || w <= 3)
          continue;             /* reflect pad 3 needs 4 pixels */
      }
      if (variant == 3) {       /* wider zero padding, and narrower */
        s.k = i % 2 ? 4 : 7;
        s.pad = i % 2 ? 1 : 6;
        s.pad_mode = CG_PAD_ZERO;
        s.cin = i % 2 ? 9 : 3;
        s.cout = i % 2 ? 1 : 11;
      }
      cg_conv2d_out_size (&s, h, w, &oh, &ow);
      n_in = (gsize) s.cin * h * w;
      n_out = (gsize) s.cout * oh * ow;
      n_w = (gsize) s.cout * s.cin * s.k * s.k;
      in = random_floats (rand, n_in, 2.0);
      wt = random_floats (rand, n_w, 0.5);
      b = random_floats (rand, s.cout, 1.0);
      want = g_new (float, n_out);
      got = g_new (float, n_out);

      scratch = g_new (float, MAX (cg_conv2d_col_floats (&s, h, w, 1 << 20),
              MAX (cg_conv2d_thin_scratch_floats (&s, h, w),
                  cg_conv2d_winograd_scratch_floats (&s, h, w, 1 << 20))));
      prep = g_new (float, CG_WINOGRAD_PREPARED_FLOATS (&s));
      cg_conv2d_forward (want, in, wt, b, &s, h, w, scratch, 1 << 20);
      if (s.k == 3) {
        cg_conv2d_winograd_prepare (prep, wt, &s);
        cg_conv2d_winograd_forward (got, in, NULL, prep, b, &s, h, w, scratch,
            1 << 20, NULL);
      } else {
        cg_conv2d_thin_forward (got, in, NULL, wt, b, &s, h, w, FALSE, NULL,
            scratch);
      }
      g_snprintf (what, sizeof what, "%s %dx%d %d->%d %s pad %d",
          s.k == 3 ? "winograd" : "thin", w, h, s.cin, s.cout,
          s.pad_mode == CG_PAD_ZERO ? "zero" : "reflect", s.pad);
      g_strlcpy (shape, what, sizeof shape);
      /* Winograd's error grows with the values (its transforms scale by
       * up to 8 and 1/24) */
      assert_close_scaled (what, got, want, n_out, 1e-5);
      if (s.k == 3) {
        CgMoments *m = g_new (CgMoments,
            cg_conv2d_winograd_moments_len (&s, h));

        /* the moments the output transform gathers, band by band: in
         * bands as large as the budget takes, in one-row bands, then in
         * the fused order */
        cg_conv2d_winograd_forward (got, in, NULL, prep, b, &s, h, w, scratch,
            1 << 20, m);
        assert_moments (what, m, got, s.cout, oh * ow);
        cg_conv2d_winograd_forward (got, in, NULL, prep, b, &s, h, w, scratch,
            1, m);
        assert_moments (what, m, got, s.cout, oh * ow);
        memset (got, 0, n_out * sizeof (float));
        cg_conv2d_winograd_forward_fused (got, in, NULL, prep, b, &s, h, w, m);
        g_strlcat (what, " fused", sizeof what);
        assert_close_scaled (what, got, want, n_out, 1e-5);
        assert_moments (what, m, got, s.cout, oh * ow);
        g_free (m);
      } else {
        CgMoments *m = g_new (CgMoments,
            cg_conv2d_thin_moments_len (&s, h));

        /* the moments the thin kernel gathers row by row (the last
         * vector of a row overlaps the one before: counted once) */
        cg_conv2d_thin_forward (got, in, NULL, wt, b, &s, h, w, FALSE, m,
            scratch);
        g_strlcat (what, " moments", sizeof what);
        assert_close_scaled (what, got, want, n_out, 1e-5);
        assert_moments (what, m, got, s.cout, oh * ow);
        g_free (m);
      }
      check_in_norm (shape, in, wt, b, prep, &s, h, w, want, got, scratch);
      g_free (in);
      g_free (wt);
      g_free (b);
      g_free (want);
      g_free (got);
      g_free (prep);
      g_free (scratch);
    }
  g_rand_free (rand);
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

/* The vectorized tanh over a dense sweep, tails, zero and the odd tail
 * element the vector loop leaves to libm. */
static void
test_tanh_sweep (void)
{
  gsize n = 200003;
  float *x = g_new (float, n), *y = g_new (float, n);
  double worst = 0.0;

  for (gsize i = 0; i < n; i++)
    x[i] = -20.0f + 40.0f * i / (n - 1);
  x[n / 2] = 0.0f;
  cg_tanh_forward (y, x, n);
  for (gsize i = 0; i < n; i++)
    worst = MAX (worst, fabs (y[i] - tanh ((double) x[i])));
  g_test_message ("tanh sweep: max |diff| %.3g", worst);
  g_assert_cmpfloat (worst, <, 2e-7);
  g_assert_cmpfloat (y[n / 2], ==, 0.0f);
  g_assert_cmpfloat (y[0], ==, -1.0f);
  g_assert_cmpfloat (y[n - 1], ==, 1.0f);
  g_free (x);
  g_free (y);
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
  g_test_add_data_func ("/layers/winograd/conv3_reflect", &conv_cases[1],
      test_fast_path);
  g_test_add_data_func ("/layers/thin/conv7_reflect", &conv_cases[0],
      test_fast_path);
  g_test_add_func ("/layers/fast-vs-im2col", test_fast_vs_im2col);
  for (guint i = 0; i < G_N_ELEMENTS (conv_cases); i++) {
    char path[64];
    g_snprintf (path, sizeof path, "/layers/panels/%s", conv_cases[i].kase);
    g_test_add_data_func (path, &conv_cases[i], test_panels);
  }
  g_test_add_func ("/layers/panels-vs-im2col", test_panels_vs_im2col);
  g_test_add_func ("/layers/gather-span", test_gather_span);
  g_test_add_data_func ("/layers/instance-norm/plain", "instnorm",
      test_instance_norm);
  g_test_add_data_func ("/layers/instance-norm/relu", "instnorm_relu",
      test_instance_norm);
  g_test_add_func ("/layers/resblock", test_resblock);
  g_test_add_func ("/layers/tanh", test_tanh);
  g_test_add_func ("/layers/tanh-sweep", test_tanh_sweep);

  ret = g_test_run ();
  cg_safetensors_close (layers);
  return ret;
}
