/* Convolution to or from few channels (the generator's 7x7 layers to and
 * from RGB), stride 1, "same" padding (or wider zero padding: the input
 * gradient of such a layer), computed directly; and its weight gradient.
 *
 * im2col + sgemm reads each column value for only cout (3) products: the
 * GEMM is bound by memory (4 GMAC/s measured for 64->3 at 256x256), as is
 * any GEMM formulation that writes cout*k*k partial planes. Directly, each
 * input row is read from cache once per (output row, ky) and feeds k
 * multiply-adds per output value, vectorized along x (8 floats, or 16 on
 * AVX-512 CPUs: conv_thin_kernel.h). Runs of output rows are split over
 * the generator's threads, each keeping the padded input rows it reads
 * in a ring in its cache.
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
  return s->stride == 1 && (2 * s->pad == s->k - 1
      || (s->pad_mode == CG_PAD_ZERO && s->pad < s->k))
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

/* Output rows on h input rows. */
static int
out_rows (const CgConvShape * s, int h)
{
  int oh, ow;

  cg_conv2d_out_size (s, h, 1, &oh, &ow);
  return oh;
}

gsize
cg_conv2d_thin_wgrad_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int pw = w + 2 * s->pad;
  int r = thin_band (s, out_rows (s, h), pw, budget);
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

/* The weight gradient's job: output rows [y0, y1) of oh x ow over padded
 * input rows copied into xp (n floats per channel, pw per row). */
typedef struct
{
  const float *xp;
  const CgConvShape *s;
  int oh, ow, pw, y0, y1;
  gsize n;
  float *dweight;
  const float *dout;
} ThinJob;

/* ---- The forward. Tasks are runs of task_rows output rows, at most
 * THIN_TASKS, each with its part of the scratch (after the repacked
 * weights): a ring of the k + 1 padded input rows of each input channel
 * that the current one or two output rows read, one row copied in per
 * output row and channel (the cache holds the ring), and pointers to
 * them. Reading the input in place instead left
 * the blocks at the edges to copy their padded spans, per row and block:
 * twice the copying and 224 calls per output row (ngf 16 at 320x240:
 * 1.67 -> 1.9 ms). ---- */
#define THIN_TASKS 16

typedef struct
{
  float *out;
  const float *in, *bias;
  const float *packed;          /* the weights, pack_weights */
  const CgMoments *in_norm;
  const CgConvShape *s;
  int h, w, oh, ow, task_rows;
  gboolean tanh;
  CgMoments *moments;           /* [task][cout], or NULL */
  float *scratch;
} ThinForward;

typedef struct
{
  int y0;                       /* the output row `rows` are for */
  const float **rows;           /* [cin * (k + 1)]: input rows y0, ... */
  float *ring;                  /* [cin][k + 1][ring_row_floats] */
  float *sums;                  /* [2][cout][VW]: a row's lane sums */
} ThinRows;

/* A padded row, zero past its end: the last block of a row narrower
 * than a vector reads a whole one. */
static gsize
ring_row_floats (const CgConvShape * s, int w)
{
  return ((gsize) MAX (w + 2 * s->pad, 16 + s->k - 1) + 15) & ~(gsize) 15;
}

/* Rows a ring holds per input channel: those of two output rows, which
 * the AVX-512 kernel computes together where it can. */
static int
ring_rows (const CgConvShape * s)
{
  return s->k + 1;
}

/* A task's pointer array of cin * ring_rows, counted as floats (a
 * pointer takes at most 2), rounded to whole vectors. */
static gsize
pointer_floats (const CgConvShape * s)
{
  return ((gsize) 2 * s->cin * ring_rows (s) + 15) & ~(gsize) 15;
}

static gsize
task_floats (const CgConvShape * s, int w)
{
  return pointer_floats (s) + (gsize) s->cin * ring_rows (s) *
      ring_row_floats (s, w) + (gsize) 2 *s->cout * 16;
}

/* The weights repacked [co / 8][ci][ky][kx][co % 8], channels past cout
 * zero: a tap's channels of a kernel group side by side (every group
 * lies inside one block of 8), so that the kernel's broadcasts take one
 * pointer and constant offsets (with PyTorch's [co][ci][ky][kx] each
 * channel took a register of its own, and the inner loop spilled) and a
 * group's weights stay together (all output channels of a tap side by
 * side spread 3 -> 64's over 147 lines a group, 7% slower). */
#define PACK 8

static gsize
packed_floats (const CgConvShape * s)
{
  return (gsize) (s->cout + PACK - 1) / PACK * PACK * s->cin * s->k * s->k;
}

static void
pack_weights (float *packed, const float *weight, const CgConvShape * s)
{
  gsize taps = (gsize) s->cin * s->k * s->k;

  memset (packed, 0, sizeof (float) * packed_floats (s));
  for (int co = 0; co < s->cout; co++)
    for (gsize i = 0; i < taps; i++)
      packed[((gsize) co / PACK * taps + i) * PACK + co % PACK] =
          weight[co * taps + i];
}

gsize
cg_conv2d_thin_scratch_floats (const CgConvShape * s, int h, int w)
{
  return packed_floats (s) + (gsize) MIN (out_rows (s, h), THIN_TASKS) *
      task_floats (s, w);
}

static ThinRows
thin_task_rows (const ThinForward * j, int task)
{
  float *base = j->scratch + packed_floats (j->s) + (gsize) task *
      task_floats (j->s, j->w);
  ThinRows t = { 0, (const float **) base, base + pointer_floats (j->s),
    NULL
  };

  t.sums = t.ring + (gsize) j->s->cin * ring_rows (j->s) *
      ring_row_floats (j->s, j->w);
  return t;
}

/* Padded input row py of every channel into its ring slot, the input
 * norm applied as it is copied (a zero padding left zero). */
static void
thin_ring_load (const ThinForward * j, ThinRows * t, int py)
{
  const CgConvShape *s = j->s;
  gsize rl = ring_row_floats (s, j->w);
  int iy = py - s->pad, pw = j->w + 2 * s->pad;
  gboolean zero_pad = s->pad_mode == CG_PAD_ZERO;

  for (int ci = 0; ci < s->cin; ci++) {
    float *row = t->ring + ((gsize) ci * ring_rows (s) + py % ring_rows (s))
        * rl;
    const float *src;
    float scale, offset;
    if ((iy < 0 || iy >= j->h) && zero_pad) {
      memset (row, 0, sizeof (float) * pw);
      continue;
    }
    src = j->in + ((gsize) ci * j->h + cg_reflect_index (iy, j->h)) * j->w;
    if (!j->in_norm) {
      cg_gather_span (row, src, j->w, 0, pw, 1, -s->pad, s->pad_mode);
      continue;
    }
    /* normalized as it is copied, the borders then reflected from the
     * normalized row or left zero (cg_gather_span_norm_relu, which
     * normalizes the reflected values itself, measured 0.2 ms slower on
     * ngf 16's last layer at 640x480, for no reason I found) */
    cg_moments_coeffs (&j->in_norm[ci], &scale, &offset);
    cg_norm_relu_copy (row + s->pad, src, j->w, scale, offset);
    for (int px = 0; px < s->pad; px++)
      row[px] = zero_pad ? 0.0f :
          row[s->pad + cg_reflect_index (px - s->pad, j->w)];
    for (int px = s->pad + j->w; px < pw; px++)
      row[px] = zero_pad ? 0.0f :
          row[s->pad + cg_reflect_index (px - s->pad, j->w)];
  }
}

/* Output rows [y, y + n) of the task (n 1 or 2): the ring takes the
 * input rows the last call did not (all at the task's first), and
 * rows[ci * ring_rows + i] points to input row y + i of channel ci. */
static void
thin_row_pointers (const ThinForward * j, ThinRows * t, int y, int n,
    gboolean first)
{
  const CgConvShape *s = j->s;
  gsize rl = ring_row_floats (s, j->w);
  int rr = ring_rows (s), last = y + s->k + n - 2;

  if (first) {
    memset (t->ring, 0, sizeof (float) * s->cin * rr * rl);
    for (int py = y; py < last; py++)
      thin_ring_load (j, t, py);
  }
  for (int py = MAX (y + s->k - 1, first ? last : 0); py <= last; py++)
    thin_ring_load (j, t, py);
  for (int ci = 0; ci < s->cin; ci++)
    for (int i = 0; i <= last - y; i++)
      t->rows[ci * rr + i] = t->ring + ((gsize) ci * rr + (y + i) % rr) * rl;
}

/* Output rows [y, y + n)'s moments per channel, from their lanes' sums
 * about the bias (a convolution's outputs lie about it), merged into
 * their task's. */
static void
thin_row_moments (const ThinForward * j, ThinRows * t, int y, int n, int vw)
{
  int cout = j->s->cout;
  CgMoments *part = j->moments + (gsize) (y / j->task_rows) * cout;

  for (int co = 0; co < cout; co++) {
    double s1 = 0.0, s2 = 0.0;
    CgMoments m;
    for (int l = 0; l < vw; l++) {
      s1 += t->sums[co * vw + l];
      s2 += t->sums[(cout + co) * vw + l];
    }
    cg_moments_from_sums (&m, (double) j->ow * n, j->bias ? j->bias[co] :
        0.0f, s1, s2);
    if (y % j->task_rows == 0)
      part[co] = m;
    else
      cg_moments_merge (&part[co], &m);
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
        const float *d = j->dout + ((gsize) co * j->oh + y) * j->ow;
        for (int x = 0; x < j->ow; x++)
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

gsize
cg_conv2d_thin_moments_len (const CgConvShape * s, int h)
{
  return (gsize) s->cout * MIN (out_rows (s, h), THIN_TASKS);
}

void
cg_conv2d_thin_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *weight, const float *bias,
    const CgConvShape * s, int h, int w, gboolean tanh, CgMoments * moments,
    float *scratch)
{
  int oh, ow, tasks, task_rows;
  ThinForward job;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  g_return_if_fail (s->stride == 1 && s->pad < s->k && oh > 0 && ow > 0);
  g_return_if_fail (s->pad_mode == CG_PAD_ZERO || 2 * s->pad == s->k - 1);

  tasks = MIN (oh, THIN_TASKS);
  task_rows = (oh + tasks - 1) / tasks;
  tasks = (oh + task_rows - 1) / task_rows;
  pack_weights (scratch, weight, s);
  job = (ThinForward) {
  out, in, bias, scratch, in_norm, s, h, w, oh, ow, task_rows, tanh,
        moments, scratch};
  cg_parallel_for (tasks, CG_CPU_KERNEL (thin_rows_v8, thin_rows_v16), &job);
  if (moments)
    cg_moments_reduce (moments, moments, tasks, s->cout);
}

/* dweight [cout, cin, k, k] += the correlation of dout with the padded
 * input, directly: the GEMM form reads cin*k*k column values per pixel
 * for only cout (3) products each, and ran at a tenth of this. Jobs are
 * (ci, ky) pairs, so threads write disjoint parts of dweight. */
void
cg_conv2d_thin_wgrad (float *dweight, const float *doutput, const float *in,
    const CgConvShape * s, int h, int w, float *scratch, gsize budget)
{
  int pw = w + 2 * s->pad, oh, ow, band;
  CgParallelFunc kernel = CG_CPU_KERNEL (thin_wgrad_v8, thin_wgrad_v16);
  ThinJob job;

  g_return_if_fail (cg_conv2d_thin_preferred (s));

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  band = thin_band (s, oh, pw, budget);
  job = (ThinJob) {
  scratch, s, oh, ow, pw, 0, 0, 0, dweight, doutput};

  /* band by band: output rows [y0, y1) read padded rows [y0, y1 + k - 1) */
  for (int y0 = 0; y0 < oh; y0 += band) {
    int y1 = MIN (y0 + band, oh);
    int rows = y1 - y0 + s->k - 1;
    job.y0 = y0;
    job.y1 = y1;
    job.n = (gsize) rows * pw;
    pad_rows (scratch, in, s, h, w, y0, y0 + rows);
    cg_parallel_for (s->cin * s->k, kernel, &job);
  }
}
