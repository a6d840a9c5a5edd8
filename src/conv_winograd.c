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
#include "layers.h"
#include "parallel.h"

#include <cblas.h>
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

static int
band_tile_rows (const CgConvShape * s, int tiles_y, int tiles_x,
    gsize budget)
{
  gsize per_row = (gsize) E *(s->cin + s->cout) * tiles_x;
  gsize rows = budget / per_row;
  return (int) CLAMP (rows, 1, (gsize) tiles_y);
}

gsize
cg_conv2d_winograd_scratch_floats (const CgConvShape * s, int h, int w,
    gsize budget)
{
  int tiles_y = (h + OT - 1) / OT, tiles_x = (w + OT - 1) / OT;
  int rows = band_tile_rows (s, tiles_y, tiles_x, budget);
  return (gsize) E *(s->cin + s->cout) * rows * tiles_x;
}

/* Row `py` of the padded input, or NULL where it is zero. */
static inline const float *
padded_row (const float *plane, const CgConvShape * s, int h, int w, int py)
{
  int iy = py - s->pad;
  if (py >= h + 2 * s->pad)
    return NULL;
  if (iy < 0 || iy >= h) {
    if (s->pad_mode == CG_PAD_ZERO)
      return NULL;
    iy = cg_reflect_index (iy, h);
  }
  return plane + (gsize) iy * w;
}

static inline float
padded_at (const float *row, const CgConvShape * s, int w, int px)
{
  int ix = px - s->pad;
  if (!row || px >= w + 2 * s->pad)
    return 0.0f;
  if (ix < 0 || ix >= w) {
    if (s->pad_mode == CG_PAD_ZERO)
      return 0.0f;
    ix = cg_reflect_index (ix, w);
  }
  return row[ix];
}

typedef struct
{
  float *buf;                   /* V or out */
  const float *src;             /* in or M */
  const float *bias;
  const CgConvShape *s;
  int h, w, tiles_x, ty0, ty1;
} TransformJob;

/* V [e][ci][t] for the tiles of tile rows [ty0, ty1), channels [ci0, ci1). */
static void
input_transform (gpointer data, int ci0, int ci1)
{
  const TransformJob *j = data;
  float *v = j->buf;
  const float *in = j->src;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, tiles_x = j->tiles_x, ty0 = j->ty0, ty1 = j->ty1;
  gsize nt = (gsize) (ty1 - ty0) * tiles_x;
  gsize estride = (gsize) s->cin * nt;

  for (int ci = ci0; ci < ci1; ci++) {
    const float *plane = in + (gsize) ci * h * w;
    for (int ty = ty0; ty < ty1; ty++) {
      const float *rows[T];
      for (int r = 0; r < T; r++)
        rows[r] = padded_row (plane, s, h, w, ty * OT + r);
      for (int tx = 0; tx < tiles_x; tx++) {
        float d[T][T], bd[T][T];
        gsize t = (gsize) (ty - ty0) * tiles_x + tx;
        int px0 = tx * OT;
        gboolean inside = px0 >= s->pad && px0 + T - s->pad <= w;

        for (int r = 0; r < T; r++) {
          if (inside && rows[r])
            memcpy (d[r], rows[r] + px0 - s->pad, sizeof d[r]);
          else
            for (int c = 0; c < T; c++)
              d[r][c] = padded_at (rows[r], s, w, px0 + c);
        }
        /* B^T d: along columns */
        for (int c = 0; c < T; c++) {
          float d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c],
              d4 = d[4][c], d5 = d[5][c];
          bd[0][c] = 4 * d0 - 5 * d2 + d4;
          bd[1][c] = -4 * (d1 + d2) + d3 + d4;
          bd[2][c] = 4 * (d1 - d2) - d3 + d4;
          bd[3][c] = -2 * d1 - d2 + 2 * d3 + d4;
          bd[4][c] = 2 * d1 - d2 - 2 * d3 + d4;
          bd[5][c] = 4 * d1 - 5 * d3 + d5;
        }
        /* (B^T d) B: along rows */
        for (int r = 0; r < T; r++) {
          float d0 = bd[r][0], d1 = bd[r][1], d2 = bd[r][2], d3 = bd[r][3],
              d4 = bd[r][4], d5 = bd[r][5];
          float *o = v + (gsize) (r * T) * estride + (gsize) ci * nt + t;
          o[0 * estride] = 4 * d0 - 5 * d2 + d4;
          o[1 * estride] = -4 * (d1 + d2) + d3 + d4;
          o[2 * estride] = 4 * (d1 - d2) - d3 + d4;
          o[3 * estride] = -2 * d1 - d2 + 2 * d3 + d4;
          o[4 * estride] = 2 * d1 - d2 - 2 * d3 + d4;
          o[5 * estride] = 4 * d1 - 5 * d3 + d5;
        }
      }
    }
  }
}

/* out tiles from M [e][co][t], channels [co0, co1) */
static void
output_transform (gpointer data, int co0, int co1)
{
  const TransformJob *j = data;
  float *out = j->buf;
  const float *m = j->src, *bias = j->bias;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, tiles_x = j->tiles_x, ty0 = j->ty0, ty1 = j->ty1;
  gsize nt = (gsize) (ty1 - ty0) * tiles_x;
  gsize estride = (gsize) s->cout * nt;

  for (int co = co0; co < co1; co++) {
    float *plane = out + (gsize) co * h * w;
    float b = bias ? bias[co] : 0.0f;
    for (int ty = ty0; ty < ty1; ty++)
      for (int tx = 0; tx < tiles_x; tx++) {
        gsize t = (gsize) (ty - ty0) * tiles_x + tx;
        const float *src = m + (gsize) co * nt + t;
        float am[OT][T], y[OT][OT];
        int oy0 = ty * OT, ox0 = tx * OT;

        /* A^T M: along columns */
        for (int c = 0; c < T; c++) {
          float m0 = src[(0 * T + c) * estride], m1 =
              src[(1 * T + c) * estride], m2 = src[(2 * T + c) * estride],
              m3 = src[(3 * T + c) * estride], m4 =
              src[(4 * T + c) * estride], m5 = src[(5 * T + c) * estride];
          am[0][c] = m0 + m1 + m2 + m3 + m4;
          am[1][c] = m1 - m2 + 2 * (m3 - m4);
          am[2][c] = m1 + m2 + 4 * (m3 + m4);
          am[3][c] = m1 - m2 + 8 * (m3 - m4) + m5;
        }
        /* (A^T M) A: along rows */
        for (int r = 0; r < OT; r++) {
          float m0 = am[r][0], m1 = am[r][1], m2 = am[r][2], m3 = am[r][3],
              m4 = am[r][4], m5 = am[r][5];
          y[r][0] = m0 + m1 + m2 + m3 + m4 + b;
          y[r][1] = m1 - m2 + 2 * (m3 - m4) + b;
          y[r][2] = m1 + m2 + 4 * (m3 + m4) + b;
          y[r][3] = m1 - m2 + 8 * (m3 - m4) + m5 + b;
        }
        for (int r = 0; r < OT && oy0 + r < h; r++) {
          float *orow = plane + (gsize) (oy0 + r) * w + ox0;
          int n = MIN (OT, w - ox0);
          for (int c = 0; c < n; c++)
            orow[c] = y[r][c];
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
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, s->cout, g->nt,
        s->cin, 1.0f, g->u + e * g->uplane, s->cin,
        g->v + (gsize) e * s->cin * g->nt, g->nt, 0.0f,
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
    int nt = (ty1 - ty0) * tiles_x;
    float *v = scratch;
    float *m = scratch + (gsize) E *s->cin * nt;

    TransformJob in_job = { v, in, NULL, s, h, w, tiles_x, ty0, ty1 };
    TransformJob out_job = { out, m, bias, s, h, w, tiles_x, ty0, ty1 };

    cg_parallel_for (s->cin, input_transform, &in_job);
    GemmSet gemms = { prepared, v, m, s, uplane, nt };

    cg_parallel_for (E, domain_gemms, &gemms);
    cg_parallel_for (s->cout, output_transform, &out_job);
  }
}
