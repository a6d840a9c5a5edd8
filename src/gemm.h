/* One single-threaded row-major GEMM for every convolution product:
 * C [m, n] = op(A) [m, k] . B [k, n]  (+ C when `accumulate`).
 *
 * On CPUs with AVX-512 it runs our own kernel (gemm.c says why); elsewhere
 * it is cblas_sgemm. Callers split the columns over threads. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void cg_gemm (gboolean trans_a, int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, gboolean accumulate, float *c, int ldc);

/* Which kernel cg_gemm runs: "avx512" or "openblas". */
const char *cg_gemm_kernel_name (void);

/* Tests and benchmarks: TRUE makes cg_gemm use OpenBLAS even where our
 * kernel could run. Not thread-safe; set it before any work. */
void cg_gemm_force_blas (gboolean force);

G_END_DECLS
