/* InstanceNorm2d (affine=False, track_running_stats=False): each channel of
 * the one image is normalized by its own mean and biased variance.
 *
 * Statistics in one pass of sums shifted by an estimate of the mean
 * (shifted_sums), which stays accurate when the mean is large against the
 * spread; the normalization itself, fused with ReLU or the residual add,
 * runs in ORC. The backward recomputes the statistics and takes the
 * activation after the norm with it, plane by plane.
 */
#include "layers.h"
#include "cg-orc.h"
#include "parallel.h"
#include "simd.h"

#include <math.h>

/* Sums run in 16 float lanes the compiler vectorizes (with AVX2 and
 * AVX-512 clones), each lane's block of BLOCK values then added in
 * double: a plane holds up to a few million values, and float sums that
 * long would lose digits. */
#define LANES 16
#define BLOCK 1024

/* sum (x - shift) and sum ((x - shift)^2) in one pass. The shift, an
 * estimate of the mean, keeps the second sum's cancellation small (the
 * variance is then s2 / n - (s1 / n)^2, both terms of the order of the
 * variance); it was the reason for two passes, the plane's second read
 * being 30% of the statistics' time. */
CG_SIMD_CLONES static void
shifted_sums (const float *x, int n, float shift, double *s1, double *s2)
{
  cg_v8 k = cg_v8_splat (shift);
  double t1 = 0.0, t2 = 0.0;
  int i = 0;

  while (i + LANES <= n) {
    /* two 8-float vectors: 16-float ones lived on the stack in the
     * AVX2 clone */
    cg_v8 a1 = { 0 }, b1 = { 0 }, a2 = { 0 }, b2 = { 0 };
    int end = i + MIN (BLOCK, (n - i) / LANES * LANES);
    for (; i < end; i += LANES) {
      cg_v8 d = cg_v8_load (x + i) - k, e = cg_v8_load (x + i + 8) - k;
      a1 += d;
      b1 += e;
      a2 += d * d;
      b2 += e * e;
    }
    for (int l = 0; l < 8; l++) {
      t1 += a1[l] + b1[l];
      t2 += a2[l] + b2[l];
    }
  }
  for (; i < n; i++) {
    double d = (double) x[i] - shift;
    t1 += d;
    t2 += d * d;
  }
  *s1 = t1;
  *s2 = t2;
}

void
cg_moments_of_span (CgMoments * m, const float *x, gsize n)
{
  double head = 0.0, s1, s2;
  int nh = (int) MIN (n, 64);
  float shift;

  if (n == 0) {
    *m = (CgMoments) { 0 };
    return;
  }
  for (int i = 0; i < nh; i++)
    head += x[i];
  shift = (float) (head / nh);
  shifted_sums (x, (int) n, shift, &s1, &s2);
  cg_moments_from_sums (m, (double) n, shift, s1, s2);
}

void
cg_moments_from_sums (CgMoments * m, double n, double shift, double s1,
    double s2)
{
  m->n = n;
  m->mean = shift + s1 / n;
  m->m2 = MAX (s2 - s1 * s1 / n, 0.0);
}

void
cg_moments_merge (CgMoments * into, const CgMoments * from)
{
  double n = into->n + from->n, d = from->mean - into->mean;

  if (from->n == 0)
    return;
  into->mean += d * (from->n / n);
  into->m2 += from->m2 + d * d * (into->n * from->n / n);
  into->n = n;
}

void
cg_moments_reduce (CgMoments * out, const CgMoments * parts, int n_parts,
    int c)
{
  for (int ch = 0; ch < c; ch++) {
    CgMoments m = parts[ch];
    for (int p = 1; p < n_parts; p++)
      cg_moments_merge (&m, &parts[(gsize) p * c + ch]);
    out[ch] = m;
  }
}

CG_SIMD_CLONES void
cg_norm_relu_span (float *x, int n, float scale, float offset)
{
  for (int i = 0; i < n; i++)
    x[i] = MAX (x[i] * scale + offset, 0.0f);
}

CG_SIMD_CLONES void
cg_norm_relu_copy (float *restrict dst, const float *restrict src, int n,
    float scale, float offset)
{
  for (int i = 0; i < n; i++)
    dst[i] = MAX (src[i] * scale + offset, 0.0f);
}

/* y = (x - mean) * rstd = x * scale + offset */
void
cg_moments_coeffs (const CgMoments * m, float *scale, float *offset)
{
  double var = m->n > 0 ? m->m2 / m->n : 0.0;
  float rstd = 1.0f / sqrtf ((float) var + CG_IN_EPS);

  *scale = rstd;
  *offset = (float) -m->mean * rstd;
}

static void
plane_stats (const float *x, int n, float *scale, float *offset)
{
  CgMoments m;

  cg_moments_of_span (&m, x, n);
  cg_moments_coeffs (&m, scale, offset);
}

typedef enum
{
  NORM_ONLY,
  NORM_RELU,
  NORM_ADD,
} NormPost;

typedef struct
{
  float *out;
  const float *in, *residual;
  const CgMoments *moments;     /* or NULL: the planes' own */
  int hw;
  NormPost post;
} NormJob;

/* Channels [begin, end): the statistics, then one fused ORC pass. */
static void
norm_channels (gpointer data, int begin, int end)
{
  const NormJob *j = data;

  for (int ch = begin; ch < end; ch++) {
    gsize off = (gsize) ch * j->hw;
    const float *x = j->in + off;
    float scale, offset;
    if (j->moments)
      cg_moments_coeffs (&j->moments[ch], &scale, &offset);
    else
      plane_stats (x, j->hw, &scale, &offset);
    switch (j->post) {
      case NORM_ONLY:
        cg_orc_scale_offset (j->out + off, x, scale, offset, j->hw);
        break;
      case NORM_RELU:
        cg_orc_scale_offset_relu (j->out + off, x, scale, offset, j->hw);
        break;
      case NORM_ADD:
        cg_orc_scale_offset_add (j->out + off, x, j->residual + off, scale,
            offset, j->hw);
        break;
    }
  }
}

static void
norm (float *out, const float *in, const float *residual,
    const CgMoments * moments, int c, int hw, NormPost post)
{
  NormJob job = { out, in, residual, moments, hw, post };
  cg_parallel_for (c, norm_channels, &job);
}

void
cg_instance_norm_forward (float *out, const float *in, int c, int hw)
{
  norm (out, in, NULL, NULL, c, hw, NORM_ONLY);
}

void
cg_instance_norm_relu_forward (float *out, const float *in, int c, int hw)
{
  norm (out, in, NULL, NULL, c, hw, NORM_RELU);
}

void
cg_instance_norm_relu_apply (float *out, const float *in,
    const CgMoments * moments, int c, int hw)
{
  norm (out, in, NULL, moments, c, hw, NORM_RELU);
}

void
cg_instance_norm_add_apply (float *out, const float *in,
    const float *residual, const CgMoments * moments, int c, int hw)
{
  norm (out, in, residual, moments, c, hw, NORM_ADD);
}

void
cg_instance_norm_add_forward (float *out, const float *in,
    const float *residual, int c, int hw)
{
  norm (out, in, residual, NULL, c, hw, NORM_ADD);
}

/* ---- backward ---- */

/* sum (g) and sum (g * (x * scale + offset)), blocked like shifted_sums.
 * The 8-float array form before spilled its lanes to the stack: 44% of
 * a backward pass in perf. */
CG_SIMD_CLONES static void
plane_grad_sums (const float *g, const float *x, int n, float scale,
    float offset, double *sum_g, double *sum_gx)
{
  cg_v8 vs = cg_v8_splat (scale), vo = cg_v8_splat (offset);
  double tg = 0.0, tx = 0.0;
  int i = 0;

  while (i + LANES <= n) {
    cg_v8 ga = { 0 }, gb = { 0 }, xa = { 0 }, xb = { 0 };
    int end = i + MIN (BLOCK, (n - i) / LANES * LANES);
    for (; i < end; i += LANES) {
      cg_v8 g0 = cg_v8_load (g + i), g1 = cg_v8_load (g + i + 8);
      ga += g0;
      gb += g1;
      xa += g0 * (cg_v8_load (x + i) * vs + vo);
      xb += g1 * (cg_v8_load (x + i + 8) * vs + vo);
    }
    for (int l = 0; l < 8; l++) {
      tg += ga[l] + gb[l];
      tx += xa[l] + xb[l];
    }
  }
  for (; i < n; i++) {
    tg += g[i];
    tx += (double) g[i] * (x[i] * scale + offset);
  }
  *sum_g = tg;
  *sum_gx = tx;
}

typedef struct
{
  float *dinput;
  const float *doutput, *input;
  /* with an activation: its output, its slope, and where its input
   * gradient goes (the caller's doutput, overwritten) */
  const float *output;
  float slope;
  float *act_grad;
  gboolean accumulate;
  int hw;
} NormBackwardJob;

static void
norm_backward_channels (gpointer data, int begin, int end)
{
  const NormBackwardJob *j = data;
  int hw = j->hw;

  for (int ch = begin; ch < end; ch++) {
    gsize off = (gsize) ch * hw;
    const float *x = j->input + off;
    const float *g = j->doutput + off;
    float *d = j->dinput + off;
    float rstd, offset, xa, c;
    double sum_g, sum_gx, mg, mgx;

/* In place (the activation's gradient over dout, the accumulating form's
 * result over dinput): ORC works element by element, so an output may
 * alias the input at the same index despite the generated prototypes'
 * restrict. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
    /* the activation's backward while the plane is in cache for the three
     * passes below */
    if (j->output) {
      cg_orc_leaky_relu_backward (j->act_grad + off, g, j->output + off,
          j->slope, 1.0f - j->slope, hw);
      g = j->act_grad + off;
    }
    plane_stats (x, hw, &rstd, &offset);
    plane_grad_sums (g, x, hw, rstd, offset, &sum_g, &sum_gx);
    mg = sum_g / hw;
    mgx = sum_gx / hw;
    /* rstd (g - mg - (x rstd + offset) mgx)
     *   = g rstd + x (-rstd^2 mgx) + (-rstd (mg + offset mgx)) */
    xa = (float) (-(double) rstd * rstd * mgx);
    c = (float) (-(double) rstd * (mg + offset * mgx));
    if (j->accumulate)
      cg_orc_in_backward (d, d, g, x, rstd, xa, c, hw);
    else
      cg_orc_in_backward_set (d, g, x, rstd, xa, c, hw);
#pragma GCC diagnostic pop
  }
}

void
cg_instance_norm_backward (float *dinput, const float *doutput,
    const float *input, int c, int hw)
{
  NormBackwardJob job = { dinput, doutput, input, NULL, 0.0f, NULL, TRUE,
    hw
  };
  cg_parallel_for (c, norm_backward_channels, &job);
}

void
cg_instance_norm_act_backward (float *dinput, float *doutput,
    const float *output, float slope, const float *input, int c, int hw)
{
  NormBackwardJob job = { dinput, doutput, input, output, slope, doutput,
    FALSE, hw
  };
  cg_parallel_for (c, norm_backward_channels, &job);
}
