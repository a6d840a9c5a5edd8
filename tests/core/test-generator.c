/* Whole generators against PyTorch (tests/golden/<model>_io.safetensors):
 * float in, float out within 1e-4; 8-bit pixels within one level. */
#include <cyclegan/cyclegan.h>
#include "golden.h"
#include "generator-private.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

/* Every allocation of the process counted, by interposing glibc's malloc
 * family (the sanitizers interpose it themselves: not there). */
#if !defined(__SANITIZE_ADDRESS__) && defined(__GLIBC__)
#define COUNT_ALLOCATIONS 1
extern void *__libc_malloc (size_t);
extern void *__libc_calloc (size_t, size_t);
extern void *__libc_realloc (void *, size_t);
extern void *__libc_memalign (size_t, size_t);
static gint n_allocations;

void *malloc (size_t n);
void *calloc (size_t n, size_t size);
void *realloc (void *p, size_t n);
int posix_memalign (void **p, size_t align, size_t n);

void *
malloc (size_t n)
{
  g_atomic_int_inc (&n_allocations);
  return __libc_malloc (n);
}

void *
calloc (size_t n, size_t size)
{
  g_atomic_int_inc (&n_allocations);
  return __libc_calloc (n, size);
}

void *
realloc (void *p, size_t n)
{
  g_atomic_int_inc (&n_allocations);
  return __libc_realloc (p, n);
}

int
posix_memalign (void **p, size_t align, size_t n)
{
  g_atomic_int_inc (&n_allocations);
  *p = __libc_memalign (align, n);
  return *p ? 0 : ENOMEM;
}
#endif

#define TOL 1e-4

typedef struct
{
  const char *model;
  int n_cases;
  gboolean both;                /* holds G_A and G_B */
  CgGeneratorConfig config;
} ModelCase;

static const ModelCase models[] = {
  {"tiny", 4, TRUE, {3, 3, 4, 2, FALSE, CG_NORM_INSTANCE}},
  {"dropout", 2, FALSE, {3, 3, 4, 3, TRUE, CG_NORM_INSTANCE}},
  {"half", 2, TRUE, {3, 3, 8, 2, FALSE, CG_NORM_INSTANCE}},
  {"bhalf", 1, FALSE, {3, 3, 4, 1, FALSE, CG_NORM_INSTANCE}},
  {"nonorm", 2, TRUE, {3, 3, 4, 2, FALSE, CG_NORM_NONE}},
};

static CgModel *
load_model (const char *name)
{
  GError *error = NULL;
  char *file = g_strdup_printf ("%s.safetensors", name);
  char *path = g_build_filename (GOLDEN_DIR, file, NULL);
  CgModel *model = cg_model_load (path, &error);

  g_assert_no_error (error);
  g_free (file);
  g_free (path);
  return model;
}

typedef struct
{
  CgDirection direction;
  int h, w;
  float *input, *output;
} IoCase;

static IoCase
io_case (CgSafetensors * io, int k)
{
  IoCase c;
  char name[64];
  const char *dir;
  gint64 shape[3];

  g_snprintf (name, sizeof name, "case%d.direction", k);
  dir = g_hash_table_lookup (cg_safetensors_metadata (io), name);
  g_assert_true (cg_direction_from_string (dir, &c.direction));
  g_snprintf (name, sizeof name, "case%d.input", k);
  c.input = golden_tensor (io, name, shape);
  g_snprintf (name, sizeof name, "case%d.output", k);
  c.output = golden_tensor (io, name, NULL);
  g_assert_cmpint (shape[0], ==, 3);
  c.h = shape[1];
  c.w = shape[2];
  return c;
}

static void
test_architecture (gconstpointer data)
{
  const ModelCase *m = data;
  CgModel *model = load_model (m->model);
  CgGeneratorConfig c;

  g_assert_true (cg_model_get_config (model, CG_DIRECTION_A2B, &c));
  g_assert_cmpint (c.ngf, ==, m->config.ngf);
  g_assert_cmpint (c.n_blocks, ==, m->config.n_blocks);
  g_assert_cmpint (c.in_channels, ==, 3);
  g_assert_cmpint (c.out_channels, ==, 3);
  g_assert_cmpint (c.dropout_layout, ==, m->config.dropout_layout);
  g_assert_cmpint (c.norm, ==, m->config.norm);
  g_assert_cmpint (cg_model_has_direction (model, CG_DIRECTION_B2A), ==,
      m->both);
  cg_model_unref (model);
}

/* Every test of a model runs with each convolution path forced in turn. */
static const CgConvPath paths[] = { CG_CONV_PATH_AUTO, CG_CONV_PATH_IM2COL,
  CG_CONV_PATH_WINOGRAD, CG_CONV_PATH_WINOGRAD_FUSED, CG_CONV_PATH_THIN,
  CG_CONV_PATH_DIRECT
};

static void
test_planar_path (const ModelCase * m, CgConvPath path)
{
  CgModel *model = load_model (m->model);
  char *io_file = g_strdup_printf ("%s_io.safetensors", m->model);
  CgSafetensors *io = golden_open (io_file);
  CgGenerator *gen[2] = { NULL, NULL };

  for (int k = 0; k < m->n_cases; k++) {
    IoCase c = io_case (io, k);
    gsize n = (gsize) 3 * c.h * c.w;
    float *got = g_new (float, n);
    GError *error = NULL;
    char what[96];

    if (!gen[c.direction]) {
      gen[c.direction] = cg_generator_new (model, c.direction, &error);
      g_assert_no_error (error);
      cg_generator_force_path (gen[c.direction], path);
    }
    g_assert_true (cg_generator_run_planar (gen[c.direction], c.input, got,
            c.w, c.h, &error));
    g_assert_no_error (error);
    g_snprintf (what, sizeof what, "%s case %d (%s, %dx%d, %s)", m->model,
        k, cg_direction_to_string (c.direction), c.w, c.h,
        cg_conv_path_name (path));
    assert_close (what, got, c.output, n, TOL);

    /* in place, and a second run on the same plan gives the same */
    g_assert_true (cg_generator_run_planar (gen[c.direction], c.input,
            c.input, c.w, c.h, &error));
    g_assert_cmpmem (c.input, n * sizeof (float), got, n * sizeof (float));
    g_free (got);
    g_free (c.input);
    g_free (c.output);
  }
  cg_generator_free (gen[0]);
  cg_generator_free (gen[1]);
  cg_safetensors_close (io);
  g_free (io_file);
  cg_model_unref (model);
}

static void
test_planar (gconstpointer data)
{
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    test_planar_path (data, paths[i]);
}

static guint8
level (float x)
{
  double v = floor (((double) x + 1.0) * 127.5 + 0.5);
  return (guint8) CLAMP (v, 0, 255);
}

/* The golden inputs are exact 8-bit levels, so the pixel path sees the
 * same input as PyTorch did; its output must be PyTorch's rounded, give or
 * take one level (float rounding near a .5 boundary). */
static void
test_pixels (gconstpointer data)
{
  const ModelCase *m = data;
  CgModel *model = load_model (m->model);
  char *io_file = g_strdup_printf ("%s_io.safetensors", m->model);
  CgSafetensors *io = golden_open (io_file);

  for (int k = 0; k < m->n_cases; k++) {
    IoCase c = io_case (io, k);
    gsize plane = (gsize) c.h * c.w;
    gsize stride = (gsize) c.w * 4 + 12;        /* rows with padding */
    guint8 *px = g_malloc0 (stride * c.h);
    GError *error = NULL;
    CgGenerator *gen = cg_generator_new (model, c.direction, &error);
    int worst = 0;

    g_assert_no_error (error);
    for (int y = 0; y < c.h; y++)
      for (int x = 0; x < c.w; x++) {
        guint8 *p = px + y * stride + x * 4;
        for (int ch = 0; ch < 3; ch++) {
          float v = c.input[ch * plane + y * c.w + x];
          p[ch] = level (v);
          g_assert_cmpfloat (fabsf (p[ch] / 127.5f - 1.0f - v), <, 1e-6);
        }
        p[3] = (guint8) (x * 7 + y);
      }
    g_assert_true (cg_generator_run_pixels (gen, CG_PIXEL_RGBA, px, stride,
            px, stride, c.w, c.h, &error));
    g_assert_no_error (error);
    for (int y = 0; y < c.h; y++)
      for (int x = 0; x < c.w; x++) {
        guint8 *p = px + y * stride + x * 4;
        for (int ch = 0; ch < 3; ch++) {
          int want = level (c.output[ch * plane + y * c.w + x]);
          worst = MAX (worst, ABS (p[ch] - want));
        }
        g_assert_cmpint (p[3], ==, (guint8) (x * 7 + y));
      }
    g_test_message ("%s case %d: worst pixel difference %d level(s)",
        m->model, k, worst);
    g_assert_cmpint (worst, <=, 1);
    cg_generator_free (gen);
    g_free (px);
    g_free (c.input);
    g_free (c.output);
  }
  cg_safetensors_close (io);
  g_free (io_file);
  cg_model_unref (model);
}

/* One generator across frame sizes: the plan follows the size, and coming
 * back to a size gives the same result as the first time. */
static void
test_size_changes (void)
{
  CgModel *model = load_model ("tiny");
  CgSafetensors *io = golden_open ("tiny_io.safetensors");
  GError *error = NULL;
  CgGenerator *gen = cg_generator_new (model, CG_DIRECTION_A2B, &error);
  IoCase big = io_case (io, 0), odd = io_case (io, 2);
  float *got = g_new (float, 3 * 16 * 16);

  g_assert_true (big.direction == CG_DIRECTION_A2B
      && odd.direction == CG_DIRECTION_A2B);
  for (int round = 0; round < 2; round++) {
    g_assert_true (cg_generator_run_planar (gen, odd.input, got, odd.w,
            odd.h, &error));
    assert_close ("odd size", got, odd.output, 3 * odd.w * odd.h, TOL);
    g_assert_true (cg_generator_run_planar (gen, big.input, got, big.w,
            big.h, &error));
    assert_close ("16x16", got, big.output, 3 * big.w * big.h, TOL);
  }
  g_assert_no_error (error);
  g_free (got);
  g_free (big.input);
  g_free (big.output);
  g_free (odd.input);
  g_free (odd.output);
  cg_generator_free (gen);
  cg_safetensors_close (io);
  cg_model_unref (model);
}

/* Frames of a size already planned allocate nothing, on every path and
 * with two threads: no malloc call at all (counted where the malloc family
 * can be interposed), and the heap in use stays the same. */
static void
test_no_allocation_per_frame (void)
{
  CgModel *model = load_model ("tiny");
  GError *error = NULL;
  CgGenerator *gen = cg_generator_new (model, CG_DIRECTION_A2B, &error);
  int w = 45, h = 30;
  gsize stride = (gsize) w * 4;
  guint8 *px = g_malloc (stride * h);

  g_assert_no_error (error);
  cg_generator_set_threads (gen, 2);
  for (guint i = 0; i < stride * h; i++)
    px[i] = (guint8) (i * 13);
  for (guint p = 0; p < G_N_ELEMENTS (paths); p++) {
    struct mallinfo2 before, after;
    cg_generator_force_path (gen, paths[p]);
    /* the first frame plans the arena and starts the threads */
    g_assert_true (cg_generator_run_pixels (gen, CG_PIXEL_BGRA, px, stride,
            px, stride, w, h, &error));
    before = mallinfo2 ();
#ifdef COUNT_ALLOCATIONS
    g_atomic_int_set (&n_allocations, 0);
#endif
    for (int f = 0; f < 3; f++)
      g_assert_true (cg_generator_run_pixels (gen, CG_PIXEL_BGRA, px,
              stride, px, stride, w, h, &error));
#ifdef COUNT_ALLOCATIONS
    {
      int n = g_atomic_int_get (&n_allocations);
      g_test_message ("%s: %d allocations in 3 frames",
          cg_conv_path_name (paths[p]), n);
      g_assert_cmpint (n, ==, 0);
    }
#endif
    after = mallinfo2 ();
    g_test_message ("%s: heap in use %zu -> %zu bytes, mmapped %zu -> %zu",
        cg_conv_path_name (paths[p]), before.uordblks, after.uordblks,
        before.hblkhd, after.hblkhd);
    g_assert_cmpuint (after.uordblks, ==, before.uordblks);
    g_assert_cmpuint (after.hblkhd, ==, before.hblkhd);
  }
  g_assert_no_error (error);
  g_free (px);
  cg_generator_free (gen);
  cg_model_unref (model);
}

static void
test_refusals (void)
{
  CgModel *single = load_model ("dropout");
  CgModel *both = load_model ("tiny");
  GError *error = NULL;
  CgGenerator *gen;
  float buf[3 * 4 * 4] = { 0 };

  g_assert_null (cg_generator_new (single, CG_DIRECTION_B2A, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_DIRECTION);
  g_assert_nonnull (strstr (error->message, "dropout.safetensors"));
  g_clear_error (&error);

  gen = cg_generator_new (both, CG_DIRECTION_B2A, &error);
  g_assert_no_error (error);
  g_assert_false (cg_generator_run_planar (gen, buf, buf, 4, 4, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_SIZE);
  g_clear_error (&error);
  g_assert_false (cg_generator_prepare (gen, 100000, 8, &error));
  g_assert_error (error, CG_ERROR, CG_ERROR_SIZE);
  g_clear_error (&error);
  g_assert_true (cg_generator_prepare (gen, 5, 5, &error));
  g_assert_no_error (error);

  g_assert_cmpstr (cg_model_get_metadata (both, "domain_a"), ==, "photo");
  g_assert_null (cg_model_get_metadata (both, "no such key"));
  cg_generator_free (gen);
  cg_model_unref (single);
  cg_model_unref (both);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (models); i++) {
    char *p;
    p = g_strdup_printf ("/generator/%s/architecture", models[i].model);
    g_test_add_data_func (p, &models[i], test_architecture);
    g_free (p);
    p = g_strdup_printf ("/generator/%s/planar", models[i].model);
    g_test_add_data_func (p, &models[i], test_planar);
    g_free (p);
    p = g_strdup_printf ("/generator/%s/pixels", models[i].model);
    g_test_add_data_func (p, &models[i], test_pixels);
    g_free (p);
  }
  g_test_add_func ("/generator/size-changes", test_size_changes);
  g_test_add_func ("/generator/refusals", test_refusals);
  g_test_add_func ("/generator/no-allocation-per-frame",
      test_no_allocation_per_frame);
  return g_test_run ();
}
