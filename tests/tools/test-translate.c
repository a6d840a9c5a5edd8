/* cyclegan-translate as a user runs it: good images in, PNGs of the same
 * size out; corrupt images, bad options and unwritable outputs refused with
 * a message, a non-zero exit and no output file. */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>

#include <string.h>

static char *tmp_dir;
static const char *tool;

/* Remove a folder and everything in it (what the tests left). */
static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_unlink (child);
  }
  if (dir)
    g_dir_close (dir);
  g_rmdir (path);
}

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

/* Run the tool; returns its exit status, stderr into *err. */
static int
run (const char *const *args, char **err)
{
  GPtrArray *argv = g_ptr_array_new ();
  GError *error = NULL;
  int status;

  g_ptr_array_add (argv, (gpointer) tool);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL,
          G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, err, &status,
          &error));
  g_assert_no_error (error);
  g_ptr_array_free (argv, TRUE);
  g_test_message ("stderr: %s", *err);
  return g_spawn_check_wait_status (status, NULL) ? 0 : 1;
}

static void
write_png (const char *path, int w, int h, gboolean alpha)
{
  GdkPixbuf *pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, alpha, 8, w, h);
  guint8 *px = gdk_pixbuf_get_pixels (pb);
  int stride = gdk_pixbuf_get_rowstride (pb), bpp = alpha ? 4 : 3;
  GError *error = NULL;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w * bpp; x++)
      px[y * stride + x] = (guint8) (x * 3 + y * 5);
  gdk_pixbuf_save (pb, path, "png", &error, NULL);
  g_assert_no_error (error);
  g_object_unref (pb);
}

static void
test_translates (void)
{
  g_autofree char *in = tmp_path ("in.png"), *out = tmp_path ("out.png");
  g_autofree char *err = NULL;
  const char *args[] = { "--model", MODEL, "--direction", "b2a", in, out,
    NULL
  };
  GdkPixbuf *pb;

  write_png (in, 37, 29, TRUE);
  g_assert_cmpint (run (args, &err), ==, 0);
  pb = gdk_pixbuf_new_from_file (out, NULL);
  g_assert_nonnull (pb);
  g_assert_cmpint (gdk_pixbuf_get_width (pb), ==, 37);
  g_assert_cmpint (gdk_pixbuf_get_height (pb), ==, 29);
  g_object_unref (pb);
  g_unlink (out);
}

static void
test_corrupt_image (void)
{
  g_autofree char *in = tmp_path ("corrupt.png"), *out = tmp_path ("c.png");
  g_autofree char *err = NULL;
  const char *args[] = { "--model", MODEL, in, out, NULL };
  /* a PNG signature and then garbage */
  static const char bytes[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage";

  g_assert_true (g_file_set_contents (in, bytes, sizeof bytes, NULL));
  g_assert_cmpint (run (args, &err), !=, 0);
  g_assert_nonnull (strstr (err, in));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

static void
test_unwritable_output (void)
{
  g_autofree char *in = tmp_path ("in2.png");
  g_autofree char *out = tmp_path ("no-such-dir/out.png");
  g_autofree char *err = NULL;
  const char *args[] = { "--model", MODEL, in, out, NULL };

  write_png (in, 16, 16, FALSE);
  g_assert_cmpint (run (args, &err), !=, 0);
  g_assert_nonnull (strstr (err, out));
}

/* --output-dir: the good inputs are translated, the bad one reported,
 * and the exit status says something failed. */
static void
test_output_dir (void)
{
  g_autofree char *a = tmp_path ("a.png"), *b = tmp_path ("b.jpg");
  g_autofree char *dir = tmp_path ("outdir");
  g_autofree char *out_a = g_build_filename (dir, "a.png", NULL);
  g_autofree char *out_b = g_build_filename (dir, "b.png", NULL);
  g_autofree char *err = NULL;
  const char *args[] = { "--model", MODEL, "--output-dir", dir, a, b, NULL };

  write_png (a, 20, 12, FALSE);
  g_assert_true (g_file_set_contents (b, "not a jpeg", -1, NULL));
  g_assert_cmpint (run (args, &err), !=, 0);
  g_assert_true (g_file_test (out_a, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (out_b, G_FILE_TEST_EXISTS));
  g_assert_nonnull (strstr (err, b));
}

static void
test_usage_errors (void)
{
  static const char *const cases[][6] = {
    {"in.png", "out.png", NULL},        /* no --model */
    {"--model", MODEL, "--direction", "sideways", "in.png", NULL},
    {"--model", MODEL, "--threads", "-1", "in.png", NULL},
    {"--model", MODEL, "only-one-file.png", NULL},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *err = NULL;
    g_assert_cmpint (run (cases[i], &err), !=, 0);
    g_assert_true (g_str_has_prefix (err, "cyclegan-translate: "));
  }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tool = g_getenv ("CG_TRANSLATE");
  g_assert_nonnull (tool);
  tmp_dir = g_dir_make_tmp ("cg-translate-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);

  g_test_add_func ("/translate/translates", test_translates);
  g_test_add_func ("/translate/corrupt-image", test_corrupt_image);
  g_test_add_func ("/translate/unwritable-output", test_unwritable_output);
  g_test_add_func ("/translate/output-dir", test_output_dir);
  g_test_add_func ("/translate/usage-errors", test_usage_errors);
  ret = g_test_run ();

  remove_tree (tmp_dir);
  return ret;
}
