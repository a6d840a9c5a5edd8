/* Transposed convolution by sgemm + col2im.
 *
 * Each input pixel scatters a k x k patch per output channel:
 * columns [cout * k * k, band of input pixels] = weight^T . input, then
 * out[co, iy * stride - pad + ky, ix * stride - pad + kx] += column.
 * Bands of input rows bound the column buffer; the scatter-add makes band
 * boundaries harmless.
 */
#include "layers.h"
#include "parallel.h"


void
cg_conv_transpose2d_out_size (const CgConvShape * s, int h, int w, int *oh,
    int *ow)
{
  *oh = (h - 1) * s->stride - 2 * s->pad + s->k + s->output_padding;
  *ow = (w - 1) * s->stride - 2 * s->pad + s->k + s->output_padding;
}

gsize
cg_conv_transpose2d_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap)
{
  gsize rows_k = (gsize) s->cout * s->k * s->k;
  return rows_k * w * cg_band_rows (rows_k, w, h, col_cap);
}

typedef struct
{
  float *out;
  const float *col;
  const CgConvShape *s;
  int w, oh, ow, y0, y1;
} Col2imJob;

/* Output channels [begin, end) of a band: each channel's scatter-adds
 * touch only its own plane, so channels run in parallel. */
static void
col2im_channels (gpointer data, int begin, int end)
{
  const Col2imJob *j = data;
  const CgConvShape *s = j->s;
  gsize n = (gsize) (j->y1 - j->y0) * j->w;

  for (int co = begin; co < end; co++) {
    float *plane = j->out + (gsize) co * j->oh * j->ow;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        const float *row = j->col + ((gsize) (co * s->k + ky) * s->k + kx) *
            n;
        /* ox = x * stride + off lands in [0, ow) for x in [x_lo, x_hi) */
        int off = kx - s->pad;
        int x_lo = off >= 0 ? 0 : (-off + s->stride - 1) / s->stride;
        int x_hi = MIN (j->w, (j->ow - off + s->stride - 1) / s->stride);
        for (int y = j->y0; y < j->y1; y++) {
          int oy = y * s->stride - s->pad + ky;
          const float *src = row + (gsize) (y - j->y0) * j->w;
          float *dst;
          if (oy < 0 || oy >= j->oh)
            continue;
          dst = plane + (gsize) oy * j->ow + off;
          if (s->stride == 2)
            for (int x = x_lo; x < x_hi; x++)
              dst[2 * x] += src[x];
          else
            for (int x = x_lo; x < x_hi; x++)
              dst[x * s->stride] += src[x];
        }
      }
    }
  }
}

static void
col2im_band (float *out, const float *col, const CgConvShape * s, int w,
    int oh, int ow, int y0, int y1)
{
  Col2imJob job = { out, col, s, w, oh, ow, y0, y1 };
  cg_parallel_for (s->cout, col2im_channels, &job);
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
  int band = cg_band_rows (m, w, h, col_cap);

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
    cg_sgemm (TRUE, m, n, s->cin, weight, m, in + (gsize) y0 * w, h * w,
        FALSE, col, n);
    col2im_band (out, col, s, w, oh, ow, y0, y1);
  }
}

/* ---- backward ---- */

/* The convolution that reads dout the way the forward's col2im wrote it:
 * over dout [cout, oh, ow] with the same kernel, stride and zero padding,
 * its output grid is the input's h x w. */
static CgConvShape
adjoint_shape (const CgConvShape * s)
{
  CgConvShape a = *s;
  a.cin = s->cout;
  a.cout = s->cin;
  a.pad_mode = CG_PAD_ZERO;
  a.output_padding = 0;
  return a;
}

void
cg_conv_transpose2d_backward (float *dinput, float *dweight, float *dbias,
    const float *doutput, const float *input, const float *weight,
    const CgConvShape * s, int h, int w, float *col, gsize col_cap)
{
  int oh, ow;
  int m = s->cout * s->k * s->k;
  gsize hw = (gsize) h * w;
  int band = cg_band_rows (m, w, h, col_cap);
  CgConvShape a = adjoint_shape (s);

  cg_conv_transpose2d_out_size (s, h, w, &oh, &ow);
  if (dbias) {
    gsize ohw = (gsize) oh * ow;
    for (int co = 0; co < s->cout; co++) {
      const float *p = doutput + co * ohw;
      double total = 0.0;
      for (gsize j = 0; j < ohw; j++)
        total += p[j];
      dbias[co] += (float) total;
    }
  }
  if (!dweight && !dinput)
    return;

  for (int y0 = 0; y0 < h; y0 += band) {
    int y1 = MIN (y0 + band, h);
    int n = (y1 - y0) * w;
    cg_conv2d_im2col (col, doutput, &a, oh, ow, y0, y1);
    /* dweight [cin, m] += in [cin, n] . dcol^T */
    if (dweight)
      cg_sgemm_nt_acc (s->cin, m, n, input + (gsize) y0 * w, (int) hw, col,
          n, dweight, m);
    /* dinput [cin, n] += weight [cin, m] . dcol */
    if (dinput)
      cg_sgemm (FALSE, s->cin, n, m, weight, m, col, n, TRUE,
          dinput + (gsize) y0 * w, (int) hw);
  }
}
