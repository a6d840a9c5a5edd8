#include "parallel.h"

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
  gboolean quit;
};

static _Thread_local CgPool *current;

/* Take pieces of the current job until none is left; call with lock held. */
static void
work (CgPool * pool)
{
  while (pool->next_piece < pool->n_pieces) {
    int piece = pool->next_piece++;
    int begin = (int) ((gint64) pool->n * piece / pool->n_pieces);
    int end = (int) ((gint64) pool->n * (piece + 1) / pool->n_pieces);
    CgParallelFunc func = pool->func;
    gpointer data = pool->data;

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

void
cg_parallel_for (int n, CgParallelFunc func, gpointer data)
{
  CgPool *pool = current;

  if (n <= 0)
    return;
  if (!pool || pool->n_threads == 1 || n == 1) {
    func (data, 0, n);
    return;
  }
  g_mutex_lock (&pool->lock);
  pool->func = func;
  pool->data = data;
  pool->n = n;
  pool->next_piece = 0;
  pool->n_pieces = MIN (n, pool->n_threads);
  pool->pieces_left = pool->n_pieces;
  pool->generation++;
  g_cond_broadcast (&pool->work_cond);
  work (pool);
  while (pool->pieces_left > 0)
    g_cond_wait (&pool->done_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}
