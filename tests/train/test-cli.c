/* cyclegan-train end to end on a tiny generated dataset: outputs, a corrupt
 * image skipped with one warning, an empty folder refused before training,
 * and a run stopped and resumed with --continue-train ending bit for bit
 * where the uninterrupted run ends. The program's path comes in
 * CYCLEGAN_TRAIN. */
#include <cyclegan/cyclegan.h>
#include "safetensors.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <string.h>

static char *root;

static void
write_image (const char *dir, const char *name, int w, int h, int seed)
{
  GdkPixbuf *pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, w, h);
  guint8 *px = gdk_pixbuf_get_pixels (pb);
  int stride = gdk_pixbuf_get_rowstride (pb);
  char *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        px[y * stride + 3 * x + c] = (guint8) ((x * (c + 1) + y * seed + 40 *
                c) & 255);
  gdk_pixbuf_save (pb, path, "png", &error, NULL);
  g_assert_no_error (error);
  g_object_unref (pb);
  g_free (path);
}

static char *
make_dataset (const char *name, gboolean empty_b)
{
  char *data = g_build_filename (root, name, NULL);
  char *a = g_build_filename (data, "trainA", NULL);
  char *b = g_build_filename (data, "trainB", NULL);
  char *bad = g_build_filename (a, "2-corrupt.png", NULL);

  g_assert_cmpint (g_mkdir_with_parents (a, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (b, 0755), ==, 0);
  write_image (a, "1.png", 40, 30, 1);
  write_image (a, "3.png", 25, 50, 2);
  write_image (a, "4.png", 36, 36, 3);
  g_assert_true (g_file_set_contents (bad, "\x89PNG garbage", -1, NULL));
  if (!empty_b) {
    write_image (b, "x.png", 33, 47, 4);
    write_image (b, "y.png", 64, 20, 5);
  }
  g_free (a);
  g_free (b);
  g_free (bad);
  return data;
}

/* Run cyclegan-train with the tiny architecture and `extra` options. */
static int
run (const char *dataroot, const char *name, const char *extra,
    char **err_out)
{
  const char *prog = g_getenv ("CYCLEGAN_TRAIN");
  char *cmd, *out = NULL, *err = NULL;
  int status;
  GError *error = NULL;

  g_assert_nonnull (prog);
  cmd = g_strdup_printf ("%s --dataroot %s --checkpoints-dir %s --name %s "
      "--ngf 2 --n-blocks 1 --ndf 2 --load-size 38 --crop-size 32 "
      "--n-epochs 1 --n-epochs-decay 1 --pool-size 2 --seed 3 --threads 1 %s",
      prog, dataroot, root, name, extra);
  g_assert_true (g_spawn_command_line_sync (cmd, &out, &err, &status,
          &error));
  g_assert_no_error (error);
  g_test_message ("%s\n%s", cmd, err);
  g_free (cmd);
  g_free (out);
  if (err_out)
    *err_out = err;
  else
    g_free (err);
  return status;
}

static char *
out_path (const char *name, const char *file)
{
  return g_build_filename (root, name, file, NULL);
}

static void
assert_same_tensors (const char *p1, const char *p2)
{
  GError *error = NULL;
  CgSafetensors *a = cg_safetensors_open (p1, &error), *b;
  g_assert_no_error (error);
  b = cg_safetensors_open (p2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cg_safetensors_n_tensors (a), ==,
      cg_safetensors_n_tensors (b));
  for (guint i = 0; i < cg_safetensors_n_tensors (a); i++) {
    const CgTensorView *t = cg_safetensors_tensor (a, i);
    const CgTensorView *u = cg_safetensors_find (b, t->name);
    g_assert_nonnull (u);
    g_assert_cmpuint (t->n_bytes, ==, u->n_bytes);
    if (memcmp (t->data, u->data, t->n_bytes) != 0)
      g_error ("%s differs between %s and %s", t->name, p1, p2);
  }
  cg_safetensors_close (a);
  cg_safetensors_close (b);
}

static void
test_outputs_and_resume (void)
{
  g_autofree char *data = make_dataset ("tiny2small", FALSE);
  char *err = NULL, *html = NULL, *csv = NULL;
  g_autofree char *model = out_path ("full", "model.safetensors");
  g_autofree char *ckpt = out_path ("full", "checkpoint.safetensors");
  g_autofree char *html_path = out_path ("full", "index.html");
  g_autofree char *csv_path = out_path ("full", "loss_log.csv");
  g_autofree char *grid = out_path ("full", "images/epoch001.png");
  g_autofree char *ckpt_part = out_path ("part", "checkpoint.safetensors");
  g_autofree char *csv_part = out_path ("part", "loss_log.csv");
  GError *error = NULL;
  CgModel *m;
  char **rows_full, **rows_part;

  /* 4 files in trainA (one corrupt): epochs of 4 iterations; 6 crosses
   * the first epoch's end (samples, lr step) into the second */
  g_assert_cmpint (run (data, "full", "--max-iterations 6", &err), ==, 0);
  /* reported once, though the epoch order reaches it more than once */
  g_assert_nonnull (strstr (err, "warning: skipping"));
  g_assert_nonnull (strstr (err, "2-corrupt.png"));
  g_assert_null (strstr (strstr (err, "warning: skipping") + 1,
          "warning: skipping"));
  g_free (err);

  g_assert_true (g_file_test (ckpt, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (grid, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_get_contents (html_path, &html, NULL, NULL));
  g_assert_nonnull (strstr (html, "<svg"));
  g_assert_nonnull (strstr (html, "images/epoch001.png"));
  g_free (html);

  m = cg_model_load (model, &error);
  g_assert_no_error (error);
  g_assert_true (cg_model_has_direction (m, CG_DIRECTION_A2B));
  g_assert_true (cg_model_has_direction (m, CG_DIRECTION_B2A));
  g_assert_cmpstr (cg_model_get_metadata (m, "domain_a"), ==, "tiny");
  g_assert_cmpstr (cg_model_get_metadata (m, "domain_b"), ==, "small");
  g_assert_cmpstr (cg_model_get_metadata (m, "epoch"), ==, "2");
  cg_model_unref (m);

  /* the same run in two halves */
  g_assert_cmpint (run (data, "part", "--max-iterations 3", NULL), ==, 0);
  g_assert_cmpint (run (data, "part", "--max-iterations 3 --continue-train",
          NULL), ==, 0);
  assert_same_tensors (ckpt, ckpt_part);

  /* and the same losses, row for row (the seconds column aside) */
  g_assert_true (g_file_get_contents (csv_path, &csv, NULL, NULL));
  rows_full = g_strsplit (csv, "\n", -1);
  g_free (csv);
  g_assert_true (g_file_get_contents (csv_part, &csv, NULL, NULL));
  rows_part = g_strsplit (csv, "\n", -1);
  g_free (csv);
  g_assert_cmpuint (g_strv_length (rows_full), ==, 8);    /* header, 6, "" */
  g_assert_cmpuint (g_strv_length (rows_full), ==,
      g_strv_length (rows_part));
  for (int i = 1; rows_full[i][0]; i++) {
    char **a = g_strsplit (rows_full[i], ",", -1);
    char **b = g_strsplit (rows_part[i], ",", -1);
    for (int k = 0; a[k]; k++)
      if (k != 4)
        g_assert_cmpstr (a[k], ==, b[k]);
    g_strfreev (a);
    g_strfreev (b);
  }
  g_strfreev (rows_full);
  g_strfreev (rows_part);
}

static void
test_empty_folder (void)
{
  g_autofree char *data = make_dataset ("empty", TRUE);
  g_autofree char *ckpt = out_path ("e", "checkpoint.safetensors");
  char *err = NULL;

  g_assert_cmpint (run (data, "e", "--max-iterations 1", &err), !=, 0);
  g_assert_nonnull (strstr (err, "no images"));
  g_assert_false (g_file_test (ckpt, G_FILE_TEST_EXISTS));
  g_free (err);
}

int
main (int argc, char **argv)
{
  int ret;
  char *cmd;

  g_test_init (&argc, &argv, NULL);
  root = g_dir_make_tmp ("cg-train-cli-XXXXXX", NULL);
  g_test_add_func ("/train/cli/outputs-and-resume", test_outputs_and_resume);
  g_test_add_func ("/train/cli/empty-folder", test_empty_folder);
  ret = g_test_run ();
  cmd = g_strdup_printf ("rm -rf %s", root);
  if (ret == 0)
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  g_free (cmd);
  g_free (root);
  return ret;
}
