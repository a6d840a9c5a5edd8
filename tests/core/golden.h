/* Reading the PyTorch oracle's golden tensors (tests/golden/, written by
 * tests/reference/make_goldens.py) and comparing against them. */
#pragma once

#include "safetensors.h"

#include <math.h>

static inline CgSafetensors *
golden_open (const char *file)
{
  GError *error = NULL;
  char *path = g_build_filename (GOLDEN_DIR, file, NULL);
  CgSafetensors *st = cg_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_free (path);
  return st;
}

/* The tensor as float32 (g_free it); its shape into `shape` if non-NULL. */
static inline float *
golden_tensor (CgSafetensors * st, const char *name, gint64 * shape)
{
  const CgTensorView *t = cg_safetensors_find (st, name);
  float *data;

  if (!t)
    g_error ("golden tensor \"%s\" missing from %s", name,
        cg_safetensors_path (st));
  data = g_new (float, MAX (t->n_elements, 1));
  cg_tensor_view_to_f32 (t, data);
  if (shape)
    for (int i = 0; i < t->n_dims; i++)
      shape[i] = t->shape[i];
  return data;
}

static inline double
max_abs_diff (const float *a, const float *b, gsize n)
{
  double m = 0.0;
  for (gsize i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - b[i]);
    if (!(d <= m))              /* NaN counts as the worst */
      m = isnan (d) ? INFINITY : d;
  }
  return m;
}

/* Assert agreement within `tol` and say by how much: a test log that shows
 * the margin tells when a change eats into it. */
#define assert_close(what, got, want, n, tol) G_STMT_START { \
  double _d = max_abs_diff ((got), (want), (n)); \
  g_test_message ("%s: max |diff| %.3g (tolerance %.1g)", (what), _d, \
      (double) (tol)); \
  if (!(_d <= (tol))) \
    g_error ("%s: max |diff| %.3g exceeds %.1g", (what), _d, \
        (double) (tol)); \
} G_STMT_END
