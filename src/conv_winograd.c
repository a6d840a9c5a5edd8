/* Winograd F(4x4, 3x3) (Lavin & Gray 2015) for the 3x3 stride-1
 * convolutions that are ~88% of the generator's multiply-adds.
 *
 * Each 4x4 output tile comes from a 6x6 input tile: V = B^T d B, then per
 * element e of the 6x6 domain one GEMM M[e] = U[e] . V[e] over channels,
 * then Y = A^T M A. 36 products per tile instead of 144: a quarter of the
 * multiply-adds. The weights' transform U = G g G^T is made once, when a
 * generator is created, and packed for cg_gemm_packed, whose B panels the
 * input transform writes directly. Padding (reflect or zero) is read while gathering
 * tiles; tiles hanging over the bottom/right edge are zero there and their
 * extra outputs are dropped. Bands of tile rows bound the scratch space.
 *
 * Accuracy: the transforms use 4, 5, 8 and 1/24: against the float64
 * PyTorch goldens the error stays ~1e-6 per layer (tests/core/test-layers).
 */
#include "cpu.h"
#include "gemm.h"
#include "layers.h"
#include "parallel.h"
#include "simd.h"

#include <string.h>

#define T 6                     /* input tile */
#define OT 4                    /* output tile */
#define E (T * T)

/* U = G g G^T for each (co, ci); per element e the cout x cin matrix
 * U[e] packed for cg_gemm_packed. The trainer makes it anew after every
 * step, so both halves run on the thread pool. */
typedef struct
{
  float *u, *prepared;
  const float *weight;
  const CgConvShape *s;
} PrepareJob;

/* The 6 x 3 matrix of U = G g G^T. */
static const float G[T][3] = {
  {1.0f / 4, 0, 0},
  {-1.0f / 6, -1.0f / 6, -1.0f / 6},
  {-1.0f / 6, 1.0f / 6, -1.0f / 6},
  {1.0f / 24, 1.0f / 12, 1.0f / 6},
  {1.0f / 24, -1.0f / 12, 1.0f / 6},
  {0, 0, 1},
};

/* Channels are taken LANES at a time, their taps gathered first, so that
 * the arithmetic runs across input channels (vectorized). */
#define LANES 16

CG_SIMD_CLONES static void
transform_weights (gpointer data, int co0, int co1)
{
  const PrepareJob *j = data;
  const CgConvShape *s = j->s;
  gsize plane = (gsize) s->cout * s->cin;

  for (int co = co0; co < co1; co++)
    for (int ci0 = 0; ci0 < s->cin; ci0 += LANES) {
      int n = MIN (LANES, s->cin - ci0);
      const float *g = j->weight + ((gsize) co * s->cin + ci0) * 9;
      float gt[9][LANES] = { {0} }, tmp[T][3][LANES];

      for (int l = 0; l < n; l++)
        for (int t = 0; t < 9; t++)
          gt[t][l] = g[l * 9 + t];
      for (int i = 0; i < T; i++)
        for (int b = 0; b < 3; b++)
          for (int l = 0; l < LANES; l++)
            tmp[i][b][l] = G[i][0] * gt[b][l] + G[i][1] * gt[3 + b][l] +
                G[i][2] * gt[6 + b][l];
      for (int i = 0; i < T; i++)
        for (int jj = 0; jj < T; jj++) {
          float u[LANES];
          for (int l = 0; l < LANES; l++)
            u[l] = tmp[i][0][l] * G[jj][0] + tmp[i][1][l] * G[jj][1] +
                tmp[i][2][l] * G[jj][2];
          float *dst = j->u + (i * T + jj) * plane + (gsize) co * s->cin +
              ci0;
          if (n == LANES)
            memcpy (dst, u, sizeof u);
          else
            memcpy (dst, u, sizeof (float) * n);
        }
    }
}

static void
pack_elements (gpointer data, int e0, int e1)
{
  const PrepareJob *j = data;
  const CgConvShape *s = j->s;
  gsize plane = (gsize) s->cout * s->cin;
  gsize packed = cg_gemm_packed_a_floats (s->cout, s->cin);

  for (int e = e0; e < e1; e++)
    cg_gemm_pack_a (FALSE, s->cout, s->cin, j->u + e * plane, s->cin,
        j->prepared + e * packed);
}

void
cg_conv2d_winograd_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  PrepareJob job = { g_new (float, E * (gsize) s->cout * s->cin), prepared,
    weight, s
  };

  cg_parallel_for (s->cout, transform_weights, &job);
  cg_parallel_for (E, pack_elements, &job);
  g_free (job.u);
}

/* Tiles are numbered row by row with one spare column per tile row
 * (tiles_x + 1 per row): the taps at +4 and +5 columns of a tile are the
 * +0 and +1 taps of the next tile, which the spare keeps inside the row.
 * The spare tiles ride along through the GEMMs (1/(tiles_x+1) more work)
 * and are dropped by the output transform; in return every transform runs
 * over all the tiles of a band as one long vector. */
#define SPARE 1

/* Tile rows per band: as many as the budget allows, but balanced so
 * that the bands' tiles fill whole GEMM panels (48 columns): for the
 * official generator at 256x256, 13 + 3 rows of 17 tiles would be 221 and
 * 51 tiles computed as 240 + 96 columns, 8 + 8 rows as 144 + 144. */
static int
band_tile_rows (const CgConvShape * s, int tiles_y, int tiles_x,
    gsize budget)
{
  int txp = tiles_x + SPARE;
  gsize per_row = (gsize) E *(s->cin + s->cout) * txp;
  int most = (int) CLAMP (budget / per_row, 1, (gsize) tiles_y);
  int bands = (tiles_y + most - 1) / most, best = most;
  gsize best_cols = G_MAXSIZE;

  /* a few more bands than the fewest, each at most `most` rows */
  for (int n = bands; n <= MIN (bands + 3, tiles_y); n++) {
    int rows = (tiles_y + n - 1) / n;
    gsize cols = 0;
    for (int y = 0; y < tiles_y; y += rows) {
      gsize t = (gsize) MIN (rows, tiles_y - y) * txp;
      cols += (t + CG_GEMM_NR - 1) / CG_GEMM_NR * CG_GEMM_NR;
    }
    if (cols < best_cols) {
      best_cols = cols;
      best = rows;
    }
  }
  return best;
}

/* V is written straight into cg_gemm_packed's B panels: the band's ntp
 * tiles rounded up to whole panels. */
static inline gsize
panel_tiles (int ntp)
{
  return ((gsize) ntp + CG_GEMM_NR - 1) / CG_GEMM_NR * CG_GEMM_NR;
}

/* The stride between the 36 domain elements' planes of V, M or dM: an
 * odd number of 64-byte lines. The transforms write (or read) all 36
 * planes in turn, and 64 channels of whole panels are a multiple of
 * 4 KiB, which would put all 36 streams in one set of the L1 cache. (At
 * ngf 16 the A/B showed no change either way: the transforms' time went
 * elsewhere, see conv_winograd_kernel.h.) */
static inline gsize
element_stride (gsize floats)
{
  gsize lines = (floats + 15) / 16;
  return (lines | 1) * 16;
}

static inline gsize
v_stride (const CgConvShape * s, int ntp)
{
  return element_stride ((gsize) s->cin * panel_tiles (ntp));
}

static inline gsize
m_stride (const CgConvShape * s, int ntp)
{
  return element_stride ((gsize) s->cout * ntp);
}

/* dM's, in plain rows as long as V's panels (the weight gradient) */
static inline gsize
dm_stride (const CgConvShape * s, int ntp)
{
  return element_stride ((gsize) s->cout * panel_tiles (ntp));
}

/* ---- Fused bands. Where the transformed weights U fit in a core's L2
 * cache beside a band's V and M (64 channels: U is 576 KiB), each thread
 * takes a band of one or two tile rows through all three stages on its
 * own, so that V and M stay in its L2 and the threads meet only at the
 * end. Going through whole-image V and M instead (5 MiB each at ngf 16,
 * 640x480) streamed them through L3 twice; with 256 channels U itself
 * no longer fits, and the whole-image stages, which keep each U[e] hot
 * over all the tiles, stay the better order. ---- */
/* Vectors of 16 tiles (1024 outputs) whose moments' float sums the
 * output transform lets grow before it adds them up in double. */
#define MOMENT_VECTORS 8

#define FUSED_MAX_U_FLOATS ((gsize) 160 * 1024)

gboolean
cg_conv2d_winograd_fused_preferred (const CgConvShape * s)
{
  return (gsize) E *s->cout * s->cin <= FUSED_MAX_U_FLOATS;
}

gsize
cg_conv2d_winograd_scratch_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = band_tile_rows (s, tiles_y, tiles_x, budget);
  int ntp = rows * (tiles_x + SPARE);
  /* + 16: the output transform reads whole vectors past the last tile */
  return (gsize) E *(v_stride (s, ntp) + m_stride (s, ntp)) + 16;
}

typedef struct
{
  float *buf;                   /* V, out or dM */
  const float *src;             /* in, M or dout */
  const float *bias;
  const CgConvShape *s;
  int h, w, tiles_x, ty0, ty1;
  gsize cstride, pstride, estride;      /* V's layout; dM's: no pstride */
  CgMoments *moments;           /* the output's, per channel, or NULL */
  const CgMoments *in_norm;     /* the input's norm + ReLU, or NULL */
} TransformJob;

/* Padded row `py` (reflect or zero; zero past the padded edge) into `dst`
 * of `pw` floats. */
static void
padded_row (float *dst, const float *plane, const CgConvShape * s, int h,
    int w, int py, int pw)
{
  int iy = py - s->pad;
  const float *src;

  if (py >= h + 2 * s->pad || ((iy < 0 || iy >= h)
          && s->pad_mode == CG_PAD_ZERO)) {
    memset (dst, 0, sizeof (float) * pw);
    return;
  }
  src = plane + (gsize) cg_reflect_index (iy, h) * w;
  /* left border, the row itself, right border, then zeros past the
   * padded edge (tiles overhanging the image) */
  for (int px = 0; px < s->pad && px < pw; px++)
    dst[px] = s->pad_mode == CG_PAD_ZERO ? 0.0f :
        src[cg_reflect_index (px - s->pad, w)];
  memcpy (dst + s->pad, src, sizeof (float) * MIN (w, pw - s->pad));
  for (int px = s->pad + w; px < pw; px++)
    dst[px] = px >= w + 2 * s->pad || s->pad_mode == CG_PAD_ZERO ? 0.0f :
        src[cg_reflect_index (px - s->pad, w)];
}

/* The input norm on padded row `py` as padded_row wrote it: on the
 * image's values and their reflections, not on zero padding or what
 * lies past the padded edge. */
static void
norm_padded_row (float *row, const CgConvShape * s, int h, int w, int py,
    int pw, float scale, float offset)
{
  int iy = py - s->pad, lo = 0, hi = MIN (w + 2 * s->pad, pw);

  if (py >= h + 2 * s->pad || ((iy < 0 || iy >= h)
          && s->pad_mode == CG_PAD_ZERO))
    return;
  if (s->pad_mode == CG_PAD_ZERO) {
    lo = MIN (s->pad, pw);
    hi = MIN (s->pad + w, pw);
  }
  cg_norm_relu_span (row + lo, hi - lo, scale, offset);
}

/* B^T x along one direction: six vectors in, six out. */
#define BT6(o, x) G_STMT_START { \
  o[0] = 4 * x[0] - 5 * x[2] + x[4]; \
  o[1] = -4 * (x[1] + x[2]) + x[3] + x[4]; \
  o[2] = 4 * (x[1] - x[2]) - x[3] + x[4]; \
  o[3] = -2 * x[1] - x[2] + 2 * x[3] + x[4]; \
  o[4] = 2 * x[1] - x[2] - 2 * x[3] + x[4]; \
  o[5] = 4 * x[1] - 5 * x[3] + x[5]; \
} G_STMT_END

/* A^T x: six in, four out. */
#define AT4(o, x) G_STMT_START { \
  o[0] = x[0] + x[1] + x[2] + x[3] + x[4]; \
  o[1] = x[1] - x[2] + 2 * (x[3] - x[4]); \
  o[2] = x[1] + x[2] + 4 * (x[3] + x[4]); \
  o[3] = x[1] - x[2] + 8 * (x[3] - x[4]) + x[5]; \
} G_STMT_END

/* A row of q: the band's tiles, then room for whole-vector stores of 16
 * tiles from the last tile row's first and loads of 16 from the +1 tap
 * past the last tile, rounded up to 16 floats. */
static inline gsize
q_stride (int ntp)
{
  return ((gsize) ntp + 16 + 15) & ~(gsize) 15;
}

/* The padded row before q, rounded to whole cache lines: q's rows are
 * then stored and loaded a line at a time (from a row of 164 floats, at
 * 160 wide, every load of q spanned two stores and waited for both to
 * retire instead of taking its data from one: the input transform took
 * twice as long). */
static inline gsize
row_floats (int txp)
{
  return ((gsize) OT * txp + 15) & ~(gsize) 15;
}

/* The input transform's working rows (cg_thread_scratch) for a band of
 * ntp tiles, txp per tile row. */
static inline gsize
transform_rows_floats (int txp, int ntp)
{
  return row_floats (txp) + 4 * T * q_stride (ntp);
}

/* Tile rows per fused band: the fewest (V and M smallest) that fill the
 * GEMM panels to within 1/8, at most 4; at 320x240 one row of 21 tiles
 * would run 48-column panels half empty, two rows fill 42 of 48. */
static int
fused_band_rows (int tiles_y, int tiles_x)
{
  int txp = tiles_x + SPARE, best = 1;
  double best_fill = 0.0;

  for (int r = 1; r <= MIN (4, tiles_y); r++) {
    double fill = (double) r * txp / panel_tiles (r * txp);
    if (fill >= 0.875)
      return r;
    if (fill > best_fill + 1e-9) {
      best_fill = fill;
      best = r;
    }
  }
  return best;
}

/* A fused band's M[e] goes where V[e - 1] was (M[0] in one plane more,
 * before V[0]): element e's product reads V[e] only, so V[e - 1] is spent
 * by then. V and M take 37 planes instead of 72, and stay in a core's L2
 * beside U: ngf 16 at 640x480, 0.46 MB against 0.82. */
static inline gsize
fused_plane (const CgConvShape * s, int ntp)
{
  return MAX (v_stride (s, ntp), m_stride (s, ntp));
}

static gsize
fused_thread_floats (const CgConvShape * s, int tiles_y, int tiles_x)
{
  int txp = tiles_x + SPARE;
  int ntp = fused_band_rows (tiles_y, tiles_x) * txp;
  /* + 16: the output transform reads whole vectors past the last tile */
  return transform_rows_floats (txp, ntp) +
      (gsize) (E + 1) * fused_plane (s, ntp) + 16;
}

gsize
cg_conv2d_winograd_thread_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = band_tile_rows (s, tiles_y, tiles_x, budget);
  int txp = tiles_x + SPARE;
  gsize n = transform_rows_floats (txp, rows * txp);

  if (cg_conv2d_winograd_fused_preferred (s))
    n = MAX (n, fused_thread_floats (s, tiles_y, tiles_x));
  return n;
}

#define VW 8
#define TRANSFORM_ATTRS CG_SIMD_CLONES
#include "conv_winograd_kernel.h"
#undef VW
#undef TRANSFORM_ATTRS

#ifdef CG_HAVE_AVX512_KERNELS
#include <immintrin.h>
#define VW 16
#define TRANSFORM_ATTRS __attribute__ ((target ("avx512f,avx2,fma")))
#include "conv_winograd_kernel.h"
#undef VW
#undef TRANSFORM_ATTRS
#endif

typedef struct
{
  const float *u, *v;
  float *m;
  const CgConvShape *s;
  gsize uplane, vplane, mplane;
  int nt;
} GemmSet;

/* M[e] = U[e] . V[e] for e in [begin, end): the 36 products are
 * independent, so the pool's threads take whole ones, one at a time
 * (cg_parallel_for_pieces (E, E, ...)): in pieces of four or five, the
 * thread that finished first waited at each of the ~300 joins of a
 * training step for most of a piece (ngf 64 at crop 256: 4.02-4.07 ->
 * 3.82-3.87 s an iteration). */
static void
domain_gemms (gpointer data, int begin, int end)
{
  const GemmSet *g = data;
  const CgConvShape *s = g->s;

  for (int e = begin; e < end; e++)
    cg_gemm_packed (s->cout, g->nt, s->cin, g->u + e * g->uplane,
        g->v + e * g->vplane, FALSE, g->m + (gsize) e * g->mplane,
        g->nt);
}

typedef struct
{
  float *out;
  const float *in, *prepared, *bias;
  const CgConvShape *s;
  int h, w, tiles_y, tiles_x, band;
  CgParallelFunc input_transform, output_transform;
  CgMoments *moments;           /* [band][cout], or NULL */
  const CgMoments *in_norm;
} FusedJob;

/* Bands [b0, b1), each through the three stages in this thread's
 * scratch: the transform's rows first, then V and M. */
static void
fused_bands (gpointer data, int b0, int b1)
{
  const FusedJob *j = data;
  const CgConvShape *s = j->s;
  int txp = j->tiles_x + SPARE;
  float *base = cg_thread_scratch (fused_thread_floats (s, j->tiles_y,
          j->tiles_x));

  for (int b = b0; b < b1; b++) {
    int ty0 = b * j->band, ty1 = MIN (ty0 + j->band, j->tiles_y);
    int ntp = (ty1 - ty0) * txp;
    gsize plane = fused_plane (s, ntp);
    float *m = base + transform_rows_floats (txp, ntp);
    float *v = m + plane;
    TransformJob in_job = { v, j->in, NULL, s, j->h, j->w, j->tiles_x, ty0,
      ty1, CG_GEMM_NR, (gsize) s->cin * CG_GEMM_NR, plane, NULL, j->in_norm
    };
    TransformJob out_job = { j->out, m, j->bias, s, j->h, j->w, j->tiles_x,
      ty0, ty1, 0, 0, plane,
      j->moments ? j->moments + (gsize) b * s->cout : NULL, NULL
    };
    GemmSet gemms = { j->prepared, v, m, s,
      cg_gemm_packed_a_floats (s->cout, s->cin), plane, plane, ntp
    };

    j->input_transform (&in_job, 0, s->cin);
    domain_gemms (&gemms, 0, E);
    j->output_transform (&out_job, 0, s->cout);
  }
}

/* A band's moments per channel, bands at most one per tile row. */
gsize
cg_conv2d_winograd_moments_len (const CgConvShape * s, int h)
{
  return (gsize) s->cout * ((h + OT - 1) / OT);
}

void
cg_conv2d_winograd_forward_fused (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, CgMoments * moments)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = fused_band_rows (tiles_y, tiles_x);
  int bands = (tiles_y + rows - 1) / rows;
  FusedJob job = { out, in, prepared, bias, s, h, w, tiles_y, tiles_x, rows,
    CG_CPU_KERNEL (input_transform8, input_transform16),
    CG_CPU_KERNEL (output_transform8, output_transform16), moments, in_norm
  };

  g_return_if_fail (s->k == 3 && s->stride == 1 && s->pad == 1);
  cg_parallel_for (bands, fused_bands, &job);
  if (moments)
    cg_moments_reduce (moments, moments, bands, s->cout);
}

void
cg_conv2d_winograd_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, float *scratch, gsize budget,
    CgMoments * moments)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int band = band_tile_rows (s, tiles_y, tiles_x, budget);
  gsize uplane = cg_gemm_packed_a_floats (s->cout, s->cin);
  CgParallelFunc input_transform = CG_CPU_KERNEL (input_transform8,
      input_transform16);
  CgParallelFunc output_transform = CG_CPU_KERNEL (output_transform8,
      output_transform16);

  g_return_if_fail (s->k == 3 && s->stride == 1 && s->pad == 1);

  for (int ty0 = 0; ty0 < tiles_y; ty0 += band) {
    int ty1 = MIN (ty0 + band, tiles_y);
    int ntp = (ty1 - ty0) * (tiles_x + SPARE);
    gsize vplane = v_stride (s, ntp), mplane = m_stride (s, ntp);
    float *v = scratch;
    float *m = scratch + E * vplane;
    TransformJob in_job = { v, in, NULL, s, h, w, tiles_x, ty0, ty1,
      CG_GEMM_NR, (gsize) s->cin * CG_GEMM_NR, vplane, NULL, in_norm
    };
    TransformJob out_job = { out, m, bias, s, h, w, tiles_x, ty0, ty1, 0, 0,
      mplane, moments ? moments + (gsize) (ty0 / band) * s->cout : NULL, NULL
    };
    GemmSet gemms = { prepared, v, m, s, uplane, vplane, mplane, ntp };

    cg_parallel_for (s->cin, input_transform, &in_job);
    cg_parallel_for_pieces (E, E, domain_gemms, &gemms);
    cg_parallel_for (s->cout, output_transform, &out_job);
  }
  if (moments)
    cg_moments_reduce (moments, moments, (tiles_y + band - 1) / band,
        s->cout);
}

/* ---- The weight gradient, in the same domain: with dM[e] = (A dY A^T)[e]
 * per tile, dU[e] = sum over tiles of dM[e] . V[e]^T (a cout x cin product
 * over the tiles per element) and dW = G^T dU G. A quarter of the direct
 * product's multiply-adds, like the forward. V is made again from the
 * input rather than kept from the forward. ---- */

static gsize
wgrad_band_floats (const CgConvShape * s, int ntp)
{
  return (gsize) E *(v_stride (s, ntp) + dm_stride (s, ntp));
}

static int
wgrad_band_rows (const CgConvShape * s, int h, int w, gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  gsize du = (gsize) E *s->cout * s->cin;
  return band_tile_rows (s, tiles_y, tiles_x, budget > du ? budget - du : 0);
}

gsize
cg_conv2d_winograd_wgrad_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_x = (w + OT - 1) / OT;
  int rows = wgrad_band_rows (s, h, w, budget);
  return (gsize) E *s->cout * s->cin +
      wgrad_band_floats (s, rows * (tiles_x + SPARE));
}

typedef struct
{
  const float *dm, *v;
  float *du, *dweight;
  const CgConvShape *s;
  gsize ld, vstride, dmstride;
  int nt;
  gboolean first;               /* the first band: dU = rather than += */
} WgradJob;

/* dU[e] += dM[e] . V[e]^T over the band's tiles: dM packed as A, V's
 * rows turned into B panels, both in the thread's scratch; the pool's
 * threads take whole elements. */
static gsize
wgrad_thread_floats (const CgConvShape * s, int ntp)
{
  return cg_gemm_packed_a_floats (s->cout, ntp) +
      (gsize) (s->cin + CG_GEMM_NR - 1) / CG_GEMM_NR * CG_GEMM_NR * ntp;
}

static void
wgrad_gemms (gpointer data, int begin, int end)
{
  const WgradJob *j = data;
  const CgConvShape *s = j->s;
  float *apacked = cg_thread_scratch (wgrad_thread_floats (s, j->nt));
  float *panels = apacked + cg_gemm_packed_a_floats (s->cout, j->nt);

  for (int e = begin; e < end; e++) {
    const float *v = j->v + e * j->vstride;
    cg_gemm_pack_a (FALSE, s->cout, j->nt, j->dm + e * j->dmstride,
        (int) j->ld, apacked);
    for (int c0 = 0; c0 < s->cin; c0 += CG_GEMM_NR)
      cg_gemm_panel_from_rows (panels + (gsize) c0 * j->nt, v + c0 * j->ld,
          j->ld, MIN (CG_GEMM_NR, s->cin - c0), j->nt);
    cg_gemm_packed (s->cout, s->cin, j->nt, apacked, panels, !j->first,
        j->du + (gsize) e * s->cout * s->cin, s->cin);
  }
}

/* dweight [co][ci] += G^T dU G, LANES input channels at a time */
CG_SIMD_CLONES static void
wgrad_weights (gpointer data, int co0, int co1)
{
  const WgradJob *j = data;
  const CgConvShape *s = j->s;
  gsize plane = (gsize) s->cout * s->cin;

  for (int co = co0; co < co1; co++)
    for (int ci0 = 0; ci0 < s->cin; ci0 += LANES) {
      int n = MIN (LANES, s->cin - ci0);
      const float *du = j->du + (gsize) co * s->cin + ci0;
      float *dw = j->dweight + ((gsize) co * s->cin + ci0) * 9;
      float tmp[3][T][LANES] = { {{0}} }, out[9][LANES];

      for (int i = 0; i < T; i++)
        for (int jj = 0; jj < T; jj++) {
          float d[LANES] = { 0 };
          if (n == LANES)
            memcpy (d, du + (i * T + jj) * plane, sizeof d);
          else
            memcpy (d, du + (i * T + jj) * plane, sizeof (float) * n);
          for (int a = 0; a < 3; a++)
            for (int l = 0; l < LANES; l++)
              tmp[a][jj][l] += G[i][a] * d[l];
        }
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
          for (int l = 0; l < LANES; l++)
            out[a * 3 + b][l] = tmp[a][0][l] * G[0][b] +
                tmp[a][1][l] * G[1][b] + tmp[a][2][l] * G[2][b] +
                tmp[a][3][l] * G[3][b] + tmp[a][4][l] * G[4][b] +
                tmp[a][5][l] * G[5][b];
      for (int l = 0; l < n; l++)
        for (int t = 0; t < 9; t++)
          dw[l * 9 + t] += out[t][l];
    }
}

void
cg_conv2d_winograd_wgrad (float *dweight, const float *doutput,
    const float *in, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int band = wgrad_band_rows (s, h, w, budget);
  float *du = scratch;
  float *bandbuf = du + (gsize) E * s->cout * s->cin;
  CgParallelFunc input_transform = CG_CPU_KERNEL (input_transform8,
      input_transform16);
  CgParallelFunc grad_transform = CG_CPU_KERNEL (grad_transform8,
      grad_transform16);

  g_return_if_fail (s->k == 3 && s->stride == 1 && s->pad == 1);

  for (int ty0 = 0; ty0 < tiles_y; ty0 += band) {
    int ty1 = MIN (ty0 + band, tiles_y);
    int ntp = (ty1 - ty0) * (tiles_x + SPARE);
    gsize ld = panel_tiles (ntp);
    gsize vstride = v_stride (s, ntp), dmstride = dm_stride (s, ntp);
    float *v = bandbuf;
    float *dm = v + E * vstride;
    TransformJob in_job = { v, in, NULL, s, h, w, tiles_x, ty0, ty1,
      ld, CG_GEMM_NR, vstride, NULL, NULL
    };
    TransformJob grad_job = { dm, doutput, NULL, s, h, w, tiles_x, ty0, ty1,
      ld, 0, dmstride, NULL, NULL
    };
    WgradJob gemms = { dm, v, du, dweight, s, ld, vstride, dmstride, ntp,
      ty0 == 0
    };

    cg_parallel_for (s->cin, input_transform, &in_job);
    cg_parallel_for (s->cout, grad_transform, &grad_job);
    cg_parallel_for_pieces (E, E, wgrad_gemms, &gemms);
  }
  {
    WgradJob fold = { NULL, NULL, du, dweight, s, 0, 0, 0, 0, FALSE };
    cg_parallel_for (s->cout, wgrad_weights, &fold);
  }
}
