/* Convolution by im2col + sgemm.
 *
 * The column matrix of a band of output rows is built with the padding
 * (zero or reflect) folded in, so no padded copy of the input is made; the
 * band is sized to keep the column buffer within the arena's budget while
 * giving sgemm a wide N.
 */
#include "layers.h"
#include "parallel.h"

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
im2col_channels (float *col, const float *in, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1, int ci0, int ci1)
{
  gsize n = (gsize) (y1 - y0) * ow;

  for (int ci = ci0; ci < ci1; ci++) {
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

typedef struct
{
  float *col;
  const float *in;
  const CgConvShape *s;
  int h, w, ow, y0, y1;
} Im2colJob;

static void
im2col_job (gpointer data, int begin, int end)
{
  const Im2colJob *j = data;
  im2col_channels (j->col, j->in, j->s, j->h, j->w, j->ow, j->y0, j->y1,
      begin, end);
}

/* Rows of the column matrix for output rows [y0, y1), input channels
 * split over the current thread pool. */
static void
im2col_band (float *col, const float *in, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1)
{
  Im2colJob job = { col, in, s, h, w, ow, y0, y1 };
  cg_parallel_for (s->cin, im2col_job, &job);
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
    cg_sgemm (FALSE, s->cout, n, kk, 1.0f, weight, kk, col, n,
        bias ? 1.0f : 0.0f, dst, (int) ohw);
  }
}

/* ---- backward ---- */

void
cg_conv2d_im2col (float *col, const float *in, const CgConvShape * s, int h,
    int w, int y0, int y1)
{
  int oh, ow;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  im2col_band (col, in, s, h, w, ow, y0, y1);
}

/* The adjoint of im2col_band: each column entry adds into the input pixel
 * it was read from; entries read from the zero border are dropped, those
 * read from the reflected border add into the pixel they mirror. */
static void
col2im_band (float *din, const float *col, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1)
{
  gsize n = (gsize) (y1 - y0) * ow;

  for (int ci = 0; ci < s->cin; ci++) {
    float *plane = din + (gsize) ci * h * w;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        const float *row = col + ((gsize) (ci * s->k + ky) * s->k + kx) * n;
        int off = kx - s->pad;
        /* x in [x_lo, x_hi) reads inside the row without reflection */
        int x_lo = off >= 0 ? 0 : (-off + s->stride - 1) / s->stride;
        int x_hi = w - off <= 0 ? 0 : (w - off + s->stride - 1) / s->stride;
        x_lo = MIN (x_lo, ow);
        x_hi = CLAMP (x_hi, x_lo, ow);
        for (int y = y0; y < y1; y++) {
          const float *src = row + (gsize) (y - y0) * ow;
          int iy = y * s->stride - s->pad + ky;
          float *dst;
          if (iy < 0 || iy >= h) {
            if (s->pad_mode == CG_PAD_ZERO)
              continue;
            iy = cg_reflect_index (iy, h);
          }
          dst = plane + (gsize) iy * w;
          if (s->pad_mode == CG_PAD_REFLECT) {
            for (int x = 0; x < x_lo; x++)
              dst[cg_reflect_index (x * s->stride + off, w)] += src[x];
            for (int x = x_hi; x < ow; x++)
              dst[cg_reflect_index (x * s->stride + off, w)] += src[x];
          }
          if (s->stride == 1) {
            float *d = dst + off;
            for (int x = x_lo; x < x_hi; x++)
              d[x] += src[x];
          } else {
            for (int x = x_lo; x < x_hi; x++)
              dst[x * s->stride + off] += src[x];
          }
        }
      }
    }
  }
}

static void
plane_sums_acc (float *acc, const float *x, int c, gsize n)
{
  for (int ch = 0; ch < c; ch++) {
    const float *p = x + (gsize) ch * n;
    float lanes[8] = { 0 };
    double total = 0.0;
    gsize i = 0;
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; l++)
        lanes[l] += p[i + l];
    for (; i < n; i++)
      total += p[i];
    for (int l = 0; l < 8; l++)
      total += lanes[l];
    acc[ch] += (float) total;
  }
}

/* dweight [cout, kk] += dout [cout, n] . col^T [n, kk]; dcol [kk, n] =
 * weight^T . dout, then col2im. One column buffer serves both, in turn. */
void
cg_conv2d_backward (float *dinput, float *dweight, float *dbias,
    const float *doutput, const float *input, const float *weight,
    const CgConvShape * s, int h, int w, float *col, gsize col_cap)
{
  int oh, ow;
  int kk = s->cin * s->k * s->k;
  gsize ohw;
  int band;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  ohw = (gsize) oh * ow;
  band = band_rows (kk, ow, oh, col_cap);

  if (dbias)
    plane_sums_acc (dbias, doutput, s->cout, ohw);
  if (!dweight && !dinput)
    return;

  for (int y0 = 0; y0 < oh; y0 += band) {
    int y1 = MIN (y0 + band, oh);
    int n = (y1 - y0) * ow;
    const float *g = doutput + (gsize) y0 * ow;

    if (dweight) {
      im2col_band (col, input, s, h, w, ow, y0, y1);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, s->cout, kk, n,
          1.0f, g, (int) ohw, col, n, 1.0f, dweight, kk);
    }
    if (dinput) {
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, kk, n, s->cout,
          1.0f, weight, kk, g, (int) ohw, 0.0f, col, n);
      col2im_band (dinput, col, s, h, w, ow, y0, y1);
    }
  }
}
