/* Transposed convolution by sgemm + col2im.
 *
 * Each input pixel scatters a k x k patch per output channel:
 * columns [cout * k * k, band of input pixels] = weight^T . input, then
 * out[co, iy * stride - pad + ky, ix * stride - pad + kx] += column.
 * Bands of input rows bound the column buffer; the scatter-add makes band
 * boundaries harmless.
 */
#include "layers.h"

#include <cblas.h>

void
cg_conv_transpose2d_out_size (const CgConvShape * s, int h, int w, int *oh,
    int *ow)
{
  *oh = (h - 1) * s->stride - 2 * s->pad + s->k + s->output_padding;
  *ow = (w - 1) * s->stride - 2 * s->pad + s->k + s->output_padding;
}

static int
band_rows (gsize rows_k, int w, int h, gsize col_cap)
{
  gsize per_row = rows_k * (gsize) w;
  gsize rows = per_row ? col_cap / per_row : (gsize) h;
  return (int) CLAMP (rows, 1, (gsize) h);
}

gsize
cg_conv_transpose2d_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap)
{
  gsize rows_k = (gsize) s->cout * s->k * s->k;
  return rows_k * w * band_rows (rows_k, w, h, col_cap);
}

static void
col2im_band (float *out, const float *col, const CgConvShape * s, int w,
    int oh, int ow, int y0, int y1)
{
  gsize n = (gsize) (y1 - y0) * w;

  for (int co = 0; co < s->cout; co++) {
    float *plane = out + (gsize) co * oh * ow;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        const float *row = col + ((gsize) (co * s->k + ky) * s->k + kx) * n;
        for (int y = y0; y < y1; y++) {
          int oy = y * s->stride - s->pad + ky;
          const float *src = row + (gsize) (y - y0) * w;
          float *dst;
          if (oy < 0 || oy >= oh)
            continue;
          dst = plane + (gsize) oy * ow;
          for (int x = 0; x < w; x++) {
            int ox = x * s->stride - s->pad + kx;
            if (ox >= 0 && ox < ow)
              dst[ox] += src[x];
          }
        }
      }
    }
  }
}

/* out [cout, oh, ow] = conv_transpose (in [cin, h, w], weight [cin, cout,
 * k, k]) + bias */
void
cg_conv_transpose2d_forward (float *out, const float *in,
    const float *weight, const float *bias, const CgConvShape * s, int h,
    int w, float *col, gsize col_cap)
{
  int oh, ow;
  int m = s->cout * s->k * s->k;
  gsize ohw;
  int band = band_rows (m, w, h, col_cap);

  cg_conv_transpose2d_out_size (s, h, w, &oh, &ow);
  ohw = (gsize) oh * ow;

  for (int co = 0; co < s->cout; co++) {
    float b = bias ? bias[co] : 0.0f;
    for (gsize j = 0; j < ohw; j++)
      out[co * ohw + j] = b;
  }

  for (int y0 = 0; y0 < h; y0 += band) {
    int y1 = MIN (y0 + band, h);
    int n = (y1 - y0) * w;
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, m, n, s->cin,
        1.0f, weight, m, in + (gsize) y0 * w, h * w, 0.0f, col, n);
    col2im_band (out, col, s, w, oh, ow, y0, y1);
  }
}
