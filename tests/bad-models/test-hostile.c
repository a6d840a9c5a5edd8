/* Hostile and broken model files, built in a temporary directory at test
 * time: each must be refused with a CG_ERROR whose message names the file
 * and the problem.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first group goes through the safetensors reader; the second through
 * cg_model_load(), with well-formed files that are not a CycleGAN ResNet
 * generator.
 */

#include "safetensors.h"

#include <cyclegan/cyclegan.h>
#include <glib/gstdio.h>

#include <string.h>
#include <sys/stat.h>

static char *tmp_dir;

/* ---------------------------------------------------------------------------
 * Malformed files
 */

typedef struct
{
  const char *test;             /* the test's name */
  const char *header;           /* JSON text; NULL: `raw` is the file */
  gint64 length;                /* the header length field; -1: the text's */
  gsize data_len;               /* bytes after the header */
  const char *raw;
  gsize raw_len;
  const char *expect;           /* a substring of the message */
} Hostile;

#define F32(shape, b, e) \
  "{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const Hostile hostile[] = {
  {"header-beyond-file", "{}", 100, 0, NULL, 0, "goes beyond the end"},
  {"header-2-pow-63", "{}", G_MININT64, 0, NULL, 0, "more than the limit"},
  {"header-too-large", "{}", CG_ST_MAX_HEADER + 1, 0, NULL, 0,
      "more than the limit"},
  {"header-length-0", "{}", 0, 0, NULL, 0, "header length is 0"},
  {"five-bytes", NULL, 0, 0, "\x02\0\0\0\0", 5, "5 bytes, too short"},
  {"empty-file", NULL, 0, 0, "", 0, "0 bytes, too short"},
  {"not-an-object", "[1,2]", -1, 0, NULL, 0, "not a JSON object"},
  {"not-an-object-string", "\"{}\"", -1, 0, NULL, 0, "not a JSON object"},
  {"leading-garbage", "x{}", -1, 0, NULL, 0, "does not start with '{'"},
  {"invalid-json", "{\"a\":", -1, 0, NULL, 0, "not valid JSON"},
  {"invalid-json-comma", "{\"a\":1,}", -1, 0, NULL, 0, "not valid JSON"},
  {"json-single-quotes", "{'a':{}}", -1, 0, NULL, 0, "not valid JSON"},
  {"json-comment", "{/* x */}", -1, 0, NULL, 0, "not valid JSON"},
  {"json-raw-newline", "{\"a\n\":{}}", -1, 0, NULL, 0, "control character"},
  {"json-bad-escape", "{\"\\x41\":{}}", -1, 0, NULL, 0, "invalid escape"},
  {"json-hex-number", "{\"a\":" F32 ("[0x2]", 0, 8) "}", -1, 8, NULL, 0,
      "not valid JSON"},
  {"json-trailing-data", "{}{}", -1, 0, NULL, 0, "data after the object"},
  {"json-escaped-nul", "{\"a\\u0000b\":" F32 ("[1]", 0, 4) "}", -1, 4,
      NULL, 0, "\\u0000"},
  {"json-lone-surrogate", "{\"\\ud800\":" F32 ("[1]", 0, 4) "}", -1, 4,
      NULL, 0, "surrogate"},
  {"json-deep", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]}", -1, 0,
      NULL, 0, "nested too deeply"},
  {"not-utf8", "{\"\xff\":" F32 ("[1]", 0, 4) "}", -1, 4, NULL, 0,
      "not valid UTF-8"},
  {"nul-in-header", NULL, 0, 0, "\x04\0\0\0\0\0\0\0{\0} ", 12,
      "not valid UTF-8"},
  {"duplicate-key", "{\"a\":" F32 ("[1]", 0, 4) ",\"a\":" F32 ("[1]", 0, 4)
        "}", -1, 4, NULL, 0, "\"a\" twice"},
  {"entry-not-object", "{\"a\":[1]}", -1, 0, NULL, 0,
      "tensor \"a\": the entry is not an object"},
  {"unknown-dtype", "{\"a\":{\"dtype\":\"I8\",\"shape\":[4],"
        "\"data_offsets\":[0,4]}}", -1, 4, NULL, 0,
      "tensor \"a\": unsupported dtype \"I8\""},
  {"dtype-not-string", "{\"a\":{\"dtype\":4,\"shape\":[1],"
        "\"data_offsets\":[0,4]}}", -1, 4, NULL, 0, "dtype is not a string"},
  {"no-dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
      NULL, 0, "tensor \"a\": no dtype"},
  {"no-shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4,
      NULL, 0, "tensor \"a\": no shape"},
  {"no-data-offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 4,
      NULL, 0, "tensor \"a\": no data_offsets"},
  {"unknown-field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[0,4],\"extra\":1}}", -1, 4, NULL, 0,
      "unknown field \"extra\""},
  {"empty-name", "{\"\":" F32 ("[1]", 0, 4) "}", -1, 4, NULL, 0,
      "empty name"},
  {"shape-not-array", "{\"a\":" F32 ("4", 0, 16) "}", -1, 16, NULL, 0,
      "shape is not an array"},
  {"shape-float", "{\"a\":" F32 ("[4.0]", 0, 16) "}", -1, 16, NULL, 0,
      "shape[0] is not an integer"},
  {"shape-negative", "{\"a\":" F32 ("[2,-2]", 0, 16) "}", -1, 16, NULL, 0,
      "shape[1] is negative"},
  {"shape-2-pow-64", "{\"a\":" F32 ("[18446744073709551616]", 0, 16) "}", -1, 16,
      NULL, 0, "integer too large"},
  {"shape-2-pow-63", "{\"a\":" F32 ("[9223372036854775808]", 0, 16) "}", -1, 16,
      NULL, 0, "shape[0] is negative (or too large)"},
  {"shape-overflow", "{\"a\":" F32 ("[1099511627776,1099511627776]", 0, 16)
        "}", -1, 16, NULL, 0, "element count overflows"},
  {"bytes-overflow", "{\"a\":" F32 ("[4611686018427387904]", 0, 16) "}", -1,
      16, NULL, 0, "byte size overflows"},
  {"too-many-dims", "{\"a\":" F32 ("[1,1,1,1,1,1,1,1,1]", 0, 4) "}", -1, 4,
      NULL, 0, "9 dimensions, more than 8"},
  {"offsets-reversed", "{\"a\":" F32 ("[1]", 8, 4) "}", -1, 8, NULL, 0,
      "[8,4] begin after they end"},
  {"offsets-negative", "{\"a\":" F32 ("[1]", -4, 0) "}", -1, 0, NULL, 0,
      "data_offsets[0] is negative"},
  {"offsets-strings", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[\"0\",\"4\"]}}", -1, 4, NULL, 0,
      "data_offsets is not an array of two integers"},
  {"offsets-one", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[4]}}", -1, 4, NULL, 0,
      "data_offsets is not an array of two integers"},
  {"offsets-three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[0,4,4]}}", -1, 4, NULL, 0,
      "data_offsets is not an array of two integers"},
  {"offsets-object", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":{\"begin\":0}}}", -1, 4, NULL, 0,
      "data_offsets is not an array of two integers"},
  {"offsets-float", "{\"a\":" F32 ("[1]", 0, 4.0) "}", -1, 4, NULL, 0,
      "data_offsets is not an array of two integers"},
  {"overlap", "{\"a\":" F32 ("[2]", 0, 8) ",\"b\":" F32 ("[2]", 4, 12) "}",
      -1, 12, NULL, 0, "tensors \"a\" [0,8] and \"b\" [4,12] overlap"},
  {"overlap-inside", "{\"a\":" F32 ("[4]", 0, 16) ",\"b\":" F32 ("[1]", 4, 8)
        "}", -1, 16, NULL, 0, "overlap"},
  {"empty-inside-other", "{\"a\":" F32 ("[4]", 0, 16) ",\"b\":" F32 ("[0]",
          4, 4) "}", -1, 16, NULL, 0, "overlap"},
  {"duplicate-range", "{\"a\":" F32 ("[2]", 0, 8) ",\"b\":" F32 ("[2]", 0, 8)
        "}", -1, 8, NULL, 0, "tensors \"a\" [0,8] and \"b\" [0,8] overlap"},
  {"gap", "{\"a\":" F32 ("[2]", 0, 8) ",\"b\":" F32 ("[2]", 12, 20) "}", -1,
      20, NULL, 0, "bytes [8,12) of the data buffer belong to no tensor"},
  {"gap-at-start", "{\"a\":" F32 ("[2]", 4, 12) "}", -1, 12, NULL, 0,
      "bytes [0,4) of the data buffer belong to no tensor"},
  {"gap-at-end", "{\"a\":" F32 ("[2]", 0, 8) "}", -1, 12, NULL, 0,
      "bytes [8,12) of the data buffer belong to no tensor"},
  {"data-without-tensors", "{}", -1, 8, NULL, 0,
      "bytes [0,8) of the data buffer belong to no tensor"},
  {"range-past-end", "{\"a\":" F32 ("[2]", 0, 8) ",\"b\":" F32 ("[2]", 8,
          16) "}", -1, 12, NULL, 0,
      "tensor \"b\": data_offsets [8,16] go beyond the end of the data buffer"},
  {"size-mismatch", "{\"a\":" F32 ("[3]", 0, 8) "}", -1, 8, NULL, 0,
      "tensor \"a\": shape [3] needs 12 bytes, data_offsets span 8"},
  {"size-mismatch-f16", "{\"G_A.model.1.weight\":{\"dtype\":\"F16\","
        "\"shape\":[64,3,7,7],\"data_offsets\":[0,18814]}}", -1, 18814,
        NULL, 0, "tensor \"G_A.model.1.weight\": shape [64,3,7,7] needs "
        "18816 bytes, data_offsets span 18814"},
  {"truncated", "{\"a\":" F32 ("[16]", 0, 64) "}", -1, 32, NULL, 0,
      "truncated file"},
  {"metadata-not-string", "{\"__metadata__\":{\"k\":1}}", -1, 0, NULL, 0,
      "__metadata__ \"k\": the value is not a string"},
  {"metadata-null", "{\"__metadata__\":{\"k\":null}}", -1, 0, NULL, 0,
      "__metadata__ \"k\": the value is not a string"},
  {"metadata-not-object", "{\"__metadata__\":[\"k\"]}", -1, 0, NULL, 0,
      "__metadata__ is not an object"},
  {"metadata-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", -1, 0,
      NULL, 0, "\"__metadata__\" twice"},
  {"metadata-duplicate-key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}",
      -1, 0, NULL, 0, "\"k\" twice"},
};

static char *
hostile_path (const char *test)
{
  char *name = g_strdup_printf ("%s.safetensors", test);
  char *path = g_build_filename (tmp_dir, name, NULL);

  g_free (name);
  return path;
}

static void
write_hostile (const Hostile * h, const char *path)
{
  GError *error = NULL;
  GString *file;

  if (!h->header) {
    g_file_set_contents (path, h->raw, h->raw_len, &error);
    g_assert_no_error (error);
    return;
  }
  file = g_string_new (NULL);
  {
    guint64 len = h->length >= 0 || h->length == G_MININT64 ?
        (guint64) h->length : strlen (h->header);

    len = GUINT64_TO_LE (len);
    g_string_append_len (file, (const char *) &len, 8);
  }
  g_string_append (file, h->header);
  /* Data bytes: nonzero, so that nothing passes by reading zeros. */
  for (gsize i = 0; i < h->data_len; i++)
    g_string_append_c (file, (char) (0x40 + i % 7));
  g_file_set_contents (path, file->str, file->len, &error);
  g_assert_no_error (error);
  g_string_free (file, TRUE);
}

static void
assert_refused (const char *path, int code, const char *expect)
{
  GError *error = NULL;
  CgSafetensors *st = cg_safetensors_open (path, &error);

  g_assert_null (st);
  g_assert_error (error, CG_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, path));
  if (!strstr (error->message, expect))
    g_error ("message \"%s\" does not contain \"%s\"", error->message,
        expect);
  g_error_free (error);
}

/* Where meson built cyclegan-translate (CG_TRANSLATE), the tool must
 * refuse the file too: a non-zero exit, a message naming it, and no output
 * file left behind. */
static void
assert_tool_refuses (const char *path, const char *expect)
{
  const char *tool = g_getenv ("CG_TRANSLATE");
  g_autofree char *out = g_build_filename (tmp_dir, "out.png", NULL);
  g_autofree char *in = g_build_filename (tmp_dir, "in.png", NULL);
  g_autofree char *err = NULL;
  GError *error = NULL;
  int status;
  const char *argv[] = { tool, "--model", path, in, out, NULL };

  if (!tool)
    return;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL,
          G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status,
          &error));
  g_assert_no_error (error);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (err, path));
  if (expect)
    g_assert_nonnull (strstr (err, expect));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

static void
test_hostile (gconstpointer data)
{
  const Hostile *h = data;
  g_autofree char *path = hostile_path (h->test);

  write_hostile (h, path);
  assert_refused (path, CG_ERROR_FORMAT, h->expect);
  assert_tool_refuses (path, h->expect);

  /* The in-memory entry refuses the same bytes with the same message. */
  {
    GError *error = NULL;
    char *contents;
    gsize len;
    GBytes *bytes;
    CgSafetensors *st;

    g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
    bytes = g_bytes_new_take (contents, len);
    st = cg_safetensors_open_bytes ("mem", bytes, &error);
    g_assert_null (st);
    g_assert_error (error, CG_ERROR, CG_ERROR_FORMAT);
    g_assert_true (g_str_has_prefix (error->message, "mem: "));
    g_assert_nonnull (strstr (error->message, h->expect));
    g_error_free (error);
    g_bytes_unref (bytes);
  }
  g_unlink (path);
}

/* The same checks accept the well-formed neighbours of the cases above. */
static void
test_accepted (void)
{
  static const Hostile ok[] = {
    {"ok-empty", "{}", -1, 0, NULL, 0, NULL},
    {"ok-padded", "  \n{}    ", -1, 0, NULL, 0, NULL},
    {"ok-empty-tensor-at-boundary", "{\"a\":" F32 ("[2]", 0, 8) ",\"b\":"
          F32 ("[0,5]", 8, 8) ",\"c\":" F32 ("[1]", 8, 12) "}", -1, 12,
        NULL, 0, NULL},
    {"ok-unordered", "{\"b\":" F32 ("[1]", 4, 8) ",\"a\":" F32 ("[1]", 0,
            4) "}", -1, 8, NULL, 0, NULL},
    {"ok-metadata", "{\"__metadata__\":{\"k\":\"v\",\"\\u00e9\\ud83d\\ude00\":"
          "\"\"}}", -1, 0, NULL, 0, NULL},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (ok); i++) {
    g_autofree char *path = hostile_path (ok[i].test);
    GError *error = NULL;
    CgSafetensors *st;

    write_hostile (&ok[i], path);
    st = cg_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_nonnull (st);
    if (i == 3) {
      /* Sorted by data offset, whatever the header's order. */
      g_assert_cmpstr (cg_safetensors_tensor (st, 0)->name, ==, "a");
      g_assert_cmpstr (cg_safetensors_tensor (st, 1)->name, ==, "b");
    }
    if (i == 4)
      g_assert_cmpstr (g_hash_table_lookup (cg_safetensors_metadata (st),
              "é😀"), ==, "");
    cg_safetensors_close (st);
    g_unlink (path);
  }
}

static void
test_directory (void)
{
  g_autofree char *path = g_build_filename (tmp_dir, "a-directory", NULL);

  g_assert_cmpint (g_mkdir (path, 0755), ==, 0);
  assert_refused (path, CG_ERROR_IO, g_strerror (EISDIR));
  assert_tool_refuses (path, g_strerror (EISDIR));
  g_rmdir (path);
}

static void
test_nonexistent (void)
{
  g_autofree char *path = g_build_filename (tmp_dir, "no-such-file", NULL);

  assert_refused (path, CG_ERROR_IO, g_strerror (ENOENT));
  assert_tool_refuses (path, g_strerror (ENOENT));
}

/* A FIFO would block a plain open() until a writer came. */
static void
test_fifo (void)
{
  g_autofree char *path = g_build_filename (tmp_dir, "a-fifo", NULL);

  if (mkfifo (path, 0600) != 0) {
    g_test_skip ("cannot make a FIFO");
    return;
  }
  assert_refused (path, CG_ERROR_IO, "not a regular file");
  g_unlink (path);
}

/* ---------------------------------------------------------------------------
 * Well-formed files that are not a generator, through cg_model_load()
 */

typedef struct
{
  GPtrArray *names;             /* owns the names */
  GArray *tensors;              /* CgTensorOut */
  float *zeros;                 /* data for every tensor */
} Tensors;

#define MAX_ELEMENTS (8 * 8 * 3 * 3)

static void
tensors_init (Tensors * t)
{
  t->names = g_ptr_array_new_with_free_func (g_free);
  t->tensors = g_array_new (FALSE, FALSE, sizeof (CgTensorOut));
  t->zeros = g_new0 (float, MAX_ELEMENTS);
}

static void
tensors_clear (Tensors * t)
{
  g_ptr_array_unref (t->names);
  g_array_unref (t->tensors);
  g_free (t->zeros);
}

static void
add_tensor (Tensors * t, const char *prefix, const char *name, int n_dims,
    gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  CgTensorOut out = { NULL, CG_DTYPE_F32, n_dims, {d0, d1, d2, d3}, NULL };
  char *full = g_strconcat (prefix, name, NULL);
  gint64 n = 1;
  int i;

  for (i = 0; i < n_dims; i++)
    n *= out.shape[i];
  g_assert_cmpint (n, <=, MAX_ELEMENTS);
  g_ptr_array_add (t->names, full);
  out.name = full;
  out.data = t->zeros;
  g_array_append_val (t->tensors, out);
}

static void
add_conv (Tensors * t, const char *prefix, int index, int out_c, int in_c,
    int k)
{
  char name[64];

  g_snprintf (name, sizeof name, "model.%d.weight", index);
  add_tensor (t, prefix, name, 4, out_c, in_c, k, k);
  g_snprintf (name, sizeof name, "model.%d.bias", index);
  add_tensor (t, prefix, name, 1, out_c, 0, 0, 0);
}

/* Every tensor of the official pytorch-CycleGAN-and-pix2pix ResnetGenerator
 * (3 -> 3 channels, instance norm without affine, no dropout) with `ngf`
 * filters and `n` blocks, under `prefix` ("", "G_A." or "G_B."). A
 * ConvTranspose2d's weight is [in, out, k, k]. */
static void
add_generator (Tensors * t, const char *prefix, int ngf, int n)
{
  char name[64];
  int i;

  add_conv (t, prefix, 1, ngf, 3, 7);
  add_conv (t, prefix, 4, 2 * ngf, ngf, 3);
  add_conv (t, prefix, 7, 4 * ngf, 2 * ngf, 3);
  for (i = 0; i < n; i++) {
    g_snprintf (name, sizeof name, "model.%d.conv_block.1.weight", 10 + i);
    add_tensor (t, prefix, name, 4, 4 * ngf, 4 * ngf, 3, 3);
    g_snprintf (name, sizeof name, "model.%d.conv_block.1.bias", 10 + i);
    add_tensor (t, prefix, name, 1, 4 * ngf, 0, 0, 0);
    g_snprintf (name, sizeof name, "model.%d.conv_block.5.weight", 10 + i);
    add_tensor (t, prefix, name, 4, 4 * ngf, 4 * ngf, 3, 3);
    g_snprintf (name, sizeof name, "model.%d.conv_block.5.bias", 10 + i);
    add_tensor (t, prefix, name, 1, 4 * ngf, 0, 0, 0);
  }
  g_snprintf (name, sizeof name, "model.%d.weight", 10 + n);
  add_tensor (t, prefix, name, 4, 4 * ngf, 2 * ngf, 3, 3);
  g_snprintf (name, sizeof name, "model.%d.bias", 10 + n);
  add_tensor (t, prefix, name, 1, 2 * ngf, 0, 0, 0);
  g_snprintf (name, sizeof name, "model.%d.weight", 13 + n);
  add_tensor (t, prefix, name, 4, 2 * ngf, ngf, 3, 3);
  g_snprintf (name, sizeof name, "model.%d.bias", 13 + n);
  add_tensor (t, prefix, name, 1, ngf, 0, 0, 0);
  add_conv (t, prefix, 17 + n, 3, ngf, 7);
}

static CgTensorOut *
find_tensor (Tensors * t, const char *name)
{
  guint i;

  for (i = 0; i < t->tensors->len; i++) {
    CgTensorOut *o = &g_array_index (t->tensors, CgTensorOut, i);

    if (strcmp (o->name, name) == 0)
      return o;
  }
  g_assert_not_reached ();
  return NULL;
}

static void
remove_tensor (Tensors * t, const char *name)
{
  CgTensorOut *o = find_tensor (t, name);

  g_array_remove_index (t->tensors, o - (CgTensorOut *) t->tensors->data);
}

static char *
write_model (Tensors * t, const char *file)
{
  char *path = g_build_filename (tmp_dir, file, NULL);
  GError *error = NULL;

  g_assert_true (cg_safetensors_write (path,
          (CgTensorOut *) t->tensors->data, t->tensors->len, NULL, &error));
  g_assert_no_error (error);
  return path;
}

/* Refused by cg_model_load(), as an architecture (or format) error whose
 * message names the file and, when there is one, the tensor. */
static void
assert_model_refused (const char *path, const char *tensor)
{
  GError *error = NULL;
  CgModel *model = cg_model_load (path, &error);

  g_assert_null (model);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (error->domain == CG_ERROR);
  g_assert_true (error->code == CG_ERROR_ARCHITECTURE
      || error->code == CG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  if (tensor && !strstr (error->message, tensor))
    g_error ("message \"%s\" does not name tensor \"%s\"", error->message,
        tensor);
  g_error_free (error);
  assert_tool_refuses (path, tensor);
}

/* The helper's files load: so the refusals below are for what each test
 * changes, not for a mistake in the helper. */
static void
test_arch_valid (void)
{
  Tensors t;
  g_autofree char *one = NULL, *two = NULL;
  GError *error = NULL;
  CgModel *model;
  CgGeneratorConfig config;

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  one = write_model (&t, "valid-one.safetensors");
  model = cg_model_load (one, &error);
  g_assert_no_error (error);
  g_assert_true (cg_model_has_direction (model, CG_DIRECTION_A2B));
  g_assert_false (cg_model_has_direction (model, CG_DIRECTION_B2A));
  g_assert_true (cg_model_get_config (model, CG_DIRECTION_A2B, &config));
  g_assert_cmpint (config.ngf, ==, 2);
  g_assert_cmpint (config.n_blocks, ==, 1);
  g_assert_cmpint (config.in_channels, ==, 3);
  g_assert_cmpint (config.out_channels, ==, 3);
  g_assert_false (config.dropout_layout);
  cg_model_unref (model);
  tensors_clear (&t);

  tensors_init (&t);
  add_generator (&t, "G_A.", 2, 1);
  add_generator (&t, "G_B.", 2, 1);
  two = write_model (&t, "valid-two.safetensors");
  model = cg_model_load (two, &error);
  g_assert_no_error (error);
  g_assert_true (cg_model_has_direction (model, CG_DIRECTION_A2B));
  g_assert_true (cg_model_has_direction (model, CG_DIRECTION_B2A));
  cg_model_unref (model);
  tensors_clear (&t);
  g_unlink (one);
  g_unlink (two);
}

static void
test_arch_missing (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  remove_tensor (&t, "model.4.bias");
  path = write_model (&t, "missing.safetensors");
  assert_model_refused (path, "model.4.bias");
  tensors_clear (&t);
  g_unlink (path);
}

/* Without "model.1.bias" the file is read as a generator without norm:
 * the other biases before the last conv are then unexpected, and the
 * message says why they are. */
static void
test_arch_norm_mixed (void)
{
  Tensors t;
  g_autofree char *path = NULL;
  GError *error = NULL;
  CgModel *model;

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  remove_tensor (&t, "model.1.bias");
  path = write_model (&t, "norm-mixed.safetensors");
  assert_model_refused (path, "model.4.bias");
  model = cg_model_load (path, &error);
  g_assert_null (model);
  g_assert_nonnull (strstr (error->message, "without norm"));
  g_error_free (error);
  tensors_clear (&t);
  g_unlink (path);
}

/* A generator without norm still needs the output conv's bias. */
static void
test_arch_norm_none_missing (void)
{
  Tensors t;
  g_autofree char *path = NULL;
  const char *biases[] = { "model.1.bias", "model.4.bias", "model.7.bias",
    "model.10.conv_block.1.bias", "model.10.conv_block.5.bias",
    "model.11.bias", "model.14.bias", "model.18.bias"
  };

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  for (guint i = 0; i < G_N_ELEMENTS (biases); i++)
    remove_tensor (&t, biases[i]);
  path = write_model (&t, "norm-none-missing.safetensors");
  assert_model_refused (path, "model.18.bias");
  tensors_clear (&t);
  g_unlink (path);
}

static void
test_arch_extra (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  add_tensor (&t, "", "model.99.weight", 1, 4, 0, 0, 0);
  path = write_model (&t, "extra.safetensors");
  assert_model_refused (path, "model.99.weight");
  tensors_clear (&t);
  g_unlink (path);
}

static void
test_arch_wrong_shape (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  add_generator (&t, "", 2, 1);
  /* In-channels 3 where the first layer gives ngf = 2. */
  find_tensor (&t, "model.4.weight")->shape[1] = 3;
  path = write_model (&t, "wrong-shape.safetensors");
  assert_model_refused (path, "model.4.weight");
  tensors_clear (&t);
  g_unlink (path);
}

static void
test_arch_mixed_prefixes (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  add_generator (&t, "G_A.", 2, 1);
  add_generator (&t, "", 2, 1);
  path = write_model (&t, "mixed.safetensors");
  assert_model_refused (path, NULL);
  tensors_clear (&t);
  g_unlink (path);
}

static void
test_arch_only_g_b (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  add_generator (&t, "G_B.", 2, 1);
  path = write_model (&t, "only-g-b.safetensors");
  assert_model_refused (path, NULL);
  tensors_clear (&t);
  g_unlink (path);
}

static void
test_arch_no_tensors (void)
{
  Tensors t;
  g_autofree char *path = NULL;

  tensors_init (&t);
  path = write_model (&t, "no-tensors.safetensors");
  assert_model_refused (path, NULL);
  tensors_clear (&t);
  g_unlink (path);
}

/* A malformed file is refused by cg_model_load() as by the reader. */
static void
test_arch_malformed (void)
{
  const Hostile *h = &hostile[G_N_ELEMENTS (hostile) - 1];
  g_autofree char *path = hostile_path ("model-malformed");
  GError *error = NULL;
  CgModel *model;

  write_hostile (h, path);
  model = cg_model_load (path, &error);
  g_assert_null (model);
  g_assert_error (error, CG_ERROR, CG_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  g_error_free (error);
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  guint i;
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("cg-hostile-XXXXXX", &error);
  g_assert_no_error (error);

  for (i = 0; i < G_N_ELEMENTS (hostile); i++) {
    char *name = g_strdup_printf ("/hostile/format/%s", hostile[i].test);

    g_test_add_data_func (name, &hostile[i], test_hostile);
    g_free (name);
  }
  g_test_add_func ("/hostile/format/accepted", test_accepted);
  g_test_add_func ("/hostile/io/directory", test_directory);
  g_test_add_func ("/hostile/io/nonexistent", test_nonexistent);
  g_test_add_func ("/hostile/io/fifo", test_fifo);

  g_test_add_func ("/hostile/architecture/valid", test_arch_valid);
  g_test_add_func ("/hostile/architecture/missing-tensor", test_arch_missing);
  g_test_add_func ("/hostile/architecture/norm-mixed", test_arch_norm_mixed);
  g_test_add_func ("/hostile/architecture/norm-none-missing-output-bias",
      test_arch_norm_none_missing);
  g_test_add_func ("/hostile/architecture/extra-tensor", test_arch_extra);
  g_test_add_func ("/hostile/architecture/wrong-shape",
      test_arch_wrong_shape);
  g_test_add_func ("/hostile/architecture/mixed-prefixes",
      test_arch_mixed_prefixes);
  g_test_add_func ("/hostile/architecture/only-g-b", test_arch_only_g_b);
  g_test_add_func ("/hostile/architecture/no-tensors", test_arch_no_tensors);
  g_test_add_func ("/hostile/architecture/malformed", test_arch_malformed);

  ret = g_test_run ();
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
