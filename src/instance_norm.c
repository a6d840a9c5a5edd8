/* InstanceNorm2d (affine=False, track_running_stats=False): each channel of
 * the one image is normalized by its own mean and biased variance.
 *
 * Statistics in two passes (mean, then the mean of squared deviations),
 * which stays accurate when the mean is large against the spread; the
 * normalization itself, fused with ReLU or the residual add, runs in ORC.
 */
#include "layers.h"
#include "cg-orc.h"

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

void
cg_instance_norm_forward (float *out, const float *in, int c, int hw)
{
  for (int ch = 0; ch < c; ch++) {
    const float *x = in + (gsize) ch * hw;
    float scale, offset;
    plane_stats (x, hw, &scale, &offset);
    cg_orc_scale_offset (out + (gsize) ch * hw, x, scale, offset, hw);
  }
}

void
cg_instance_norm_relu_forward (float *out, const float *in, int c, int hw)
{
  for (int ch = 0; ch < c; ch++) {
    const float *x = in + (gsize) ch * hw;
    float scale, offset;
    plane_stats (x, hw, &scale, &offset);
    cg_orc_scale_offset_relu (out + (gsize) ch * hw, x, scale, offset, hw);
  }
}

void
cg_instance_norm_add_forward (float *out, const float *in,
    const float *residual, int c, int hw)
{
  for (int ch = 0; ch < c; ch++) {
    const float *x = in + (gsize) ch * hw;
    float scale, offset;
    plane_stats (x, hw, &scale, &offset);
    cg_orc_scale_offset_add (out + (gsize) ch * hw, x,
        residual + (gsize) ch * hw, scale, offset, hw);
  }
}
