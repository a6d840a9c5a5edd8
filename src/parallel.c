#include "parallel.h"

#include "gemm.h"

#include <stdatomic.h>
#include <string.h>

/* Threads hand out a job's pieces so that each thread works on the same
 * part of every job: a job of P pieces is cut into one range per pair of
 * threads, thread 2r taking range r's pieces from its front, thread
 * 2r + 1 from its back, until they meet; a thread whose range is done
 * helps with the others'. With two threads the caller takes the first
 * rows of every layer and the worker the last, so that each reads
 * mostly what it wrote itself, still in its own cache. When pieces went
 * out in order to whichever thread came first, which thread got which
 * rows changed from layer to layer with the timing: with the norms
 * applied by the next layer as it reads its input, ngf 16 at 640x480
 * ran 2 ms slower that way than with these ranges.
 *
 * A range is one atomic word:
 *   bits 63..33  the job's generation
 *   bit  32      one_each: a thread takes its own piece and no other
 *   bits 31..16  the range's next piece from the front
 *   bits 15..0   its end (the next piece from the back, + 1)
 * A claim is a compare-and-swap of the whole word, so that a thread
 * still leaving the last job cannot take a piece of the next with the
 * last one's function (the generation differs). The job's function and
 * data are read only after a claim succeeds: until every claimed piece
 * is done, the caller does not write them again.
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

/* a range's word, alone in its cache line */
typedef struct
{
  _Atomic guint64 word;
  char pad[64 - sizeof (guint64)];
} Range;

struct _CgPool
{
  int n_threads;
  GThread **threads;
  GMutex lock;
  GCond work_cond;
  GCond done_cond;
  /* the job of the ranges' generation */
  CgParallelFunc func;
  gpointer data;
  int n, n_pieces;
  Range *ranges;                /* (n_threads + 1) / 2 */
  atomic_int pieces_left;
  guint32 generation;           /* the caller's count */
  int sleepers;                 /* under lock */
  gboolean caller_waits;        /* under lock */
  atomic_bool quit;
};

typedef struct
{
  CgPool *pool;
  int slot;                     /* the caller is 0 */
} Worker;

static _Thread_local CgPool *current;

static inline guint32
word_generation (guint64 t)
{
  return (guint32) (t >> 33);
}

static inline gboolean
word_one_each (guint64 t)
{
  return (t >> 32) & 1;
}

static inline int
word_front (guint64 t)
{
  return (int) ((t >> PIECE_BITS) & MAX_PIECES);
}

static inline int
word_back (guint64 t)
{
  return (int) (t & MAX_PIECES);
}

static inline int
n_ranges (const CgPool * pool)
{
  return (pool->n_threads + 1) / 2;
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#endif
}

/* Whether thread `slot`, which last took a piece of generation `taken`,
 * is barred from range r of word t: in a one-piece-each job it takes
 * its own piece, once. */
static inline gboolean
barred (guint64 t, int r, int slot, guint32 taken)
{
  return word_one_each (t) && (r != slot / 2
      || taken == word_generation (t));
}

/* Claim a piece of range r for thread `slot`, which last took a piece
 * of generation *taken: from the back if it is the range's odd thread,
 * from the front otherwise. -1 if there is none for it. */
static int
claim (CgPool * pool, int r, int slot, guint32 * taken)
{
  _Atomic guint64 *w = &pool->ranges[r].word;
  guint64 t = atomic_load (w);
  gboolean back = slot == 2 * r + 1;

  for (;;) {
    int front = word_front (t), end = word_back (t);
    guint64 next;
    if (front >= end || barred (t, r, slot, *taken))
      return -1;
    next = back ? t - 1 : t + ((guint64) 1 << PIECE_BITS);
    if (atomic_compare_exchange_weak (w, &t, next)) {
      *taken = word_generation (t);
      return back ? end - 1 : front;
    }
  }
}

/* Take and run pieces of the current job while there are any for this
 * thread: its own range's first, then the others'. */
static void
work (CgPool * pool, int slot, guint32 * taken)
{
  int nr = n_ranges (pool);

  for (int i = 0; i < nr;) {
    int r = (slot / 2 + i) % nr, piece = claim (pool, r, slot, taken);
    int begin, end;
    if (piece < 0) {
      i++;
      continue;
    }
    begin = (int) ((gint64) pool->n * piece / pool->n_pieces);
    end = (int) ((gint64) pool->n * (piece + 1) / pool->n_pieces);
    if (begin < end)
      pool->func (pool->data, begin, end);
    if (atomic_fetch_sub (&pool->pieces_left, 1) == 1) {
      g_mutex_lock (&pool->lock);
      if (pool->caller_waits)
        g_cond_signal (&pool->done_cond);
      g_mutex_unlock (&pool->lock);
    }
  }
}

/* Whether range r has a piece thread `slot` may take. */
static gboolean
claimable (CgPool * pool, int r, int slot, guint32 taken)
{
  guint64 t = atomic_load (&pool->ranges[r].word);

  return word_front (t) < word_back (t) && !barred (t, r, slot, taken);
}

/* What a worker waits for: a piece it may take, or the end. */
static gboolean
job_for (CgPool * pool, int slot, guint32 taken)
{
  for (int r = 0; r < n_ranges (pool); r++)
    if (claimable (pool, r, slot, taken))
      return TRUE;
  return atomic_load (&pool->quit);
}

/* What the caller waits for: every piece of its job done. */
static gboolean
job_done (CgPool * pool, int slot, guint32 unused)
{
  return atomic_load (&pool->pieces_left) == 0;
}

/* Spin until ready (pool, slot, arg), for at most `us` microseconds (the
 * clock read every 64 rounds); FALSE if it was not. */
static gboolean
spin (CgPool * pool, gboolean (*ready) (CgPool *, int, guint32), int slot,
    guint32 arg, gint64 us)
{
  gint64 until = g_get_monotonic_time () + us;

  for (int i = 1; !ready (pool, slot, arg); i++) {
    cpu_relax ();
    if (i % 64 == 0 && g_get_monotonic_time () > until)
      return FALSE;
  }
  return TRUE;
}

static gpointer
worker (gpointer data)
{
  Worker *me = data;
  CgPool *pool = me->pool;
  int slot = me->slot;
  guint32 taken = 0;

  g_free (me);
  while (!atomic_load (&pool->quit)) {
    work (pool, slot, &taken);
    if (spin (pool, job_for, slot, taken, SPIN_US))
      continue;
    g_mutex_lock (&pool->lock);
    pool->sleepers++;
    while (!job_for (pool, slot, taken))
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

  pool->n_threads = CLAMP (n_threads, 1, MAX_PIECES);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_cond);
  g_cond_init (&pool->done_cond);
  pool->ranges = g_new0 (Range, n_ranges (pool));
  for (int r = 0; r < n_ranges (pool); r++)
    atomic_init (&pool->ranges[r].word, 0);
  atomic_init (&pool->pieces_left, 0);
  atomic_init (&pool->quit, FALSE);
  pool->threads = g_new0 (GThread *, pool->n_threads);
  for (int i = 1; i < pool->n_threads; i++) {
    Worker *w = g_new (Worker, 1);
    *w = (Worker) { pool, i };
    pool->threads[i] = g_thread_new ("cyclegan-worker", worker, w);
  }
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
  g_free (pool->ranges);
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
  int nr = n_ranges (pool);

  /* the last job's pieces are all done (we waited for them), so no
   * thread reads these now */
  pool->func = func;
  pool->data = data;
  pool->n = n;
  n_pieces = MIN (n_pieces, MAX_PIECES);
  pool->n_pieces = n_pieces;
  atomic_store (&pool->pieces_left, n_pieces);
  /* 31 bits, never 0: a thread's `taken` starts at 0, meaning none */
  pool->generation = pool->generation % 0x7fffffff + 1;
  /* a range's share is its threads' (the last has one of an odd count) */
  for (int r = 0; r < nr; r++) {
    guint64 front = (guint64) n_pieces * 2 * r / pool->n_threads;
    guint64 end = (guint64) n_pieces * MIN (2 * r + 2, pool->n_threads) /
        pool->n_threads;
    atomic_store (&pool->ranges[r].word, (guint64) pool->generation << 33 |
        (guint64) (one_each ? 1 : 0) << 32 | front << PIECE_BITS | end);
  }
  g_mutex_lock (&pool->lock);
  if (pool->sleepers)
    g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);

  work (pool, 0, &taken);
  if (spin (pool, job_done, 0, 0, WAIT_SPIN_US))
    return;
  g_mutex_lock (&pool->lock);
  pool->caller_waits = TRUE;
  while (!job_done (pool, 0, 0))
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
  g_aligned_free (s->data);
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
  /* on cache lines: the kernels' rows in it are stored and loaded a
   * vector (a line) at a time */
  if (s->n < n_floats) {
    g_aligned_free (s->data);
    s->data = g_aligned_alloc (n_floats, sizeof (float), 64);
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
