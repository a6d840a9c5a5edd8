#include "parallel.h"

#include "gemm.h"

#include <stdatomic.h>
#include <string.h>

/* Threads hand out the pieces of a job through one atomic ticket:
 *   bits 63..33  the job's generation
 *   bit  32      one_each: a thread takes at most one piece
 *   bits 31..16  the next piece to take
 *   bits 15..0   the job's pieces
 * A thread claims a piece by a compare-and-swap that also checks the
 * generation, so that a thread still leaving the last job cannot take
 * a piece of the next with the last one's function. The job's function
 * and data are read only after a claim succeeds: until every claimed
 * piece is done, the caller does not write them again.
 *
 * Idle threads spin a while before they sleep. A ResNet generator at
 * small sizes runs thousands of short jobs a second, and waking a
 * sleeping thread costs the VM 10-50 us each time (12% of a training
 * iteration at crop 128 went to the scheduler in perf). A worker waits
 * for the next job up to SPIN_US; the caller waits for the last pieces
 * of its own job, which are running, up to WAIT_SPIN_US. Spins of 50 us
 * against 500: training at crop 128 0.142-0.147 against 0.130-0.131 s/it,
 * ngf 16 at 320x240 14.4-15.1 against 14.0-14.2 ms. An idle element
 * burns at most SPIN_US of one core per frame. */
#define PIECE_BITS 16
#define MAX_PIECES ((1 << PIECE_BITS) - 1)
#define SPIN_US 500
#define WAIT_SPIN_US 5000

struct _CgPool
{
  int n_threads;
  GThread **threads;
  GMutex lock;
  GCond work_cond;
  GCond done_cond;
  /* the job of the ticket's generation */
  CgParallelFunc func;
  gpointer data;
  int n;
  _Atomic guint64 ticket;
  atomic_int pieces_left;
  guint32 generation;           /* the caller's count */
  int sleepers;                 /* under lock */
  gboolean caller_waits;        /* under lock */
  atomic_bool quit;
};

static _Thread_local CgPool *current;

static inline guint32
ticket_generation (guint64 t)
{
  return (guint32) (t >> 33);
}

static inline gboolean
ticket_one_each (guint64 t)
{
  return (t >> 32) & 1;
}

static inline int
ticket_next (guint64 t)
{
  return (int) ((t >> PIECE_BITS) & MAX_PIECES);
}

static inline int
ticket_pieces (guint64 t)
{
  return (int) (t & MAX_PIECES);
}

/* Whether a thread that last took a piece of generation `taken` may take
 * one of ticket t. */
static inline gboolean
claimable (guint64 t, guint32 taken)
{
  return ticket_next (t) < ticket_pieces (t)
      && !(ticket_one_each (t) && taken == ticket_generation (t));
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

/* Take and run pieces of the current job while there are any for this
 * thread; *taken: the generation of the last piece it took. */
static void
work (CgPool * pool, guint32 * taken)
{
  guint64 t = atomic_load (&pool->ticket);

  while (claimable (t, *taken)) {
    int piece = ticket_next (t), n_pieces = ticket_pieces (t);
    int begin, end;

    if (!atomic_compare_exchange_weak (&pool->ticket, &t,
            t + ((guint64) 1 << PIECE_BITS)))
      continue;                 /* t reloaded */
    *taken = ticket_generation (t);
    begin = (int) ((gint64) pool->n * piece / n_pieces);
    end = (int) ((gint64) pool->n * (piece + 1) / n_pieces);
    if (begin < end)
      pool->func (pool->data, begin, end);
    if (atomic_fetch_sub (&pool->pieces_left, 1) == 1) {
      g_mutex_lock (&pool->lock);
      if (pool->caller_waits)
        g_cond_signal (&pool->done_cond);
      g_mutex_unlock (&pool->lock);
    }
    t = atomic_load (&pool->ticket);
  }
}

/* What a worker waits for: a piece it may take, or the end. */
static gboolean
job_for (CgPool * pool, guint32 taken)
{
  return claimable (atomic_load (&pool->ticket), taken)
      || atomic_load (&pool->quit);
}

/* What the caller waits for: every piece of its job done. */
static gboolean
job_done (CgPool * pool, guint32 unused)
{
  return atomic_load (&pool->pieces_left) == 0;
}

/* Spin until ready (pool, arg), for at most `us` microseconds (the clock
 * read every 64 rounds); FALSE if it was not. */
static gboolean
spin (CgPool * pool, gboolean (*ready) (CgPool *, guint32), guint32 arg,
    gint64 us)
{
  gint64 until = g_get_monotonic_time () + us;

  for (int i = 1; !ready (pool, arg); i++) {
    cpu_relax ();
    if (i % 64 == 0 && g_get_monotonic_time () > until)
      return FALSE;
  }
  return TRUE;
}

static gpointer
worker (gpointer data)
{
  CgPool *pool = data;
  guint32 taken = 0;

  while (!atomic_load (&pool->quit)) {
    work (pool, &taken);
    if (spin (pool, job_for, taken, SPIN_US))
      continue;
    g_mutex_lock (&pool->lock);
    pool->sleepers++;
    while (!job_for (pool, taken))
      g_cond_wait (&pool->work_cond, &pool->lock);
    pool->sleepers--;
    g_mutex_unlock (&pool->lock);
  }
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
  atomic_init (&pool->ticket, 0);
  atomic_init (&pool->pieces_left, 0);
  atomic_init (&pool->quit, FALSE);
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
  atomic_store (&pool->quit, TRUE);
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
  guint32 taken = 0;

  /* the last job's pieces are all done (we waited for them), so no
   * thread reads these now */
  pool->func = func;
  pool->data = data;
  pool->n = n;
  n_pieces = MIN (n_pieces, MAX_PIECES);
  atomic_store (&pool->pieces_left, n_pieces);
  /* 31 bits, never 0: a thread's `taken` starts at 0, meaning none */
  pool->generation = pool->generation % 0x7fffffff + 1;
  atomic_store (&pool->ticket, (guint64) pool->generation << 33 |
      (guint64) (one_each ? 1 : 0) << 32 | (guint64) n_pieces);
  g_mutex_lock (&pool->lock);
  if (pool->sleepers)
    g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);

  work (pool, &taken);
  if (spin (pool, job_done, 0, WAIT_SPIN_US))
    return;
  g_mutex_lock (&pool->lock);
  pool->caller_waits = TRUE;
  while (!job_done (pool, 0))
    g_cond_wait (&pool->done_cond, &pool->lock);
  pool->caller_waits = FALSE;
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
