/* cyclegan-bench: how fast a generator runs on this machine.
 *
 *   cyclegan-bench --ngf 64 --blocks 9 --size 256x256 --threads 2
 *   cyclegan-bench --model m.safetensors --size 640x480 --layers
 *
 * Frames go through cg_generator_run_pixels (RGBx in and out, as the
 * element runs them), so the figures include the pixel conversions.
 */
#include <cyclegan/cyclegan.h>
#include "gemm.h"
#include "generator-private.h"
#include "model-private.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static char *opt_model;
static char *opt_save;
static int opt_ngf = 64;
static int opt_blocks = 9;
static char *opt_size = "256x256";
static int opt_threads;
static int opt_frames = 10;
static int opt_warmup = 1;
static gboolean opt_layers;
static char *opt_direction = "a2b";
static int opt_seed = 1;
static char *opt_path = "auto";

static GOptionEntry entries[] = {
  {"model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model,
      "A model file (default: a random generator of --ngf/--blocks)", "FILE"},
  {"ngf", 0, 0, G_OPTION_ARG_INT, &opt_ngf,
      "Random generator: filters of the first layer (64)", "N"},
  {"blocks", 0, 0, G_OPTION_ARG_INT, &opt_blocks,
      "Random generator: residual blocks (9)", "N"},
  {"seed", 0, 0, G_OPTION_ARG_INT, &opt_seed,
      "Random generator: seed of the weights (1)", "N"},
  {"save", 0, 0, G_OPTION_ARG_FILENAME, &opt_save,
      "Write the random generator to FILE (for the peer benchmark)", "FILE"},
  {"direction", 'd', 0, G_OPTION_ARG_STRING, &opt_direction,
      "a2b or b2a, with --model (a2b)", "DIR"},
  {"size", 's', 0, G_OPTION_ARG_STRING, &opt_size, "Frame size (256x256)",
      "WxH"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &opt_threads,
      "Compute threads, 0 = all cores (0)", "N"},
  {"frames", 'n', 0, G_OPTION_ARG_INT, &opt_frames, "Timed frames (10)",
      "N"},
  {"warmup", 0, 0, G_OPTION_ARG_INT, &opt_warmup,
      "Untimed frames first (1)", "N"},
  {"path", 0, 0, G_OPTION_ARG_STRING, &opt_path,
      "Convolution path: auto, im2col, winograd, winograd-fused, thin or "
        "direct (auto)", "PATH"},
  {"layers", 'l', 0, G_OPTION_ARG_NONE, &opt_layers,
      "Print the time of each layer", NULL},
  {NULL}
};

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* CPU time of the process so far: with other jobs on the machine, wall
 * time says little, but CPU time per frame still tracks the work done. */
static double
cpu_ms (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
      ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static CgModel *
make_model (GError ** error)
{
  CgGeneratorConfig config = { 3, 3, opt_ngf, opt_blocks, FALSE,
    CG_NORM_INSTANCE
  };
  CgGeneratorParams *params;

  if (opt_model)
    return cg_model_load (opt_model, error);
  if (opt_ngf < 1 || opt_ngf > 1024 || opt_blocks < 0 || opt_blocks > 256) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "--ngf must be 1..1024 and --blocks 0..256");
    return NULL;
  }
  params = cg_generator_params_new (&config);
  if (!params) {
    g_set_error (error, CG_ERROR, CG_ERROR_NO_MEMORY, "no memory");
    return NULL;
  }
  cg_generator_params_init_default (params, (guint32) opt_seed);
  if (opt_save && !cg_model_write (opt_save, params, NULL, NULL, error)) {
    cg_generator_params_free (params);
    return NULL;
  }
  return cg_model_new_from_params (params, NULL, NULL);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CgModel) model = NULL;
  CgGenerator *gen = NULL;
  CgDirection direction;
  CgConvPath path;
  CgGeneratorConfig config;
  int width, height, n_layers;
  double *ms, *layer_ms;
  guint8 *frame;
  gsize stride;
  struct rusage ru;
  double cpu0, cpu1;
  const char *coretype = g_getenv ("OPENBLAS_CORETYPE");

  ctx = g_option_context_new (NULL);
  g_option_context_set_summary (ctx, "Time a CycleGAN generator on frames "
      "of one size and print min/median ms,\nframes per second, GMAC/s, peak "
      "memory and the OpenBLAS kernel in use.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("cyclegan-bench: %s\n", error->message);
    return 2;
  }
  if (sscanf (opt_size, "%dx%d", &width, &height) != 2 || opt_frames < 1
      || opt_warmup < 0 || opt_threads < 0
      || !cg_direction_from_string (opt_direction, &direction)) {
    g_printerr ("cyclegan-bench: bad --size, --frames, --warmup, --threads "
        "or --direction (see --help)\n");
    return 2;
  }

  if (!cg_conv_path_from_name (opt_path, &path)) {
    g_printerr ("cyclegan-bench: unknown --path \"%s\"\n", opt_path);
    return 2;
  }
  model = make_model (&error);
  if (model)
    gen = cg_generator_new (model, direction, &error);
  if (gen)
    cg_generator_force_path (gen, path);
  if (!gen || !cg_generator_prepare (gen, width, height, &error)) {
    g_printerr ("cyclegan-bench: %s\n", error->message);
    cg_generator_free (gen);
    return 1;
  }
  cg_generator_set_threads (gen, opt_threads);
  cg_model_get_config (model, direction, &config);

  stride = (gsize) width * 4;
  frame = g_malloc (stride * height);
  for (gsize i = 0; i < stride * height; i++)
    frame[i] = (guint8) g_random_int ();

  for (int i = 0; i < opt_warmup; i++)
    cg_generator_run_pixels (gen, CG_PIXEL_RGBX, frame, stride, frame,
        stride, width, height, NULL);

  n_layers = cg_generator_n_layers (gen);
  layer_ms = g_new0 (double, n_layers);
  if (opt_layers)
    cg_generator_set_layer_times (gen, layer_ms);
  ms = g_new (double, opt_frames);
  cpu0 = cpu_ms ();
  for (int i = 0; i < opt_frames; i++) {
    gint64 t0 = g_get_monotonic_time ();
    cg_generator_run_pixels (gen, CG_PIXEL_RGBX, frame, stride, frame,
        stride, width, height, NULL);
    ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  cpu1 = cpu_ms ();
  cg_generator_set_layer_times (gen, NULL);
  qsort (ms, opt_frames, sizeof (double), cmp_double);
  getrusage (RUSAGE_SELF, &ru);

  {
    double median = opt_frames % 2 ? ms[opt_frames / 2] :
        (ms[opt_frames / 2 - 1] + ms[opt_frames / 2]) / 2;
    double macs = cg_generator_macs (gen, width, height);
    printf ("model      %s: ngf %d, %d blocks, %s, path %s\n",
        opt_model ? opt_model : "random", config.ngf, config.n_blocks,
        opt_direction, opt_path);
    printf ("frame      %dx%d, %d frames after %d warm-up\n", width, height,
        opt_frames, opt_warmup);
    printf ("threads    %d (OpenBLAS %d), core %s, OPENBLAS_CORETYPE=%s\n",
        opt_threads, openblas_get_num_threads (), openblas_get_corename (),
        coretype ? coretype : "(unset)");
    printf ("kernels    GEMM %s\n", cg_gemm_kernel_name ());
    printf ("ms/frame   min %.2f  median %.2f  max %.2f\n", ms[0], median,
        ms[opt_frames - 1]);
    printf ("fps        %.2f (median)\n", 1000.0 / median);
    printf ("cpu        %.2f ms/frame (all threads)\n",
        (cpu1 - cpu0) / opt_frames);
    printf ("GMAC       %.2f per frame, %.1f GMAC/s\n", macs / 1e9,
        macs / 1e9 / (median / 1000.0));
    printf ("peak RSS   %.1f MiB\n", ru.ru_maxrss / 1024.0);
  }

  if (opt_layers) {
    double total = 0.0;
    for (int i = 0; i < n_layers; i++)
      total += layer_ms[i];
    printf ("\n%-26s %-37s %9s %6s %8s\n", "layer", "shape", "ms/frame",
        "share", "GMAC/s");
    for (int i = 0; i < n_layers; i++) {
      g_autofree char *desc = cg_generator_layer_describe (gen, i);
      double t = layer_ms[i] / opt_frames;
      printf ("%-26s %-37s %9.2f %5.1f%% %8.1f\n",
          cg_generator_layer_name (gen, i), desc, t,
          100.0 * layer_ms[i] / total,
          cg_generator_layer_macs (gen, i) / 1e9 / (t / 1000.0));
    }
  }

  g_free (ms);
  g_free (layer_ms);
  g_free (frame);
  cg_generator_free (gen);
  return 0;
}
