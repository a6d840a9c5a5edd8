/* The model file: one or two ResNet generators in a safetensors file, the
 * architecture inferred from the tensors' names and shapes. */
#include "model-private.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far beyond any published CycleGAN, small enough that no product of
 * these overflows when the network is planned. */
#define MAX_NGF 1024
#define MAX_BLOCKS 256
#define MAX_CHANNELS 64

struct _CgModel
{
  gatomicrefcount ref;
  char *path;
  GHashTable *metadata;
  CgGeneratorParams *gen[2];
};

static const char *const prefixes[2] = { "G_A.", "G_B." };

/* ---- the parameter table ---- */

static void
add_spec (GArray * specs, gsize * offset, const char *name, int n_dims,
    gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  CgParamSpec s = { 0 };
  gint64 dims[4] = { d0, d1, d2, d3 };

  g_strlcpy (s.name, name, sizeof s.name);
  s.n_dims = n_dims;
  s.n_elements = 1;
  for (int i = 0; i < n_dims; i++) {
    s.shape[i] = dims[i];
    s.n_elements *= dims[i];
  }
  s.offset = *offset;
  /* Each tensor starts on a 64-byte boundary, for the kernels' loads. */
  *offset += (s.n_elements + 15) & ~(gsize) 15;
  g_array_append_val (specs, s);
}

void
cg_param_table_add_conv (GArray * specs, gsize * offset, const char *module,
    gint64 cout, gint64 cin, gint64 k, gboolean bias)
{
  char name[48];

  g_snprintf (name, sizeof name, "%s.weight", module);
  add_spec (specs, offset, name, 4, cout, cin, k, k);
  g_snprintf (name, sizeof name, "%s.bias", module);
  if (bias)
    add_spec (specs, offset, name, 1, cout, 0, 0, 0);
}

/* A ConvTranspose2d stores its weight [in, out, k, k]. */
static void
add_conv_t (GArray * specs, gsize * offset, const char *module, gint64 cin,
    gint64 cout, gint64 k, gboolean bias)
{
  char name[48];

  g_snprintf (name, sizeof name, "%s.weight", module);
  add_spec (specs, offset, name, 4, cin, cout, k, k);
  g_snprintf (name, sizeof name, "%s.bias", module);
  if (bias)
    add_spec (specs, offset, name, 1, cout, 0, 0, 0);
}

CgParamSpec *
cg_generator_param_table (const CgGeneratorConfig * c, guint * n_specs,
    gsize * n_floats)
{
  GArray *specs = g_array_new (FALSE, TRUE, sizeof (CgParamSpec));
  gsize offset = 0;
  gint64 ngf = c->ngf;
  char module[40];
  int nb = c->n_blocks;
  /* the official code: a bias where InstanceNorm follows (which cancels
   * it, so its gradient is zero), none without norm */
  gboolean bias = c->norm == CG_NORM_INSTANCE;

  cg_param_table_add_conv (specs, &offset, "model.1", ngf, c->in_channels, 7,
      bias);
  cg_param_table_add_conv (specs, &offset, "model.4", 2 * ngf, ngf, 3, bias);
  cg_param_table_add_conv (specs, &offset, "model.7", 4 * ngf, 2 * ngf, 3,
      bias);
  for (int i = 0; i < nb; i++) {
    g_snprintf (module, sizeof module, "model.%d.conv_block.%d",
        CG_GEN_IDX_BLOCK0 + i, CG_BLOCK_IDX_CONV1);
    cg_param_table_add_conv (specs, &offset, module, 4 * ngf, 4 * ngf, 3,
        bias);
    g_snprintf (module, sizeof module, "model.%d.conv_block.%d",
        CG_GEN_IDX_BLOCK0 + i, CG_BLOCK_IDX_CONV2 (c->dropout_layout));
    cg_param_table_add_conv (specs, &offset, module, 4 * ngf, 4 * ngf, 3,
        bias);
  }
  g_snprintf (module, sizeof module, "model.%d", CG_GEN_IDX_UP1 (nb));
  add_conv_t (specs, &offset, module, 4 * ngf, 2 * ngf, 3, bias);
  g_snprintf (module, sizeof module, "model.%d", CG_GEN_IDX_UP2 (nb));
  add_conv_t (specs, &offset, module, 2 * ngf, ngf, 3, bias);
  g_snprintf (module, sizeof module, "model.%d", CG_GEN_IDX_CONV_OUT (nb));
  cg_param_table_add_conv (specs, &offset, module, c->out_channels, ngf, 7,
      TRUE);

  *n_specs = specs->len;
  *n_floats = offset;
  return (CgParamSpec *) g_array_free (specs, FALSE);
}

CgGeneratorParams *
cg_generator_params_new (const CgGeneratorConfig * config)
{
  CgGeneratorParams *p = g_new0 (CgGeneratorParams, 1);
  void *mem = NULL;

  p->config = *config;
  p->specs = cg_generator_param_table (config, &p->n_specs, &p->n_floats);
  if (posix_memalign (&mem, 64, MAX (p->n_floats, 1) * sizeof (float)) != 0) {
    g_free (p->specs);
    g_free (p);
    return NULL;
  }
  p->data = mem;
  memset (p->data, 0, p->n_floats * sizeof (float));
  return p;
}

void
cg_generator_params_free (CgGeneratorParams * p)
{
  if (!p)
    return;
  free (p->data);
  g_free (p->specs);
  g_free (p);
}

void
cg_generator_params_init_default (CgGeneratorParams * p, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  double bound = 0.0;

  for (guint i = 0; i < p->n_specs; i++) {
    const CgParamSpec *s = &p->specs[i];
    float *x = p->data + s->offset;
    /* fan_in: [out, in, k, k] for a conv, [in, out, k, k] for a
     * transposed one, whose fan_in PyTorch takes from dim 1 too. The bias
     * uses its weight's bound, which comes just before it. */
    if (s->n_dims == 4)
      bound = 1.0 / sqrt ((double) s->shape[1] * s->shape[2] * s->shape[3]);
    for (gsize j = 0; j < s->n_elements; j++)
      x[j] = (float) g_rand_double_range (rand, -bound, bound);
  }
  g_rand_free (rand);
}

float *
cg_generator_params_find (const CgGeneratorParams * p, const char *name)
{
  for (guint i = 0; i < p->n_specs; i++)
    if (strcmp (p->specs[i].name, name) == 0)
      return p->data + p->specs[i].offset;
  return NULL;
}

/* ---- loading ---- */

static char *
shape_string (const gint64 * shape, int n_dims)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static const CgTensorView *
find_prefixed (const CgSafetensors * st, const char *prefix, const char *name)
{
  char *full = g_strconcat (prefix, name, NULL);
  const CgTensorView *t = cg_safetensors_find (st, full);
  g_free (full);
  return t;
}

static gboolean
is_conv_weight (const CgTensorView * t, int k)
{
  return t && t->n_dims == 4 && t->shape[2] == k && t->shape[3] == k;
}

static gboolean
infer_config (const CgSafetensors * st, const char *prefix,
    CgGeneratorConfig * c, GError ** error)
{
  const char *path = cg_safetensors_path (st);
  const CgTensorView *t;
  char name[64];

  memset (c, 0, sizeof *c);
  t = find_prefixed (st, prefix, "model.1.weight");
  if (!t) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: no tensor \"%smodel.1.weight\": not a CycleGAN ResNet generator",
        path, prefix);
    return FALSE;
  }
  if (!is_conv_weight (t, 7) || t->shape[0] < 1 || t->shape[0] > MAX_NGF
      || t->shape[1] < 1 || t->shape[1] > MAX_CHANNELS) {
    g_autofree char *shape = shape_string (t->shape, t->n_dims);
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: tensor \"%s\": shape %s is not a 7x7 input convolution "
        "[ngf <= %d, channels <= %d, 7, 7]", path, t->name, shape, MAX_NGF,
        MAX_CHANNELS);
    return FALSE;
  }
  c->ngf = (int) t->shape[0];
  c->in_channels = (int) t->shape[1];
  c->norm = find_prefixed (st, prefix, "model.1.bias") ? CG_NORM_INSTANCE :
      CG_NORM_NONE;

  while (c->n_blocks <= MAX_BLOCKS) {
    g_snprintf (name, sizeof name, "model.%d.conv_block.%d.weight",
        CG_GEN_IDX_BLOCK0 + c->n_blocks, CG_BLOCK_IDX_CONV1);
    if (!find_prefixed (st, prefix, name))
      break;
    c->n_blocks++;
  }
  if (c->n_blocks > MAX_BLOCKS) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: more than %d residual blocks", path, MAX_BLOCKS);
    return FALSE;
  }
  g_snprintf (name, sizeof name, "model.%d.conv_block.%d.weight",
      CG_GEN_IDX_BLOCK0, CG_BLOCK_IDX_CONV2 (TRUE));
  c->dropout_layout = c->n_blocks > 0
      && find_prefixed (st, prefix, name) != NULL;

  g_snprintf (name, sizeof name, "model.%d.weight",
      CG_GEN_IDX_CONV_OUT (c->n_blocks));
  t = find_prefixed (st, prefix, name);
  if (!t) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: no output convolution \"%s%s\" (expected after %d residual "
        "blocks)", path, prefix, name, c->n_blocks);
    return FALSE;
  }
  if (!is_conv_weight (t, 7) || t->shape[0] < 1
      || t->shape[0] > MAX_CHANNELS) {
    g_autofree char *shape = shape_string (t->shape, t->n_dims);
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: tensor \"%s\": shape %s is not a 7x7 output convolution "
        "[channels <= %d, ngf, 7, 7]", path, t->name, shape, MAX_CHANNELS);
    return FALSE;
  }
  c->out_channels = (int) t->shape[0];
  return TRUE;
}

static gboolean
all_finite (const float *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return FALSE;
  return TRUE;
}

static CgGeneratorParams *
load_generator (const CgSafetensors * st, const char *prefix,
    GError ** error)
{
  const char *path = cg_safetensors_path (st);
  CgGeneratorConfig config;
  CgGeneratorParams *p;
  gsize prefix_len = strlen (prefix);
  guint n_with_prefix = 0;

  if (!infer_config (st, prefix, &config, error))
    return NULL;
  p = cg_generator_params_new (&config);
  if (!p) {
    g_set_error (error, CG_ERROR, CG_ERROR_NO_MEMORY,
        "%s: no memory for the parameters", path);
    return NULL;
  }

  for (guint i = 0; i < p->n_specs; i++) {
    const CgParamSpec *spec = &p->specs[i];
    const CgTensorView *t = find_prefixed (st, prefix, spec->name);
    gboolean same = t && t->n_dims == spec->n_dims;

    for (int d = 0; same && d < spec->n_dims; d++)
      same = t->shape[d] == spec->shape[d];
    if (!t || !same) {
      g_autofree char *want = shape_string (spec->shape, spec->n_dims);
      g_autofree char *have = t ? shape_string (t->shape, t->n_dims) : NULL;
      g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
          "%s: tensor \"%s%s\": %s%s, but a generator with ngf %d, %d "
          "blocks%s%s needs %s", path, prefix, spec->name,
          t ? "shape " : "missing", t ? have : "", config.ngf,
          config.n_blocks, config.dropout_layout ? " (dropout layout)" : "",
          config.norm == CG_NORM_NONE ? " without norm" : "", want);
      goto fail;
    }
    cg_tensor_view_to_f32 (t, p->data + spec->offset);
    if (!all_finite (p->data + spec->offset, spec->n_elements)) {
      g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
          "%s: tensor \"%s%s\" holds NaN or infinite values", path, prefix,
          spec->name);
      goto fail;
    }
  }

  for (guint i = 0; i < cg_safetensors_n_tensors (st); i++) {
    const char *name = cg_safetensors_tensor (st, i)->name;
    if (prefix_len && strncmp (name, prefix, prefix_len) != 0)
      continue;
    if (!prefix_len && (g_str_has_prefix (name, prefixes[0])
            || g_str_has_prefix (name, prefixes[1])))
      continue;
    if (!cg_generator_params_find (p, name + prefix_len)) {
      g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
          "%s: unexpected tensor \"%s\" (not part of a generator with ngf "
          "%d, %d blocks%s%s)", path, name, config.ngf, config.n_blocks,
          config.dropout_layout ? ", dropout layout" : "",
          config.norm == CG_NORM_NONE ? ", without norm (no \"model.1.bias\")"
          : "");
      goto fail;
    }
    n_with_prefix++;
  }
  if (n_with_prefix != p->n_specs) {
    /* Only reachable if the reader let two tensors share a name. */
    g_set_error (error, CG_ERROR, CG_ERROR_FORMAT,
        "%s: %u tensors for the %u parameters of the generator", path,
        n_with_prefix, p->n_specs);
    goto fail;
  }
  return p;

fail:
  cg_generator_params_free (p);
  return NULL;
}

CgModel *
cg_model_load (const char *path, GError ** error)
{
  CgSafetensors *st;
  CgModel *model = NULL;
  guint n[3] = { 0 };           /* G_A., G_B., unprefixed */
  const char *example[3] = { NULL };

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  st = cg_safetensors_open (path, error);
  if (!st)
    return NULL;

  for (guint i = 0; i < cg_safetensors_n_tensors (st); i++) {
    const char *name = cg_safetensors_tensor (st, i)->name;
    int k = g_str_has_prefix (name, prefixes[0]) ? 0 :
        g_str_has_prefix (name, prefixes[1]) ? 1 : 2;
    n[k]++;
    example[k] = name;
  }

  if (n[0] + n[1] + n[2] == 0) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: holds no tensors", path);
    goto out;
  }
  if (n[2] && (n[0] || n[1])) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: mixes prefixed (\"%s\") and unprefixed (\"%s\") tensor names",
        path, example[0] ? example[0] : example[1], example[2]);
    goto out;
  }
  if (n[1] && !n[0]) {
    g_set_error (error, CG_ERROR, CG_ERROR_ARCHITECTURE,
        "%s: has a G_B. generator but no G_A.", path);
    goto out;
  }

  model = g_new0 (CgModel, 1);
  g_atomic_ref_count_init (&model->ref);
  model->path = g_strdup (path);
  model->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, cg_safetensors_metadata (st));
    while (g_hash_table_iter_next (&it, &k, &v))
      g_hash_table_insert (model->metadata, g_strdup (k), g_strdup (v));
  }

  if (n[2]) {
    model->gen[CG_DIRECTION_A2B] = load_generator (st, "", error);
    if (!model->gen[CG_DIRECTION_A2B])
      goto fail;
  } else {
    for (int d = 0; d < 2; d++) {
      if (!n[d])
        continue;
      model->gen[d] = load_generator (st, prefixes[d], error);
      if (!model->gen[d])
        goto fail;
    }
  }
  goto out;

fail:
  cg_model_unref (model);
  model = NULL;
out:
  cg_safetensors_close (st);
  return model;
}

CgModel *
cg_model_new_from_params (CgGeneratorParams * a2b, CgGeneratorParams * b2a,
    GHashTable * metadata)
{
  CgModel *model = g_new0 (CgModel, 1);

  g_return_val_if_fail (a2b != NULL, NULL);
  g_atomic_ref_count_init (&model->ref);
  model->path = g_strdup ("(memory)");
  model->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  if (metadata) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, metadata);
    while (g_hash_table_iter_next (&it, &k, &v))
      g_hash_table_insert (model->metadata, g_strdup (k), g_strdup (v));
  }
  model->gen[CG_DIRECTION_A2B] = a2b;
  model->gen[CG_DIRECTION_B2A] = b2a;
  return model;
}

gboolean
cg_model_write (const char *path, const CgGeneratorParams * a2b,
    const CgGeneratorParams * b2a, GHashTable * metadata, GError ** error)
{
  const CgGeneratorParams *gens[2] = { a2b, b2a };
  GArray *out = g_array_new (FALSE, TRUE, sizeof (CgTensorOut));
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;

  for (int d = 0; d < 2; d++) {
    if (!gens[d])
      continue;
    for (guint i = 0; i < gens[d]->n_specs; i++) {
      const CgParamSpec *spec = &gens[d]->specs[i];
      CgTensorOut t = { 0 };
      char *name = g_strconcat (b2a ? prefixes[d] : "", spec->name, NULL);
      g_ptr_array_add (names, name);
      t.name = name;
      t.dtype = CG_DTYPE_F32;
      t.n_dims = spec->n_dims;
      memcpy (t.shape, spec->shape, sizeof (gint64) * spec->n_dims);
      t.data = gens[d]->data + spec->offset;
      g_array_append_val (out, t);
    }
  }
  ok = cg_safetensors_write (path, (CgTensorOut *) out->data, out->len,
      metadata, error);
  g_array_free (out, TRUE);
  g_ptr_array_free (names, TRUE);
  return ok;
}

/* ---- accessors ---- */

CgModel *
cg_model_ref (CgModel * model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_ref_count_inc (&model->ref);
  return model;
}

void
cg_model_unref (CgModel * model)
{
  if (!model || !g_atomic_ref_count_dec (&model->ref))
    return;
  for (int d = 0; d < 2; d++)
    cg_generator_params_free (model->gen[d]);
  g_hash_table_unref (model->metadata);
  g_free (model->path);
  g_free (model);
}

const char *
cg_model_get_path (const CgModel * model)
{
  return model->path;
}

gboolean
cg_model_has_direction (const CgModel * model, CgDirection direction)
{
  return (unsigned) direction < 2 && model->gen[direction] != NULL;
}

gboolean
cg_model_get_config (const CgModel * model, CgDirection direction,
    CgGeneratorConfig * config)
{
  if (!cg_model_has_direction (model, direction))
    return FALSE;
  *config = model->gen[direction]->config;
  return TRUE;
}

const CgGeneratorParams *
cg_model_get_params (const CgModel * model, CgDirection direction)
{
  return cg_model_has_direction (model, direction) ? model->gen[direction] :
      NULL;
}

const char *
cg_model_get_metadata (const CgModel * model, const char *key)
{
  return g_hash_table_lookup (model->metadata, key);
}

const char *
cg_direction_to_string (CgDirection direction)
{
  switch (direction) {
    case CG_DIRECTION_A2B:
      return "a2b";
    case CG_DIRECTION_B2A:
      return "b2a";
  }
  return NULL;
}

const char *
cg_norm_to_string (CgNorm norm)
{
  switch (norm) {
    case CG_NORM_INSTANCE:
      return "instance";
    case CG_NORM_NONE:
      return "none";
  }
  return NULL;
}

gboolean
cg_norm_from_string (const char *str, CgNorm * norm)
{
  if (g_strcmp0 (str, "instance") == 0)
    *norm = CG_NORM_INSTANCE;
  else if (g_strcmp0 (str, "none") == 0)
    *norm = CG_NORM_NONE;
  else
    return FALSE;
  return TRUE;
}

gboolean
cg_direction_from_string (const char *str, CgDirection * direction)
{
  if (g_strcmp0 (str, "a2b") == 0)
    *direction = CG_DIRECTION_A2B;
  else if (g_strcmp0 (str, "b2a") == 0)
    *direction = CG_DIRECTION_B2A;
  else
    return FALSE;
  return TRUE;
}
