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
#include "simd.h"

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

/* V [e][ci][t] for the tiles of tile rows [ty0, ty1), channels [ci0, ci1).
 *
 * Vectorized over whole rows rather than tile by tile: first B^T along y
 * for every column x of the tile row (six padded rows in, six rows R_i
 * out, contiguous), then the columns are split by phase x mod 4 so that
 * B along x runs over consecutive tiles and writes V contiguously. */
CG_SIMD_CLONES static void
input_transform (gpointer data, int ci0, int ci1)
{
  const TransformJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, tiles_x = j->tiles_x;
  int pw = OT * tiles_x + 2;    /* padded columns the tiles read */
  int np = tiles_x + 1;         /* tiles, plus one for the +4, +5 taps */
  gsize nt = (gsize) (j->ty1 - j->ty0) * tiles_x;
  gsize estride = (gsize) s->cin * nt;
  float *d = cg_thread_scratch ((gsize) T * pw * 2 + (gsize) T * 4 * np);
  float *r = d + (gsize) T * pw;        /* R_i */
  float *ph = r + (gsize) T * pw;       /* phases P_{i,c} */

  for (int ci = ci0; ci < ci1; ci++) {
    const float *plane = j->src + (gsize) ci * h * w;
    for (int ty = j->ty0; ty < j->ty1; ty++) {
      float *vrow = j->buf + (gsize) ci * nt + (gsize) (ty - j->ty0) *
          tiles_x;
      const float *d0 = d, *d1 = d + pw, *d2 = d + 2 * pw, *d3 = d + 3 * pw,
          *d4 = d + 4 * pw, *d5 = d + 5 * pw;

      for (int i = 0; i < T; i++)
        padded_row (d + (gsize) i * pw, plane, s, h, w, ty * OT + i, pw);
      for (int x = 0; x < pw; x++) {
        r[0 * pw + x] = 4 * d0[x] - 5 * d2[x] + d4[x];
        r[1 * pw + x] = -4 * (d1[x] + d2[x]) + d3[x] + d4[x];
        r[2 * pw + x] = 4 * (d1[x] - d2[x]) - d3[x] + d4[x];
        r[3 * pw + x] = -2 * d1[x] - d2[x] + 2 * d3[x] + d4[x];
        r[4 * pw + x] = 2 * d1[x] - d2[x] - 2 * d3[x] + d4[x];
        r[5 * pw + x] = 4 * d1[x] - 5 * d3[x] + d5[x];
      }
      for (int i = 0; i < T; i++) {
        const float *ri = r + (gsize) i * pw;
        float *p0 = ph + (gsize) i * 4 * np, *p1 = p0 + np, *p2 = p1 + np,
            *p3 = p2 + np;
        for (int t = 0; t < tiles_x; t++) {
          p0[t] = ri[OT * t];
          p1[t] = ri[OT * t + 1];
          p2[t] = ri[OT * t + 2];
          p3[t] = ri[OT * t + 3];
        }
        p0[tiles_x] = ri[OT * tiles_x];
        p1[tiles_x] = ri[OT * tiles_x + 1];
      }
      for (int i = 0; i < T; i++) {
        const float *p0 = ph + (gsize) i * 4 * np, *p1 = p0 + np,
            *p2 = p1 + np, *p3 = p2 + np, *p4 = p0 + 1, *p5 = p1 + 1;
        float *v0 = vrow + (gsize) (i * T) * estride;
        float *v1 = v0 + estride, *v2 = v1 + estride, *v3 = v2 + estride,
            *v4 = v3 + estride, *v5 = v4 + estride;
        for (int t = 0; t < tiles_x; t++) {
          v0[t] = 4 * p0[t] - 5 * p2[t] + p4[t];
          v1[t] = -4 * (p1[t] + p2[t]) + p3[t] + p4[t];
          v2[t] = 4 * (p1[t] - p2[t]) - p3[t] + p4[t];
          v3[t] = -2 * p1[t] - p2[t] + 2 * p3[t] + p4[t];
          v4[t] = 2 * p1[t] - p2[t] - 2 * p3[t] + p4[t];
          v5[t] = 4 * p1[t] - 5 * p3[t] + p5[t];
        }
      }
    }
  }
}

/* out tiles from M [e][co][t], channels [co0, co1): A^T along the domain
 * rows and A along its columns, both over consecutive tiles; the four
 * output phases are then interleaved into the output rows. */
CG_SIMD_CLONES static void
output_transform (gpointer data, int co0, int co1)
{
  const TransformJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, tiles_x = j->tiles_x;
  gsize nt = (gsize) (j->ty1 - j->ty0) * tiles_x;
  gsize estride = (gsize) s->cout * nt;
  float *am = cg_thread_scratch ((gsize) (OT * T + OT * OT) * tiles_x);
  float *y = am + (gsize) OT * T * tiles_x;

  for (int co = co0; co < co1; co++) {
    float *plane = j->buf + (gsize) co * h * w;
    float b = j->bias ? j->bias[co] : 0.0f;
    for (int ty = j->ty0; ty < j->ty1; ty++) {
      const float *mrow = j->src + (gsize) co * nt + (gsize) (ty - j->ty0) *
          tiles_x;
      /* A^T M: am[r][c] for each column c of the domain */
      for (int c = 0; c < T; c++) {
        const float *m0 = mrow + (gsize) (0 * T + c) * estride,
            *m1 = mrow + (gsize) (1 * T + c) * estride,
            *m2 = mrow + (gsize) (2 * T + c) * estride,
            *m3 = mrow + (gsize) (3 * T + c) * estride,
            *m4 = mrow + (gsize) (4 * T + c) * estride,
            *m5 = mrow + (gsize) (5 * T + c) * estride;
        float *a0 = am + (gsize) (0 * T + c) * tiles_x,
            *a1 = am + (gsize) (1 * T + c) * tiles_x,
            *a2 = am + (gsize) (2 * T + c) * tiles_x,
            *a3 = am + (gsize) (3 * T + c) * tiles_x;
        for (int t = 0; t < tiles_x; t++) {
          a0[t] = m0[t] + m1[t] + m2[t] + m3[t] + m4[t];
          a1[t] = m1[t] - m2[t] + 2 * (m3[t] - m4[t]);
          a2[t] = m1[t] + m2[t] + 4 * (m3[t] + m4[t]);
          a3[t] = m1[t] - m2[t] + 8 * (m3[t] - m4[t]) + m5[t];
        }
      }
      /* (A^T M) A: y[r][q] */
      for (int r = 0; r < OT; r++) {
        const float *a = am + (gsize) r * T * tiles_x;
        const float *c0 = a, *c1 = a + tiles_x, *c2 = a + 2 * tiles_x,
            *c3 = a + 3 * tiles_x, *c4 = a + 4 * tiles_x, *c5 =
            a + 5 * tiles_x;
        float *y0 = y + (gsize) (r * OT) * tiles_x, *y1 = y0 + tiles_x,
            *y2 = y1 + tiles_x, *y3 = y2 + tiles_x;
        for (int t = 0; t < tiles_x; t++) {
          y0[t] = c0[t] + c1[t] + c2[t] + c3[t] + c4[t] + b;
          y1[t] = c1[t] - c2[t] + 2 * (c3[t] - c4[t]) + b;
          y2[t] = c1[t] + c2[t] + 4 * (c3[t] + c4[t]) + b;
          y3[t] = c1[t] - c2[t] + 8 * (c3[t] - c4[t]) + c5[t] + b;
        }
      }
      for (int r = 0; r < OT && ty * OT + r < h; r++) {
        float *orow = plane + (gsize) (ty * OT + r) * w;
        const float *y0 = y + (gsize) (r * OT) * tiles_x, *y1 = y0 + tiles_x,
            *y2 = y1 + tiles_x, *y3 = y2 + tiles_x;
        int full = w / OT;
        for (int t = 0; t < full; t++) {
          orow[OT * t] = y0[t];
          orow[OT * t + 1] = y1[t];
          orow[OT * t + 2] = y2[t];
          orow[OT * t + 3] = y3[t];
        }
        for (int x = full * OT; x < w; x++)
          orow[x] = y[(gsize) (r * OT + x % OT) * tiles_x + full];
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
