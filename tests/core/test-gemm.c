/* cg_gemm against a float64 product, on the shapes that stress its
 * blocking: row and column tails, k split into chunks, strided A/B/C,
 * both A layouts, overwrite and accumulate, C += A B^T, A and B given as they are or
 * pre-packed; once with whichever kernel this CPU runs and once forced
 * off AVX-512 (OpenBLAS, and the portable packed kernel). */
#include "cpu.h"
#include "gemm.h"

#include <math.h>

typedef struct
{
  int m, n, k;
} Shape;

static const Shape shapes[] = {
  {1, 1, 1}, {3, 17, 5}, {8, 48, 64}, {9, 49, 193}, {16, 300, 64},
  {13, 97, 385}, {64, 300, 64}, {129, 50, 7}, {32, 4800, 144},
  {7, 16, 0}, {260, 33, 200}, {5, 70, 3000}, {64, 13, 20000},
};

/* n floats uniform in [-1, 1) */
static float *
random_floats (GRand * r, gsize n)
{
  float *x = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, -1.0, 1.0);
  return x;
}

/* c against the float64 product `ref` (m x n); c's padding past n and
 * the float past its last row untouched (c0: c before the call). */
static void
assert_product (const float *c, const float *c0, const double *ref, int m,
    int n, int ldc, int k)
{
  double worst = 0.0;

  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++)
      worst = MAX (worst, fabs (c[(gsize) i * ldc + j] - ref[(gsize) i * n +
                  j]));
    for (int j = n; j < ldc && i + 1 < m; j++)
      g_assert_cmpfloat (c[(gsize) i * ldc + j], ==, c0[(gsize) i * ldc + j]);
  }
  g_assert_cmpfloat (c[(gsize) m * ldc], ==, c0[(gsize) m * ldc]);
  /* float sums of k terms of size <= 1: rounding grows like sqrt(k) */
  g_assert_cmpfloat (worst, <=, 1e-5 * (1 + sqrt (k)) * (1 + sqrt (k)));
}

static void
check_shape (const Shape * sh, gboolean trans_a, gboolean accumulate,
    gboolean packed)
{
  int m = sh->m, n = sh->n, k = sh->k;
  /* padded strides: the kernel must not assume packed rows */
  int lda = (trans_a ? m : k) + 3, ldb = n + 5, ldc = n + 2;
  gsize a_rows = trans_a ? (gsize) k : (gsize) m;
  GRand *r = g_rand_new_with_seed ((guint32) (m * 131 + n * 7 + k));
  float *a = random_floats (r, a_rows * lda + 1);
  float *b = random_floats (r, (gsize) k * ldb + 1);
  float *c = random_floats (r, (gsize) m * ldc + 1);
  float *c0 = g_memdup2 (c, sizeof (float) * ((gsize) m * ldc + 1));
  double *ref = g_new (double, (gsize) m * n + 1);

  if (packed) {
    /* A packed once, B in panels whose columns past n are NaN: those
     * must not reach C */
    int npanels = (n + CG_GEMM_NR - 1) / CG_GEMM_NR;
    float *ap = g_new (float, cg_gemm_packed_a_floats (m, k) + 1);
    float *bp = g_new (float, (gsize) npanels * k * CG_GEMM_NR + 1);
    for (gsize i = 0; i < (gsize) npanels * k * CG_GEMM_NR; i++)
      bp[i] = NAN;
    for (int p = 0; p < k; p++)
      for (int j = 0; j < n; j++)
        bp[(gsize) (j / CG_GEMM_NR) * k * CG_GEMM_NR + (gsize) p * CG_GEMM_NR
            + j % CG_GEMM_NR] = b[(gsize) p * ldb + j];
    cg_gemm_pack_a (trans_a, m, k, a, lda, ap);
    cg_gemm_packed (m, n, k, ap, bp, accumulate, c, ldc);
    g_free (ap);
    g_free (bp);
  } else {
    cg_gemm (trans_a, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
  }

  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double want = accumulate ? c0[(gsize) i * ldc + j] : 0.0;
      for (int p = 0; p < k; p++)
        want += (double) (trans_a ? a[(gsize) p * lda + i] :
            a[(gsize) i * lda + p]) * b[(gsize) p * ldb + j];
      ref[(gsize) i * n + j] = want;
    }
  assert_product (c, c0, ref, m, n, ldc, k);

  g_rand_free (r);
  g_free (ref);
  g_free (a);
  g_free (b);
  g_free (c);
  g_free (c0);
}

/* C += A . B^T, A [m, k] and B [n, k] with padded strides */
static void
check_nt (const Shape * sh)
{
  int m = sh->m, n = sh->n, k = sh->k;
  int lda = k + 3, ldb = k + 1, ldc = n + 2;
  GRand *r = g_rand_new_with_seed ((guint32) (m * 17 + n * 3 + k));
  float *a = random_floats (r, (gsize) m * lda + 1);
  float *b = random_floats (r, (gsize) n * ldb + 1);
  float *c = random_floats (r, (gsize) m * ldc + 1);
  float *c0 = g_memdup2 (c, sizeof (float) * ((gsize) m * ldc + 1));
  double *ref = g_new (double, (gsize) m * n + 1);

  cg_gemm_nt_acc (m, n, k, a, lda, b, ldb, c, ldc);

  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double want = c0[(gsize) i * ldc + j];
      for (int p = 0; p < k; p++)
        want += (double) a[(gsize) i * lda + p] * b[(gsize) j * ldb + p];
      ref[(gsize) i * n + j] = want;
    }
  assert_product (c, c0, ref, m, n, ldc, k);

  g_rand_free (r);
  g_free (ref);
  g_free (a);
  g_free (b);
  g_free (c);
  g_free (c0);
}

static void
test_shapes (gconstpointer data)
{
  gboolean portable = GPOINTER_TO_INT (data);

  cg_cpu_force_portable (portable);
  g_test_message ("kernel: %s", cg_gemm_kernel_name ());
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    for (int t = 0; t < 2; t++)
      for (int acc = 0; acc < 2; acc++)
        for (int packed = 0; packed < 2; packed++)
          check_shape (&shapes[i], t, acc, packed);
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    check_nt (&shapes[i]);
  cg_cpu_force_portable (FALSE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/gemm/native", GINT_TO_POINTER (FALSE),
      test_shapes);
  g_test_add_data_func ("/gemm/portable", GINT_TO_POINTER (TRUE),
      test_shapes);
  return g_test_run ();
}
