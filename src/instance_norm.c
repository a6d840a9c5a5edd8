/* InstanceNorm2d (affine=False, track_running_stats=False): each channel of
 * the one image is normalized by its own mean and biased variance.
 *
 * Statistics in two passes (mean, then the mean of squared deviations),
 * which stays accurate when the mean is large against the spread; the
 * normalization itself, fused with ReLU or the residual add, runs in ORC.
 */
#include "layers.h"
#include "cg-orc.h"
#include "parallel.h"

#include <math.h>

/* Eight independent float lanes the compiler can vectorize, summed in
 * double: a plane holds at most a few million values. */
static double
plane_sum (const float *x, int n)
{
  float acc[8] = { 0 };
  double total = 0.0;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++)
      acc[l] += x[i + l];
  for (; i < n; i++)
    total += x[i];
  for (int l = 0; l < 8; l++)
    total += acc[l];
  return total;
}

static double
plane_sq_dev (const float *x, int n, float mean)
{
  float acc[8] = { 0 };
  double total = 0.0;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      float d = x[i + l] - mean;
      acc[l] += d * d;
    }
  for (; i < n; i++) {
    double d = x[i] - mean;
    total += d * d;
  }
  for (int l = 0; l < 8; l++)
    total += acc[l];
  return total;
}

/* y = (x - mean) * rstd = x * scale + offset */
static void
plane_stats (const float *x, int n, float *scale, float *offset)
{
  float mean = (float) (plane_sum (x, n) / n);
  float var = (float) (plane_sq_dev (x, n, mean) / n);
  float rstd = 1.0f / sqrtf (var + CG_IN_EPS);

  *scale = rstd;
  *offset = -mean * rstd;
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
norm (float *out, const float *in, const float *residual, int c, int hw,
    NormPost post)
{
  NormJob job = { out, in, residual, hw, post };
  cg_parallel_for (c, norm_channels, &job);
}

void
cg_instance_norm_forward (float *out, const float *in, int c, int hw)
{
  norm (out, in, NULL, c, hw, NORM_ONLY);
}

void
cg_instance_norm_relu_forward (float *out, const float *in, int c, int hw)
{
  norm (out, in, NULL, c, hw, NORM_RELU);
}

void
cg_instance_norm_add_forward (float *out, const float *in,
    const float *residual, int c, int hw)
{
  norm (out, in, residual, c, hw, NORM_ADD);
}

/* ---- backward ---- */

/* sum (g) and sum (g * (x * scale + offset)) in double over float lanes. */
static void
plane_grad_sums (const float *g, const float *x, int n, float scale,
    float offset, double *sum_g, double *sum_gx)
{
  float ag[8] = { 0 }, ax[8] = { 0 };
  double tg = 0.0, tx = 0.0;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      ag[l] += g[i + l];
      ax[l] += g[i + l] * (x[i + l] * scale + offset);
    }
  for (; i < n; i++) {
    tg += g[i];
    tx += (double) g[i] * (x[i] * scale + offset);
  }
  for (int l = 0; l < 8; l++) {
    tg += ag[l];
    tx += ax[l];
  }
  *sum_g = tg;
  *sum_gx = tx;
}

typedef struct
{
  float *dinput;
  const float *doutput, *input;
  int hw;
} NormBackwardJob;

static void
norm_backward_channels (gpointer data, int begin, int end)
{
  const NormBackwardJob *j = data;
  float *dinput = j->dinput;
  const float *doutput = j->doutput, *input = j->input;
  int hw = j->hw;

  for (int ch = begin; ch < end; ch++) {
    const float *x = input + (gsize) ch * hw;
    const float *g = doutput + (gsize) ch * hw;
    float *d = dinput + (gsize) ch * hw;
    float rstd, offset;
    double sum_g, sum_gx, mg, mgx;

    plane_stats (x, hw, &rstd, &offset);
    plane_grad_sums (g, x, hw, rstd, offset, &sum_g, &sum_gx);
    mg = sum_g / hw;
    mgx = sum_gx / hw;
    /* rstd (g - mg - (x rstd + offset) mgx)
     *   = g rstd + x (-rstd^2 mgx) + (-rstd (mg + offset mgx)) */
/* In place: ORC works element by element, so an output may alias the
 * input at the same index despite the generated prototype's restrict. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
    cg_orc_in_backward (d, d, g, x, rstd, (float) (-(double) rstd * rstd *
            mgx), (float) (-(double) rstd * (mg + offset * mgx)), hw);
#pragma GCC diagnostic pop
  }
}

void
cg_instance_norm_backward (float *dinput, const float *doutput,
    const float *input, int c, int hw)
{
  NormBackwardJob job = { dinput, doutput, input, hw };
  cg_parallel_for (c, norm_backward_channels, &job);
}
