/* Random CycleGAN ResNet generators for the element tests. */
#include "test-model.h"

#include <math.h>

#include "safetensors.h"

typedef struct
{
  GPtrArray *names;             /* owns the strings */
  GPtrArray *data;              /* owns the float arrays */
  GArray *tensors;              /* CgTensorOut */
} ModelBuilder;

/* A conv weight [d0,d1,k,k] (or a bias [d0]) filled with uniform values of
 * variance 1/fan_in, so that activations stay in a useful range. */
static void
add_tensor (ModelBuilder * b, GRand * rand, const char *prefix, int layer,
    const char *part, const char *kind, int n_dims, gint64 d0, gint64 d1,
    gint64 k, int fan_in)
{
  CgTensorOut t = { 0 };
  gint64 n = n_dims == 1 ? d0 : d0 * d1 * k * k;
  double scale = sqrt (3.0 / fan_in);
  float *v = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    v[i] = (float) (scale * g_rand_double_range (rand, -1.0, 1.0));

  t.name = g_strdup_printf ("%smodel.%d.%s%s", prefix, layer, part, kind);
  t.dtype = CG_DTYPE_F32;
  t.n_dims = n_dims;
  t.shape[0] = d0;
  if (n_dims == 4) {
    t.shape[1] = d1;
    t.shape[2] = k;
    t.shape[3] = k;
  }
  t.data = v;
  g_ptr_array_add (b->names, (gpointer) t.name);
  g_ptr_array_add (b->data, v);
  g_array_append_val (b->tensors, t);
}

static void
add_layer (ModelBuilder * b, GRand * rand, const char *prefix, int layer,
    const char *part, gint64 d0, gint64 d1, gint64 k, gint64 bias, int fan_in)
{
  add_tensor (b, rand, prefix, layer, part, "weight", 4, d0, d1, k, fan_in);
  add_tensor (b, rand, prefix, layer, part, "bias", 1, bias, 0, 0, fan_in);
}

static void
add_generator (ModelBuilder * b, GRand * rand, const char *prefix, int ngf,
    int n)
{
  add_layer (b, rand, prefix, 1, "", ngf, 3, 7, ngf, 3 * 49);
  add_layer (b, rand, prefix, 4, "", 2 * ngf, ngf, 3, 2 * ngf, ngf * 9);
  add_layer (b, rand, prefix, 7, "", 4 * ngf, 2 * ngf, 3, 4 * ngf, 2 * ngf * 9);
  for (int i = 0; i < n; i++) {
    add_layer (b, rand, prefix, 10 + i, "conv_block.1.", 4 * ngf, 4 * ngf, 3,
        4 * ngf, 4 * ngf * 9);
    add_layer (b, rand, prefix, 10 + i, "conv_block.5.", 4 * ngf, 4 * ngf, 3,
        4 * ngf, 4 * ngf * 9);
  }
  /* ConvTranspose2d weights are [in, out, k, k] */
  add_layer (b, rand, prefix, 10 + n, "", 4 * ngf, 2 * ngf, 3, 2 * ngf,
      4 * ngf * 9);
  add_layer (b, rand, prefix, 13 + n, "", 2 * ngf, ngf, 3, ngf, 2 * ngf * 9);
  add_layer (b, rand, prefix, 17 + n, "", 3, ngf, 7, 3, ngf * 49);
}

gboolean
test_model_write (const char *path, int ngf, int n_blocks, gboolean both,
    guint32 seed, GError ** error)
{
  ModelBuilder b;
  GRand *rand = g_rand_new_with_seed (seed);
  gboolean ok;

  b.names = g_ptr_array_new_with_free_func (g_free);
  b.data = g_ptr_array_new_with_free_func (g_free);
  b.tensors = g_array_new (FALSE, TRUE, sizeof (CgTensorOut));

  if (both) {
    add_generator (&b, rand, "G_A.", ngf, n_blocks);
    add_generator (&b, rand, "G_B.", ngf, n_blocks);
  } else {
    add_generator (&b, rand, "", ngf, n_blocks);
  }

  ok = cg_safetensors_write (path, (const CgTensorOut *) b.tensors->data,
      b.tensors->len, NULL, error);

  g_array_unref (b.tensors);
  g_ptr_array_unref (b.data);
  g_ptr_array_unref (b.names);
  g_rand_free (rand);
  return ok;
}
