/* libFuzzer target for the safetensors reader.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parses the input from memory (no file I/O), converts every tensor to
 * float32 so that every data byte is read, and checks what a successful
 * parse promises: views inside the input, byte sizes that match, names that
 * find their tensor. A file that parses is also written back and read
 * again, which must give the same tensors and metadata.
 *
 * Built with -fsanitize=fuzzer when clang has libFuzzer; fuzz-replay.c
 * provides main() otherwise, to run the seed corpus in CI.
 */

#include "safetensors.h"

#include <cyclegan/cg-error.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* A g_return_if_fail() reached from hostile input is a bug too. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

static float *
to_f32 (const CgTensorView * t)
{
  float *f = g_new (float, MAX (t->n_elements, 1));

  cg_tensor_view_to_f32 (t, f);
  return f;
}

static void
check_views (const CgSafetensors * st, const uint8_t * data, size_t size)
{
  guint i, n = cg_safetensors_n_tensors (st);
  const guint8 *prev_end = NULL;

  for (i = 0; i < n; i++) {
    const CgTensorView *t = cg_safetensors_tensor (st, i);
    gint64 count = 1;
    int d;
    float *f;

    g_assert_true (cg_safetensors_find (st, t->name) == t);
    g_assert_cmpint (t->n_dims, >=, 0);
    g_assert_cmpint (t->n_dims, <=, CG_ST_MAX_DIMS);
    for (d = 0; d < t->n_dims; d++) {
      g_assert_cmpint (t->shape[d], >=, 0);
      if (t->shape[d] == 0)
        count = 0;
    }
    if (count)
      for (d = 0; d < t->n_dims; d++)
        count *= t->shape[d];
    g_assert_cmpint (count, ==, t->n_elements);
    g_assert_cmpuint (t->n_bytes, ==,
        (guint64) t->n_elements * cg_dtype_size (t->dtype));
    g_assert_true (t->data >= data && t->data <= data + size);
    g_assert_cmpuint (t->n_bytes, <=, (gsize) (data + size - t->data));
    /* Sorted by offset, not overlapping. */
    if (prev_end && t->n_bytes)
      g_assert_true (t->data >= prev_end);
    if (t->n_bytes)
      prev_end = t->data + t->n_bytes;

    f = to_f32 (t);
    g_free (f);
  }
}

static void
check_rewrite (const CgSafetensors * st)
{
  guint i, n = cg_safetensors_n_tensors (st);
  CgTensorOut *out = g_new0 (CgTensorOut, MAX (n, 1));
  float **values = g_new0 (float *, MAX (n, 1));
  GOutputStream *mem = g_memory_output_stream_new_resizable ();
  GError *error = NULL;
  GBytes *bytes;
  CgSafetensors *again;
  GHashTableIter iter;
  gpointer k, v;

  for (i = 0; i < n; i++) {
    const CgTensorView *t = cg_safetensors_tensor (st, i);

    values[i] = to_f32 (t);
    out[i].name = t->name;
    out[i].dtype = t->dtype;
    out[i].n_dims = t->n_dims;
    memcpy (out[i].shape, t->shape, sizeof out[i].shape);
    out[i].data = values[i];
  }
  g_assert_true (cg_safetensors_write_to_stream (mem, "rewrite", out, n,
          cg_safetensors_metadata (st), NULL, &error));
  g_assert_no_error (error);
  g_output_stream_close (mem, NULL, NULL);
  bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
  again = cg_safetensors_open_bytes ("rewrite", bytes, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (cg_safetensors_n_tensors (again), ==, n);
  for (i = 0; i < n; i++) {
    const CgTensorView *a = cg_safetensors_find (again, out[i].name);
    float *f;
    gint64 j;

    g_assert_nonnull (a);
    g_assert_cmpint (a->dtype, ==, out[i].dtype);
    g_assert_cmpint (a->n_dims, ==, out[i].n_dims);
    g_assert_cmpmem (a->shape, a->n_dims * sizeof (gint64), out[i].shape,
        out[i].n_dims * sizeof (gint64));
    f = to_f32 (a);
    /* Exact, NaNs aside (a signalling NaN comes back quiet). */
    for (j = 0; j < a->n_elements; j++) {
      if (isnan (values[i][j]))
        g_assert_true (isnan (f[j]));
      else
        g_assert_cmpmem (&f[j], 4, &values[i][j], 4);
    }
    g_free (f);
  }
  g_assert_cmpuint (g_hash_table_size (cg_safetensors_metadata (again)), ==,
      g_hash_table_size (cg_safetensors_metadata (st)));
  g_hash_table_iter_init (&iter, cg_safetensors_metadata (st));
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_assert_cmpstr (g_hash_table_lookup (cg_safetensors_metadata (again), k),
        ==, v);

  cg_safetensors_close (again);
  g_bytes_unref (bytes);
  g_object_unref (mem);
  for (i = 0; i < n; i++)
    g_free (values[i]);
  g_free (values);
  g_free (out);
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  /* No copy: the sanitizers see reads past the fuzzer's own buffer. */
  GBytes *bytes = g_bytes_new_static (data, size);
  GError *error = NULL;
  CgSafetensors *st;

  st = cg_safetensors_open_bytes ("fuzz", bytes, &error);
  if (!st) {
    g_assert_nonnull (error);
    g_assert_true (error->domain == CG_ERROR);
    g_assert_cmpint (error->code, ==, CG_ERROR_FORMAT);
    g_assert_true (g_str_has_prefix (error->message, "fuzz: "));
    g_assert_true (g_utf8_validate (error->message, -1, NULL));
    g_error_free (error);
  } else {
    g_assert_no_error (error);
    check_views (st, data, size);
    check_rewrite (st);
    cg_safetensors_close (st);
  }
  g_bytes_unref (bytes);
  return 0;
}
