/* The generator's 3x3 stride-2 layers computed directly on AVX-512 CPUs:
 * the upsampling (transposed, pad 1, output padding 1) and, further down,
 * the downsampling.
 *
 * Phase by phase (conv_panels.c) each output phase is a GEMM over
 * gathered columns; with 16 or 32 output channels every gathered value
 * feeds only that many multiply-adds, and the gather and the interleave
 * of the column phases cost as much as the products (ngf 16 at 640x480:
 * the last upsampling ran at 48 GMAC/s). Here the input rows are read in
 * place: for input row y, output rows 2y (tap ky 1) and 2y + 1 (taps 0
 * and 2, rows y + 1 and y), and along x both column phases at once,
 *   out[2x]     = w[.][1] in[x]
 *   out[2x + 1] = w[.][0] in[x + 1] + w[.][2] in[x],
 * NCO output channels by NV vectors of 16 input columns in registers,
 * each input vector feeding NCO channels' multiply-adds; the two column
 * phases are interleaved as they are stored. In training the same kernel,
 * adding into its output, gives a stride-2 layer's input gradient
 * (conv.c), and both kernels run the generator's forward (train_nets.c).
 */
#include "cpu.h"
#include "layers.h"
#include "parallel.h"

#include <string.h>

#define NCO 4                   /* output channels per register block */
#define NV 2                    /* vectors of 16 input columns */
/* Both kernels gather the norm's moments of their output row by row, the
 * row's sums on the stack (32 KiB at most), into one part per task of
 * rows the threads take. */
#define MOMENTS_MAX_COUT 256
#define ROW_TASKS 16
#define TAPS 9

gboolean
cg_conv_transpose2d_direct_supported (const CgConvShape * s)
{
#ifdef CG_HAVE_AVX512_KERNELS
  return cg_cpu_use_avx512 () && s->k == 3 && s->stride == 2 && s->pad == 1
      && s->output_padding == 1;
#else
  return FALSE;
#endif
}

/* Both kernels' weights, [co / nco][ci][tap][co % nco]: the nco weights
 * of one tap side by side, channels past cout zero. PyTorch stores a
 * transposed convolution's as [cin][cout][tap], a convolution's as
 * [cout][cin][tap]. */
static gsize
groups_floats (const CgConvShape * s, int nco)
{
  return (gsize) (s->cout + nco - 1) / nco * nco * s->cin * TAPS;
}

static void
prepare_groups (float *prepared, const float *weight, const CgConvShape * s,
    int nco, gboolean transposed)
{
  memset (prepared, 0, sizeof (float) * groups_floats (s, nco));
  for (int co = 0; co < s->cout; co++)
    for (int ci = 0; ci < s->cin; ci++)
      for (int t = 0; t < TAPS; t++)
        prepared[(((gsize) (co / nco) * s->cin + ci) * TAPS + t) * nco +
            co % nco] = weight[(transposed ? (gsize) ci * s->cout + co :
                (gsize) co * s->cin + ci) * TAPS + t];
}

gsize
cg_conv_transpose2d_direct_prepared_floats (const CgConvShape * s)
{
  return groups_floats (s, NCO);
}

void
cg_conv_transpose2d_direct_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  prepare_groups (prepared, weight, s, NCO, TRUE);
}

#ifdef CG_HAVE_AVX512_KERNELS
#include <immintrin.h>

typedef struct
{
  float *out;
  const float *in, *prepared, *bias;
  const CgConvShape *s;
  int h, w, task_rows;
  gboolean accumulate;          /* out += rather than = */
  CgMoments *moments;           /* [task][cout], or NULL */
} DirectJob;

#define AVX512 __attribute__ ((target ("avx512f")))
#define AVX512_INLINE static inline \
  __attribute__ ((always_inline, target ("avx512f")))

static inline __mmask16
first_lanes (int n)
{
  return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16) ((1u << n) - 1);
}

/* Output channel co's bias in every lane: 0 without a bias, and for the
 * channels past cout that fill a kernel's last group. */
AVX512_INLINE __m512
bias_lanes (const float *bias, int co, int cout)
{
  return _mm512_set1_ps (bias && co < cout ? bias[co] : 0.0f);
}

/* A row's sums for the norm's moments: d = output - bias into channel
 * co's sum and sum of squares (the pair sums[2 co], sums[2 co + 1]). */
AVX512_INLINE void
add_to_sums (__m512 * sums, int co, __m512 d)
{
  sums[2 * co] = _mm512_add_ps (sums[2 * co], d);
  sums[2 * co + 1] = _mm512_fmadd_ps (d, d, sums[2 * co + 1]);
}

/* Output row 2y + a of channels [g NCO, g NCO + NCO), input columns
 * [x0, x0 + 16 nv), from NT taps (input row iy[t], kernel row ky[t]):
 * the accumulators of both column phases stay in registers through
 * every input channel. NT and nv are constants at each call, so that
 * the loops unroll and nothing indexes the accumulators at run time (GCC
 * then keeps them in memory: half the speed). */
AVX512_INLINE void
row_block (const DirectJob * j, int y, int a, int g, int x0, __m512 * sums,
    const int nv, const int NT, const int iy[2], const int ky[2])
{
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, ow = 2 * w, oh = 2 * h;
  __m512 acc[2][NCO][NV];
  __mmask16 m0[NV], m1[NV];

#pragma GCC unroll 8
  for (int v = 0; v < nv; v++) {
    /* in[x] and in[x + 1], zero past the row's end */
    m0[v] = first_lanes (w - (x0 + 16 * v));
    m1[v] = first_lanes (w - (x0 + 16 * v + 1));
  }
#pragma GCC unroll 8
  for (int c = 0; c < NCO; c++) {
    int co = g * NCO + c;
    __m512 b = bias_lanes (j->bias, co, s->cout);
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
      acc[0][c][v] = acc[1][c][v] = b;
  }

  for (int ci = 0; ci < s->cin; ci++) {
    const float *wg = j->prepared + ((gsize) g * s->cin + ci) * TAPS * NCO;
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) {
      const float *row = j->in + ((gsize) ci * h + iy[t]) * w + x0;
      const float *wk = wg + ky[t] * 3 * NCO;
      __m512 i0[NV], i1[NV];
#pragma GCC unroll 8
      for (int v = 0; v < nv; v++) {
        i0[v] = _mm512_maskz_loadu_ps (m0[v], row + 16 * v);
        i1[v] = _mm512_maskz_loadu_ps (m1[v], row + 16 * v + 1);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NCO; c++) {
        __m512 w0 = _mm512_set1_ps (wk[0 * NCO + c]);
        __m512 w1 = _mm512_set1_ps (wk[1 * NCO + c]);
        __m512 w2 = _mm512_set1_ps (wk[2 * NCO + c]);
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
          acc[0][c][v] = _mm512_fmadd_ps (w1, i0[v], acc[0][c][v]);
          acc[1][c][v] = _mm512_fmadd_ps (w0, i1[v], acc[1][c][v]);
          acc[1][c][v] = _mm512_fmadd_ps (w2, i0[v], acc[1][c][v]);
        }
      }
    }
  }

  /* the row's sums about the bias for the norm's moments: input columns
   * past the row's end read zeros, and both their outputs hold the bias */
  if (sums)
#pragma GCC unroll 8
    for (int c = 0; c < NCO; c++) {
      int co = g * NCO + c;
      __m512 b = bias_lanes (j->bias, co, s->cout);
#pragma GCC unroll 8
      for (int v = 0; v < nv; v++) {
        add_to_sums (sums, co, _mm512_sub_ps (acc[0][c][v], b));
        add_to_sums (sums, co, _mm512_sub_ps (acc[1][c][v], b));
      }
    }

  {
    const __m512i lo = _mm512_setr_epi32 (0, 16, 1, 17, 2, 18, 3, 19, 4,
        20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32 (8, 24, 9, 25, 10, 26, 11, 27, 12,
        28, 13, 29, 14, 30, 15, 31);
#pragma GCC unroll 8
    for (int c = 0; c < NCO; c++) {
      float *o = j->out + ((gsize) (g * NCO + c) * oh + 2 * y + a) * ow +
          2 * x0;
      /* channels past cout: nothing to store */
      int left = g * NCO + c < s->cout ? 2 * (w - x0) : 0;
#pragma GCC unroll 8
      for (int v = 0; v < nv; v++) {
        int n = left - 32 * v;  /* outputs left in the row */
        __mmask16 me = first_lanes (n), mf = first_lanes (n - 16);
        __m512 e = _mm512_permutex2var_ps (acc[0][c][v], lo, acc[1][c][v]);
        __m512 f = _mm512_permutex2var_ps (acc[0][c][v], hi, acc[1][c][v]);
        if (j->accumulate) {
          e = _mm512_add_ps (e, _mm512_maskz_loadu_ps (me, o + 32 * v));
          f = _mm512_add_ps (f, _mm512_maskz_loadu_ps (mf, o + 32 * v + 16));
        }
        _mm512_mask_storeu_ps (o + 32 * v, me, e);
        _mm512_mask_storeu_ps (o + 32 * v + 16, mf, f);
      }
    }
  }
}

/* Output row 2y + a, every block of columns and channel group (groups
 * innermost: a block's input columns of every channel, cin x 2 rows x 33
 * floats, stay in L1 across them). */
AVX512_INLINE void
output_row (const DirectJob * j, int y, int a, __m512 * sums, const int NT,
    const int iy[2], const int ky[2])
{
  int groups = (j->s->cout + NCO - 1) / NCO, x0 = 0;

  for (; x0 + 16 * NV <= j->w; x0 += 16 * NV)
    for (int g = 0; g < groups; g++)
      row_block (j, y, a, g, x0, sums, NV, NT, iy, ky);
  for (; x0 < j->w; x0 += 16)
    for (int g = 0; g < groups; g++)
      row_block (j, y, a, g, x0, sums, 1, NT, iy, ky);
}

/* A task of rows [t0, t1) folds its row sums into its moments every
 * FLUSH_ROWS rows and at its last row: flush_starts says that row r
 * begins such a run (the sums start from zero), flush_rows how many rows
 * the run holds when r ends one (0 otherwise). A fold per row cost more
 * than the norm's statistics pass it replaces with 128 channels (ngf 64
 * at 256x256). */
#define FLUSH_ROWS 8

static inline gboolean
flush_starts (int r, int t0)
{
  return (r - t0) % FLUSH_ROWS == 0;
}

static inline int
flush_rows (int r, int t0, int t1)
{
  return (r - t0) % FLUSH_ROWS == FLUSH_ROWS - 1 || r == t1 - 1 ?
      (r - t0) % FLUSH_ROWS + 1 : 0;
}

/* The moments of n values from their sums, merged into the task's part. */
AVX512 static void
merge_row_moments (CgMoments * part, const __m512 * sums, int cout,
    const float *bias, double n, gboolean first)
{
  for (int co = 0; co < cout; co++) {
    CgMoments m;
    cg_moments_from_sums (&m, n, bias ? bias[co] : 0.0f,
        _mm512_reduce_add_ps (sums[2 * co]),
        _mm512_reduce_add_ps (sums[2 * co + 1]));
    if (first)
      part[co] = m;
    else
      cg_moments_merge (&part[co], &m);
  }
}

/* Tasks of task_rows output rows; output row r = 2y + a is (input row y,
 * output row phase a). */
AVX512 static void
direct_rows (gpointer data, int begin, int end)
{
  const DirectJob *j = data;
  int cout = j->s->cout, groups = (cout + NCO - 1) / NCO;
  __m512 row_sums[2 * MOMENTS_MAX_COUT];
  __m512 *sums = j->moments ? row_sums : NULL;

  for (int r = begin * j->task_rows; r < MIN (end * j->task_rows,
          2 * j->h); r++) {
    int y = r / 2, t0 = r / j->task_rows * j->task_rows;
    int t1 = MIN (t0 + j->task_rows, 2 * j->h), n;
    if (sums && flush_starts (r, t0))
      for (int i = 0; i < 2 * groups * NCO; i++)
        sums[i] = _mm512_setzero_ps ();
    /* a = 0 takes ky 1 from row y; a = 1 ky 2 from row y and ky 0 from
     * row y + 1 (none past the last row) */
    if (r % 2 == 0) {
      const int iy[2] = { y, 0 }, ky[2] = { 1, 0 };
      output_row (j, y, 0, sums, 1, iy, ky);
    } else if (y + 1 < j->h) {
      const int iy[2] = { y, y + 1 }, ky[2] = { 2, 0 };
      output_row (j, y, 1, sums, 2, iy, ky);
    } else {
      const int iy[2] = { y, 0 }, ky[2] = { 2, 0 };
      output_row (j, y, 1, sums, 1, iy, ky);
    }
    if (sums && (n = flush_rows (r, t0, t1)))
      merge_row_moments (j->moments + (gsize) (r / j->task_rows) * cout,
          sums, cout, j->bias, 2.0 * j->w * n, r - t0 < FLUSH_ROWS);
  }
}
#endif

/* ---- The 3x3 stride-2 convolution (the generator's downsampling), over
 * the input split by column phase (conv_panels.c's split): output column
 * x takes padded columns 2x, 2x + 1, 2x + 2, that is phase 0 at x, phase
 * 1 at x and phase 0 at x + 1, three contiguous vectors per input row.
 * CNCO channels by DNV vectors of 16 outputs in registers, one tap at a
 * time. Measured alone at one thread (16 -> 32 at 640x480 and 32 -> 64 at
 * 320x240, GMAC/s): 8 x 2 with the three taps of a row loaded together
 * 55 and 61; one tap at a time 8 x 3 58-61 and 68-71, 8 x 2 56 and 62,
 * 4 x 4 48 and 52, 4 x 6 50 and 55, 12 x 2 54 and 63, 16 x 1 51 and 59.
 * In the frame, 32 -> 64 went 3.36 -> 2.99 ms. ---- */
#define CNCO 8
#define DNV 3
/* A task's ring holds the three split input rows of its current output
 * row per channel (padded row py in slot py % RING), two rows split in
 * per output row: the split stays in the cache the kernel reads it from,
 * where a split of the whole input went to memory and back (ngf 16 at
 * 640x480: 19.7 MB written and read for 16 -> 32). */
#define RING 3

gboolean
cg_conv2d_direct_supported (const CgConvShape * s)
{
#ifdef CG_HAVE_AVX512_KERNELS
  return cg_cpu_use_avx512 () && s->k == 3 && s->stride == 2;
#else
  return FALSE;
#endif
}

/* Where the strided kernel beats the panels (both choosers, generator.c
 * and train_nets.c): up to 32 input channels. ngf 16 at 640x480, per
 * layer with its norm, 16->32 5.5 -> 4.8 ms, 32->64 3.9 -> 3.6 ms; ngf
 * 64 at 256x256 the panels won, 64->128 10.1 against 10.9 ms and
 * 128->256 8.7 against 9.6. */
gboolean
cg_conv2d_direct_preferred (const CgConvShape * s)
{
  return cg_conv2d_direct_supported (s) && s->cin <= 32;
}

gsize
cg_conv2d_direct_prepared_floats (const CgConvShape * s)
{
  return groups_floats (s, CNCO);
}

void
cg_conv2d_direct_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  prepare_groups (prepared, weight, s, CNCO, FALSE);
}

#ifdef CG_HAVE_AVX512_KERNELS
typedef struct
{
  float *out;
  const float *in, *prepared, *bias;
  const CgMoments *in_norm;
  const CgConvShape *s;
  int h, w, pws, oh, ow, task_rows;
  CgMoments *moments;           /* [task][cout], or NULL */
  float *rings;                 /* [task][ci][RING][2 phases][pws] */
} DownJob;

static inline gsize
ring_floats (const CgConvShape * s, int w)
{
  return (gsize) s->cin * RING * 2 * cg_conv2d_split_width (s, w);
}

/* Split padded row py of every channel into its slot of `ring`. */
static void
ring_load (const DownJob * j, float *ring, int py)
{
  for (int ci = 0; ci < j->s->cin; ci++)
    cg_conv2d_split_row (ring + ((gsize) ci * RING + py % RING) * 2 * j->pws,
        j->in, j->in_norm, j->s, j->h, j->w, ci, py);
}

/* Output row oy of channels [g CNCO, g CNCO + CNCO), columns [x0, x0 +
 * 16 nv) (the same care for constant trip counts as row_block). */
AVX512_INLINE void
down_block (const DownJob * j, const float *ring, const int slot[3], int oy,
    int g, int x0, __m512 * sums, const int nv)
{
  const CgConvShape *s = j->s;
  __m512 acc[CNCO][DNV];
  __mmask16 m[DNV];

#pragma GCC unroll 16
  for (int v = 0; v < nv; v++)
    m[v] = first_lanes (j->ow - (x0 + 16 * v));
#pragma GCC unroll 16
  for (int c = 0; c < CNCO; c++) {
    int co = g * CNCO + c;
    __m512 b = bias_lanes (j->bias, co, s->cout);
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++)
      acc[c][v] = b;
  }

  for (int ci = 0; ci < s->cin; ci++) {
    const float *wg = j->prepared + ((gsize) g * s->cin + ci) * TAPS * CNCO;
#pragma GCC unroll 16
    for (int ky = 0; ky < 3; ky++) {
      const float *r = ring + ((gsize) ci * RING + slot[ky]) * 2 * j->pws +
          x0;
#pragma GCC unroll 16
      for (int kx = 0; kx < 3; kx++) {
        /* taps: phase 0 at x, phase 1 at x, phase 0 at x + 1 */
        const float *src = kx == 0 ? r : kx == 1 ? r + j->pws : r + 1;
        const float *wk = wg + (ky * 3 + kx) * CNCO;
        __m512 in[DNV];
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) {
          in[v] = _mm512_maskz_loadu_ps (m[v], src + 16 * v);
          /* in a register, not folded into each channel's FMA */
          __asm__ ("":"+v" (in[v]));
        }
#pragma GCC unroll 16
        for (int c = 0; c < CNCO; c++) {
          __m512 wt = _mm512_set1_ps (wk[c]);
#pragma GCC unroll 16
          for (int v = 0; v < nv; v++)
            acc[c][v] = _mm512_fmadd_ps (wt, in[v], acc[c][v]);
        }
      }
    }
  }

  /* the row's sums about the bias for the norm's moments: lanes past
   * the row's end read zeros and hold the bias, adding nothing */
  if (sums)
#pragma GCC unroll 16
    for (int c = 0; c < CNCO; c++) {
      int co = g * CNCO + c;
      __m512 b = bias_lanes (j->bias, co, s->cout);
#pragma GCC unroll 16
      for (int v = 0; v < nv; v++)
        add_to_sums (sums, co, _mm512_sub_ps (acc[c][v], b));
    }
#pragma GCC unroll 16
  for (int c = 0; c < CNCO; c++) {
    float *o = j->out + ((gsize) (g * CNCO + c) * j->oh + oy) * j->ow + x0;
    /* channels past cout: nothing to store */
    int left = g * CNCO + c < s->cout ? j->ow - x0 : 0;
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++)
      _mm512_mask_storeu_ps (o + 16 * v, first_lanes (left - 16 * v),
          acc[c][v]);
  }
}

/* Output rows in tasks of task_rows, each task's moments merged row by
 * row into its part. */
AVX512 static void
down_rows (gpointer data, int begin, int end)
{
  const DownJob *j = data;
  int groups = (j->s->cout + CNCO - 1) / CNCO, cout = j->s->cout;
  __m512 row_sums[2 * MOMENTS_MAX_COUT];
  __m512 *sums = j->moments ? row_sums : NULL;

  for (int oy = begin * j->task_rows; oy < MIN (end * j->task_rows, j->oh);
      oy++) {
    int x0 = 0, t0 = oy / j->task_rows * j->task_rows;
    int t1 = MIN (t0 + j->task_rows, j->oh), n;
    float *ring = j->rings + (gsize) (oy / j->task_rows) * ring_floats (j->s,
        j->w);
    const int slot[3] = { 2 * oy % RING, (2 * oy + 1) % RING,
      (2 * oy + 2) % RING
    };
    /* padded rows 2 oy .. 2 oy + 2: all three at the task's first row,
     * then the two the last row did not read */
    for (int py = oy == t0 ? 2 * oy : 2 * oy + 1; py <= 2 * oy + 2; py++)
      ring_load (j, ring, py);
    if (sums && flush_starts (oy, t0))
      for (int i = 0; i < 2 * groups * CNCO; i++)
        sums[i] = _mm512_setzero_ps ();
    for (; x0 + 16 * DNV <= j->ow; x0 += 16 * DNV) {
      /* the next block's input lines: 6 cin streams, too many for the
       * hardware prefetchers (the layer took 8.0 ms without, 4.8 with:
       * ngf 16 at 640x480, 16 -> 32) */
      for (int ci = 0; ci < j->s->cin; ci++)
        for (int ky = 0; ky < 3; ky++) {
          const char *r = (const char *) (ring + ((gsize) ci * RING +
                  slot[ky]) * 2 * j->pws + x0 + 16 * DNV);
          for (int l = 0; l < DNV * 64 && x0 + 16 * DNV + l / 4 < j->ow;
              l += 64) {
            _mm_prefetch (r + l, _MM_HINT_T0);
            _mm_prefetch (r + 4 * j->pws + l, _MM_HINT_T0);
          }
        }
      for (int g = 0; g < groups; g++)
        down_block (j, ring, slot, oy, g, x0, sums, DNV);
    }
    /* the columns left, fewer than 16 DNV: 1 to DNV masked vectors */
    G_STATIC_ASSERT (DNV == 3);
    switch ((j->ow - x0 + 15) / 16) {
#define REST(n) case n: \
      for (int g = 0; g < groups; g++) \
        down_block (j, ring, slot, oy, g, x0, sums, n); \
      break
        REST (1);
        REST (2);
        REST (3);
#undef REST
      default:
        break;
    }
    if (sums && (n = flush_rows (oy, t0, t1)))
      merge_row_moments (j->moments + (gsize) (oy / j->task_rows) * cout,
          sums, cout, j->bias, (double) j->ow * n, oy - t0 < FLUSH_ROWS);
  }
}
#endif

gsize
cg_conv2d_direct_scratch_floats (const CgConvShape * s, int h, int w)
{
  int oh, ow;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  return (gsize) MIN (MAX (oh, 1), ROW_TASKS) * RING * 2 * s->cin *
      cg_conv2d_split_width (s, w);
}

gsize
cg_conv2d_direct_moments_len (const CgConvShape * s, int h)
{
  int oh, ow;

  cg_conv2d_out_size (s, h, 1, &oh, &ow);
  return s->cout <= MOMENTS_MAX_COUT ?
      (gsize) s->cout * MIN (oh, ROW_TASKS) : 0;
}

void
cg_conv2d_direct_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, CgMoments * moments, float *scratch)
{
  g_return_if_fail (cg_conv2d_direct_supported (s));
#ifdef CG_HAVE_AVX512_KERNELS
  {
    int oh, ow, tasks, task_rows;
    DownJob job;

    cg_conv2d_out_size (s, h, w, &oh, &ow);
    tasks = MIN (oh, ROW_TASKS);
    task_rows = (oh + tasks - 1) / tasks;
    job = (DownJob) {
    out, in, prepared, bias, in_norm, s, h, w, cg_conv2d_split_width (s, w),
          oh, ow, task_rows,
          cg_conv2d_direct_moments_len (s, h) ? moments : NULL, scratch};
    tasks = (oh + task_rows - 1) / task_rows;
    cg_parallel_for (tasks, down_rows, &job);
    if (job.moments)
      cg_moments_reduce (moments, moments, tasks, s->cout);
  }
#endif
}

gsize
cg_conv_transpose2d_direct_moments_len (const CgConvShape * s, int h)
{
  return s->cout <= MOMENTS_MAX_COUT ?
      (gsize) s->cout * MIN (2 * h, ROW_TASKS) : 0;
}

void
cg_conv_transpose2d_direct_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w, gboolean accumulate, CgMoments * moments)
{
  g_return_if_fail (cg_conv_transpose2d_direct_supported (s));
#ifdef CG_HAVE_AVX512_KERNELS
  {
    int tasks = MIN (2 * h, ROW_TASKS), task_rows = (2 * h + tasks - 1) /
        tasks;
    DirectJob job = { out, in, prepared, bias, s, h, w, task_rows,
      accumulate, cg_conv_transpose2d_direct_moments_len (s, h) ? moments :
          NULL
    };

    tasks = (2 * h + task_rows - 1) / task_rows;
    cg_parallel_for (tasks, direct_rows, &job);
    if (job.moments)
      cg_moments_reduce (moments, moments, tasks, s->cout);
  }
#endif
}
