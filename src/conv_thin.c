/* Convolution to few output channels (the generator's last layer: 7x7 to
 * RGB) as sgemm followed by a shift-add.
 *
 * im2col + sgemm puts the 3 output channels in the GEMM's M, where no
 * kernel runs well (4 GMAC/s measured for 64->3 at 256x256). Here every
 * (output channel, ky, kx) is a row instead:
 *   Y [cout*k*k, band of padded rows] = W' [cout*k*k, cin] . X_padded
 *   out[co](y, x) = bias[co] + sum_{ky,kx} Y[co,ky,kx](y + ky, x + kx)
 * so M = cout*k*k (147), K = cin, and the input is read in place, padded
 * once. The padded input and Y are banded by output rows.
 */
#include "layers.h"

#include <cblas.h>
#include <string.h>

/* W [cout, cin, k, k] -> W' [cout, k, k, cin] */
void
cg_conv2d_thin_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  int kk = s->k * s->k;

  for (int co = 0; co < s->cout; co++)
    for (int ci = 0; ci < s->cin; ci++)
      for (int t = 0; t < kk; t++)
        prepared[((gsize) co * kk + t) * s->cin + ci] =
            weight[((gsize) co * s->cin + ci) * kk + t];
}

static int
thin_band (const CgConvShape * s, int oh, int pw, gsize budget)
{
  /* per band of r rows: padded input cin*(r+k-1)*pw, Y cout*k*k*(r+k-1)*pw */
  gsize per_row = ((gsize) s->cin + (gsize) s->cout * s->k * s->k) * pw;
  gsize rows = per_row ? budget / per_row : 0;
  if (rows <= (gsize) s->k)
    return 1;
  return (int) MIN (rows - (s->k - 1), (gsize) oh);
}

gsize
cg_conv2d_thin_scratch_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int pw = w + 2 * s->pad;
  int r = thin_band (s, h, pw, budget);
  return ((gsize) s->cin + (gsize) s->cout * s->k * s->k) * (r + s->k -
      1) * pw;
}

/* Padded rows [r0, r1) of the input (reflect or zero), into `dst`. */
static void
pad_rows (float *dst, const float *in, const CgConvShape * s, int h, int w,
    int r0, int r1)
{
  int pw = w + 2 * s->pad;
  gsize n = (gsize) (r1 - r0) * pw;

  for (int ci = 0; ci < s->cin; ci++) {
    const float *plane = in + (gsize) ci * h * w;
    for (int r = r0; r < r1; r++) {
      float *row = dst + ci * n + (gsize) (r - r0) * pw;
      int iy = r - s->pad;
      const float *src;
      if (iy < 0 || iy >= h) {
        if (s->pad_mode == CG_PAD_ZERO) {
          memset (row, 0, sizeof (float) * pw);
          continue;
        }
        iy = cg_reflect_index (iy, h);
      }
      src = plane + (gsize) iy * w;
      for (int x = 0; x < s->pad; x++) {
        row[x] = s->pad_mode == CG_PAD_ZERO ? 0.0f :
            src[cg_reflect_index (x - s->pad, w)];
        row[pw - 1 - x] = s->pad_mode == CG_PAD_ZERO ? 0.0f :
            src[cg_reflect_index (w - 1 + s->pad - x, w)];
      }
      memcpy (row + s->pad, src, sizeof (float) * w);
    }
  }
}

/* Stride 1, "same" size output: pad = (k - 1) / 2. */
void
cg_conv2d_thin_forward (float *out, const float *in, const float *prepared,
    const float *bias, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget)
{
  int k = s->k, kk = k * k;
  int pw = w + 2 * s->pad;
  int band = thin_band (s, h, pw, budget);
  int m = s->cout * kk;

  g_return_if_fail (s->stride == 1 && 2 * s->pad == k - 1);

  for (int y0 = 0; y0 < h; y0 += band) {
    int y1 = MIN (y0 + band, h);
    int rows = y1 - y0 + k - 1;
    gsize n = (gsize) rows * pw;
    float *xp = scratch;
    float *y = scratch + (gsize) s->cin * n;

    pad_rows (xp, in, s, h, w, y0, y0 + rows);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, m, (int) n,
        s->cin, 1.0f, prepared, s->cin, xp, (int) n, 0.0f, y, (int) n);

    for (int co = 0; co < s->cout; co++) {
      float b = bias ? bias[co] : 0.0f;
      for (int oy = y0; oy < y1; oy++) {
        float *orow = out + ((gsize) co * h + oy) * w;
        for (int x = 0; x < w; x++)
          orow[x] = b;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            const float *yrow = y + (gsize) (co * kk + ky * k + kx) * n +
                (gsize) (oy - y0 + ky) * pw + kx;
            for (int x = 0; x < w; x++)
              orow[x] += yrow[x];
          }
      }
    }
  }
}
