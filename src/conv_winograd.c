/* Winograd F(4x4, 3x3) (Lavin & Gray 2015) for the 3x3 stride-1
 * convolutions that are ~88% of the generator's multiply-adds.
 *
 * Each 4x4 output tile comes from a 6x6 input tile: V = B^T d B, then per
 * element e of the 6x6 domain one sgemm M[e] = U[e] . V[e] over channels,
 * then Y = A^T M A. 36 products per tile instead of 144: a quarter of the
 * multiply-adds. The weights' transform U = G g G^T is made once, when a
 * generator is created. Padding (reflect or zero) is read while gathering
 * tiles; tiles hanging over the bottom/right edge are zero there and their
 * extra outputs are dropped. Bands of tile rows bound the scratch space.
 *
 * Accuracy: the transforms use 4, 5, 8 and 1/24: against the float64
 * PyTorch goldens the error stays ~1e-6 per layer (tests/core/test-layers).
 */
#include "gemm.h"
#include "layers.h"
#include "parallel.h"
#include "simd.h"

#include <string.h>

#define T 6                     /* input tile */
#define OT 4                    /* output tile */
#define E (T * T)

/* U = G g G^T for each (co, ci), stored [e][co][ci]. */
void
cg_conv2d_winograd_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  static const double G[T][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
  };
  gsize plane = (gsize) s->cout * s->cin;

  for (int co = 0; co < s->cout; co++)
    for (int ci = 0; ci < s->cin; ci++) {
      const float *g = weight + ((gsize) co * s->cin + ci) * 9;
      double tmp[T][3];
      for (int i = 0; i < T; i++)
        for (int j = 0; j < 3; j++)
          tmp[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j]
              + G[i][2] * g[2 * 3 + j];
      for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
          double u = tmp[i][0] * G[j][0] + tmp[i][1] * G[j][1]
              + tmp[i][2] * G[j][2];
          prepared[(i * T + j) * plane + (gsize) co * s->cin + ci] =
              (float) u;
        }
    }
}

/* Tiles are numbered row by row with one spare column per tile row
 * (tiles_x + 1 per row): the taps at +4 and +5 columns of a tile are the
 * +0 and +1 taps of the next tile, which the spare keeps inside the row.
 * The spare tiles ride along through the GEMMs (1/(tiles_x+1) more work)
 * and are dropped by the output transform; in return every transform runs
 * over all the tiles of a band as one long vector. */
#define SPARE 1

static int
band_tile_rows (const CgConvShape * s, int tiles_y, int tiles_x,
    gsize budget)
{
  gsize per_row = (gsize) E *(s->cin + s->cout) * (tiles_x + SPARE);
  gsize rows = budget / per_row;
  return (int) CLAMP (rows, 1, (gsize) tiles_y);
}

gsize
cg_conv2d_winograd_scratch_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = band_tile_rows (s, tiles_y, tiles_x, budget);
  /* + 8: the output transform reads whole vectors past the last tile */
  return (gsize) E *(s->cin + s->cout) * rows * (tiles_x + SPARE) + 8;
}

typedef struct
{
  float *buf;                   /* V or out */
  const float *src;             /* in or M */
  const float *bias;
  const CgConvShape *s;
  int h, w, tiles_x, ty0, ty1;
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

/* A row of q: the band's tiles, the +1 tap past the last, rounded up for
 * whole-vector loads. */
static inline gsize
q_stride (int ntp)
{
  return ((gsize) ntp + 1 + 8) & ~(gsize) 7;
}

gsize
cg_conv2d_winograd_thread_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = band_tile_rows (s, tiles_y, tiles_x, budget);
  int txp = tiles_x + SPARE;
  return (gsize) OT *txp + 4 * T * q_stride (rows * txp);
}

/* V [e][ci][t] for the band's tiles, channels [ci0, ci1).
 *
 * The padded rows of each tile row are split by column phase (x mod 4)
 * into q[phase][r][t], tile-major; a tile's 6x6 input is then
 * q[c % 4][r][t + c / 4], and the transforms run 8 tiles at a time. */
CG_SIMD_CLONES static void
input_transform (gpointer data, int ci0, int ci1)
{
  const TransformJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, txp = j->tiles_x + SPARE;
  int pw = OT * txp;
  int ntp = (j->ty1 - j->ty0) * txp;
  gsize qs = q_stride (ntp);
  gsize estride = (gsize) s->cin * ntp;
  float *row = cg_thread_scratch ((gsize) pw + 4 * T * qs);
  float *q = row + pw;

  for (int ci = ci0; ci < ci1; ci++) {
    const float *plane = j->src + (gsize) ci * h * w;
    float *v = j->buf + (gsize) ci * ntp;

    for (int ty = j->ty0; ty < j->ty1; ty++)
      for (int r = 0; r < T; r++) {
        gsize t0 = (gsize) (ty - j->ty0) * txp;
        float *q0 = q + (gsize) (0 * T + r) * qs + t0, *q1 =
            q + (gsize) (1 * T + r) * qs + t0, *q2 =
            q + (gsize) (2 * T + r) * qs + t0, *q3 =
            q + (gsize) (3 * T + r) * qs + t0;
        padded_row (row, plane, s, h, w, ty * OT + r, pw);
        for (int tx = 0; tx < txp; tx++) {
          q0[tx] = row[OT * tx];
          q1[tx] = row[OT * tx + 1];
          q2[tx] = row[OT * tx + 2];
          q3[tx] = row[OT * tx + 3];
        }
      }
    for (int p = 0; p < 4; p++)
      for (int r = 0; r < T; r++)
        memset (q + (gsize) (p * T + r) * qs + ntp, 0,
            sizeof (float) * (qs - ntp));

    for (int t = 0; t < ntp; t += 8) {
      cg_v8 d[T][T], bd[T][T], vv[T];
      int n = MIN (8, ntp - t);
      for (int r = 0; r < T; r++) {
        for (int c = 0; c < T; c++)
          d[c][r] = cg_v8_load (q + (gsize) ((c % 4) * T + r) * qs + t +
              c / 4);
      }
      /* B^T along the rows r, for each column c: bd[c][i] */
      for (int c = 0; c < T; c++)
        BT6 (bd[c], d[c]);
      /* then along the columns, for each row i */
      for (int i = 0; i < T; i++) {
        cg_v8 col[T];
        for (int c = 0; c < T; c++)
          col[c] = bd[c][i];
        BT6 (vv, col);
        for (int jj = 0; jj < T; jj++) {
          float *dst = v + (gsize) (i * T + jj) * estride + t;
          if (n == 8)
            cg_v8_store (dst, vv[jj]);
          else
            memcpy (dst, &vv[jj], sizeof (float) * n);
        }
      }
    }
  }
}

/* out tiles from M [e][co][t], channels [co0, co1): A^T M A, 8 tiles at a
 * time, then each tile's 4x4 into the output (spare tiles and what hangs
 * over the edge dropped). */
CG_SIMD_CLONES static void
output_transform (gpointer data, int co0, int co1)
{
  const TransformJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, tiles_x = j->tiles_x, txp = tiles_x + SPARE;
  int ntp = (j->ty1 - j->ty0) * txp;
  gsize estride = (gsize) s->cout * ntp;

  for (int co = co0; co < co1; co++) {
    float *plane = j->buf + (gsize) co * h * w;
    const float *m = j->src + (gsize) co * ntp;
    float b = j->bias ? j->bias[co] : 0.0f;

    for (int t = 0; t < ntp; t += 8) {
      cg_v8 am[T][OT], y[OT][OT];
      float ys[OT][OT][8];
      int n = MIN (8, ntp - t);
      /* A^T along the domain rows, for each column c */
      for (int c = 0; c < T; c++) {
        cg_v8 x[T];
        for (int i = 0; i < T; i++)
          x[i] = cg_v8_load (m + (gsize) (i * T + c) * estride + t);
        AT4 (am[c], x);
      }
      /* then along the columns */
      for (int r = 0; r < OT; r++) {
        cg_v8 x[T];
        for (int c = 0; c < T; c++)
          x[c] = am[c][r];
        AT4 (y[r], x);
        for (int qq = 0; qq < OT; qq++)
          y[r][qq] += b;
      }
      memcpy (ys, y, sizeof ys);
      for (int l = 0; l < n; l++) {
        int tt = t + l, ty = j->ty0 + tt / txp, tx = tt % txp;
        int oy0 = ty * OT, ox0 = tx * OT;
        if (tx >= tiles_x)
          continue;
        for (int r = 0; r < OT && oy0 + r < h; r++) {
          float *orow = plane + (gsize) (oy0 + r) * w + ox0;
          int nx = MIN (OT, w - ox0);
          for (int qq = 0; qq < nx; qq++)
            orow[qq] = ys[r][qq][l];
        }
      }
    }
  }
}

typedef struct
{
  const float *u, *v;
  float *m;
  const CgConvShape *s;
  gsize uplane;
  int nt;
} GemmSet;

/* M[e] = U[e] . V[e] for e in [begin, end): the 36 products are
 * independent, so the pool's threads take whole ones. */
static void
domain_gemms (gpointer data, int begin, int end)
{
  const GemmSet *g = data;
  const CgConvShape *s = g->s;

  for (int e = begin; e < end; e++)
    cg_gemm (FALSE, s->cout, g->nt, s->cin, g->u + e * g->uplane, s->cin,
        g->v + (gsize) e * s->cin * g->nt, g->nt, FALSE,
        g->m + (gsize) e * s->cout * g->nt, g->nt);
}

void
cg_conv2d_winograd_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w, float *scratch, gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int band = band_tile_rows (s, tiles_y, tiles_x, budget);
  gsize uplane = (gsize) s->cout * s->cin;

  g_return_if_fail (s->k == 3 && s->stride == 1 && s->pad == 1);

  for (int ty0 = 0; ty0 < tiles_y; ty0 += band) {
    int ty1 = MIN (ty0 + band, tiles_y);
    int ntp = (ty1 - ty0) * (tiles_x + SPARE);
    float *v = scratch;
    float *m = scratch + (gsize) E *s->cin * ntp;
    TransformJob in_job = { v, in, NULL, s, h, w, tiles_x, ty0, ty1 };
    TransformJob out_job = { out, m, bias, s, h, w, tiles_x, ty0, ty1 };
    GemmSet gemms = { prepared, v, m, s, uplane, ntp };

    cg_parallel_for (s->cin, input_transform, &in_job);
    cg_parallel_for (E, domain_gemms, &gemms);
    cg_parallel_for (s->cout, output_transform, &out_job);
  }
}
