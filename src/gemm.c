/* Our own AVX-512 GEMM for the convolution products.
 *
 * Why not OpenBLAS everywhere: these machines run OpenBLAS 0.3.21 with its
 * Haswell (AVX2) kernels (OPENBLAS_CORETYPE=Haswell is set system-wide,
 * and without it 0.3.21 does not recognise the CPU at all and falls back
 * to SSE3). Our products are also small and wide: Winograd's 36 per layer
 * are 64x64 by a few hundred tiles at ngf 16, where OpenBLAS's packing
 * and call overhead cost as much as the arithmetic. A register-blocked
 * AVX-512 kernel does twice the work per instruction, and with weights
 * packed once and B written into its panels by the producers (the
 * cg_gemm_packed API) the product itself moves no data.
 * `CG_FORCE_PORTABLE=1 cyclegan-bench --layers` shows the difference layer
 * by layer; tests/core/test-gemm checks both kernels against a float64
 * product on every edge shape.
 *
 * The kernel: C is cut into 8-row x 48-column tiles held in 24 zmm
 * registers; per step of k, three vectors of B's row and eight broadcasts
 * of A's column feed 24 FMAs. A and B are first packed into the order
 * the tile reads them (aligned, sequential), k in chunks of at most KC so
 * a B block (KC x 48 floats) stays in L1 while the tiles of the MC rows
 * reuse it. Column tails are masked, row tails padded with zeros.
 */
#include "gemm.h"
#include "cpu.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define MR CG_GEMM_MR
#define NR CG_GEMM_NR
#define NV (NR / 16)
#define KC 192                  /* most of k per chunk; chunks are balanced */

/* k in chunks of at most KC, all but the last of the same size */
static int
k_step (int k)
{
  int chunks = MAX ((k + KC - 1) / KC, 1);
  return MAX ((k + chunks - 1) / chunks, 1);
}

/* A's rows [0, mc) x columns [0, kc) into MR-row tiles, p-major inside a
 * tile; rows past mc are zero. A's element (i, p) is at a[i * ars + p *
 * acs]. */
static inline __attribute__ ((always_inline))
void
pack_a (float *dst, const float *a, gsize ars, gsize acs, int mc, int kc)
{
  for (int t = 0; t < mc; t += MR)
    for (int p = 0; p < kc; p++)
      for (int r = 0; r < MR; r++)
        *dst++ = t + r < mc ? a[(t + r) * ars + p * acs] : 0.0f;
}

#ifdef CG_HAVE_AVX512_KERNELS
#include <immintrin.h>

/* pack_a for A with k contiguous (acs 1): eight rows of eight floats at a
 * time, transposed in registers. The scalar loop above gathered one
 * float per cache line touched and was 3% of a training iteration (the
 * weight gradients pack dout or dM per call). Only AVX-512 machines
 * run it, so AVX2 is there. */
__attribute__ ((target ("avx2"), noinline))
static void
pack_a_rows (float *dst, const float *a, gsize lda, int mc, int kc)
{
  for (int t = 0; t < mc; t += MR, dst += (gsize) MR * kc) {
    const float *rows = a + t * lda;
    int p = 0;
    if (t + MR > mc) {
      pack_a (dst, rows, lda, 1, mc - t, kc);
      continue;
    }
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8], u[8], v[8];
      for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps (rows + i * lda + p);
      for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps (r[i], r[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps (r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        v[i] = _mm256_shuffle_ps (u[i], u[i + 2], 0x44);
        v[i + 1] = _mm256_shuffle_ps (u[i], u[i + 2], 0xee);
        v[i + 2] = _mm256_shuffle_ps (u[i + 1], u[i + 3], 0x44);
        v[i + 3] = _mm256_shuffle_ps (u[i + 1], u[i + 3], 0xee);
      }
      /* v[j] holds column p + j of rows 0-3 in its low half (and p + 4 + j
       * in its high half), v[4 + j] the same of rows 4-7 */
      for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps (dst + (gsize) (p + j) * MR,
            _mm256_permute2f128_ps (v[j], v[4 + j], 0x20));
        _mm256_storeu_ps (dst + (gsize) (p + 4 + j) * MR,
            _mm256_permute2f128_ps (v[j], v[4 + j], 0x31));
      }
    }
    pack_a (dst + (gsize) p * MR, rows + p, lda, 1, MR, kc - p);
  }
}
#endif

gsize
cg_gemm_packed_a_floats (int m, int k)
{
  return (gsize) ((m + MR - 1) / MR * MR) * k;
}

/* Chunk by chunk of k, each chunk's tiles one after another: the chunk
 * at k0 starts at k0 * mpad and its tile t at + t * kc. */
void
cg_gemm_pack_a (gboolean trans_a, int m, int k, const float *a, int lda,
    float *packed)
{
  gsize ars = trans_a ? 1 : (gsize) lda, acs = trans_a ? (gsize) lda : 1;
  int kstep = k_step (k), mpad = (m + MR - 1) / MR * MR;

  if (!cg_cpu_use_avx512 ()) {
    for (int i = 0; i < m; i++)
      for (int p = 0; p < k; p++)
        packed[(gsize) i * k + p] = a[i * ars + p * acs];
    return;
  }

  for (int k0 = 0; k0 < k; k0 += kstep) {
#ifdef CG_HAVE_AVX512_KERNELS
    if (acs == 1) {
      pack_a_rows (packed + (gsize) k0 * mpad, a + k0, ars, m,
          MIN (kstep, k - k0));
      continue;
    }
#endif
    pack_a (packed + (gsize) k0 * mpad, a + k0 * acs, ars, acs, m,
        MIN (kstep, k - k0));
  }
}

static void
gemm_blas (gboolean trans_a, int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, gboolean accumulate, float *c, int ldc)
{
  cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
      CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f,
      c, ldc);
}

/* Without AVX-512 the "packed" A is A itself, row-major, and each B
 * panel is a k x NR row-major matrix: OpenBLAS multiplies them panel by
 * panel (its Haswell kernels beat a portable C one). */
static void
gemm_packed_blas (int m, int n, int k, const float *a, const float *bp,
    gboolean accumulate, float *c, int ldc)
{
  for (int n0 = 0; n0 < n; n0 += NR)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, m,
        MIN (NR, n - n0), k, 1.0f, a, k, bp + (gsize) (n0 / NR) * k * NR, NR,
        accumulate ? 1.0f : 0.0f, c + n0, ldc);
}

/* rows [lane][x] (lanes x n, rows ld apart) -> dst [x][lane] (rows
 * CG_GEMM_NR apart), lanes past `lanes` zero. */
static void
transpose_scalar (float *dst, const float *tile, gsize ld, int lanes, int n)
{
  for (int x = 0; x < n; x++) {
    float *d = dst + (gsize) x * CG_GEMM_NR;
    int lane = 0;
    for (; lane < lanes; lane++)
      d[lane] = tile[lane * ld + x];
    for (; lane < CG_GEMM_NR; lane++)
      d[lane] = 0.0f;
  }
}

#ifdef CG_HAVE_AVX512_KERNELS

#define MC 128

/* Per-thread packing buffers, kept for the thread's life (no allocation
 * per call): A's block as [tile][p][MR], B's as [p][NR]. */
typedef struct
{
  float *a, *b;
} Packs;

static void
packs_free (gpointer p)
{
  Packs *packs = p;
  free (packs->a);
  free (packs->b);
  g_free (packs);
}

static GPrivate packs_key = G_PRIVATE_INIT (packs_free);

static Packs *
thread_packs (void)
{
  Packs *packs = g_private_get (&packs_key);

  if (!packs) {
    packs = g_new0 (Packs, 1);
    if (posix_memalign ((void **) &packs->a, 64, sizeof (float) * MC * KC)
        || posix_memalign ((void **) &packs->b, 64, sizeof (float) * KC * NR))
      g_error ("cg_gemm: out of memory for the packing buffers");
    g_private_set (&packs_key, packs);
  }
  return packs;
}

#define AVX512_INLINE \
  static inline __attribute__ ((target ("avx512f"), always_inline))

/* The same for whole 16 x 16 blocks, in registers: three rounds of
 * shuffles instead of 512 scalar moves. */
AVX512_INLINE void
transpose_avx512 (float *dst, const float *tile, gsize ld,
    int lanes, int n)
{
  int x = 0;

  for (; x + 16 <= n; x += 16)
    for (int g = 0; g < CG_GEMM_NR; g += 16) {
      __m512 r[16], t[16];
      for (int i = 0; i < 16; i++)
        r[i] = g + i < lanes ?
            _mm512_loadu_ps (tile + (g + i) * ld + x) :
            _mm512_setzero_ps ();
      for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps (r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps (r[i], r[i + 1]);
      }
      for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps (_mm512_unpacklo_pd (_mm512_castps_pd (t[i]),
                _mm512_castps_pd (t[i + 2])));
        r[i + 1] = _mm512_castpd_ps (_mm512_unpackhi_pd (_mm512_castps_pd
                (t[i]), _mm512_castps_pd (t[i + 2])));
        r[i + 2] = _mm512_castpd_ps (_mm512_unpacklo_pd (_mm512_castps_pd
                (t[i + 1]), _mm512_castps_pd (t[i + 3])));
        r[i + 3] = _mm512_castpd_ps (_mm512_unpackhi_pd (_mm512_castps_pd
                (t[i + 1]), _mm512_castps_pd (t[i + 3])));
      }
      /* r[4a + b] holds, per 128-bit lane L, the 4 columns 4L + b' of the
       * rows 4a..4a+3; gather lane L of the four row groups */
      for (int b = 0; b < 4; b++) {
        __m512 u0 = _mm512_shuffle_f32x4 (r[b], r[4 + b], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4 (r[8 + b], r[12 + b], 0x88);
        __m512 u2 = _mm512_shuffle_f32x4 (r[b], r[4 + b], 0xdd);
        __m512 u3 = _mm512_shuffle_f32x4 (r[8 + b], r[12 + b], 0xdd);
        t[b] = _mm512_shuffle_f32x4 (u0, u1, 0x88);
        t[b + 4] = _mm512_shuffle_f32x4 (u2, u3, 0x88);
        t[b + 8] = _mm512_shuffle_f32x4 (u0, u1, 0xdd);
        t[b + 12] = _mm512_shuffle_f32x4 (u2, u3, 0xdd);
      }
      for (int i = 0; i < 16; i++)
        _mm512_storeu_ps (dst + (gsize) (x + i) * CG_GEMM_NR + g, t[i]);
    }
  transpose_scalar (dst + (gsize) x * CG_GEMM_NR, tile + x, ld, lanes,
      n - x);
}


AVX512_INLINE void
pack_b (float *dst, const float *b, gsize ldb, int kc,
    const __mmask16 mask[NV])
{
  for (int p = 0; p < kc; p++)
    for (int v = 0; v < NV; v++)
      _mm512_store_ps (dst + p * NR + 16 * v,
          _mm512_maskz_loadu_ps (mask[v], b + p * ldb + 16 * v));
}

/* C's mr x NR tile (columns masked) = or += the packed tile product. */
AVX512_INLINE void
tile (int kc, const float *ap, const float *bp, float *c, gsize ldc, int mr,
    const __mmask16 mask[NV], gboolean accumulate)
{
  __m512 s[MR][NV];

  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++)
      s[r][v] = _mm512_setzero_ps ();
  for (int p = 0; p < kc; p++) {
    __m512 bv[NV];
    for (int v = 0; v < NV; v++)
      bv[v] = _mm512_loadu_ps (bp + p * NR + 16 * v);
    for (int r = 0; r < MR; r++) {
      __m512 av = _mm512_set1_ps (ap[p * MR + r]);
      for (int v = 0; v < NV; v++)
        s[r][v] = _mm512_fmadd_ps (av, bv[v], s[r][v]);
    }
  }
  for (int r = 0; r < MR; r++)
    if (r < mr)
      for (int v = 0; v < NV; v++) {
        float *cp = c + r * ldc + 16 * v;
        __m512 x = s[r][v];
        if (accumulate)
          x = _mm512_add_ps (x, _mm512_maskz_loadu_ps (mask[v], cp));
        _mm512_mask_storeu_ps (cp, mask[v], x);
      }
}

/* B is row-major [k][n], or with `b_rows` given as the rows of B^T
 * ([n][k], k contiguous: C += A . B^T), each panel then transposed in
 * 16 x 16 blocks while packing. */
AVX512_INLINE void
gemm_strided (int m, int n, int k, const float *a, gsize ars, gsize acs,
    const float *b, gsize ldb, gboolean b_rows, gboolean accumulate,
    float *c, gsize ldc)
{
  Packs *packs = thread_packs ();
  int kstep = k_step (k);

  for (int k0 = 0; k0 < k; k0 += kstep) {
    int kc = MIN (kstep, k - k0);
    gboolean acc = accumulate || k0 > 0;

    for (int m0 = 0; m0 < m; m0 += MC) {
      int mc = MIN (MC, m - m0);
      if (acs == 1)
        pack_a_rows (packs->a, a + m0 * ars + k0, ars, mc, kc);
      else
        pack_a (packs->a, a + m0 * ars + k0 * acs, ars, acs, mc, kc);

      for (int n0 = 0; n0 < n; n0 += NR) {
        __mmask16 mask[NV];
        for (int v = 0; v < NV; v++) {
          int left = CLAMP (n - n0 - 16 * v, 0, 16);
          mask[v] = (__mmask16) ((1u << left) - 1);
        }
        if (b_rows)
          transpose_avx512 (packs->b, b + n0 * ldb + k0, ldb,
              MIN (NR, n - n0), kc);
        else
          pack_b (packs->b, b + k0 * ldb + n0, ldb, kc, mask);
        for (int t = 0; t < mc; t += MR)
          tile (kc, packs->a + t * kc, packs->b,
              c + (m0 + t) * ldc + n0, ldc, MIN (MR, mc - t), mask, acc);
      }
    }
  }
}

__attribute__ ((target ("avx512f"), noinline))
     static void gemm_packed_avx512 (int m, int n, int k, const float *ap,
    const float *bp, gboolean accumulate, float *c, int ldc)
{
  int kstep = k_step (k), mpad = (m + MR - 1) / MR * MR;

  for (int k0 = 0; k0 < k; k0 += kstep) {
    int kc = MIN (kstep, k - k0);
    gboolean acc = accumulate || k0 > 0;
    for (int n0 = 0; n0 < n; n0 += NR) {
      const float *panel = bp + (gsize) (n0 / NR) * k * NR + (gsize) k0 * NR;
      __mmask16 mask[NV];
      for (int v = 0; v < NV; v++) {
        int left = CLAMP (n - n0 - 16 * v, 0, 16);
        mask[v] = (__mmask16) ((1u << left) - 1);
      }
      for (int t = 0; t < m; t += MR)
        tile (kc, ap + (gsize) k0 * mpad + (gsize) t * kc, panel,
            c + (gsize) t * ldc + n0, (gsize) ldc, MIN (MR, m - t), mask,
            acc);
    }
  }
}

/* Two copies, so each sees its strides as constants. */
__attribute__ ((target ("avx512f"), noinline))
     static void gemm_avx512_nn (int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, gboolean accumulate, float *c, int ldc)
{
  gemm_strided (m, n, k, a, (gsize) lda, 1, b, (gsize) ldb, FALSE,
      accumulate, c, (gsize) ldc);
}

__attribute__ ((target ("avx512f"), noinline))
     static void gemm_avx512_tn (int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, gboolean accumulate, float *c, int ldc)
{
  gemm_strided (m, n, k, a, 1, (gsize) lda, b, (gsize) ldb, FALSE,
      accumulate, c, (gsize) ldc);
}

__attribute__ ((target ("avx512f"), noinline))
     static void panel_from_rows_avx512 (float *dst, const float *rows,
    gsize ld, int lanes, int n)
{
  transpose_avx512 (dst, rows, ld, lanes, n);
}

__attribute__ ((target ("avx512f"), noinline))
     static void gemm_nt_avx512 (int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, float *c, int ldc)
{
  gemm_strided (m, n, k, a, (gsize) lda, 1, b, (gsize) ldb, TRUE, TRUE, c,
      (gsize) ldc);
}
#endif

/* A product over k = 0: C = 0, or C unchanged when accumulating. */
static void
empty_product (int m, int n, gboolean accumulate, float *c, int ldc)
{
  if (!accumulate)
    for (int i = 0; i < m; i++)
      memset (c + (gsize) i * ldc, 0, sizeof (float) * n);
}

void
cg_gemm_packed (int m, int n, int k, const float *a_packed,
    const float *b_panels, gboolean accumulate, float *c, int ldc)
{
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    empty_product (m, n, accumulate, c, ldc);
    return;
  }
#ifdef CG_HAVE_AVX512_KERNELS
  if (cg_cpu_use_avx512 ()) {
    gemm_packed_avx512 (m, n, k, a_packed, b_panels, accumulate, c, ldc);
    return;
  }
#endif
  gemm_packed_blas (m, n, k, a_packed, b_panels, accumulate, c, ldc);
}

void
cg_gemm_nt_acc (int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, float *c, int ldc)
{
  if (m <= 0 || n <= 0 || k <= 0)
    return;
#ifdef CG_HAVE_AVX512_KERNELS
  if (cg_cpu_use_avx512 ()) {
    gemm_nt_avx512 (m, n, k, a, lda, b, ldb, c, ldc);
    return;
  }
#endif
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a,
      lda, b, ldb, 1.0f, c, ldc);
}

void
cg_gemm_panel_from_rows (float *dst, const float *rows, gsize ld, int lanes,
    int n)
{
#ifdef CG_HAVE_AVX512_KERNELS
  if (cg_cpu_use_avx512 ()) {
    panel_from_rows_avx512 (dst, rows, ld, lanes, n);
    return;
  }
#endif
  transpose_scalar (dst, rows, ld, lanes, n);
}


void
cg_gemm_reserve_thread (void)
{
#ifdef CG_HAVE_AVX512_KERNELS
  thread_packs ();
#endif
}

const char *
cg_gemm_kernel_name (void)
{
  return cg_cpu_use_avx512 ()? "avx512" : "openblas";
}

void
cg_gemm (gboolean trans_a, int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, gboolean accumulate, float *c, int ldc)
{
  if (m <= 0 || n <= 0)
    return;
#ifdef CG_HAVE_AVX512_KERNELS
  if (cg_cpu_use_avx512 ()) {
    if (k <= 0) {
      empty_product (m, n, accumulate, c, ldc);
      return;
    }
    if (trans_a)
      gemm_avx512_tn (m, n, k, a, lda, b, ldb, accumulate, c, ldc);
    else
      gemm_avx512_nn (m, n, k, a, lda, b, ldb, accumulate, c, ldc);
    return;
  }
#endif
  gemm_blas (trans_a, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}
