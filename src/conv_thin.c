/* Convolution to or from few channels (the generator's 7x7 layers to and
 * from RGB), stride 1, "same" padding (or wider zero padding: the input
 * gradient of such a layer), computed directly; and its weight gradient.
 *
 * im2col + sgemm reads each column value for only cout (3) products: the
 * GEMM is bound by memory (4 GMAC/s measured for 64->3 at 256x256), as is
 * any GEMM formulation that writes cout*k*k partial planes. Directly, each
 * padded input row is read from cache once per (output row, ky) and feeds
 * k multiply-adds per output value, vectorized along x (8 floats, or 16
 * on AVX-512 CPUs: conv_thin_kernel.h). Output rows are split over the
 * generator's threads.
 */
#include "cpu.h"
#include "layers.h"
#include "parallel.h"
#include "simd.h"

#include <string.h>

/* Where the direct kernels beat a GEMM: stride 1, "same" padding, few
 * channels on one side (generator.c's chooser has the measurements). */
#define THIN_MAX_OUT 4
#define THIN_MAX_IN 4

gboolean
cg_conv2d_thin_preferred (const CgConvShape * s)
{
  return s->stride == 1 && 2 * s->pad == s->k - 1
      && (s->cout <= THIN_MAX_OUT || s->cin <= THIN_MAX_IN);
}

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
  int r = thin_band (s, h + 2 * s->pad - s->k + 1, pw, budget);
  return (gsize) s->cin * (r + s->k - 1) * pw;
}

typedef struct
{
  float *dst;
  const float *in;
  const CgConvShape *s;
  int h, w, r0, r1;
} PadJob;

/* Rows [begin, end) of the padded band, over channels x rows. */
static void
pad_row_range (gpointer data, int begin, int end)
{
  const PadJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, pw = w + 2 * s->pad, nr = j->r1 - j->r0;

  for (int i = begin; i < end; i++) {
    int ci = i / nr, iy = j->r0 + i % nr - s->pad;
    float *row = j->dst + (gsize) i * pw;
    if ((iy < 0 || iy >= h) && s->pad_mode == CG_PAD_ZERO) {
      memset (row, 0, sizeof (float) * pw);
      continue;
    }
    cg_gather_span (row, j->in + ((gsize) ci * h + cg_reflect_index (iy,
                h)) * w, w, 0, pw, 1, -s->pad, s->pad_mode);
  }
}

/* Padded rows [r0, r1) of every input channel into dst, channel after
 * channel, on the pool (one thread copying them left the other idle for
 * ~2% of an ngf 16 frame). */
static void
pad_rows (float *dst, const float *in, const CgConvShape * s, int h, int w,
    int r0, int r1)
{
  PadJob job = { dst, in, s, h, w, r0, r1 };
  cg_parallel_for (s->cin * (r1 - r0), pad_row_range, &job);
}

typedef struct
{
  float *out;
  const float *xp, *weight, *bias;
  const CgConvShape *s;
  int h, w, pw, y0;
  gsize n;
  int oh, ow;                   /* h, w unless the padding is wider */
  /* the weight gradient's: output rows [y0, y1) */
  float *dweight;
  const float *dout;
  int y1;
} ThinJob;

/* The rest of a row from x0, one value at a time. */
static void
taps_tail (const ThinJob * j, int y, int co, int x0)
{
  const CgConvShape *s = j->s;
  int k = s->k;
  float *orow = j->out + ((gsize) co * j->oh + y) * j->ow;

  for (int x = x0; x < j->ow; x++) {
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

/* The weight gradient of one (ci, ky) for any k, one product at a time. */
static void
taps_wgrad (const ThinJob * j, int ci, int ky)
{
  const CgConvShape *s = j->s;
  int k = s->k;

  for (int co = 0; co < s->cout; co++)
    for (int kx = 0; kx < k; kx++) {
      double sum = 0.0;
      for (int y = j->y0; y < j->y1; y++) {
        const float *r = j->xp + ci * j->n + (gsize) (y - j->y0 + ky) *
            j->pw + kx;
        const float *d = j->dout + ((gsize) co * j->h + y) * j->w;
        for (int x = 0; x < j->w; x++)
          sum += (double) d[x] * r[x];
      }
      j->dweight[(((gsize) co * s->cin + ci) * k + ky) * k + kx] +=
          (float) sum;
    }
}

#define WG_FLUSH 16

#define VW 8
#define THIN_FUNC_ATTRS CG_SIMD_CLONES
#define THIN_ROWS thin_rows_v8
#define THIN_WGRAD thin_wgrad_v8
#include "conv_thin_kernel.h"
#undef VW
#undef THIN_FUNC_ATTRS
#undef THIN_ROWS
#undef THIN_WGRAD

#ifdef CG_HAVE_AVX512_KERNELS
#define VW 16
#define THIN_FUNC_ATTRS __attribute__ ((target ("avx512f,avx2,fma")))
#define THIN_ROWS thin_rows_v16
#define THIN_WGRAD thin_wgrad_v16
#include "conv_thin_kernel.h"
#undef VW
#undef THIN_FUNC_ATTRS
#undef THIN_ROWS
#undef THIN_WGRAD
#endif

/* Output rows band by band: the band's padded input rows into `scratch`
 * (output rows [y0, y1) read padded rows [y0, y1 + k - 1)), then `kernel`
 * over `jobs` jobs (0: one per output row of the band). */
static void
over_bands (ThinJob job, const float *in, float *scratch, int out_rows,
    int band, CgParallelFunc kernel, int jobs)
{
  const CgConvShape *s = job.s;

  for (int y0 = 0; y0 < out_rows; y0 += band) {
    int y1 = MIN (y0 + band, out_rows);
    int rows = y1 - y0 + s->k - 1;
    job.y0 = y0;
    job.y1 = y1;
    job.n = (gsize) rows * job.pw;
    pad_rows (scratch, in, s, job.h, job.w, y0, y0 + rows);
    cg_parallel_for (jobs ? jobs : y1 - y0, kernel, &job);
  }
}

void
cg_conv2d_thin_forward (float *out, const float *in, const float *weight,
    const float *bias, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget)
{
  int pw = w + 2 * s->pad;
  int oh = h + 2 * s->pad - s->k + 1, ow = pw - s->k + 1;
  int band = thin_band (s, oh, pw, budget);
  CgParallelFunc kernel = CG_CPU_KERNEL (thin_rows_v8, thin_rows_v16);

  g_return_if_fail (s->stride == 1 && 2 * s->pad >= s->k - 1);
  g_return_if_fail (s->pad_mode == CG_PAD_ZERO || 2 * s->pad == s->k - 1);

  over_bands ((ThinJob) {
      out, scratch, weight, bias, s, h, w, pw, 0, 0, oh, ow, NULL, NULL, 0},
      in, scratch, oh, band, kernel, 0);
}

/* dweight [cout, cin, k, k] += the correlation of dout with the padded
 * input, directly: the GEMM form reads cin*k*k column values per pixel
 * for only cout (3) products each, and ran at a tenth of this. Jobs are
 * (ci, ky) pairs, so threads write disjoint parts of dweight. */
void
cg_conv2d_thin_wgrad (float *dweight, const float *doutput, const float *in,
    const CgConvShape * s, int h, int w, float *scratch, gsize budget)
{
  int pw = w + 2 * s->pad;
  int band = thin_band (s, h, pw, budget);
  CgParallelFunc kernel = CG_CPU_KERNEL (thin_wgrad_v8, thin_wgrad_v16);

  g_return_if_fail (s->stride == 1 && 2 * s->pad == s->k - 1);

  over_bands ((ThinJob) {
      NULL, scratch, NULL, NULL, s, h, w, pw, 0, 0, h, w, dweight, doutput,
      0}, in, scratch, h, band, kernel, s->cin * s->k);
}
