/* One single-threaded row-major GEMM for every convolution product:
 * C [m, n] = op(A) [m, k] . B [k, n]  (+ C when `accumulate`).
 *
 * On CPUs with AVX-512 it runs our own kernel (gemm.c says why); elsewhere,
 * or with cg_cpu_force_portable (cpu.h), cblas_sgemm. Callers split the
 * columns over threads. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void cg_gemm (gboolean trans_a, int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, gboolean accumulate, float *c, int ldc);

/* C [m, n] += A [m, k] . B [n, k]^T, both row-major with k contiguous:
 * the weight gradients (k runs over pixels). */
void cg_gemm_nt_acc (int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, float *c, int ldc);

/* Weights used again and again can be packed once into the order the
 * kernel reads them, and a producer can write B straight into the
 * kernel's panels, so that the product itself moves no data around:
 *   A packed: cg_gemm_packed_a_floats (m, k) floats from cg_gemm_pack_a;
 *   B panels: column j of B is in panel j / CG_GEMM_NR, a k x CG_GEMM_NR
 *     row-major block at b + (j / CG_GEMM_NR) * k * CG_GEMM_NR; columns
 *     past n in the last panel are read but their results dropped.
 * Without AVX-512 "packed" A is plain row-major and the panels go to
 * OpenBLAS one by one; pack and multiply in the same mode (cpu.h). */
#define CG_GEMM_MR 8
#define CG_GEMM_NR 48
gsize cg_gemm_packed_a_floats (int m, int k);
void cg_gemm_pack_a (gboolean trans_a, int m, int k, const float *a,
    int lda, float *packed);
void cg_gemm_packed (int m, int n, int k, const float *a_packed,
    const float *b_panels, gboolean accumulate, float *c, int ldc);
/* One panel (or its rows [0, n)) from B^T: dst [x][lane] = rows [lane *
 * ld + x] for lane < lanes <= CG_GEMM_NR, x < n; the other lanes zero.
 * For B that is made, or kept, with k contiguous. */
void cg_gemm_panel_from_rows (float *dst, const float *rows, gsize ld,
    int lanes, int n);

/* cg_gemm packs into per-thread buffers made at a thread's first product;
 * this makes them now (a generator calls it on its threads so that no
 * frame allocates). */
void cg_gemm_reserve_thread (void);

/* Which kernel cg_gemm runs: "avx512" or "openblas". */
const char *cg_gemm_kernel_name (void);

G_END_DECLS
