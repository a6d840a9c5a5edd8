#include "parallel.h"

#include "gemm.h"

#include <string.h>


struct _CgPool
{
  int n_threads;
  GThread **threads;
  GMutex lock;
  GCond work_cond;
  GCond done_cond;
  /* the job in progress, under `lock` */
  guint generation;
  CgParallelFunc func;
  gpointer data;
  int n;
  int next_piece, n_pieces;
  int pieces_left;
  gboolean one_each;            /* a thread takes at most one piece */
  gboolean quit;
};

static _Thread_local CgPool *current;

/* Take pieces of the current job until none is left; call with lock held. */
static void
work (CgPool * pool)
{
  gboolean took = FALSE;

  while (pool->next_piece < pool->n_pieces && !(pool->one_each && took)) {
    int piece = pool->next_piece++;
    int begin = (int) ((gint64) pool->n * piece / pool->n_pieces);
    int end = (int) ((gint64) pool->n * (piece + 1) / pool->n_pieces);
    CgParallelFunc func = pool->func;
    gpointer data = pool->data;

    took = TRUE;
    g_mutex_unlock (&pool->lock);
    if (begin < end)
      func (data, begin, end);
    g_mutex_lock (&pool->lock);
    if (--pool->pieces_left == 0)
      g_cond_broadcast (&pool->done_cond);
  }
}

static gpointer
worker (gpointer data)
{
  CgPool *pool = data;
  guint seen = 0;

  g_mutex_lock (&pool->lock);
  while (!pool->quit) {
    if (pool->generation == seen) {
      g_cond_wait (&pool->work_cond, &pool->lock);
      continue;
    }
    seen = pool->generation;
    work (pool);
  }
  g_mutex_unlock (&pool->lock);
  return NULL;
}

CgPool *
cg_pool_new (int n_threads)
{
  CgPool *pool = g_new0 (CgPool, 1);

  pool->n_threads = MAX (n_threads, 1);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_cond);
  g_cond_init (&pool->done_cond);
  pool->threads = g_new0 (GThread *, pool->n_threads);
  for (int i = 1; i < pool->n_threads; i++)
    pool->threads[i] = g_thread_new ("cyclegan-worker", worker, pool);
  return pool;
}

void
cg_pool_free (CgPool * pool)
{
  if (!pool)
    return;
  g_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join (pool->threads[i]);
  g_free (pool->threads);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->work_cond);
  g_cond_clear (&pool->done_cond);
  g_free (pool);
}

int
cg_pool_n_threads (const CgPool * pool)
{
  return pool->n_threads;
}

void
cg_pool_push (CgPool * pool)
{
  current = pool;
}

void
cg_pool_pop (void)
{
  current = NULL;
}

static void
run_job (CgPool * pool, int n, int n_pieces, gboolean one_each,
    CgParallelFunc func, gpointer data)
{
  g_mutex_lock (&pool->lock);
  pool->func = func;
  pool->data = data;
  pool->n = n;
  pool->next_piece = 0;
  pool->n_pieces = n_pieces;
  pool->pieces_left = n_pieces;
  pool->one_each = one_each;
  pool->generation++;
  g_cond_broadcast (&pool->work_cond);
  work (pool);
  while (pool->pieces_left > 0)
    g_cond_wait (&pool->done_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

void
cg_pool_each_thread (CgPool * pool, CgParallelFunc func, gpointer data)
{
  run_job (pool, pool->n_threads, pool->n_threads, TRUE, func, data);
}

/* With one piece a thread, a thread that the VM slows (another guest on
 * its core) holds the others up at every join; with a few, the others
 * take its share. */
#define PIECES_PER_THREAD 4

void
cg_parallel_for_pieces (int n, int per_thread, CgParallelFunc func,
    gpointer data)
{
  CgPool *pool = current;

  if (n <= 0)
    return;
  if (!pool || pool->n_threads == 1 || n == 1) {
    func (data, 0, n);
    return;
  }
  run_job (pool, n, MIN (n, pool->n_threads * per_thread), FALSE, func,
      data);
}

void
cg_parallel_for (int n, CgParallelFunc func, gpointer data)
{
  cg_parallel_for_pieces (n, PIECES_PER_THREAD, func, data);
}

/* Pieces of 64K floats: below that a hand-off costs more than it saves. */
#define ZERO_PIECE ((gsize) 1 << 16)

typedef struct
{
  float *p;
  gsize n;
} ZeroJob;

static void
zero_pieces (gpointer data, int begin, int end)
{
  const ZeroJob *j = data;
  gsize b = (gsize) begin * ZERO_PIECE;
  gsize e = MIN ((gsize) end * ZERO_PIECE, j->n);

  memset (j->p + b, 0, sizeof (float) * (e - b));
}

void
cg_parallel_zero (float *p, gsize n)
{
  ZeroJob job = { p, n };
  cg_parallel_for ((int) ((n + ZERO_PIECE - 1) / ZERO_PIECE), zero_pieces,
      &job);
}

typedef struct
{
  float *data;
  gsize n;
} Scratch;

static void
scratch_free (gpointer p)
{
  Scratch *s = p;
  g_free (s->data);
  g_free (s);
}

static GPrivate scratch_key = G_PRIVATE_INIT (scratch_free);

float *
cg_thread_scratch (gsize n_floats)
{
  Scratch *s = g_private_get (&scratch_key);

  if (!s) {
    s = g_new0 (Scratch, 1);
    g_private_set (&scratch_key, s);
  }
  if (s->n < n_floats) {
    g_free (s->data);
    s->data = g_new (float, n_floats);
    s->n = n_floats;
  }
  return s->data;
}

typedef struct
{
  gboolean trans_a, accumulate;
  int m, n, k;
  const float *a, *b;
  int lda, ldb, ldc;
  float *c;
} GemmJob;

/* Columns are handed out in blocks of 16 so slices stay aligned to the
 * kernels' vector width. */
#define GEMM_COL_BLOCK 16

static void
gemm_columns (gpointer data, int begin, int end)
{
  const GemmJob *j = data;
  int c0 = begin * GEMM_COL_BLOCK, c1 = MIN (end * GEMM_COL_BLOCK, j->n);

  cg_gemm (j->trans_a, j->m, c1 - c0, j->k, j->a, j->lda, j->b + c0,
      j->ldb, j->accumulate, j->c + c0, j->ldc);
}

void
cg_sgemm (gboolean trans_a, int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, gboolean accumulate, float *c, int ldc)
{
  GemmJob job = { trans_a, accumulate, m, n, k, a, b, lda, ldb, ldc, c };
  /* one piece a thread: each piece packs all of A again */
  cg_parallel_for_pieces ((n + GEMM_COL_BLOCK - 1) / GEMM_COL_BLOCK, 1,
      gemm_columns, &job);
}
