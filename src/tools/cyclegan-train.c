/* cyclegan-train: CycleGAN training on the CPU, step for step as the
 * official pytorch-CycleGAN-and-pix2pix code runs it (model cycle_gan,
 * ResNet generators, 70x70 PatchGAN, LSGAN, batch size 1).
 *
 *   cyclegan-train --dataroot DIR [--name NAME] [options]
 *
 * DIR/trainA and DIR/trainB hold the two domains' images (any format
 * gdk-pixbuf reads, any sizes). Writes into CHECKPOINTS_DIR/NAME/:
 *   model.safetensors       G_A and G_B, for cyclegan-translate and the
 *                           cycleganfilter element
 *   checkpoint.safetensors  everything --continue-train needs
 *   loss_log.csv            one row per iteration
 *   index.html, images/     per-epoch samples and the loss curves
 */
#include <cyclegan/cyclegan.h>
#include "blas-kernels.h"
#include "train-private.h"
#include "image-io.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options: the official names with dashes, the official defaults ---- */

static char default_name[] = "experiment_name";
static char default_checkpoints_dir[] = "./checkpoints";
static char *opt_dataroot;
static char *opt_name = default_name;
static char *opt_checkpoints_dir = default_checkpoints_dir;
static int opt_ngf = 64, opt_ndf = 64, opt_n_blocks = 9, opt_n_layers_D = 3;
static char default_norm[] = "instance";
static char *opt_norm = default_norm;
static int opt_load_size = 286, opt_crop_size = 256;
static gboolean opt_no_flip;
static double opt_lr = 0.0002, opt_beta1 = 0.5;
static int opt_n_epochs = 100, opt_n_epochs_decay = 100;
static double opt_lambda_A = 10.0, opt_lambda_B = 10.0;
static double opt_lambda_identity = 0.5;
static int opt_pool_size = 50, opt_save_epoch_freq = 5;
static gboolean opt_continue_train;
static int opt_epoch_count = 1;
static gint64 opt_seed = -1;
static int opt_threads;
static gint64 opt_max_iterations;

static GOptionEntry entries[] = {
  {"dataroot", 0, 0, G_OPTION_ARG_FILENAME, &opt_dataroot,
      "The data: DIR/trainA and DIR/trainB hold the two domains' images "
      "(required)", "DIR"},
  {"name", 0, 0, G_OPTION_ARG_STRING, &opt_name,
      "The experiment's name: outputs go to CHECKPOINTS_DIR/NAME "
      "(default experiment_name)", "NAME"},
  {"checkpoints-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_checkpoints_dir,
      "Where experiments are saved (default ./checkpoints)", "DIR"},
  {"ngf", 0, 0, G_OPTION_ARG_INT, &opt_ngf,
      "Generator filters in the first conv layer (default 64)", "N"},
  {"ndf", 0, 0, G_OPTION_ARG_INT, &opt_ndf,
      "Discriminator filters in the first conv layer (default 64)", "N"},
  {"n-blocks", 0, 0, G_OPTION_ARG_INT, &opt_n_blocks,
      "Residual blocks of the generator (default 9, resnet_9blocks)", "N"},
  {"n-layers-D", 0, 0, G_OPTION_ARG_INT, &opt_n_layers_D,
      "Stride-2 layers of the PatchGAN discriminator (default 3: 70x70 "
      "patches)", "N"},
  {"norm", 0, 0, G_OPTION_ARG_STRING, &opt_norm,
      "Normalization of all four networks: instance (the paper's) or none "
      "(no norm and no bias before the last conv; the official --norm "
      "none). InstanceNorm removes each image's mean colour, so a "
      "generator with it cannot learn a global colour shift (default "
      "instance)", "NORM"},
  {"load-size", 0, 0, G_OPTION_ARG_INT, &opt_load_size,
      "Scale images to this size (square) first (default 286)", "N"},
  {"crop-size", 0, 0, G_OPTION_ARG_INT, &opt_crop_size,
      "Then crop a random square of this size (default 256; a multiple of "
      "4)", "N"},
  {"no-flip", 0, 0, G_OPTION_ARG_NONE, &opt_no_flip,
      "Do not flip images horizontally at random", NULL},
  {"lr", 0, 0, G_OPTION_ARG_DOUBLE, &opt_lr,
      "Initial learning rate of Adam (default 0.0002)", "LR"},
  {"beta1", 0, 0, G_OPTION_ARG_DOUBLE, &opt_beta1,
      "Adam's momentum term (default 0.5)", "B"},
  {"n-epochs", 0, 0, G_OPTION_ARG_INT, &opt_n_epochs,
      "Epochs at the initial learning rate (default 100)", "N"},
  {"n-epochs-decay", 0, 0, G_OPTION_ARG_INT, &opt_n_epochs_decay,
      "Epochs of linear decay of the learning rate to zero (default 100)",
      "N"},
  {"lambda-A", 0, 0, G_OPTION_ARG_DOUBLE, &opt_lambda_A,
      "Weight of the cycle loss A -> B -> A (default 10)", "W"},
  {"lambda-B", 0, 0, G_OPTION_ARG_DOUBLE, &opt_lambda_B,
      "Weight of the cycle loss B -> A -> B (default 10)", "W"},
  {"lambda-identity", 0, 0, G_OPTION_ARG_DOUBLE, &opt_lambda_identity,
      "Weight of the identity loss, relative to lambda-A/B: G_A(B) should "
      "be B (default 0.5; 0 turns it off)", "W"},
  {"pool-size", 0, 0, G_OPTION_ARG_INT, &opt_pool_size,
      "Generated images kept to train the discriminators on (default 50; 0: "
      "none)", "N"},
  {"save-epoch-freq", 0, 0, G_OPTION_ARG_INT, &opt_save_epoch_freq,
      "Save the model and the checkpoint every N epochs (default 5), and at "
      "the end", "N"},
  {"continue-train", 0, 0, G_OPTION_ARG_NONE, &opt_continue_train,
      "Resume from CHECKPOINTS_DIR/NAME/checkpoint.safetensors exactly where "
      "it stopped (same architecture options needed)", NULL},
  {"epoch-count", 0, 0, G_OPTION_ARG_INT, &opt_epoch_count,
      "The first epoch's number, as in the official code (default 1; a "
      "resumed run takes it from the checkpoint)", "N"},
  {"seed", 0, 0, G_OPTION_ARG_INT64, &opt_seed,
      "Random seed: the same seed, data and options give the same run "
      "(default: from the clock, printed)", "N"},
  {"threads", 0, 0, G_OPTION_ARG_INT, &opt_threads,
      "Compute threads (0, the default: all cores)", "N"},
  {"max-iterations", 0, 0, G_OPTION_ARG_INT64, &opt_max_iterations,
      "Stop after N iterations of this run (0, the default: run all epochs)",
      "N"},
  {NULL}
};

/* ---- the data ---- */

typedef struct
{
  char *dir;
  GPtrArray *files;
  gboolean *bad;                /* reported once, then skipped */
  guint n_good;
} Domain;

static gboolean
is_image_name (const char *name)
{
  static const char *ext[] = { ".png", ".jpg", ".jpeg", ".bmp", ".ppm",
    ".tif", ".tiff", ".webp", ".gif", ".tga", NULL
  };
  g_autofree char *lower = g_ascii_strdown (name, -1);
  for (int i = 0; ext[i]; i++)
    if (g_str_has_suffix (lower, ext[i]))
      return TRUE;
  return FALSE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static gboolean
domain_open (Domain * d, const char *dataroot, const char *sub,
    GError ** error)
{
  GDir *dir;
  const char *name;

  d->dir = g_build_filename (dataroot, sub, NULL);
  d->files = g_ptr_array_new_with_free_func (g_free);
  dir = g_dir_open (d->dir, 0, error);
  if (!dir)
    return FALSE;
  while ((name = g_dir_read_name (dir)))
    if (is_image_name (name))
      g_ptr_array_add (d->files, g_build_filename (d->dir, name, NULL));
  g_dir_close (dir);
  if (d->files->len == 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "%s: no images (PNG, JPEG, ...) in this folder", d->dir);
    return FALSE;
  }
  g_ptr_array_sort (d->files, compare_strings);
  d->bad = g_new0 (gboolean, d->files->len);
  d->n_good = d->files->len;
  return TRUE;
}

static void
domain_close (Domain * d)
{
  g_free (d->dir);
  if (d->files)
    g_ptr_array_unref (d->files);
  g_free (d->bad);
}

/* The official 'resize_and_crop' + flip + ToTensor + Normalize(0.5):
 * resize to load x load (bicubic-class filter), crop at a random offset,
 * flip with probability 0.5, v / 127.5 - 1. NULL if the file is bad. */
static gboolean
load_sample (Domain * d, guint i, CgRng * rng, float *dst, GError ** error)
{
  g_autoptr (GdkPixbuf) pb = NULL;
  g_autoptr (GdkPixbuf) scaled = NULL;
  g_autoptr (GdkPixbuf) crop = NULL;
  int load = opt_load_size, crop_size = opt_crop_size, x, y;
  gboolean flip;

  pb = cg_image_load (g_ptr_array_index (d->files, i), error);
  if (!pb)
    return FALSE;
  scaled = gdk_pixbuf_scale_simple (pb, load, load, GDK_INTERP_HYPER);
  if (!scaled) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "%s: cannot scale",
        (char *) g_ptr_array_index (d->files, i));
    return FALSE;
  }
  x = (int) cg_rng_below (rng, (guint32) (load - crop_size + 1));
  y = (int) cg_rng_below (rng, (guint32) (load - crop_size + 1));
  flip = !opt_no_flip && cg_rng_uniform (rng) > 0.5;
  crop = gdk_pixbuf_new_subpixbuf (scaled, x, y, crop_size, crop_size);
  if (flip) {
    GdkPixbuf *f = gdk_pixbuf_flip (crop, TRUE);
    g_object_unref (crop);
    crop = f;
  }
  cg_pixels_to_planar (gdk_pixbuf_get_n_channels (crop) == 4 ? CG_PIXEL_RGBA :
      CG_PIXEL_RGB, gdk_pixbuf_get_pixels (crop),
      gdk_pixbuf_get_rowstride (crop), crop_size, crop_size, dst);
  return TRUE;
}

/* Image `i` of the domain, or, if it is unreadable (reported the first
 * time), the next readable one. FALSE when none is left. */
static gboolean
domain_sample (Domain * d, guint i, CgRng * rng, float *dst)
{
  for (guint k = 0; k < d->files->len; k++) {
    guint j = (i + k) % d->files->len;
    GError *error = NULL;
    if (d->bad[j])
      continue;
    if (load_sample (d, j, rng, dst, &error))
      return TRUE;
    g_printerr ("\nwarning: skipping %s\n", error->message);
    g_error_free (error);
    d->bad[j] = TRUE;
    d->n_good--;
  }
  return FALSE;
}

/* ---- outputs ---- */

typedef struct
{
  char *dir, *model_path, *ckpt_path, *csv_path, *html_path, *img_dir;
  char *domain_a, *domain_b;
  GHashTable *options;          /* option -> value, for the metadata */
} Outputs;

static char *
options_string (void)
{
  return g_strdup_printf ("{\"dataroot\": \"%s\", \"name\": \"%s\", "
      "\"ngf\": %d, \"ndf\": %d, \"n_blocks\": %d, \"n_layers_D\": %d, "
      "\"norm\": \"%s\", "
      "\"load_size\": %d, \"crop_size\": %d, \"no_flip\": %s, \"lr\": %g, "
      "\"beta1\": %g, \"n_epochs\": %d, \"n_epochs_decay\": %d, "
      "\"lambda_A\": %g, \"lambda_B\": %g, \"lambda_identity\": %g, "
      "\"pool_size\": %d, \"seed\": %" G_GINT64_FORMAT "}", opt_dataroot,
      opt_name, opt_ngf, opt_ndf, opt_n_blocks, opt_n_layers_D, opt_norm,
      opt_load_size, opt_crop_size, opt_no_flip ? "true" : "false", opt_lr,
      opt_beta1, opt_n_epochs, opt_n_epochs_decay, opt_lambda_A,
      opt_lambda_B, opt_lambda_identity, opt_pool_size, opt_seed);
}

static gboolean
write_model (const CgTrainer * t, const Outputs * o, int epoch,
    gint64 total_iters, GError ** error)
{
  g_autoptr (GHashTable) meta = g_hash_table_new_full (g_str_hash,
      g_str_equal, NULL, g_free);
  g_hash_table_insert (meta, "source", g_strdup ("cyclegan-train"));
  g_hash_table_insert (meta, "domain_a", g_strdup (o->domain_a));
  g_hash_table_insert (meta, "domain_b", g_strdup (o->domain_b));
  g_hash_table_insert (meta, "epoch", g_strdup_printf ("%d", epoch));
  g_hash_table_insert (meta, "iterations",
      g_strdup_printf ("%" G_GINT64_FORMAT, total_iters));
  g_hash_table_insert (meta, "options", options_string ());
  return cg_model_write (o->model_path, t->G_A->gparams, t->G_B->gparams,
      meta, error);
}

static GdkPixbuf *
sample_grid (const CgTrainer * t, const float *real_A, const float *real_B)
{
  const float *tiles[6] = { real_A, t->fake_B, t->rec_A, real_B, t->fake_A,
    t->rec_B
  };
  int w = t->config.w, h = t->config.h;
  GdkPixbuf *grid = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 6 * w, h);
  guint8 *px = gdk_pixbuf_get_pixels (grid);
  int stride = gdk_pixbuf_get_rowstride (grid);

  for (int i = 0; i < 6; i++)
    cg_pixels_from_planar (CG_PIXEL_RGB, tiles[i], w, h, px + 3 * w * i,
        stride, NULL);
  return grid;
}

/* The loss curves of loss_log.csv as inline SVG: one chart per kind of
 * loss, at most ~600 points per line (bucket means). */
typedef struct
{
  GArray *iter;                 /* double */
  GArray *loss[CG_N_LOSSES];    /* double */
} LossLog;

static void
read_loss_log (const char *path, LossLog * log)
{
  g_autofree char *text = NULL;
  char **lines;

  log->iter = g_array_new (FALSE, FALSE, sizeof (double));
  for (int k = 0; k < CG_N_LOSSES; k++)
    log->loss[k] = g_array_new (FALSE, FALSE, sizeof (double));
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (int i = 1; lines[i]; i++) {
    char **f = g_strsplit (lines[i], ",", -1);
    if (g_strv_length (f) == 5 + CG_N_LOSSES) {
      double it = g_ascii_strtod (f[2], NULL);
      g_array_append_val (log->iter, it);
      for (int k = 0; k < CG_N_LOSSES; k++) {
        double v = g_ascii_strtod (f[5 + k], NULL);
        g_array_append_val (log->loss[k], v);
      }
    }
    g_strfreev (f);
  }
  g_strfreev (lines);
}

static void
svg_chart (GString * s, const LossLog * log, const int *which, int n_which,
    const char *title)
{
  static const char *colors[] = { "#1f77b4", "#d62728", "#2ca02c",
    "#ff7f0e"
  };
  const int W = 560, H = 220, L = 50, B = 25, T = 20;
  guint n = log->iter->len, bucket = MAX (1, (n + 599) / 600);
  double xmax = n ? g_array_index (log->iter, double, n - 1) : 1, ymax = 0;

  for (int j = 0; j < n_which; j++)
    for (guint i = 0; i < n; i++)
      ymax = MAX (ymax, g_array_index (log->loss[which[j]], double, i));
  ymax = ymax > 0 ? ymax * 1.05 : 1;
  xmax = MAX (xmax, 1);
  g_string_append_printf (s, "<svg xmlns='http://www.w3.org/2000/svg' "
      "width='%d' height='%d' style='background:#fff;margin:4px'>"
      "<text x='%d' y='14' font-size='13'>%s</text>"
      "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#888'/>"
      "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#888'/>"
      "<text x='2' y='%d' font-size='11'>%.3g</text>"
      "<text x='2' y='%d' font-size='11'>0</text>"
      "<text x='%d' y='%d' font-size='11' text-anchor='end'>%.0f it</text>",
      W, H, L, title, L, H - B, W - 10, H - B, L, T, L, H - B, T + 4, ymax,
      H - B, W - 10, H - 8, xmax);
  for (int j = 0; j < n_which; j++) {
    const GArray *v = log->loss[which[j]];
    g_string_append_printf (s, "<polyline fill='none' stroke='%s' "
        "stroke-width='1.2' points='", colors[j % 4]);
    for (guint i = 0; i < n; i += bucket) {
      double sx = 0, sy = 0;
      guint m = MIN (bucket, n - i);
      for (guint k = 0; k < m; k++) {
        sx += g_array_index (log->iter, double, i + k);
        sy += g_array_index (v, double, i + k);
      }
      g_string_append_printf (s, "%.1f,%.1f ",
          L + (W - 10 - L) * (sx / m) / xmax,
          (H - B) - (H - B - T) * (sy / m) / ymax);
    }
    g_string_append_printf (s, "'/><text x='%d' y='14' font-size='12' "
        "fill='%s'>%s</text>", L + 200 + 80 * j, colors[j % 4],
        cg_loss_names[which[j]]);
  }
  g_string_append (s, "</svg>\n");
}

static void
write_report (const Outputs * o, int last_epoch)
{
  LossLog log;
  GString *s = g_string_new (NULL);
  static const int d[] = { CG_LOSS_D_A, CG_LOSS_D_B };
  static const int g[] = { CG_LOSS_G_A, CG_LOSS_G_B };
  static const int c[] = { CG_LOSS_CYCLE_A, CG_LOSS_CYCLE_B, CG_LOSS_IDT_A,
    CG_LOSS_IDT_B
  };
  GError *error = NULL;

  read_loss_log (o->csv_path, &log);
  g_string_append_printf (s, "<!DOCTYPE html>\n<html><head><meta "
      "charset='utf-8'><title>%s</title><style>body{font-family:sans-serif;"
      "background:#f4f4f4} img{image-rendering:pixelated}</style></head>"
      "<body>\n<h1>%s: %s &#8596; %s</h1>\n<h2>Losses</h2>\n", opt_name,
      opt_name, o->domain_a, o->domain_b);
  svg_chart (s, &log, d, 2, "discriminators");
  svg_chart (s, &log, g, 2, "generators (adversarial)");
  svg_chart (s, &log, c, 4, "cycle and identity");
  g_string_append (s, "\n<h2>Samples</h2><p>real_A | fake_B | rec_A | "
      "real_B | fake_A | rec_B</p>\n");
  for (int e = last_epoch; e >= 1; e--) {
    g_autofree char *name = g_strdup_printf ("epoch%03d.png", e);
    g_autofree char *path = g_build_filename (o->img_dir, name, NULL);
    if (g_file_test (path, G_FILE_TEST_EXISTS))
      g_string_append_printf (s, "<h3>epoch %d</h3><img src='images/%s' "
          "alt='epoch %d'>\n", e, name, e);
  }
  g_string_append (s, "</body></html>\n");
  /* g_file_set_contents writes a temporary file and renames it */
  if (!g_file_set_contents (o->html_path, s->str, s->len, &error)) {
    g_printerr ("\nwarning: %s\n", error->message);
    g_error_free (error);
  }
  g_string_free (s, TRUE);
  g_array_free (log.iter, TRUE);
  for (int k = 0; k < CG_N_LOSSES; k++)
    g_array_free (log.loss[k], TRUE);
}

/* ---- the run ---- */

typedef struct
{
  int epoch;                    /* current epoch */
  guint epoch_iter;             /* iterations done in it */
  guint *perm;                  /* its order of A indices */
  guint n_perm;
  gint64 total_iters;
} Position;

static void
new_epoch_order (Position * p, CgRng * rng)
{
  /* The DataLoader's shuffle: a permutation of the dataset's indices. */
  for (guint i = 0; i < p->n_perm; i++)
    p->perm[i] = i;
  for (guint i = p->n_perm - 1; i > 0; i--) {
    guint j = cg_rng_below (rng, i + 1), tmp = p->perm[i];
    p->perm[i] = p->perm[j];
    p->perm[j] = tmp;
  }
  p->epoch_iter = 0;
}

static char *
perm_string (const Position * p)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < p->n_perm; i++)
    g_string_append_printf (s, "%s%u", i ? "," : "", p->perm[i]);
  return g_string_free (s, FALSE);
}

static gboolean
save_all (const CgTrainer * t, const Outputs * o, const Position * p,
    GError ** error)
{
  g_autoptr (GHashTable) extra = g_hash_table_new_full (g_str_hash,
      g_str_equal, NULL, g_free);
  g_hash_table_insert (extra, "epoch", g_strdup_printf ("%d", p->epoch));
  g_hash_table_insert (extra, "epoch_iter", g_strdup_printf ("%u",
          p->epoch_iter));
  g_hash_table_insert (extra, "total_iters",
      g_strdup_printf ("%" G_GINT64_FORMAT, p->total_iters));
  g_hash_table_insert (extra, "perm", perm_string (p));
  g_hash_table_insert (extra, "options", options_string ());
  return cg_trainer_save (t, o->ckpt_path, extra, error)
      && write_model (t, o, p->epoch, p->total_iters, error);
}

static gboolean
restore_position (GHashTable * meta, Position * p, GError ** error)
{
  const char *e = g_hash_table_lookup (meta, "epoch");
  const char *ei = g_hash_table_lookup (meta, "epoch_iter");
  const char *ti = g_hash_table_lookup (meta, "total_iters");
  const char *perm = g_hash_table_lookup (meta, "perm");
  char **f;

  if (!e || !ei || !ti || !perm) {
    g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
        "checkpoint: no training position (epoch, epoch_iter, perm)");
    return FALSE;
  }
  p->epoch = atoi (e);
  p->epoch_iter = (guint) g_ascii_strtoull (ei, NULL, 10);
  p->total_iters = g_ascii_strtoll (ti, NULL, 10);
  f = g_strsplit (perm, ",", -1);
  if (g_strv_length (f) != p->n_perm) {
    g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
        "checkpoint: its epoch covers %u images, the dataset now has %u",
        g_strv_length (f), p->n_perm);
    g_strfreev (f);
    return FALSE;
  }
  for (guint i = 0; i < p->n_perm; i++)
    p->perm[i] = (guint) g_ascii_strtoull (f[i], NULL, 10);
  g_strfreev (f);
  return TRUE;
}

static void
format_duration (char *buf, gsize n, double s)
{
  if (!isfinite (s) || s < 0)
    g_strlcpy (buf, "?", n);
  else if (s < 3600)
    g_snprintf (buf, n, "%dm%02ds", (int) s / 60, (int) s % 60);
  else
    g_snprintf (buf, n, "%dh%02dm", (int) (s / 3600), (int) s % 3600 / 60);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = NULL;
  GError *error = NULL;
  Domain A = { 0 }, B = { 0 };
  Outputs o = { 0 };
  CgTrainConfig config;
  CgNorm norm;
  CgTrainer *t = NULL;
  Position pos = { 0 };
  CgRng *rng;
  float *real_A = NULL, *real_B = NULL;
  FILE *csv = NULL;
  int last_epoch, ret = 1;
  gint64 run_iters = 0;
  gboolean tty = isatty (STDERR_FILENO), saved_this_epoch = FALSE;
  double t0, t_last_print = 0;

  cg_tool_ensure_blas_kernels (argv);
  setlocale (LC_ALL, "");
  ctx = g_option_context_new ("- train CycleGAN generators on two folders "
      "of images");
  g_option_context_set_description (ctx, "Trains as the official "
      "pytorch-CycleGAN-and-pix2pix code (model cycle_gan, batch size 1) "
      "does.\nOutputs in CHECKPOINTS_DIR/NAME: model.safetensors, "
      "checkpoint.safetensors, loss_log.csv, index.html.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    goto fail;
  setlocale (LC_NUMERIC, "C");
  if (!opt_dataroot) {
    g_printerr ("cyclegan-train: --dataroot is required (see --help)\n");
    return 2;
  }
  if (opt_crop_size < 16 || opt_crop_size % 4 || opt_load_size < opt_crop_size
      || opt_ngf < 1 || opt_ndf < 1 || opt_n_blocks < 0 || opt_n_layers_D < 1
      || opt_pool_size < 0 || opt_save_epoch_freq < 1 || opt_n_epochs < 0
      || opt_n_epochs_decay < 0 || opt_epoch_count < 1 || opt_threads < 0) {
    g_printerr ("cyclegan-train: invalid options: crop-size must be a "
        "multiple of 4 (>= 16) and <= load-size; sizes, counts and "
        "frequencies positive\n");
    return 2;
  }
  if (!cg_norm_from_string (opt_norm, &norm)) {
    g_printerr ("cyclegan-train: --norm %s: instance or none (batch norm "
        "is not supported)\n", opt_norm);
    return 2;
  }
  if (opt_seed < 0)
    opt_seed = g_get_real_time () & G_MAXINT32;

  if (!domain_open (&A, opt_dataroot, "trainA", &error)
      || !domain_open (&B, opt_dataroot, "trainB", &error))
    goto fail;
  o.domain_a = g_path_get_basename (A.dir);
  o.domain_b = g_path_get_basename (B.dir);
  {
    /* "photo2vintage/trainA": name the domains after the dataset's
     * halves when it is called X2Y, else trainA/trainB. */
    g_autofree char *base = g_path_get_basename (opt_dataroot);
    char *two = strstr (base, "2");
    if (two && two != base && two[1]) {
      g_free (o.domain_a);
      g_free (o.domain_b);
      o.domain_a = g_strndup (base, two - base);
      o.domain_b = g_strdup (two + 1);
    }
  }

  o.dir = g_build_filename (opt_checkpoints_dir, opt_name, NULL);
  o.model_path = g_build_filename (o.dir, "model.safetensors", NULL);
  o.ckpt_path = g_build_filename (o.dir, "checkpoint.safetensors", NULL);
  o.csv_path = g_build_filename (o.dir, "loss_log.csv", NULL);
  o.html_path = g_build_filename (o.dir, "index.html", NULL);
  o.img_dir = g_build_filename (o.dir, "images", NULL);
  if (g_mkdir_with_parents (o.img_dir, 0755) != 0) {
    g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
        "%s: cannot create the folder", o.img_dir);
    goto fail;
  }

  cg_train_config_defaults (&config);
  config.norm = norm;
  config.ngf = opt_ngf;
  config.n_blocks = opt_n_blocks;
  config.ndf = opt_ndf;
  config.n_layers_D = opt_n_layers_D;
  config.lr = opt_lr;
  config.beta1 = opt_beta1;
  config.lambda_A = opt_lambda_A;
  config.lambda_B = opt_lambda_B;
  config.lambda_identity = opt_lambda_identity;
  config.pool_size = opt_pool_size;
  config.h = config.w = opt_crop_size;
  config.threads = opt_threads ? opt_threads : (int) g_get_num_processors ();
  t = cg_trainer_new (&config, (guint64) opt_seed, &error);
  if (!t)
    goto fail;
  rng = &t->rng;

  pos.n_perm = MAX (A.files->len, B.files->len);
  pos.perm = g_new (guint, pos.n_perm);
  if (opt_continue_train) {
    g_autoptr (GHashTable) meta = cg_trainer_load (t, o.ckpt_path, &error);
    if (!meta || !restore_position (meta, &pos, &error))
      goto fail;
    g_printerr ("resuming %s at epoch %d, iteration %u of %u (%"
        G_GINT64_FORMAT " done)\n", o.ckpt_path, pos.epoch, pos.epoch_iter,
        pos.n_perm, pos.total_iters);
  } else {
    pos.epoch = opt_epoch_count;
    new_epoch_order (&pos, rng);
  }
  last_epoch = opt_n_epochs + opt_n_epochs_decay;

  csv = g_fopen (o.csv_path, opt_continue_train ? "a" : "w");
  if (!csv) {
    g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
        "%s: cannot write", o.csv_path);
    goto fail;
  }
  if (!opt_continue_train) {
    fprintf (csv, "epoch,iter,total_iter,lr,seconds");
    for (int k = 0; k < CG_N_LOSSES; k++)
      fprintf (csv, ",%s", cg_loss_names[k]);
    fprintf (csv, "\n");
  }

  g_printerr ("cyclegan-train: %u images in %s, %u in %s; ngf %d, %d "
      "blocks, ndf %d, crop %d from %d; seed %" G_GINT64_FORMAT
      "; %d threads, OpenBLAS %s\n", A.files->len, A.dir, B.files->len, B.dir, opt_ngf,
      opt_n_blocks, opt_ndf, opt_crop_size, opt_load_size, opt_seed,
      config.threads, openblas_get_corename ());

  real_A = g_new (float, t->img);
  real_B = g_new (float, t->img);
  t0 = g_get_monotonic_time () / 1e6;
  while (pos.epoch <= last_epoch) {
    double it_start;

    if (pos.epoch_iter == pos.n_perm) {
      /* the epoch is complete: samples, report, schedule step, save */
      g_autofree char *name = g_strdup_printf ("epoch%03d.png", pos.epoch);
      g_autofree char *png = g_build_filename (o.img_dir, name, NULL);
      if (pos.total_iters > 0 && run_iters > 0) {
        g_autoptr (GdkPixbuf) grid = sample_grid (t, real_A, real_B);
        if (!cg_image_save_png (grid, png, &error))
          goto fail;
      }
      fflush (csv);
      write_report (&o, pos.epoch);
      saved_this_epoch = pos.epoch % opt_save_epoch_freq == 0
          || pos.epoch == last_epoch;
      pos.epoch++;
      new_epoch_order (&pos, rng);
      if (saved_this_epoch) {
        if (!save_all (t, &o, &pos, &error))
          goto fail;
        if (tty)
          g_printerr ("\n");
        g_printerr ("saved %s and %s (end of epoch %d)\n", o.model_path,
            o.ckpt_path, pos.epoch - 1);
      }
      continue;
    }
    if (opt_max_iterations && run_iters >= opt_max_iterations)
      break;

    t->lr = opt_lr * cg_lr_factor (pos.epoch, opt_epoch_count, opt_n_epochs,
        opt_n_epochs_decay);
    it_start = g_get_monotonic_time () / 1e6;
    /* unaligned: A from the epoch's order, B at random */
    if (!domain_sample (&A, pos.perm[pos.epoch_iter] % A.files->len, rng,
            real_A)
        || !domain_sample (&B, cg_rng_below (rng, B.files->len), rng,
            real_B)) {
      g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
          "no readable images left in %s", A.n_good ? B.dir : A.dir);
      goto fail;
    }
    cg_trainer_step (t, real_A, real_B);
    pos.epoch_iter++;
    pos.total_iters++;
    run_iters++;
    saved_this_epoch = FALSE;

    {
      double now = g_get_monotonic_time () / 1e6;
      double rate = run_iters / (now - t0);
      gint64 left = (gint64) (last_epoch - pos.epoch) * pos.n_perm +
          (pos.n_perm - pos.epoch_iter);
      char eta[32];
      if (opt_max_iterations)
        left = MIN (left, opt_max_iterations - run_iters);
      format_duration (eta, sizeof eta, left / rate);
      fprintf (csv, "%d,%u,%" G_GINT64_FORMAT ",%.6g,%.3f", pos.epoch,
          pos.epoch_iter, pos.total_iters, t->lr, now - it_start);
      for (int k = 0; k < CG_N_LOSSES; k++)
        fprintf (csv, ",%.5f", t->losses[k]);
      fprintf (csv, "\n");
      if (!tty && now - t_last_print < 10 && run_iters > 1)
        continue;
      t_last_print = now;
      g_printerr ("%sepoch %d/%d it %u/%u | %.2f it/s %.2f s/it | ETA %s | D_A %.3f "
          "G_A %.3f cyc_A %.3f idt_A %.3f D_B %.3f G_B %.3f cyc_B %.3f "
          "idt_B %.3f%s", tty ? "\r" : "", pos.epoch, last_epoch,
          pos.epoch_iter, pos.n_perm, rate, 1.0 / rate, eta,
          t->losses[CG_LOSS_D_A], t->losses[CG_LOSS_G_A],
          t->losses[CG_LOSS_CYCLE_A], t->losses[CG_LOSS_IDT_A],
          t->losses[CG_LOSS_D_B], t->losses[CG_LOSS_G_B],
          t->losses[CG_LOSS_CYCLE_B], t->losses[CG_LOSS_IDT_B],
          tty ? "  " : "\n");
    }
  }
  if (tty)
    g_printerr ("\n");

  /* the end of the run: save where we are, unless just saved */
  fflush (csv);
  if (!saved_this_epoch && run_iters > 0) {
    /* Samples of the epoch in progress; at an epoch's start the last
     * epoch's are already there. */
    if (pos.epoch_iter > 0) {
      g_autofree char *name = g_strdup_printf ("epoch%03d.png", pos.epoch);
      g_autofree char *png = g_build_filename (o.img_dir, name, NULL);
      g_autoptr (GdkPixbuf) grid = sample_grid (t, real_A, real_B);
      if (!cg_image_save_png (grid, png, &error))
        goto fail;
    }
    write_report (&o, MIN (pos.epoch, last_epoch));
    if (!save_all (t, &o, &pos, &error))
      goto fail;
    g_printerr ("saved %s and %s (epoch %d, iteration %u)\n", o.model_path,
        o.ckpt_path, pos.epoch, pos.epoch_iter);
  }
  g_printerr ("%" G_GINT64_FORMAT " iterations in %.1f s (%.3f s/it)\n",
      run_iters, g_get_monotonic_time () / 1e6 - t0,
      run_iters ? (g_get_monotonic_time () / 1e6 - t0) / run_iters : 0.0);
  ret = 0;
  goto out;

fail:
  if (tty)
    g_printerr ("\n");
  g_printerr ("cyclegan-train: %s\n", error ? error->message : "failed");
  g_clear_error (&error);
out:
  if (csv)
    fclose (csv);
  g_free (real_A);
  g_free (real_B);
  g_free (pos.perm);
  cg_trainer_free (t);
  domain_close (&A);
  domain_close (&B);
  g_free (o.dir);
  g_free (o.model_path);
  g_free (o.ckpt_path);
  g_free (o.csv_path);
  g_free (o.html_path);
  g_free (o.img_dir);
  g_free (o.domain_a);
  g_free (o.domain_b);
  /* GOption's strings are ours (and LeakSanitizer checks in CI) */
  g_free (opt_dataroot);
  if (opt_name != default_name)
    g_free (opt_name);
  if (opt_checkpoints_dir != default_checkpoints_dir)
    g_free (opt_checkpoints_dir);
  return ret;
}
