/* Tests of the safetensors reader and writer: conversions, round trips and
 * the atomic write.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "safetensors.h"

#include <cyclegan/cg-error.h>
#include <glib/gstdio.h>

#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

/* ---------------------------------------------------------------------------
 * Helpers
 */

static guint32
bits (float f)
{
  guint32 u;

  memcpy (&u, &f, 4);
  return u;
}

static float
from_bits (guint32 u)
{
  float f;

  memcpy (&f, &u, 4);
  return f;
}

static char *
make_tmp_dir (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("cg-st-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir) {
    while ((name = g_dir_read_name (dir))) {
      char *child = g_build_filename (path, name, NULL);

      remove_tree (child);
      g_free (child);
    }
    g_dir_close (dir);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

static guint
count_dir_entries (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir))
    n++;
  g_dir_close (dir);
  return n;
}

static void
assert_file_contents (const char *path, const char *expected)
{
  char *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, expected);
  g_free (contents);
}

static CgTensorOut
tensor_out (const char *name, CgDtype dtype, int n_dims, const gint64 * shape,
    const float *data)
{
  CgTensorOut t = { name, dtype, n_dims, {0}, data };

  memcpy (t.shape, shape, n_dims * sizeof (gint64));
  return t;
}

/* ---------------------------------------------------------------------------
 * Conversions
 */

static void
test_f16_values (void)
{
  g_assert_cmpfloat (cg_f16_to_f32 (0x3c00), ==, 1.0f);
  g_assert_cmpfloat (cg_f16_to_f32 (0xc000), ==, -2.0f);
  g_assert_cmpfloat (cg_f16_to_f32 (0x7bff), ==, 65504.0f);
  g_assert_cmpfloat (cg_f16_to_f32 (0x0400), ==, 0x1p-14f);
  /* Subnormals. */
  g_assert_cmpfloat (cg_f16_to_f32 (0x0001), ==, 0x1p-24f);
  g_assert_cmpfloat (cg_f16_to_f32 (0x03ff), ==, 1023 * 0x1p-24f);
  g_assert_cmpfloat (cg_f16_to_f32 (0x8001), ==, -0x1p-24f);
  g_assert_cmphex (bits (cg_f16_to_f32 (0x8000)), ==, 0x80000000);
  g_assert_cmphex (bits (cg_f16_to_f32 (0x0000)), ==, 0);
  g_assert_true (isinf (cg_f16_to_f32 (0x7c00))
      && cg_f16_to_f32 (0x7c00) > 0);
  g_assert_true (isinf (cg_f16_to_f32 (0xfc00))
      && cg_f16_to_f32 (0xfc00) < 0);
  g_assert_true (isnan (cg_f16_to_f32 (0x7e00)));
  g_assert_true (isnan (cg_f16_to_f32 (0x7c01)));
  g_assert_true (isnan (cg_f16_to_f32 (0xffff)));

  g_assert_cmphex (cg_f32_to_f16 (1.0f), ==, 0x3c00);
  g_assert_cmphex (cg_f32_to_f16 (-0.0f), ==, 0x8000);
  g_assert_cmphex (cg_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (cg_f32_to_f16 (65519.99f), ==, 0x7bff);
  g_assert_cmphex (cg_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmphex (cg_f32_to_f16 (-1e10f), ==, 0xfc00);
  g_assert_cmphex (cg_f32_to_f16 (INFINITY), ==, 0x7c00);
  g_assert_cmphex (cg_f32_to_f16 (-INFINITY), ==, 0xfc00);
  g_assert_cmphex (cg_f32_to_f16 (0x1p-24f), ==, 0x0001);
  /* Ties to even, in the normal and the subnormal range. */
  g_assert_cmphex (cg_f32_to_f16 (1.0f + 0x1p-11f), ==, 0x3c00);
  g_assert_cmphex (cg_f32_to_f16 (1.0f + 3 * 0x1p-11f), ==, 0x3c02);
  g_assert_cmphex (cg_f32_to_f16 (0x1p-25f), ==, 0x0000);
  g_assert_cmphex (cg_f32_to_f16 (-0x1p-25f), ==, 0x8000);
  g_assert_cmphex (cg_f32_to_f16 (nextafterf (0x1p-25f, 1)), ==, 0x0001);
  g_assert_cmphex (cg_f32_to_f16 (3 * 0x1p-25f), ==, 0x0002);
  g_assert_cmphex (cg_f32_to_f16 (5 * 0x1p-25f), ==, 0x0002);
  g_assert_cmphex (cg_f32_to_f16 (1e-10f), ==, 0x0000);
  g_assert_cmphex (cg_f32_to_f16 (0x1p-149f), ==, 0x0000);
  /* The largest subnormal rounds up into the smallest normal. */
  g_assert_cmphex (cg_f32_to_f16 (nextafterf (0x1p-14f, 0)), ==, 0x0400);
  g_assert_true (isnan (cg_f16_to_f32 (cg_f32_to_f16 (NAN))));
  g_assert_true (isnan (cg_f16_to_f32 (cg_f32_to_f16 (-NAN))));
  g_assert_true (isnan (cg_f16_to_f32 (cg_f32_to_f16 (from_bits
                  (0x7f800001)))));
}

/* Every float16: to float32 and back is exact (NaNs stay NaNs), and the
 * midpoints between neighbours round to the even one. */
static void
test_f16_exhaustive (void)
{
  guint32 h;

  for (h = 0; h < 0x10000; h++) {
    float f = cg_f16_to_f32 (h);

    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
      g_assert_true (isnan (f));
      g_assert_true (isnan (cg_f16_to_f32 (cg_f32_to_f16 (f))));
      continue;
    }
    g_assert_cmphex (cg_f32_to_f16 (f), ==, h);
  }
  for (h = 0; h < 0x7bff; h++) {
    float lo = cg_f16_to_f32 (h), hi = cg_f16_to_f32 (h + 1);
    float mid = (lo + hi) / 2;  /* exact: one more bit than float16 */
    guint16 even = (h & 1) ? h + 1 : h;

    g_assert_cmphex (cg_f32_to_f16 (mid), ==, even);
    g_assert_cmphex (cg_f32_to_f16 (-mid), ==, even | 0x8000);
    g_assert_cmphex (cg_f32_to_f16 (nextafterf (mid, 0)), ==, h);
    g_assert_cmphex (cg_f32_to_f16 (nextafterf (mid, INFINITY)), ==, h + 1);
  }
}

static void
test_bf16 (void)
{
  guint32 h;

  g_assert_cmpfloat (cg_bf16_to_f32 (0x3f80), ==, 1.0f);
  g_assert_cmpfloat (cg_bf16_to_f32 (0x0001), ==, 0x1p-133f);
  g_assert_cmphex (cg_f32_to_bf16 (1.0f + 0x1p-8f), ==, 0x3f80);
  g_assert_cmphex (cg_f32_to_bf16 (1.0f + 3 * 0x1p-8f), ==, 0x3f82);
  g_assert_cmphex (cg_f32_to_bf16 (nextafterf (1.0f + 0x1p-8f, 2)), ==,
      0x3f81);
  g_assert_cmphex (cg_f32_to_bf16 (0x1p-133f), ==, 0x0001);
  g_assert_cmphex (cg_f32_to_bf16 (0x1p-149f), ==, 0x0000);
  g_assert_cmphex (cg_f32_to_bf16 (-0.0f), ==, 0x8000);
  g_assert_cmphex (cg_f32_to_bf16 (INFINITY), ==, 0x7f80);
  g_assert_cmphex (cg_f32_to_bf16 (-INFINITY), ==, 0xff80);
  g_assert_cmphex (cg_f32_to_bf16 (from_bits (0x7f7fffff)), ==, 0x7f80);
  g_assert_true (isnan (cg_bf16_to_f32 (cg_f32_to_bf16 (NAN))));
  /* A NaN whose payload sits in the low half must not become inf. */
  g_assert_true (isnan (cg_bf16_to_f32 (cg_f32_to_bf16 (from_bits
                  (0x7f800001)))));
  g_assert_true (isnan (cg_bf16_to_f32 (cg_f32_to_bf16 (from_bits
                  (0xff800001)))));

  for (h = 0; h < 0x10000; h++) {
    float f = cg_bf16_to_f32 (h);

    if (isnan (f))
      continue;
    g_assert_cmphex (cg_f32_to_bf16 (f), ==, h);
  }
}

/* ---------------------------------------------------------------------------
 * Round trips
 */

static const float special[] = {
  0.0f, -0.0f, 1.0f, -1.5f, 0.1f, 3.14159265f, 65504.0f, 1e30f, -1e-30f,
  0x1p-24f, 0x1p-20f, 0x1p-130f, 0x1p-149f, 1e-45f, INFINITY, -INFINITY,
  NAN, 1e-8f, 70000.0f, -0x1.fffffep127f,
};

#define N_SPECIAL G_N_ELEMENTS (special)

static void
assert_same_float (float got, float want)
{
  if (isnan (want))
    g_assert_true (isnan (got));
  else
    g_assert_cmphex (bits (got), ==, bits (want));
}

static void
test_round_trip (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  float big[2 * 3 * 5 * 7];
  const gint64 shape_special[] = { 4, 5 };
  const gint64 shape_big[] = { 2, 3, 5, 7 };
  CgTensorOut out[4];
  GError *error = NULL;
  CgSafetensors *st;
  const CgTensorView *v;
  float got[G_N_ELEMENTS (big)];
  guint8 *contents;
  gsize len;
  guint64 header_len;
  guint i;

  G_STATIC_ASSERT (N_SPECIAL == 20);
  for (i = 0; i < G_N_ELEMENTS (big); i++)
    big[i] = (float) i / 7 - 10;

  out[0] = tensor_out ("f32", CG_DTYPE_F32, 2, shape_special, special);
  out[1] = tensor_out ("f16", CG_DTYPE_F16, 2, shape_special, special);
  out[2] = tensor_out ("bf16", CG_DTYPE_BF16, 2, shape_special, special);
  out[3] = tensor_out ("big", CG_DTYPE_F32, 4, shape_big, big);
  g_assert_true (cg_safetensors_write (path, out, 4, NULL, &error));
  g_assert_no_error (error);

  /* The data starts at a multiple of 8. */
  g_assert_true (g_file_get_contents (path, (char **) &contents, &len, NULL));
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  g_assert_cmpuint (header_len % 8, ==, 0);
  g_assert_cmpuint (len, ==, 8 + header_len + 20 * (4 + 2 + 2) + 210 * 4);
  g_free (contents);

  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (st);
  g_assert_cmpstr (cg_safetensors_path (st), ==, path);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, 4);
  g_assert_cmpuint (g_hash_table_size (cg_safetensors_metadata (st)), ==, 0);

  /* In data order, which is the order written. */
  for (i = 0; i < 4; i++) {
    v = cg_safetensors_tensor (st, i);
    g_assert_cmpstr (v->name, ==, out[i].name);
    g_assert_true (cg_safetensors_find (st, out[i].name) == v);
    g_assert_cmpint (v->dtype, ==, out[i].dtype);
    g_assert_cmpint (v->n_dims, ==, out[i].n_dims);
    g_assert_cmpmem (v->shape, v->n_dims * sizeof (gint64), out[i].shape,
        out[i].n_dims * sizeof (gint64));
  }
  g_assert_null (cg_safetensors_find (st, "nope"));

  v = cg_safetensors_find (st, "f32");
  g_assert_cmpint (v->n_elements, ==, 20);
  g_assert_cmpuint (v->n_bytes, ==, 80);
  cg_tensor_view_to_f32 (v, got);
  for (i = 0; i < N_SPECIAL; i++)
    assert_same_float (got[i], special[i]);

  v = cg_safetensors_find (st, "f16");
  g_assert_cmpuint (v->n_bytes, ==, 40);
  cg_tensor_view_to_f32 (v, got);
  for (i = 0; i < N_SPECIAL; i++)
    assert_same_float (got[i], cg_f16_to_f32 (cg_f32_to_f16 (special[i])));
  /* Values float16 holds exactly come back exactly; the rest as expected. */
  assert_same_float (got[2], 1.0f);
  assert_same_float (got[3], -1.5f);
  assert_same_float (got[6], 65504.0f);
  assert_same_float (got[7], INFINITY);
  assert_same_float (got[9], 0x1p-24f);
  assert_same_float (got[10], 0x1p-20f);
  assert_same_float (got[11], 0.0f);
  assert_same_float (got[14], INFINITY);
  assert_same_float (got[15], -INFINITY);
  assert_same_float (got[16], NAN);
  assert_same_float (got[18], INFINITY);
  assert_same_float (got[4], 0.0999755859375f);

  v = cg_safetensors_find (st, "bf16");
  cg_tensor_view_to_f32 (v, got);
  for (i = 0; i < N_SPECIAL; i++)
    assert_same_float (got[i], cg_bf16_to_f32 (cg_f32_to_bf16 (special[i])));
  assert_same_float (got[11], 0x1p-130f);       /* a bfloat16 subnormal */
  assert_same_float (got[19], -INFINITY);

  v = cg_safetensors_find (st, "big");
  g_assert_cmpint (v->n_elements, ==, 210);
  cg_tensor_view_to_f32 (v, got);
  g_assert_cmpmem (got, sizeof big, big, sizeof big);

  cg_safetensors_close (st);
  remove_tree (dir);
}

static void
test_metadata (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_autoptr (GHashTable) md = g_hash_table_new (g_str_hash, g_str_equal);
  const float x[] = { 1, 2 };
  const gint64 shape[] = { 2 };
  CgTensorOut out = tensor_out ("x", CG_DTYPE_F32, 1, shape, x);
  GError *error = NULL;
  CgSafetensors *st;
  GHashTable *got;
  GHashTableIter iter;
  gpointer k, v;

  g_hash_table_insert (md, "format", "pt");
  g_hash_table_insert (md, "ngf", "64");
  g_hash_table_insert (md, "empty", "");
  g_hash_table_insert (md, "quote\"d", "line\nbreak\ttab \\ \"q\" \x01");
  g_hash_table_insert (md, "ünïcødé", "✓ 日本");
  g_assert_true (cg_safetensors_write (path, &out, 1, md, &error));
  g_assert_no_error (error);

  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  got = cg_safetensors_metadata (st);
  g_assert_cmpuint (g_hash_table_size (got), ==, g_hash_table_size (md));
  g_hash_table_iter_init (&iter, md);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_assert_cmpstr (g_hash_table_lookup (got, k), ==, v);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, 1);
  cg_safetensors_close (st);

  /* No tensors at all, only metadata: valid, with an empty data buffer. */
  g_assert_true (cg_safetensors_write (path, NULL, 0, md, &error));
  g_assert_no_error (error);
  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (cg_safetensors_metadata (st),
          "ngf"), ==, "64");
  cg_safetensors_close (st);
  remove_tree (dir);
}

static void
test_escaped_names (void)
{
  static const char *const names[] = {
    "quote\"inside", "back\\slash", "new\nline", "tab\there", "\x01\x1f",
    "del\x7f", "/slash/", "ünïcødé ✓", "G_A.model.1.weight", "{\"x\":1}",
    "\\u0041", " ",
  };
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  CgTensorOut out[G_N_ELEMENTS (names)];
  float data[G_N_ELEMENTS (names)];
  const gint64 shape[] = { 1 };
  GError *error = NULL;
  CgSafetensors *st;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    data[i] = i;
    out[i] = tensor_out (names[i], CG_DTYPE_F32, 1, shape, &data[i]);
  }
  g_assert_true (cg_safetensors_write (path, out, G_N_ELEMENTS (names), NULL,
          &error));
  g_assert_no_error (error);
  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, G_N_ELEMENTS (names));
  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    const CgTensorView *v = cg_safetensors_tensor (st, i);
    float f;

    g_assert_cmpstr (v->name, ==, names[i]);
    g_assert_true (cg_safetensors_find (st, names[i]) == v);
    cg_tensor_view_to_f32 (v, &f);
    g_assert_cmpfloat (f, ==, i);
  }
  cg_safetensors_close (st);
  remove_tree (dir);
}

static void
test_zero_elements (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  const float x[] = { 1, 2, 3 }, scalar = 42;
  const gint64 s_empty[] = { 0, 3 }, s_empty2[] = { 3, 0, 2 }, s_x[] = { 3 };
  /* A huge dimension beside a zero one is still zero elements. */
  const gint64 s_huge[] = { G_GINT64_CONSTANT (1) << 62, 0 };
  CgTensorOut out[] = {
    tensor_out ("empty_first", CG_DTYPE_F32, 2, s_empty, NULL),
    tensor_out ("x", CG_DTYPE_F16, 1, s_x, x),
    tensor_out ("empty_mid", CG_DTYPE_BF16, 3, s_empty2, NULL),
    tensor_out ("scalar", CG_DTYPE_F32, 0, s_x, &scalar),
    tensor_out ("huge_empty", CG_DTYPE_F32, 2, s_huge, NULL),
  };
  GError *error = NULL;
  CgSafetensors *st;
  const CgTensorView *v;
  float got[3];

  g_assert_true (cg_safetensors_write (path, out, G_N_ELEMENTS (out), NULL,
          &error));
  g_assert_no_error (error);
  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, 5);

  v = cg_safetensors_find (st, "empty_first");
  g_assert_cmpint (v->n_elements, ==, 0);
  g_assert_cmpuint (v->n_bytes, ==, 0);
  g_assert_cmpint (v->n_dims, ==, 2);
  cg_tensor_view_to_f32 (v, NULL);
  v = cg_safetensors_find (st, "empty_mid");
  g_assert_cmpint (v->n_elements, ==, 0);
  g_assert_cmpint (v->shape[1], ==, 0);
  v = cg_safetensors_find (st, "huge_empty");
  g_assert_cmpint (v->n_elements, ==, 0);
  g_assert_cmpint (v->shape[0], ==, G_GINT64_CONSTANT (1) << 62);
  v = cg_safetensors_find (st, "scalar");
  g_assert_cmpint (v->n_dims, ==, 0);
  g_assert_cmpint (v->n_elements, ==, 1);
  cg_tensor_view_to_f32 (v, got);
  g_assert_cmpfloat (got[0], ==, 42);
  v = cg_safetensors_find (st, "x");
  cg_tensor_view_to_f32 (v, got);
  g_assert_cmpmem (got, sizeof x, x, sizeof x);
  cg_safetensors_close (st);
  remove_tree (dir);
}

/* The same bytes through cg_safetensors_open_bytes(). */
static void
test_open_bytes (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  const float x[] = { 1, -2 };
  const gint64 shape[] = { 1, 2 };
  CgTensorOut out = tensor_out ("w", CG_DTYPE_BF16, 2, shape, x);
  GError *error = NULL;
  CgSafetensors *st;
  GBytes *bytes;
  char *contents;
  gsize len;
  float got[2];

  g_assert_true (cg_safetensors_write (path, &out, 1, NULL, &error));
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  bytes = g_bytes_new_take (contents, len);
  st = cg_safetensors_open_bytes ("<memory>", bytes, &error);
  g_bytes_unref (bytes);        /* the reader keeps its own reference */
  g_assert_no_error (error);
  g_assert_cmpstr (cg_safetensors_path (st), ==, "<memory>");
  cg_tensor_view_to_f32 (cg_safetensors_find (st, "w"), got);
  g_assert_cmpmem (got, sizeof x, x, sizeof x);
  cg_safetensors_close (st);

  bytes = g_bytes_new_static ("\x02\0\0\0\0\0\0\0{}", 10);
  st = cg_safetensors_open_bytes ("<memory>", bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cg_safetensors_n_tensors (st), ==, 0);
  cg_safetensors_close (st);
  g_bytes_unref (bytes);

  bytes = g_bytes_new_static ("\x02\0\0\0\0\0\0\0[]", 10);
  st = cg_safetensors_open_bytes ("<memory>", bytes, &error);
  g_assert_null (st);
  g_assert_error (error, CG_ERROR, CG_ERROR_FORMAT);
  g_assert_true (g_str_has_prefix (error->message, "<memory>: "));
  g_clear_error (&error);
  g_bytes_unref (bytes);
  remove_tree (dir);
}

/* Names and shapes the writer must refuse before it touches the disk. */
static void
test_write_invalid (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  const float x[] = { 1 };
  const gint64 one[] = { 1 }, neg[] = { -1 };
  const gint64 huge[] = { G_GINT64_CONSTANT (1) << 40,
    G_GINT64_CONSTANT (1) << 40
  };
  CgTensorOut dup[] = {
    tensor_out ("a", CG_DTYPE_F32, 1, one, x),
    tensor_out ("a", CG_DTYPE_F32, 1, one, x),
  };
  CgTensorOut bad[] = {
    tensor_out ("__metadata__", CG_DTYPE_F32, 1, one, x),
    tensor_out ("", CG_DTYPE_F32, 1, one, x),
    tensor_out ("\xff", CG_DTYPE_F32, 1, one, x),
    tensor_out ("n", CG_DTYPE_F32, 1, neg, x),
    tensor_out ("h", CG_DTYPE_F32, 2, huge, x),
    tensor_out ("nodata", CG_DTYPE_F32, 1, one, NULL),
    tensor_out ("dims", CG_DTYPE_F32, 1, one, x),
    tensor_out ("dtype", 7, 1, one, x),
  };
  GError *error = NULL;
  guint i;

  bad[6].n_dims = CG_ST_MAX_DIMS + 1;
  g_assert_true (g_file_set_contents (path, "old", -1, NULL));

  g_assert_false (cg_safetensors_write (path, dup, 2, NULL, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "\"a\""));
  g_clear_error (&error);

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_assert_false (cg_safetensors_write (path, &bad[i], 1, NULL, &error));
    g_assert_error (error, CG_ERROR, CG_ERROR_FORMAT);
    g_assert_true (g_str_has_prefix (error->message, path));
    g_clear_error (&error);
  }
  assert_file_contents (path, "old");
  g_assert_cmpuint (count_dir_entries (dir), ==, 1);
  remove_tree (dir);
}

/* ---------------------------------------------------------------------------
 * Atomic writes and write failures
 */

/* An output stream that takes `room` bytes and then fails as a full disk
 * does. */
typedef struct
{
  GOutputStream parent;
  gsize room;
} FullStream;

typedef struct
{
  GOutputStreamClass parent_class;
} FullStreamClass;

static GType full_stream_get_type (void);
G_DEFINE_TYPE (FullStream, full_stream, G_TYPE_OUTPUT_STREAM);

static gssize
full_stream_write (GOutputStream * stream, const void *buf, gsize count,
    GCancellable * cancellable, GError ** error)
{
  FullStream *self = (FullStream *) stream;

  if (self->room == 0) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
        g_strerror (ENOSPC));
    return -1;
  }
  count = MIN (count, self->room);
  self->room -= count;
  return count;
}

static void
full_stream_class_init (FullStreamClass * klass)
{
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = full_stream_write;
}

static void
full_stream_init (FullStream * self)
{
}

static void
test_write_stream_full (void)
{
  const gint64 shape[] = { 1000 };
  float x[1000] = { 0 };
  CgTensorOut out[] = {
    tensor_out ("a", CG_DTYPE_F32, 1, shape, x),
    tensor_out ("b", CG_DTYPE_F16, 1, shape, x),
  };
  /* The disk fills in the length, in the header, in each tensor. */
  const gsize rooms[] = { 0, 5, 20, 100, 2000, 4500, 5500 };
  GError *error = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (rooms); i++) {
    FullStream *s = g_object_new (full_stream_get_type (), NULL);

    s->room = rooms[i];
    g_assert_false (cg_safetensors_write_to_stream (G_OUTPUT_STREAM (s),
            "full.safetensors", out, 2, NULL, NULL, &error));
    g_assert_error (error, CG_ERROR, CG_ERROR_IO);
    g_assert_true (g_str_has_prefix (error->message, "full.safetensors: "));
    g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
    g_clear_error (&error);
    g_object_unref (s);
  }
}

/* /dev/full: the kernel's own ENOSPC, through a real file stream. */
static void
test_write_dev_full (void)
{
  const gint64 shape[] = { 4 };
  const float x[4] = { 1, 2, 3, 4 };
  CgTensorOut out = tensor_out ("a", CG_DTYPE_F32, 1, shape, x);
  GFile *file;
  GFileOutputStream *stream;
  GError *error = NULL;

  if (!g_file_test ("/dev/full", G_FILE_TEST_EXISTS)) {
    g_test_skip ("no /dev/full");
    return;
  }
  file = g_file_new_for_path ("/dev/full");
  stream = g_file_append_to (file, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  /* Small writes may sit in no buffer: GLocalFileOutputStream writes
   * through, so the first write fails. */
  g_assert_false (cg_safetensors_write_to_stream (G_OUTPUT_STREAM (stream),
          "/dev/full", &out, 1, NULL, NULL, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, "/dev/full: "));
  g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
  g_clear_error (&error);
  g_output_stream_close (G_OUTPUT_STREAM (stream), NULL, NULL);
  g_object_unref (stream);
  g_object_unref (file);
}

static void
test_write_replaces (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  const gint64 shape[] = { 1 };
  const float x[] = { 7 };
  CgTensorOut out = tensor_out ("x", CG_DTYPE_F32, 1, shape, x);
  GError *error = NULL;
  CgSafetensors *st;

  g_assert_true (g_file_set_contents (path, "old contents", -1, NULL));
  g_assert_true (cg_safetensors_write (path, &out, 1, NULL, &error));
  g_assert_no_error (error);
  st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cg_safetensors_find (st, "x"));
  cg_safetensors_close (st);
  g_assert_cmpuint (count_dir_entries (dir), ==, 1);
  remove_tree (dir);
}

/* Writes that cannot even start. Tests may run as root, for whom a
 * read-only directory is no obstacle, so these fail for other reasons. */
static void
test_write_unwritable (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *regular = g_build_filename (dir, "file", NULL);
  g_autofree char *under_file = g_build_filename (regular, "m.safetensors",
      NULL);
  g_autofree char *missing = g_build_filename (dir, "no", "such", "dir",
      "m.safetensors", NULL);
  g_autofree char *subdir = g_build_filename (dir, "subdir", NULL);
  const char *paths[] = { under_file, missing, subdir };
  const gint64 shape[] = { 1 };
  const float x[] = { 7 };
  CgTensorOut out = tensor_out ("x", CG_DTYPE_F32, 1, shape, x);
  GError *error = NULL;
  guint i;

  g_assert_true (g_file_set_contents (regular, "old", -1, NULL));
  g_assert_cmpint (g_mkdir (subdir, 0755), ==, 0);

  for (i = 0; i < G_N_ELEMENTS (paths); i++) {
    g_assert_false (cg_safetensors_write (paths[i], &out, 1, NULL, &error));
    g_assert_error (error, CG_ERROR, CG_ERROR_IO);
    g_assert_true (g_str_has_prefix (error->message, paths[i]));
    g_test_message ("%s", error->message);
    g_clear_error (&error);
  }
  assert_file_contents (regular, "old");
  g_assert_true (g_file_test (subdir, G_FILE_TEST_IS_DIR));
  g_assert_cmpuint (count_dir_entries (subdir), ==, 0);
  g_assert_cmpuint (count_dir_entries (dir), ==, 2);
  remove_tree (dir);
}

/* A write that fails half way, as on a full disk: RLIMIT_FSIZE makes the
 * kernel refuse to grow a file past a size, root or not (EFBIG). In a
 * subprocess, as the limit cannot be raised again. The old file must stay
 * as it was, a new one must not appear, and no temporary file may be left
 * behind. */
static void
test_write_fails_midway (void)
{
  const char *dir_env = g_getenv ("CG_TEST_MIDWAY_DIR");

  if (g_test_subprocess ()) {
    g_autofree char *path = g_build_filename (dir_env, "m.safetensors", NULL);
    const gint64 shape[] = { 64 * 1024 };
    float *x = g_new0 (float, 64 * 1024);
    CgTensorOut out = tensor_out ("x", CG_DTYPE_F32, 1, shape, x);
    struct rlimit rl = { 16 * 1024, 16 * 1024 };
    GError *error = NULL;

    signal (SIGXFSZ, SIG_IGN);
    g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &rl), ==, 0);
    g_assert_false (cg_safetensors_write (path, &out, 1, NULL, &error));
    g_assert_error (error, CG_ERROR, CG_ERROR_IO);
    g_assert_true (g_str_has_prefix (error->message, path));
    g_assert_nonnull (strstr (error->message, g_strerror (EFBIG)));
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);

    /* A new file: nothing may appear under its name. */
    g_free (path);
    path = g_build_filename (dir_env, "new.safetensors", NULL);
    g_assert_false (cg_safetensors_write (path, &out, 1, NULL, &error));
    g_assert_error (error, CG_ERROR, CG_ERROR_IO);
    g_clear_error (&error);
    g_free (x);
    return;
  } else {
    g_autofree char *dir = make_tmp_dir ();
    g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);

    g_assert_true (g_file_set_contents (path, "old model", -1, NULL));
    g_setenv ("CG_TEST_MIDWAY_DIR", dir, TRUE);
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_unsetenv ("CG_TEST_MIDWAY_DIR");
    g_test_trap_assert_passed ();
    assert_file_contents (path, "old model");
    g_assert_cmpuint (count_dir_entries (dir), ==, 1);
    remove_tree (dir);
  }
}

/* A real full disk, where one is at hand: CG_TEST_SMALL_FS_DIR names an
 * empty directory on a file system smaller than 4 MB, e.g. a tmpfs mounted
 * with -o size=64k. */
static void
test_write_enospc (void)
{
  const char *dir = g_getenv ("CG_TEST_SMALL_FS_DIR");
  g_autofree char *path = NULL;
  const gint64 shape[] = { 1024 * 1024 };
  float *x;
  CgTensorOut out;
  GError *error = NULL;

  if (!dir) {
    g_test_skip ("set CG_TEST_SMALL_FS_DIR to a directory on a small file "
        "system");
    return;
  }
  path = g_build_filename (dir, "m.safetensors", NULL);
  x = g_new0 (float, 1024 * 1024);
  out = tensor_out ("x", CG_DTYPE_F32, 1, shape, x);
  g_assert_true (g_file_set_contents (path, "old model", -1, NULL));
  g_assert_false (cg_safetensors_write (path, &out, 1, NULL, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, path));
  g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  assert_file_contents (path, "old model");
  g_assert_cmpuint (count_dir_entries (dir), ==, 1);
  g_unlink (path);
  g_free (x);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/safetensors/f16/values", test_f16_values);
  g_test_add_func ("/safetensors/f16/exhaustive", test_f16_exhaustive);
  g_test_add_func ("/safetensors/bf16", test_bf16);
  g_test_add_func ("/safetensors/round-trip", test_round_trip);
  g_test_add_func ("/safetensors/metadata", test_metadata);
  g_test_add_func ("/safetensors/escaped-names", test_escaped_names);
  g_test_add_func ("/safetensors/zero-elements", test_zero_elements);
  g_test_add_func ("/safetensors/open-bytes", test_open_bytes);
  g_test_add_func ("/safetensors/write/invalid", test_write_invalid);
  g_test_add_func ("/safetensors/write/stream-full", test_write_stream_full);
  g_test_add_func ("/safetensors/write/dev-full", test_write_dev_full);
  g_test_add_func ("/safetensors/write/replaces", test_write_replaces);
  g_test_add_func ("/safetensors/write/unwritable", test_write_unwritable);
  g_test_add_func ("/safetensors/write/fails-midway",
      test_write_fails_midway);
  g_test_add_func ("/safetensors/write/enospc", test_write_enospc);

  return g_test_run ();
}
