/* Runs the fuzz target over files and directories of files (the seed
 * corpus), for compilers without libFuzzer and for CI.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

static guint n_run;

static void
run_file (const char *path)
{
  GError *error = NULL;
  char *contents;
  gsize len;
  guint8 *copy;

  if (!g_file_get_contents (path, &contents, &len, &error))
    g_error ("%s", error->message);
  /* An exact-size buffer, as libFuzzer gives, so overreads show. */
  copy = g_memdup2 (contents, len);
  g_free (contents);
  LLVMFuzzerTestOneInput (copy, len);
  g_free (copy);
  n_run++;
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

static void
run_path (const char *path)
{
  GError *error = NULL;
  GDir *dir;
  GPtrArray *names;
  const char *name;
  guint i;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    run_file (path);
    return;
  }
  dir = g_dir_open (path, 0, &error);
  if (!dir)
    g_error ("%s", error->message);
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)))
    g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_paths);
  for (i = 0; i < names->len; i++) {
    const char *p = g_ptr_array_index (names, i);

    if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
      run_file (p);
  }
  g_ptr_array_unref (names);
}

int
main (int argc, char **argv)
{
  int i;

  LLVMFuzzerInitialize (&argc, &argv);
  for (i = 1; i < argc; i++)
    run_path (argv[i]);
  printf ("ran %u inputs\n", n_run);
  /* No input at all means a wrong path, not a pass. */
  return n_run > 0 ? 0 : 1;
}
