/* cyclegan-translate: still images through a CycleGAN generator.
 *
 *   cyclegan-translate --model m.safetensors [--direction a2b|b2a]
 *                      [--threads N] INPUT OUTPUT
 *   cyclegan-translate --model m.safetensors --output-dir DIR INPUT...
 */
#include <cyclegan/cyclegan.h>
#include "image-io.h"
#include "blas-kernels.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

static char *opt_model;
static char *opt_direction = "a2b";
static int opt_threads;
static char *opt_output_dir;
static char **opt_files;

static GOptionEntry entries[] = {
  {"model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model,
      "The model file (safetensors)", "FILE"},
  {"direction", 'd', 0, G_OPTION_ARG_STRING, &opt_direction,
      "a2b (generator G_A, the default) or b2a (G_B)", "DIR"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &opt_threads,
      "Compute threads (0, the default: all cores)", "N"},
  {"output-dir", 'o', 0, G_OPTION_ARG_FILENAME, &opt_output_dir,
      "Translate every INPUT into DIR/<name>.png", "DIR"},
  {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_files, NULL,
      NULL},
  {NULL}
};

static gboolean
translate_file (CgGenerator * gen, const char *in_path, const char *out_path,
    GError ** error)
{
  g_autoptr (GdkPixbuf) pb = cg_image_load (in_path, error);
  CgPixelFormat format;
  GError *local = NULL;

  if (!pb)
    return FALSE;
  format = gdk_pixbuf_get_has_alpha (pb) ? CG_PIXEL_RGBA : CG_PIXEL_RGB;
  /* A pixbuf we just loaded is ours to write into. */
  if (!cg_generator_run_pixels (gen, format, gdk_pixbuf_get_pixels (pb),
          gdk_pixbuf_get_rowstride (pb), gdk_pixbuf_get_pixels (pb),
          gdk_pixbuf_get_rowstride (pb), gdk_pixbuf_get_width (pb),
          gdk_pixbuf_get_height (pb), &local)) {
    g_set_error (error, local->domain, local->code, "%s: %s", in_path,
        local->message);
    g_error_free (local);
    return FALSE;
  }
  return cg_image_save_png (pb, out_path, error);
}

static char *
output_name (const char *dir, const char *input)
{
  g_autofree char *base = g_path_get_basename (input);
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';
  return g_strdup_printf ("%s%s%s.png", dir, G_DIR_SEPARATOR_S, base);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CgModel) model = NULL;
  CgGenerator *gen = NULL;
  CgDirection direction;
  guint n_files;
  int status = 0;

  cg_tool_ensure_blas_kernels (argv);
  setlocale (LC_ALL, "");
  ctx = g_option_context_new ("INPUT OUTPUT | --output-dir DIR INPUT...");
  g_option_context_set_summary (ctx,
      "Translate still images (PNG, JPEG, anything gdk-pixbuf reads) with a "
      "CycleGAN generator;\nwrites PNG.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("cyclegan-translate: %s\n", error->message);
    return 2;
  }
  n_files = opt_files ? g_strv_length (opt_files) : 0;
  if (!opt_model) {
    g_printerr ("cyclegan-translate: --model is required (see --help)\n");
    return 2;
  }
  if (!cg_direction_from_string (opt_direction, &direction)) {
    g_printerr ("cyclegan-translate: --direction must be a2b or b2a, not "
        "\"%s\"\n", opt_direction);
    return 2;
  }
  if (opt_threads < 0) {
    g_printerr ("cyclegan-translate: --threads must be 0 or more\n");
    return 2;
  }
  if (opt_output_dir ? n_files < 1 : n_files != 2) {
    g_printerr ("cyclegan-translate: expected %s (see --help)\n",
        opt_output_dir ? "at least one INPUT" : "INPUT OUTPUT");
    return 2;
  }

  model = cg_model_load (opt_model, &error);
  if (model)
    gen = cg_generator_new (model, direction, &error);
  if (!gen) {
    g_printerr ("cyclegan-translate: %s\n", error->message);
    return 1;
  }
  cg_generator_set_threads (gen, opt_threads);

  if (!opt_output_dir) {
    if (!translate_file (gen, opt_files[0], opt_files[1], &error)) {
      g_printerr ("cyclegan-translate: %s\n", error->message);
      status = 1;
    }
  } else {
    if (g_mkdir_with_parents (opt_output_dir, 0777) != 0) {
      g_printerr ("cyclegan-translate: %s: %s\n", opt_output_dir,
          g_strerror (errno));
      cg_generator_free (gen);
      return 1;
    }
    for (guint i = 0; i < n_files; i++) {
      g_autofree char *out = output_name (opt_output_dir, opt_files[i]);
      if (!translate_file (gen, opt_files[i], out, &error)) {
        /* Go on with the rest; report each failure once. */
        g_printerr ("cyclegan-translate: %s\n", error->message);
        g_clear_error (&error);
        status = 1;
      }
    }
  }
  cg_generator_free (gen);
  return status;
}
