/* Our own threads for the passes OpenBLAS does not run: transforms,
 * im2col, normalization, the thin convolution.
 *
 * A CgPool is owned by one generator. While a thread has a pool set as
 * its current one (cg_pool_push), cg_parallel_for splits work over it;
 * otherwise it runs the work in the calling thread. So the kernels keep
 * their signatures and stay usable alone (tests, the trainer).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CgPool CgPool;

/* func handles tasks [begin, end). */
typedef void (*CgParallelFunc) (gpointer data, int begin, int end);

/* A pool of n_threads (the caller counts as one); 1 makes no threads. */
CgPool *cg_pool_new (int n_threads);
void cg_pool_free (CgPool * pool);
int cg_pool_n_threads (const CgPool * pool);

/* Make `pool` the current pool of the calling thread (NULL: none). */
void cg_pool_push (CgPool * pool);
void cg_pool_pop (void);

/* Run func(data, i, i + 1) once on each of the pool's threads, i being
 * the thread's slot (the caller is slot 0). */
void cg_pool_each_thread (CgPool * pool, CgParallelFunc func, gpointer data);

/* Run func over [0, n) in the current pool, in a few pieces per thread
 * taken as threads come free; returns when all are done. */
void cg_parallel_for (int n, CgParallelFunc func, gpointer data);
/* The same in at most per_thread pieces per thread: 1 where each piece
 * has a setup of its own to pay (a GEMM piece packs all of A). */
void cg_parallel_for_pieces (int n, int per_thread, CgParallelFunc func,
    gpointer data);

/* Row-major C = op(A) B (+ C when `accumulate`), M x N, with the columns
 * of B and C split over the current pool, each piece one single-threaded
 * cg_gemm (the
 * generator runs OpenBLAS with one thread and owns the parallelism: small
 * GEMMs then pay no OpenBLAS thread hand-off, and the passes between GEMMs
 * do not compete with OpenBLAS's spinning threads). */
void cg_sgemm (gboolean trans_a, int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, gboolean accumulate, float *c, int ldc);

/* memset (p, 0, n floats), in pieces over the current pool. */
void cg_parallel_zero (float *p, gsize n);

/* A scratch buffer of at least `n_floats` for the calling thread, kept
 * (and grown when asked for more) for the thread's life: kernels running
 * on the pool get working rows without allocating per frame. */
float *cg_thread_scratch (gsize n_floats);

G_END_DECLS
