/* The thin convolution's inner loops, written once for a vector width:
 * conv_thin.c includes this with VW = 8 (baseline and AVX2 clones) and
 * VW = 16 (AVX-512), each time defining
 *   VW              floats per vector,
 *   THIN_FUNC_ATTRS attributes of the entry point (clones, target),
 *   THIN_ROWS       the entry point's name.
 * Needs ThinForward, ThinRows, thin_task_rows, thin_row_pointers,
 * thin_row_moments and ThinJob from conv_thin.c. */

#define THIN_CAT_(a, b) a ## b
#define THIN_CAT(a, b) THIN_CAT_(a, b)
#define VF THIN_CAT (thin_vf, VW)
#define VI THIN_CAT (thin_vi, VW)
#define TAPS_BLOCK THIN_CAT (taps_block, VW)
#define CHANNEL_GROUP THIN_CAT (channel_group, VW)
#define VLOAD(p) CG_VLOAD (VF, p)
#define VSTORE CG_VSTORE

typedef float VF __attribute__ ((vector_size (VW * sizeof (float))));
typedef int VI __attribute__ ((vector_size (VW * sizeof (int))));

/* The largest channel group and vector count used below: the register
 * arrays must not be larger, or GCC keeps them in memory. */
#if VW == 16
#define MAX_NCO 8
#define MAX_NV 8
#define MAX_ROWS 2
#else
#define MAX_NCO 4
#define MAX_NV 4
#define MAX_ROWS 1
#endif


/* Output rows [y, y + NROWS) (NROWS 1 or 2), channels [co, co + NCO), x
 * in [x0, x0 + VW NV): the NROWS x NCO x NV accumulators stay in
 * registers through all the taps, and each input vector loaded feeds
 * NCO channels of each output row it reaches. Input row t->y0 + i of
 * channel ci is t->rows[ci * (k + 1) + i], in the task's ring. tanh,
 * where asked, is taken while the outputs are in registers. Only the
 * first `nstore` outputs of a row are stored (fewer than VW NV in a row
 * narrower than one vector). Called with constant NROWS/NCO/NV so that
 * the loops unroll.
 *
 * Two rows at a time read each input vector once for both (k + 1 input
 * rows a channel for 2 output rows, against 2k; 3 loads for 18 FMAs
 * where one row took 6 for 18): alone, one thread, 16 -> 3 at 640x480
 * 69.4-70.2 -> 75.1 GMAC/s, 64 -> 3 at 256x256 69.2 -> 75.0 (2 x 3 x 3
 * vectors 67.9, 2 x 3 x 5 spilled: 63). */
static inline __attribute__ ((always_inline))
void
TAPS_BLOCK (const ThinForward * j, const ThinRows * t, int y, int co,
    int x0, int count0, int nstore, const int NROWS, const int NCO,
    const int NV)
{
  /* the ring's pointers are those of output row t->y0; y is t->y0 or,
   * alone, t->y0 + 1 */
  int dy = y - t->y0;
  const CgConvShape *s = j->s;
  const float *const *rows = t->rows;
  float *sums = j->moments ? t->sums : NULL;
  int k = s->k, cin = s->cin, nin = k + NROWS - 1;
  /* the taps of kernel row ky: packed + block + ((ci * k + ky) * k + kx)
   * * PACK + co % PACK */
  gsize krow = (gsize) k * PACK;
  const float *wblock = j->packed + (gsize) co / PACK * cin * k * k * PACK +
      co % PACK;
  VF acc[MAX_ROWS][MAX_NCO][MAX_NV];

  for (int q = 0; q < NROWS; q++)
    for (int c = 0; c < NCO; c++) {
      VF b = (VF) { } + (j->bias ? j->bias[co + c] : 0.0f);
      for (int v = 0; v < NV; v++)
        acc[q][c][v] = b;
    }
  for (int ci = 0; ci < cin; ci++)
    for (int i = 0; i < nin; i++) {
      const float *r = rows[ci * (k + 1) + dy + i] + x0;
      /* output row q takes input row i with kernel row i - q */
      const float *w0 = wblock + ((gsize) ci * k + i) * krow;
      const float *w1 = w0 - krow;
      /* Each row is read for a few dozen cycles, then the next: the
       * hardware prefetchers missed them (16 -> 3 at 640x480, one
       * thread: 57.6 -> 66.4 GMAC/s fetching two rows ahead). Where a
       * block is two vectors wide (3 -> 16), the prefetches cost more
       * than they saved. */
      if (NV > 2) {
        int ni = i + 2, nci = ci;
        if (ni >= nin) {
          ni -= nin;
          nci++;
        }
        if (nci < cin) {
          const float *p = rows[nci * (k + 1) + dy + ni] + x0;
          for (int v = 0; v <= NV; v++)
            __builtin_prefetch (p + VW * v);
        }
      }
      /* one input row's k taps into the output rows it reaches: the
       * first (kernel row i) if USE0, the second (kernel row i - 1) if
       * USE1, as three loops rather than tests in one. The input stays
       * in a register: GCC otherwise folds each load into every
       * channel's FMA, reading it NCO times (half speed). */
#if VW == 16
#define KEEP_IN_REGISTER(x) __asm__ ("":"+v" (x))
#else
#define KEEP_IN_REGISTER(x)
#endif
#define TAP_ROW(USE0, USE1) \
      for (int kx = 0; kx < k; kx++) { \
        VF in[MAX_NV]; \
        for (int v = 0; v < NV; v++) { \
          in[v] = VLOAD (r + kx + VW * v); \
          KEEP_IN_REGISTER (in[v]); \
        } \
        if (USE0) \
          for (int c = 0; c < NCO; c++) { \
            float wt = w0[kx * PACK + c]; \
            for (int v = 0; v < NV; v++) \
              acc[0][c][v] += in[v] * wt; \
          } \
        if (USE1) \
          for (int c = 0; c < NCO; c++) { \
            float wt = w1[kx * PACK + c]; \
            for (int v = 0; v < NV; v++) \
              acc[NROWS - 1][c][v] += in[v] * wt; \
          } \
      }
      if (NROWS == 1)
        TAP_ROW (1, 0)
      else if (i == 0)
        TAP_ROW (1, 0)
      else if (i < k)
        TAP_ROW (1, 1)
      else
        TAP_ROW (0, 1)
#undef TAP_ROW
#undef KEEP_IN_REGISTER
    }
  for (int q = 0; q < NROWS; q++) {
    /* the rows' sums for the norm's moments, of lanes [count0, nstore) */
    if (sums)
      for (int c = 0; c < NCO; c++) {
        VF sh = (VF) { } + (j->bias ? j->bias[co + c] : 0.0f);
        VF s1 = VLOAD (sums + (gsize) (co + c) * VW);
        VF s2 = VLOAD (sums + (gsize) (j->s->cout + co + c) * VW);
        for (int v = 0; v < NV; v++) {
          VF d = acc[q][c][v] - sh;
          if (NV == 1 && (count0 > 0 || nstore < VW)) {
            VI lane, keep;
            for (int l = 0; l < VW; l++)
              lane[l] = l;
            keep = (lane >= count0) & (lane < nstore);
            d = (VF) ((VI) d & keep);
          }
          s1 += d;
          s2 += d * d;
        }
        VSTORE (sums + (gsize) (co + c) * VW, s1);
        VSTORE (sums + (gsize) (j->s->cout + co + c) * VW, s2);
      }
    if (j->tanh)
      for (int c = 0; c < NCO; c++)
        for (int v = 0; v < NV; v++) {
          cg_v8 half[VW / 8];
          memcpy (half, &acc[q][c][v], sizeof half);
          for (int hh = 0; hh < VW / 8; hh++)
            half[hh] = cg_v8_tanh (half[hh]);
          memcpy (&acc[q][c][v], half, sizeof half);
        }
    for (int c = 0; c < NCO; c++) {
      float *o = j->out + ((gsize) (co + c) * j->oh + y + q) * j->ow + x0;
      if (nstore >= VW * NV)
        for (int v = 0; v < NV; v++)
          VSTORE (o + VW * v, acc[q][c][v]);
      else
        memcpy (o, &acc[q][c][0], sizeof (float) * nstore);
    }
  }
}

/* Channels [co, co + NCO) of rows [y, y + NROWS): blocks of NV vectors,
 * one block of the vectors left over, then one vector ending at the
 * row's end (it recomputes a few outputs), or a part of one in a row
 * narrower than a vector. */
static inline __attribute__ ((always_inline))
void
CHANNEL_GROUP (const ThinForward * j, ThinRows * t, int y, int co,
    const int NROWS, const int NCO, const int NV)
{
  int nvec = j->ow / VW, x = 0;

  for (; x + VW * NV <= VW * nvec; x += VW * NV)
    TAPS_BLOCK (j, t, y, co, x, 0, VW * NV, NROWS, NCO, NV);
  switch (nvec - x / VW) {
#define REST(n) case n: \
    if (n < NV) TAPS_BLOCK (j, t, y, co, x, 0, VW * n, NROWS, NCO, n); \
    break
      REST (1);
      REST (2);
      REST (3);
#if MAX_NV > 4
      REST (4);
      REST (5);
      REST (6);
      REST (7);
#endif
#undef REST
    default:
      break;
  }
  /* its sums count only the outputs not counted before */
  if (VW * nvec < j->ow) {
    x = MAX (j->ow - VW, 0);
    TAPS_BLOCK (j, t, y, co, x, VW * nvec - x, MIN (j->ow, VW), NROWS, NCO,
        1);
  }
}

/* Register budget: NROWS x NCO x NV accumulators plus NV inputs within
 * the vector registers (16 ymm with AVX2, 32 zmm with AVX-512). The
 * input layer (3 -> ngf) takes wide channel groups a row at a time; the
 * output layer's 3 channels go together where registers allow (AVX-512,
 * two rows at a time), else in pairs and singles, which measured faster
 * than three that spill. Tasks are runs of output rows, each with its
 * own ring of padded input rows. */
/* Each channel group's blocks as a function of its own: inlined into one
 * function, a change to one group's blocking changed the registers GCC
 * gave the others (widening the 3 -> 16 blocks slowed 16 -> 3 by 6%). */
#define GROUP__(vw, rows, nco, nv) group ## vw ## _ ## rows ## rows_ ## \
    nco ## x ## nv
#define GROUP_(vw, rows, nco, nv) GROUP__ (vw, rows, nco, nv)
#define GROUP(NROWS, NCO, NV) GROUP_ (VW, NROWS, NCO, NV)
#define DEFINE_GROUP(NROWS, NCO, NV) \
  THIN_FUNC_ATTRS __attribute__ ((noinline)) static void \
  GROUP (NROWS, NCO, NV) (const ThinForward * j, ThinRows * t, int y, \
      int co) \
  { \
    CHANNEL_GROUP (j, t, y, co, NROWS, NCO, NV); \
  }
#if VW == 16
DEFINE_GROUP (1, 8, 3)
DEFINE_GROUP (1, 4, 4)
DEFINE_GROUP (2, 3, 4)
DEFINE_GROUP (1, 3, 6)
DEFINE_GROUP (2, 2, 4)
DEFINE_GROUP (1, 2, 8)
DEFINE_GROUP (2, 1, 8)
DEFINE_GROUP (1, 1, 8)
#else
DEFINE_GROUP (1, 4, 2)
DEFINE_GROUP (1, 2, 4)
DEFINE_GROUP (1, 1, 4)
#endif
#undef DEFINE_GROUP

THIN_FUNC_ATTRS static void
THIN_ROWS (gpointer data, int begin, int end)
{
  const ThinForward *j = data;
  int cout = j->s->cout;

  for (int task = begin; task < end; task++) {
    ThinRows t = thin_task_rows (j, task);
    int y1 = MIN ((task + 1) * j->task_rows, j->oh);

    for (int y = task * j->task_rows; y < y1;) {
      int n = MAX_ROWS == 2 && y + 1 < y1 ? 2 : 1, co = 0;
      thin_row_pointers (j, &t, y, n, y == task * j->task_rows);
      t.y0 = y;
      if (j->moments)
        memset (t.sums, 0, sizeof (float) * 2 * cout * VW);
#if VW == 16
      /* wide groups a row at a time (row after row: 3 -> 16 at 640x480
       * ran 10% slower group after group) */
      for (int q = 0; q < n; q++) {
        for (co = 0; co + 8 <= cout; co += 8)
          GROUP (1, 8, 3) (j, &t, y + q, co);
        for (; co + 4 <= cout; co += 4)
          GROUP (1, 4, 4) (j, &t, y + q, co);
      }
      for (; co + 3 <= cout; co += 3)
        if (n == 2)
          GROUP (2, 3, 4) (j, &t, y, co);
        else
          GROUP (1, 3, 6) (j, &t, y, co);
      for (; co + 2 <= cout; co += 2)
        if (n == 2)
          GROUP (2, 2, 4) (j, &t, y, co);
        else
          GROUP (1, 2, 8) (j, &t, y, co);
      for (; co < cout; co++)
        if (n == 2)
          GROUP (2, 1, 8) (j, &t, y, co);
        else
          GROUP (1, 1, 8) (j, &t, y, co);
#else
      for (; co + 4 <= cout; co += 4)
        GROUP (1, 4, 2) (j, &t, y, co);
      for (; co + 2 <= cout; co += 2)
        GROUP (1, 2, 4) (j, &t, y, co);
      for (; co < cout; co++)
        GROUP (1, 1, 4) (j, &t, y, co);
#endif
      if (j->moments)
        thin_row_moments (j, &t, y, n, VW);
      y += n;
    }
  }
}
#undef GROUP
#undef GROUP_
#undef GROUP__

/* ---- The weight gradient: dweight [co][ci][ky][kx] += the sum over the
 * band's output pixels of dout [co][y][x] . xpad [ci][y + ky][x + kx].
 * A job is one (ci, ky): NCO x K accumulators, fed per VW pixels by NCO
 * dout vectors and K shifted input vectors, flushed to double every
 * WG_FLUSH rows so that long sums keep float32 accuracy. ---- */
#if VW == 16
#define WG_NCO 3
#else
#define WG_NCO 1
#endif
#define WGRAD_GROUP THIN_CAT (wgrad_group, VW)
#define WGRAD_CHANNELS THIN_CAT (wgrad_channels, VW)

static inline __attribute__ ((always_inline))
void
WGRAD_GROUP (const ThinJob * j, int ci, int ky, int co, const int NCO,
    const int K)
{
  const CgConvShape *s = j->s;
  double sum[WG_NCO][7];
  int xv = j->ow / VW * VW;

  for (int c = 0; c < NCO; c++)
    for (int kx = 0; kx < K; kx++)
      sum[c][kx] = 0.0;
  for (int yb = j->y0; yb < j->y1; yb += WG_FLUSH) {
    VF acc[WG_NCO][7];
    for (int c = 0; c < NCO; c++)
      for (int kx = 0; kx < K; kx++)
        acc[c][kx] = (VF) { };
    for (int y = yb; y < MIN (yb + WG_FLUSH, j->y1); y++) {
      const float *r = j->xp + ci * j->n + (gsize) (y - j->y0 + ky) * j->pw;
      const float *d[WG_NCO];
      for (int c = 0; c < NCO; c++)
        d[c] = j->dout + ((gsize) (co + c) * j->oh + y) * j->ow;
      for (int x = 0; x < xv; x += VW) {
        VF dv[WG_NCO];
        for (int c = 0; c < NCO; c++)
          dv[c] = VLOAD (d[c] + x);
        for (int kx = 0; kx < K; kx++) {
          VF in = VLOAD (r + x + kx);
#if VW == 16
          __asm__ ("":"+v" (in));
#endif
          for (int c = 0; c < NCO; c++)
            acc[c][kx] += dv[c] * in;
        }
      }
      for (int x = xv; x < j->ow; x++)
        for (int c = 0; c < NCO; c++)
          for (int kx = 0; kx < K; kx++)
            sum[c][kx] += (double) d[c][x] * r[x + kx];
    }
    for (int c = 0; c < NCO; c++)
      for (int kx = 0; kx < K; kx++) {
        float lanes[VW];
        double t = 0.0;
        memcpy (lanes, &acc[c][kx], sizeof lanes);
        for (int l = 0; l < VW; l++)
          t += lanes[l];
        sum[c][kx] += t;
      }
  }
  for (int c = 0; c < NCO; c++) {
    float *dw = j->dweight + (((gsize) (co + c) * s->cin + ci) * K + ky) * K;
    for (int kx = 0; kx < K; kx++)
      dw[kx] += (float) sum[c][kx];
  }
}

/* Every output channel of one (ci, ky), WG_NCO at a time, for a
 * constant K (so that the loops unroll). */
static inline __attribute__ ((always_inline))
void
WGRAD_CHANNELS (const ThinJob * j, int ci, int ky, const int K)
{
  int co = 0, cout = j->s->cout;

  for (; co + WG_NCO <= cout; co += WG_NCO)
    WGRAD_GROUP (j, ci, ky, co, WG_NCO, K);
  for (; co < cout; co++)
    WGRAD_GROUP (j, ci, ky, co, 1, K);
}

/* Jobs [begin, end) of cin x k (ci, ky); any k but 3, 4 (the
 * discriminator's last layer) and 7 takes the scalar taps_wgrad. */
THIN_FUNC_ATTRS static void
THIN_WGRAD (gpointer data, int begin, int end)
{
  const ThinJob *j = data;
  int k = j->s->k;

  for (int job = begin; job < end; job++) {
    int ci = job / k, ky = job % k;
    if (k == 7)
      WGRAD_CHANNELS (j, ci, ky, 7);
    else if (k == 4)
      WGRAD_CHANNELS (j, ci, ky, 4);
    else if (k == 3)
      WGRAD_CHANNELS (j, ci, ky, 3);
    else
      taps_wgrad (j, ci, ky);
  }
}

#undef WG_NCO
#undef WGRAD_GROUP
#undef WGRAD_CHANNELS
#undef VF
#undef VI
#undef MAX_NCO
#undef MAX_NV
#undef MAX_ROWS
#undef VLOAD
#undef VSTORE
#undef TAPS_BLOCK
#undef CHANNEL_GROUP
