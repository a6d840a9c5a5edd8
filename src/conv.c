/* Convolution by im2col + sgemm.
 *
 * The column matrix of a band of output rows is built with the padding
 * (zero or reflect) folded in, so no padded copy of the input is made; the
 * band is sized to keep the column buffer within the arena's budget while
 * giving sgemm a wide N.
 */
#include "layers.h"

#include <cblas.h>
#include <string.h>

void
cg_conv2d_out_size (const CgConvShape * s, int h, int w, int *oh, int *ow)
{
  *oh = (h + 2 * s->pad - s->k) / s->stride + 1;
  *ow = (w + 2 * s->pad - s->k) / s->stride + 1;
}

static int
band_rows (gsize rows_k, int ow, int oh, gsize col_cap)
{
  gsize per_row = rows_k * (gsize) ow;
  gsize rows = per_row ? col_cap / per_row : (gsize) oh;
  return (int) CLAMP (rows, 1, (gsize) oh);
}

gsize
cg_conv2d_col_floats (const CgConvShape * s, int h, int w, gsize col_cap)
{
  int oh, ow;
  gsize rows_k = (gsize) s->cin * s->k * s->k;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  return rows_k * ow * band_rows (rows_k, ow, oh, col_cap);
}

/* One row of the column matrix: dst[x] = src[x * stride + off] for x < ow,
 * with positions outside [0, w) reflected or zero. */
static void
im2col_row (float *dst, const float *src, int w, int ow, int stride, int off,
    CgPadMode mode)
{
  int x_lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int x_hi = w - off <= 0 ? 0 : (w - off + stride - 1) / stride;

  x_lo = MIN (x_lo, ow);
  x_hi = CLAMP (x_hi, x_lo, ow);

  for (int x = 0; x < x_lo; x++)
    dst[x] = mode == CG_PAD_REFLECT ?
        src[cg_reflect_index (x * stride + off, w)] : 0.0f;
  if (stride == 1) {
    memcpy (dst + x_lo, src + x_lo + off, sizeof (float) * (x_hi - x_lo));
  } else {
    for (int x = x_lo; x < x_hi; x++)
      dst[x] = src[x * stride + off];
  }
  for (int x = x_hi; x < ow; x++)
    dst[x] = mode == CG_PAD_REFLECT ?
        src[cg_reflect_index (x * stride + off, w)] : 0.0f;
}

static void
im2col_band (float *col, const float *in, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1)
{
  gsize n = (gsize) (y1 - y0) * ow;

  for (int ci = 0; ci < s->cin; ci++) {
    const float *plane = in + (gsize) ci * h * w;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        float *row = col + ((gsize) (ci * s->k + ky) * s->k + kx) * n;
        for (int y = y0; y < y1; y++) {
          float *dst = row + (gsize) (y - y0) * ow;
          int iy = y * s->stride - s->pad + ky;
          if (iy < 0 || iy >= h) {
            if (s->pad_mode == CG_PAD_ZERO) {
              memset (dst, 0, sizeof (float) * ow);
              continue;
            }
            iy = cg_reflect_index (iy, h);
          }
          im2col_row (dst, plane + (gsize) iy * w, w, ow, s->stride,
              kx - s->pad, s->pad_mode);
        }
      }
    }
  }
}

/* out [cout, oh, ow] = weight [cout, cin, k, k] (*) in [cin, h, w] + bias */
void
cg_conv2d_forward (float *out, const float *in, const float *weight,
    const float *bias, const CgConvShape * s, int h, int w, float *col,
    gsize col_cap)
{
  int oh, ow;
  int kk = s->cin * s->k * s->k;
  gsize ohw;
  int band;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  ohw = (gsize) oh * ow;
  band = band_rows (kk, ow, oh, col_cap);

  for (int y0 = 0; y0 < oh; y0 += band) {
    int y1 = MIN (y0 + band, oh);
    int n = (y1 - y0) * ow;
    float *dst = out + (gsize) y0 * ow;

    if (bias) {
      for (int co = 0; co < s->cout; co++)
        for (int j = 0; j < n; j++)
          dst[co * ohw + j] = bias[co];
    }
    im2col_band (col, in, s, h, w, ow, y0, y1);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, s->cout, n, kk,
        1.0f, weight, kk, col, n, bias ? 1.0f : 0.0f, dst, (int) ohw);
  }
}
