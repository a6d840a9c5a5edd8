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
#else
#define MAX_NCO 4
#define MAX_NV 4
#endif


/* Output row y, channels [co, co + NCO), x in [x0, x0 + VW NV): the NCO x
 * NV accumulators stay in registers through all cin*k*k taps, and each
 * input vector loaded feeds NCO channels, from t->rows[ci * k + ky], the
 * padded input rows in the task's ring. tanh, where asked, is taken while
 * the outputs are in registers. Only the first `nstore` outputs are
 * stored (fewer than VW NV in a row narrower than one vector). Called
 * with constant NCO/NV so that the loops unroll. */
static inline __attribute__ ((always_inline))
void
TAPS_BLOCK (const ThinForward * j, const ThinRows * t, int y, int co,
    int x0, int count0, int nstore, const int NCO, const int NV)
{
  const CgConvShape *s = j->s;
  const float *const *rows = t->rows;
  float *sums = j->moments ? t->sums : NULL;
  int k = s->k, nrows = s->cin * k;
  gsize wstride = (gsize) nrows * k;
  const float *wbase = j->weight + (gsize) co * wstride;
  VF acc[MAX_NCO][MAX_NV];

  for (int c = 0; c < NCO; c++) {
    VF b = (VF) { } + (j->bias ? j->bias[co + c] : 0.0f);
    for (int v = 0; v < NV; v++)
      acc[c][v] = b;
  }
  for (int i = 0; i < nrows; i++) {
    const float *r = rows[i] + x0;
    const float *wk = wbase + (gsize) i * k;
    /* Each row is read for a few dozen cycles, then the next: the
     * hardware prefetchers missed them (16 -> 3 at 640x480, one thread:
     * 57.6 -> 66.4 GMAC/s fetching two rows ahead). Where a block is
     * two vectors wide (3 -> 16), the prefetches cost more than they
     * saved. */
    if (NV > 2 && i + 2 < nrows) {
      const float *p = rows[i + 2] + x0;
      for (int v = 0; v <= NV; v++)
        __builtin_prefetch (p + VW * v);
    }
    for (int kx = 0; kx < k; kx++) {
      VF in[MAX_NV];
      for (int v = 0; v < NV; v++) {
        in[v] = VLOAD (r + kx + VW * v);
#if VW == 16
        /* Keep the input in a register: GCC otherwise folds the load
         * into each channel's FMA, reading it NCO times (half speed). */
        __asm__ ("":"+v" (in[v]));
#endif
      }
      for (int c = 0; c < NCO; c++) {
        float wt = wk[c * wstride + kx];
        for (int v = 0; v < NV; v++)
          acc[c][v] += in[v] * wt;
      }
    }
  }
  /* the row's sums for the norm's moments, of lanes [count0, nstore) */
  if (sums)
    for (int c = 0; c < NCO; c++) {
      VF sh = (VF) { } + (j->bias ? j->bias[co + c] : 0.0f);
      VF s1 = VLOAD (sums + (gsize) (co + c) * VW);
      VF s2 = VLOAD (sums + (gsize) (j->s->cout + co + c) * VW);
      for (int v = 0; v < NV; v++) {
        VF d = acc[c][v] - sh;
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
        memcpy (half, &acc[c][v], sizeof half);
        for (int hh = 0; hh < VW / 8; hh++)
          half[hh] = cg_v8_tanh (half[hh]);
        memcpy (&acc[c][v], half, sizeof half);
      }
  for (int c = 0; c < NCO; c++) {
    float *o = j->out + ((gsize) (co + c) * j->oh + y) * j->ow + x0;
    if (nstore >= VW * NV)
      for (int v = 0; v < NV; v++)
        VSTORE (o + VW * v, acc[c][v]);
    else
      memcpy (o, &acc[c][0], sizeof (float) * nstore);
  }
}

/* Channels [co, co + NCO) of row y: blocks of NV vectors, one block of
 * the vectors left over, then one vector ending at the row's end (it
 * recomputes a few outputs), or a part of one in a row narrower than a
 * vector. */
static inline __attribute__ ((always_inline))
void
CHANNEL_GROUP (const ThinForward * j, ThinRows * t, int y, int co,
    const int NCO, const int NV)
{
  int nvec = j->ow / VW, x = 0;

  for (; x + VW * NV <= VW * nvec; x += VW * NV)
    TAPS_BLOCK (j, t, y, co, x, 0, VW * NV, NCO, NV);
  switch (nvec - x / VW) {
#define REST(n) case n: \
    if (n < NV) TAPS_BLOCK (j, t, y, co, x, 0, VW * n, NCO, n); \
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
    TAPS_BLOCK (j, t, y, co, x, VW * nvec - x, MIN (j->ow, VW), NCO, 1);
  }
}

/* Register budget: NCO x NV accumulators plus NV inputs within the
 * vector registers (16 ymm with AVX2, 32 zmm with AVX-512). The input
 * layer (3 -> ngf) takes wide channel groups; the output layer's 3
 * channels go together where registers allow (AVX-512), else in pairs
 * and singles, which measured faster than three that spill. Tasks are
 * runs of output rows, each with its own ring of padded input rows. */
THIN_FUNC_ATTRS static void
THIN_ROWS (gpointer data, int begin, int end)
{
  const ThinForward *j = data;
  int cout = j->s->cout;

  for (int task = begin; task < end; task++) {
    ThinRows t = thin_task_rows (j, task);
    int y1 = MIN ((task + 1) * j->task_rows, j->oh);

    for (int y = task * j->task_rows; y < y1; y++) {
      int co = 0;
      thin_row_pointers (j, &t, y, y == task * j->task_rows);
      if (j->moments)
        memset (t.sums, 0, sizeof (float) * 2 * cout * VW);
#if VW == 16
      for (; co + 8 <= cout; co += 8)
        CHANNEL_GROUP (j, &t, y, co, 8, 2);
      for (; co + 4 <= cout; co += 4)
        CHANNEL_GROUP (j, &t, y, co, 4, 4);
      for (; co + 3 <= cout; co += 3)
        CHANNEL_GROUP (j, &t, y, co, 3, 6);
      for (; co + 2 <= cout; co += 2)
        CHANNEL_GROUP (j, &t, y, co, 2, 8);
      for (; co < cout; co++)
        CHANNEL_GROUP (j, &t, y, co, 1, 8);
#else
      for (; co + 4 <= cout; co += 4)
        CHANNEL_GROUP (j, &t, y, co, 4, 2);
      for (; co + 2 <= cout; co += 2)
        CHANNEL_GROUP (j, &t, y, co, 2, 4);
      for (; co < cout; co++)
        CHANNEL_GROUP (j, &t, y, co, 1, 4);
#endif
      if (j->moments)
        thin_row_moments (j, &t, y, VW);
    }
  }
}

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
#undef VLOAD
#undef VSTORE
#undef TAPS_BLOCK
#undef CHANNEL_GROUP
