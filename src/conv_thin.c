/* Convolution to few output channels (the generator's last layer: 7x7 to
 * RGB), stride 1, "same" padding, computed directly.
 *
 * im2col + sgemm reads each column value for only cout (3) products: the
 * GEMM is bound by memory (4 GMAC/s measured for 64->3 at 256x256), as is
 * any GEMM formulation that writes cout*k*k partial planes. Directly, each
 * padded input row is read from cache once per (output row, ky) and feeds
 * k multiply-adds per output value, vectorized along x. Output rows are
 * split over the generator's threads.
 */
#include "layers.h"
#include "parallel.h"
#include "simd.h"

#include <string.h>

static int
thin_band (const CgConvShape * s, int oh, int pw, gsize budget)
{
  gsize per_row = (gsize) s->cin * pw;
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
  return (gsize) s->cin * (r + s->k - 1) * pw;
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

typedef struct
{
  float *out;
  const float *xp, *weight, *bias;
  const CgConvShape *s;
  int h, w, pw, y0;
  gsize n;
} ThinJob;

/* Output row y of channels co and co + 1 (when two) over x in [x0, x0 +
 * 32): 4 vectors x 2 channels = 8 accumulators in registers through all
 * cin*k*k taps, and each input load feeds both channels. */
static inline __attribute__ ((always_inline))
void
taps_block (const ThinJob * j, int y, int co, int two, int x0)
{
  const CgConvShape *s = j->s;
  int k = s->k;
  const float *w0 = j->weight + (gsize) co * s->cin * k * k;
  const float *w1 = two ? w0 + (gsize) s->cin * k * k : w0;
  float b0 = j->bias ? j->bias[co] : 0.0f;
  float b1 = j->bias && two ? j->bias[co + 1] : 0.0f;
  cg_v8 a0 = cg_v8_splat (b0), a1 = a0, a2 = a0, a3 = a0;
  cg_v8 c0 = cg_v8_splat (b1), c1 = c0, c2 = c0, c3 = c0;
  float *o0, *o1;

  for (int ci = 0; ci < s->cin; ci++)
    for (int ky = 0; ky < k; ky++) {
      const float *r = j->xp + ci * j->n + (gsize) (y - j->y0 + ky) * j->pw
          + x0;
      const float *wa = w0 + (ci * k + ky) * k, *wb = w1 + (ci * k + ky) * k;
      for (int kx = 0; kx < k; kx++) {
        cg_v8 v0 = cg_v8_load (r + kx), v1 = cg_v8_load (r + kx + 8);
        cg_v8 v2 = cg_v8_load (r + kx + 16), v3 = cg_v8_load (r + kx + 24);
        float p = wa[kx], q = wb[kx];
        a0 += v0 * p;
        a1 += v1 * p;
        a2 += v2 * p;
        a3 += v3 * p;
        c0 += v0 * q;
        c1 += v1 * q;
        c2 += v2 * q;
        c3 += v3 * q;
      }
    }
  o0 = j->out + ((gsize) co * j->h + y) * j->w + x0;
  cg_v8_store (o0, a0);
  cg_v8_store (o0 + 8, a1);
  cg_v8_store (o0 + 16, a2);
  cg_v8_store (o0 + 24, a3);
  if (two) {
    o1 = o0 + (gsize) j->h * j->w;
    cg_v8_store (o1, c0);
    cg_v8_store (o1 + 8, c1);
    cg_v8_store (o1 + 16, c2);
    cg_v8_store (o1 + 24, c3);
  }
}

/* The last x < 32 of a row, one value at a time. */
static void
taps_tail (const ThinJob * j, int y, int co, int x0)
{
  const CgConvShape *s = j->s;
  int k = s->k;
  float *orow = j->out + ((gsize) co * j->h + y) * j->w;

  for (int x = x0; x < j->w; x++) {
    float a = j->bias ? j->bias[co] : 0.0f;
    for (int ci = 0; ci < s->cin; ci++)
      for (int ky = 0; ky < k; ky++) {
        const float *r = j->xp + ci * j->n + (gsize) (y - j->y0 + ky) *
            j->pw + x;
        const float *wk = j->weight + (((gsize) co * s->cin + ci) * k +
            ky) * k;
        for (int kx = 0; kx < k; kx++)
          a += r[kx] * wk[kx];
      }
    orow[x] = a;
  }
}

CG_SIMD_CLONES static void
thin_rows (gpointer data, int begin, int end)
{
  const ThinJob *j = data;
  int cout = j->s->cout;
  int blocks = j->w / 32;

  for (int y = j->y0 + begin; y < j->y0 + end; y++)
    for (int co = 0; co < cout; co += 2) {
      int two = co + 1 < cout;
      for (int b = 0; b < blocks; b++) {
        if (two)
          taps_block (j, y, co, 1, b * 32);
        else
          taps_block (j, y, co, 0, b * 32);
      }
      taps_tail (j, y, co, blocks * 32);
      if (two)
        taps_tail (j, y, co + 1, blocks * 32);
    }
}

void
cg_conv2d_thin_forward (float *out, const float *in, const float *weight,
    const float *bias, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget)
{
  int pw = w + 2 * s->pad;
  int band = thin_band (s, h, pw, budget);

  g_return_if_fail (s->stride == 1 && 2 * s->pad == s->k - 1);

  for (int y0 = 0; y0 < h; y0 += band) {
    int y1 = MIN (y0 + band, h);
    int rows = y1 - y0 + s->k - 1;
    ThinJob job = { out, scratch, weight, bias, s, h, w, pw, y0,
      (gsize) rows * pw
    };

    pad_rows (scratch, in, s, h, w, y0, y0 + rows);
    cg_parallel_for (y1 - y0, thin_rows, &job);
  }
}
