/* The thread pool (src/parallel.c): every index of a job runs exactly
 * once, each_thread runs once on every thread, with two threads the
 * caller runs the front of every job and the worker the back, and long
 * runs of short jobs (thousands of generations of the ranges) lose
 * nothing. */
#include "parallel.h"

#include <glib.h>

typedef struct
{
  gint *hits;                   /* per index, atomically */
} CountJob;

static void
count (gpointer data, int begin, int end)
{
  const CountJob *j = data;
  for (int i = begin; i < end; i++)
    g_atomic_int_inc (&j->hits[i]);
}

/* [0, n) over pools of 1 to 4 threads, in 1 or 4 pieces a thread or as
 * many as asked for, which past 65535 a range cannot count */
static void
test_cover (void)
{
  static const int sizes[] = { 1, 2, 3, 7, 8, 9, 100, 1000, 70000 };
  static const int per_thread[] = { 1, 4, 100000 };

  for (int threads = 1; threads <= 4; threads++) {
    CgPool *pool = cg_pool_new (threads);
    cg_pool_push (pool);
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (guint p = 0; p < G_N_ELEMENTS (per_thread); p++) {
        int n = sizes[s];
        CountJob job = { g_new0 (gint, n) };
        cg_parallel_for_pieces (n, per_thread[p], count, &job);
        for (int i = 0; i < n; i++)
          if (job.hits[i] != 1)
            g_error ("%d threads, n %d, %d a thread: index %d ran %d times",
                threads, n, per_thread[p], i, job.hits[i]);
        g_free (job.hits);
      }
    cg_pool_pop ();
    cg_pool_free (pool);
  }
}

static void
note_thread (gpointer data, int begin, int end)
{
  GHashTable *seen = data;
  static GMutex lock;

  g_assert_cmpint (end, ==, begin + 1);
  g_mutex_lock (&lock);
  g_hash_table_add (seen, g_thread_self ());
  g_mutex_unlock (&lock);
  /* a thread that finished early must not take a second piece */
  g_usleep (2000);
}

static void
test_each_thread (void)
{
  for (int threads = 1; threads <= 4; threads++) {
    CgPool *pool = cg_pool_new (threads);
    for (int round = 0; round < 3; round++) {
      GHashTable *seen = g_hash_table_new (NULL, NULL);
      cg_pool_each_thread (pool, note_thread, seen);
      g_assert_cmpuint (g_hash_table_size (seen), ==, threads);
      g_hash_table_unref (seen);
    }
    cg_pool_free (pool);
  }
}

typedef struct
{
  GThread *caller;
  gint *by_caller;              /* per index: 1 caller, 2 worker */
} WhoJob;

static void
note_who (gpointer data, int begin, int end)
{
  const WhoJob *j = data;
  for (int i = begin; i < end; i++)
    g_atomic_int_set (&j->by_caller[i], g_thread_self () == j->caller ?
        1 : 2);
  g_usleep (50);
}

/* Two threads: whoever is faster, the caller's indices are a prefix and
 * the worker's the rest, so that each thread works on the same part of
 * consecutive layers. */
static void
test_locality (void)
{
  CgPool *pool = cg_pool_new (2);
  int n = 256, worker_ran = 0;

  cg_pool_push (pool);
  for (int round = 0; round < 50; round++) {
    WhoJob job = { g_thread_self (), g_new0 (gint, n) };
    int switches = 0;
    cg_parallel_for_pieces (n, round % 2 ? 4 : 64, note_who, &job);
    for (int i = 0; i < n; i++) {
      g_assert_cmpint (job.by_caller[i], !=, 0);
      switches += i > 0 && job.by_caller[i] != job.by_caller[i - 1];
    }
    g_assert_cmpint (job.by_caller[0], ==, 1);
    g_assert_cmpint (switches, <=, 1);
    worker_ran += job.by_caller[n - 1] == 2;
    g_free (job.by_caller);
  }
  /* the worker took part (not a timing test: on a loaded machine it may
   * miss many of the rounds) */
  g_assert_cmpint (worker_ran, >, 0);
  cg_pool_pop ();
  cg_pool_free (pool);
}

/* 20000 short jobs back to back, with gaps longer than the idle spin
 * now and then (the workers fall asleep and must be woken) */
static void
test_many_jobs (void)
{
  CgPool *pool = cg_pool_new (2);
  gint64 total = 0;
  CountJob job = { g_new0 (gint, 64) };

  cg_pool_push (pool);
  for (int k = 0; k < 20000; k++) {
    int n = 1 + k % 64;
    cg_parallel_for (n, count, &job);
    total += n;
    if (k % 2000 == 0)
      g_usleep (2000);
  }
  cg_pool_pop ();
  for (int i = 0; i < 64; i++)
    total -= job.hits[i];
  g_assert_cmpint (total, ==, 0);
  g_free (job.hits);
  cg_pool_free (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/parallel/cover", test_cover);
  g_test_add_func ("/parallel/each-thread", test_each_thread);
  g_test_add_func ("/parallel/locality", test_locality);
  g_test_add_func ("/parallel/many-jobs", test_many_jobs);
  return g_test_run ();
}
