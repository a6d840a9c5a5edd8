/* The Winograd input and output transforms, written once for a vector
 * width: conv_winograd.c includes this with VW = 8 (baseline and AVX2
 * clones) and VW = 16 (AVX-512), each time defining TRANSFORM_ATTRS.
 * A vector holds the same domain element of VW consecutive tiles. */

#define W_CAT_(a, b) a ## b
#define W_CAT(a, b) W_CAT_(a, b)
#define VF W_CAT (wino_vf, VW)
#define VLOAD(p) CG_VLOAD (VF, p)
#define VSTORE CG_VSTORE
#define INPUT_TRANSFORM W_CAT (input_transform, VW)
#define OUTPUT_TRANSFORM W_CAT (output_transform, VW)
#define GRAD_TRANSFORM W_CAT (grad_transform, VW)

typedef float VF __attribute__ ((vector_size (VW * sizeof (float))));


#if VW == 16
/* 64 floats = 16 tiles x 4 column phases, split into the 4 phases: per
 * phase two two-source permutes take 8 tiles each, a lane shuffle joins
 * them (the scalar split was 3x the transform's own work). */
static inline __attribute__ ((always_inline, target ("avx512f")))
void
deinterleave4x16_regs (__m512 a0, __m512 a1, __m512 a2, __m512 a3,
    __m512 d[4])
{
  for (int p = 0; p < 4; p++) {
    __m512i idx = _mm512_setr_epi32 (p, p + 4, p + 8, p + 12, p + 16,
        p + 20, p + 24, p + 28, p, p + 4, p + 8, p + 12, p + 16, p + 20,
        p + 24, p + 28);
    __m512 lo = _mm512_permutex2var_ps (a0, idx, a1);
    __m512 hi = _mm512_permutex2var_ps (a2, idx, a3);
    d[p] = _mm512_shuffle_f32x4 (lo, hi, 0x44);
  }
}

static inline __attribute__ ((always_inline, target ("avx512f")))
void
deinterleave4x16 (__m512 a0, __m512 a1, __m512 a2, __m512 a3, float *d0,
    float *d1, float *d2, float *d3)
{
  __m512 d[4];

  deinterleave4x16_regs (a0, a1, a2, a3, d);
  _mm512_storeu_ps (d0, d[0]);
  _mm512_storeu_ps (d1, d[1]);
  _mm512_storeu_ps (d2, d[2]);
  _mm512_storeu_ps (d3, d[3]);
}

/* Lanes [lo, hi) of 16 (none when hi <= lo). */
static inline __mmask16
lane_mask (int lo, int hi)
{
  return hi > lo ? (__mmask16) ((0xffffu >> (16 - hi)) & (0xffffu << lo)) : 0;
}

/* Floats [px0, px0 + 16) of a padded row (pad 1: px = x + 1; zero past
 * the padded edge), loaded straight from the image row `src`. Copying
 * the row into a buffer first cost more than the transform: the
 * deinterleave's vector loads straddled the copy's stores and waited for
 * them to retire. With `norm`, the image's values (reflections included)
 * are taken as ReLU (x * scale + offset). */
static inline __attribute__ ((always_inline, target ("avx512f")))
__m512
padded_chunk (const float *src, int w, gboolean reflect, int px0,
    gboolean norm, __m512 scale, __m512 offset)
{
  int lo, hi, l;
  __mmask16 real;
  __m512 v;

  if (px0 >= 1 && px0 + 16 <= w + 1) {
    v = _mm512_loadu_ps (src + px0 - 1);
    return norm ? _mm512_max_ps (_mm512_fmadd_ps (v, scale, offset),
        _mm512_setzero_ps ()) : v;
  }
  lo = MAX (0, 1 - px0);
  hi = CLAMP (w + 1 - px0, 0, 16);
  real = lane_mask (lo, hi);
  v = _mm512_maskz_loadu_ps (real, src + px0 - 1);
  if (reflect) {
    if (px0 == 0) {
      v = _mm512_mask_mov_ps (v, 1,
          _mm512_set1_ps (src[cg_reflect_index (-1, w)]));
      real |= 1;
    }
    l = w + 1 - px0;
    if (l >= 0 && l < 16) {
      v = _mm512_mask_mov_ps (v, (__mmask16) (1u << l),
          _mm512_set1_ps (src[cg_reflect_index (w, w)]));
      real |= (__mmask16) (1u << l);
    }
  }
  /* the zero padding and what lies past the padded edge stay zero */
  return norm ? _mm512_maskz_max_ps (real, _mm512_fmadd_ps (v, scale,
          offset), _mm512_setzero_ps ()) : v;
}

/* The tiles t .. t + n - 1 of a band (txp per tile row, the last of each
 * a spare) go to or come from the image in runs of real tiles of one
 * tile row. The run from lane l0: its tile row and column, its length
 * in lanes (at least 1: a spare tile is a run of one that touches
 * nothing), and the floats [fa, fb) of the 16 tiles' interleaved rows
 * (4 per tile) that lie inside the image at x = 4 tx + f - fa. */
typedef struct
{
  int ty, tx, len, fa, fb;
} TileRun;

static inline TileRun
tile_run (int t, int l0, int n, int ty0, int txp, int tiles_x, int w)
{
  int tt = t + l0, tx = tt % txp;
  TileRun run = { ty0 + tt / txp, tx, 1, OT * l0, OT * l0 };

  if (tx < tiles_x) {
    run.len = MIN (n - l0, tiles_x - tx);
    run.fb = MIN (OT * (l0 + run.len), run.fa + w - OT * tx);
  }
  return run;
}

/* Output tiles t .. t + n - 1 of the band into the plane: y[r][qq] holds
 * row r, column qq of 16 tiles. Per row r the four vectors are
 * interleaved into the 64 floats of 16 tiles side by side; each run of
 * lanes that are real tiles of one tile row is then stored with masks
 * (spare tiles and pixels past the edge left out). Storing the tiles'
 * floats one by one was most of this transform's time. With `want_sums`,
 * the stored values' sums of (x - shift) and (x - shift)^2 are added to
 * sums.s1 and sums.s2 lane by lane, for the norm's moments; the sums go
 * in and come back by value, so that they stay in registers (through a
 * pointer GCC kept them on the stack, and each update waited for the
 * last one's store). */
typedef struct
{
  __m512 s1, s2;
} Sums16;

static inline __attribute__ ((always_inline, target ("avx512f")))
Sums16
store_tiles16 (wino_vf16 y[OT][OT], float *plane, int t, int n, int ty0,
    int txp, int tiles_x, int h, int w, __m512 shift, gboolean want_sums,
    Sums16 sums)
{
  const __m512i pair_lo = _mm512_setr_epi32 (0, 16, 1, 17, 2, 18, 3, 19, 4,
      20, 5, 21, 6, 22, 7, 23);
  const __m512i pair_hi = _mm512_setr_epi32 (8, 24, 9, 25, 10, 26, 11, 27,
      12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i quad_lo = _mm512_setr_epi32 (0, 1, 16, 17, 2, 3, 18, 19, 4,
      5, 20, 21, 6, 7, 22, 23);
  const __m512i quad_hi = _mm512_setr_epi32 (8, 9, 24, 25, 10, 11, 26, 27,
      12, 13, 28, 29, 14, 15, 30, 31);
  __m512 a[OT][4];

  for (int r = 0; r < OT; r++) {
    __m512 y0 = (__m512) y[r][0], y1 = (__m512) y[r][1];
    __m512 y2 = (__m512) y[r][2], y3 = (__m512) y[r][3];
    __m512 u01l = _mm512_permutex2var_ps (y0, pair_lo, y1);
    __m512 u01h = _mm512_permutex2var_ps (y0, pair_hi, y1);
    __m512 u23l = _mm512_permutex2var_ps (y2, pair_lo, y3);
    __m512 u23h = _mm512_permutex2var_ps (y2, pair_hi, y3);
    a[r][0] = _mm512_permutex2var_ps (u01l, quad_lo, u23l);
    a[r][1] = _mm512_permutex2var_ps (u01l, quad_hi, u23l);
    a[r][2] = _mm512_permutex2var_ps (u01h, quad_lo, u23h);
    a[r][3] = _mm512_permutex2var_ps (u01h, quad_hi, u23h);
  }

  for (int l0 = 0; l0 < n;) {
    TileRun u = tile_run (t, l0, n, ty0, txp, tiles_x, w);
    for (int r = 0; r < OT && u.ty * OT + r < h && u.fa < u.fb; r++) {
      float *orow = plane + (gsize) (u.ty * OT + r) * w + OT * u.tx - u.fa;
      for (int k = 0; k < 4; k++) {
        __mmask16 m = lane_mask (MAX (u.fa, 16 * k) - 16 * k,
            MIN (u.fb, 16 * k + 16) - 16 * k);
        if (m) {
          _mm512_mask_storeu_ps (orow + 16 * k, m, a[r][k]);
          if (want_sums) {
            __m512 d = _mm512_maskz_sub_ps (m, a[r][k], shift);
            sums.s1 = _mm512_add_ps (sums.s1, d);
            sums.s2 = _mm512_fmadd_ps (d, d, sums.s2);
          }
        }
      }
    }
    l0 += u.len;
  }
  return sums;
}

/* The adjoint of store_tiles16: y[r][qq] = row r, column qq of tiles t ..
 * t + n - 1, each run of real tiles of one tile row read with masked
 * loads; spare tiles and pixels past the edge read as zero. */
static inline __attribute__ ((always_inline, target ("avx512f")))
void
load_tiles16 (wino_vf16 y[OT][OT], const float *plane, int t, int n,
    int ty0, int txp, int tiles_x, int h, int w)
{
  __m512 a[OT][4];

  for (int r = 0; r < OT; r++)
    for (int k = 0; k < 4; k++)
      a[r][k] = _mm512_setzero_ps ();
  for (int l0 = 0; l0 < n;) {
    TileRun u = tile_run (t, l0, n, ty0, txp, tiles_x, w);
    for (int r = 0; r < OT && u.ty * OT + r < h && u.fa < u.fb; r++) {
      const float *irow = plane + (gsize) (u.ty * OT + r) * w + OT * u.tx -
          u.fa;
      for (int k = 0; k < 4; k++) {
        __mmask16 m = lane_mask (MAX (u.fa, 16 * k) - 16 * k,
            MIN (u.fb, 16 * k + 16) - 16 * k);
        if (m)
          a[r][k] = _mm512_mask_loadu_ps (a[r][k], m, irow + 16 * k);
      }
    }
    l0 += u.len;
  }
  for (int r = 0; r < OT; r++) {
    __m512 d[4];
    deinterleave4x16_regs (a[r][0], a[r][1], a[r][2], a[r][3], d);
    for (int qq = 0; qq < OT; qq++)
      y[r][qq] = (wino_vf16) d[qq];
  }
}
#endif

/* V [e] for the band's tiles, channels [ci0, ci1): tile t of channel ci
 * at e * estride + ci * cstride + (t / NR) * pstride + t % NR (NR =
 * CG_GEMM_NR), the last panel's columns past the last tile zero. The
 * forward writes cg_gemm_packed's B panels (cstride NR, pstride cin * NR),
 * the weight gradient plain rows (pstride NR).
 *
 * The padded rows of each tile row are split by column phase (x mod 4)
 * into q[phase][r][t], tile-major; a tile's 6x6 input is then
 * q[c % 4][r][t + c / 4], and the transforms run VW tiles at a time. */
TRANSFORM_ATTRS static void
INPUT_TRANSFORM (gpointer data, int ci0, int ci1)
{
  const TransformJob *j = data;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, txp = j->tiles_x + SPARE;
  int ntp = (j->ty1 - j->ty0) * txp;
  gsize qs = q_stride (ntp);
  gsize estride = j->estride, pstride = j->pstride;
  float *row = cg_thread_scratch (transform_rows_floats (txp, ntp));
  float *q = row + row_floats (txp);
#if VW == 16
  gboolean reflect = s->pad_mode == CG_PAD_REFLECT;
#endif

  for (int ci = ci0; ci < ci1; ci++) {
    const float *plane = j->src + (gsize) ci * h * w;
    float *v = j->buf + (gsize) ci * j->cstride;
    float scale = 1.0f, offset = 0.0f;
#if VW == 16
    __m512 vscale, voffset;
#endif

    if (j->in_norm)
      cg_moments_coeffs (&j->in_norm[ci], &scale, &offset);
#if VW == 16
    vscale = _mm512_set1_ps (scale);
    voffset = _mm512_set1_ps (offset);
#endif

    for (int ty = j->ty0; ty < j->ty1; ty++)
      for (int r = 0; r < T; r++) {
        gsize t0 = (gsize) (ty - j->ty0) * txp;
        float *q0 = q + (gsize) (0 * T + r) * qs + t0, *q1 =
            q + (gsize) (1 * T + r) * qs + t0, *q2 =
            q + (gsize) (2 * T + r) * qs + t0, *q3 =
            q + (gsize) (3 * T + r) * qs + t0;
#if VW == 16
        /* whole vectors, also past the row's last tile: what lands
         * there is overwritten by the next tile row or zeroed below */
        int py = ty * OT + r, iy = py - 1;
        const float *src = NULL;
        if (py < h + 2 && (reflect || (iy >= 0 && iy < h)))
          src = plane + (gsize) cg_reflect_index (iy, h) * w;
        for (int tx = 0; tx < txp; tx += 16) {
          __m512 a[4];
          for (int k = 0; k < 4; k++)
            a[k] = src ? padded_chunk (src, w, reflect, OT * tx + 16 * k,
                j->in_norm != NULL, vscale, voffset) : _mm512_setzero_ps ();
          deinterleave4x16 (a[0], a[1], a[2], a[3], q0 + tx, q1 + tx,
              q2 + tx, q3 + tx);
        }
#else
        padded_row (row, plane, s, h, w, ty * OT + r, OT * txp);
        if (j->in_norm)
          norm_padded_row (row, s, h, w, ty * OT + r, OT * txp, scale,
              offset);
        for (int tx = 0; tx < txp; tx++) {
          q0[tx] = row[OT * tx];
          q1[tx] = row[OT * tx + 1];
          q2[tx] = row[OT * tx + 2];
          q3[tx] = row[OT * tx + 3];
        }
#endif
      }
    for (int p = 0; p < 4; p++)
      for (int r = 0; r < T; r++)
        memset (q + (gsize) (p * T + r) * qs + ntp, 0,
            sizeof (float) * (qs - ntp));

    for (int t = 0; t < ntp; t += VW) {
      VF d[T][T], bd[T][T], vv[T];
      for (int r = 0; r < T; r++) {
        for (int c = 0; c < T; c++)
          d[c][r] = VLOAD (q + (gsize) ((c % 4) * T + r) * qs + t +
              c / 4);
      }
      /* B^T along the rows r, for each column c: bd[c][i] */
      for (int c = 0; c < T; c++)
        BT6 (bd[c], d[c]);
      /* then along the columns, for each row i */
      for (int i = 0; i < T; i++) {
        VF col[T];
        for (int c = 0; c < T; c++)
          col[c] = bd[c][i];
        BT6 (vv, col);
        for (int jj = 0; jj < T; jj++) {
          float *dst = v + (gsize) (i * T + jj) * estride +
              (gsize) (t / CG_GEMM_NR) * pstride + t % CG_GEMM_NR;
          VSTORE (dst, vv[jj]);
        }
      }
    }
    /* The last vector's tiles past ntp came out zero (q is zero there);
     * zero the rest of the last panel. */
    for (int t = (ntp + VW - 1) / VW * VW; t % CG_GEMM_NR; t += VW)
      for (int e = 0; e < E; e++)
        VSTORE (v + (gsize) e * estride + (gsize) (t / CG_GEMM_NR) * pstride +
            t % CG_GEMM_NR, (VF) { 0 });
  }
}

/* out tiles from M [e][co][t], channels [co0, co1): A^T M A, VW tiles at a
 * time, then each tile's 4x4 into the output (spare tiles and what hangs
 * over the edge dropped). */
TRANSFORM_ATTRS static void
OUTPUT_TRANSFORM (gpointer data, int co0, int co1)
{
  const TransformJob *j = data;
  int h = j->h, w = j->w, tiles_x = j->tiles_x, txp = tiles_x + SPARE;
  int ntp = (j->ty1 - j->ty0) * txp;
  gsize estride = j->estride;

  for (int co = co0; co < co1; co++) {
    float *plane = j->buf + (gsize) co * h * w;
    const float *m = j->src + (gsize) co * ntp;
    float b = j->bias ? j->bias[co] : 0.0f;
#if VW == 16
    /* the moments from the values as they are stored, about the bias,
     * folded into double every MOMENT_VECTORS vectors; reading the band's
     * rows once more for them left ngf 16 at 640x480 at 50-52 ms a frame
     * against 44-46 */
    Sums16 sums = { _mm512_setzero_ps (), _mm512_setzero_ps () };
    double s1 = 0.0, s2 = 0.0;
#endif

    for (int t = 0; t < ntp; t += VW) {
      VF am[T][OT], y[OT][OT];
#if VW != 16
      float ys[OT][OT][VW];
#endif
      int n = MIN (VW, ntp - t);
      /* A^T along the domain rows, for each column c */
      for (int c = 0; c < T; c++) {
        VF x[T];
        for (int i = 0; i < T; i++)
          x[i] = VLOAD (m + (gsize) (i * T + c) * estride + t);
        AT4 (am[c], x);
      }
      /* then along the columns */
      for (int r = 0; r < OT; r++) {
        VF x[T];
        for (int c = 0; c < T; c++)
          x[c] = am[c][r];
        AT4 (y[r], x);
        for (int qq = 0; qq < OT; qq++)
          y[r][qq] += b;
      }
#if VW == 16
      sums = store_tiles16 (y, plane, t, n, j->ty0, txp, tiles_x, h, w,
          _mm512_set1_ps (b), j->moments != NULL, sums);
      if (j->moments && ((t / VW) % MOMENT_VECTORS == MOMENT_VECTORS - 1
              || t + VW >= ntp)) {
        s1 += _mm512_reduce_add_ps (sums.s1);
        s2 += _mm512_reduce_add_ps (sums.s2);
        sums.s1 = sums.s2 = _mm512_setzero_ps ();
      }
#else
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
#endif
    }
    if (j->moments) {
      int y0 = j->ty0 * OT, y1 = MIN (j->ty1 * OT, h);
#if VW == 16
      cg_moments_from_sums (&j->moments[co], (double) (y1 - y0) * w, b, s1,
          s2);
#else
      /* the band's rows of this channel, just written */
      cg_moments_of_span (&j->moments[co], plane + (gsize) y0 * w,
          (gsize) (y1 - y0) * w);
#endif
    }
  }
}

/* A x: the adjoint of AT4, four in, six out. */
#define A6(o, x) G_STMT_START { \
  o[0] = x[0]; \
  o[1] = x[0] + x[1] + x[2] + x[3]; \
  o[2] = x[0] - x[1] + x[2] - x[3]; \
  o[3] = x[0] + 2 * x[1] + 4 * x[2] + 8 * x[3]; \
  o[4] = x[0] - 2 * x[1] + 4 * x[2] - 8 * x[3]; \
  o[5] = x[3]; \
} G_STMT_END

/* dM [e][co][t] = A dY_t A^T, the adjoint of OUTPUT_TRANSFORM, channels
 * [co0, co1) of dY (src) into plain rows of dM (buf): row co of element e
 * at e * estride + co * cstride, the band's ntp tiles only (the products
 * read no further). Spare tiles and the parts of tiles past the edge had
 * their outputs dropped, so their gradient is zero. */
TRANSFORM_ATTRS static void
GRAD_TRANSFORM (gpointer data, int co0, int co1)
{
  const TransformJob *j = data;
  int h = j->h, w = j->w, tiles_x = j->tiles_x, txp = tiles_x + SPARE;
  int ntp = (j->ty1 - j->ty0) * txp;
  gsize estride = j->estride;

  for (int co = co0; co < co1; co++) {
    const float *plane = j->src + (gsize) co * h * w;
    float *dm = j->buf + (gsize) co * j->cstride;

    for (int t = 0; t < ntp; t += VW) {
      VF y[OT][OT], ay[OT][T];
      int n = MIN (VW, ntp - t);
#if VW == 16
      load_tiles16 (y, plane, t, n, j->ty0, txp, tiles_x, h, w);
#else
      float ys[OT][OT][VW];
      memset (ys, 0, sizeof ys);
      for (int l = 0; l < n; l++) {
        int tt = t + l, ty = j->ty0 + tt / txp, tx = tt % txp;
        int oy0 = ty * OT, ox0 = tx * OT;
        if (tx >= tiles_x)
          continue;
        for (int r = 0; r < OT && oy0 + r < h; r++) {
          const float *irow = plane + (gsize) (oy0 + r) * w + ox0;
          int nx = MIN (OT, w - ox0);
          for (int qq = 0; qq < nx; qq++)
            ys[r][qq][l] = irow[qq];
        }
      }
      memcpy (y, ys, sizeof y);
#endif
      /* A along the rows of dY, for each column qq: ay[qq][i] */
      for (int qq = 0; qq < OT; qq++) {
        VF x[OT];
        for (int r = 0; r < OT; r++)
          x[r] = y[r][qq];
        A6 (ay[qq], x);
      }
      /* then along the columns, for each domain row i */
      for (int i = 0; i < T; i++) {
        VF x[OT], o[T];
        for (int qq = 0; qq < OT; qq++)
          x[qq] = ay[qq][i];
        A6 (o, x);
        for (int c = 0; c < T; c++) {
          float *dst = dm + (gsize) (i * T + c) * estride + t;
          if (n == VW)
            VSTORE (dst, o[c]);
          else
            memcpy (dst, &o[c], sizeof (float) * n);
        }
      }
    }
  }
}

#undef A6
#undef VF
#undef VLOAD
#undef VSTORE
#undef INPUT_TRANSFORM
#undef OUTPUT_TRANSFORM
#undef GRAD_TRANSFORM
