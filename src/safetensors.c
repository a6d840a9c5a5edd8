/* safetensors: the model file format, read and written.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The layout is documented in safetensors.h. The reader treats every file
 * as hostile: it checks the header's length, checks the header's text as
 * strict JSON itself (see check_json_text() for why json-glib alone is not
 * enough), then every entry, then that the data ranges tile the buffer, and
 * only then hands out views into the mapping.
 */

#include "safetensors.h"
#include "atomic-file.h"

#include <cyclegan/cg-error.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Our files nest three levels (root, tensor entry, shape); anything much
 * deeper is hostile, and json-glib's recursive parser would overflow the
 * stack on a few hundred thousand '['. */
#define MAX_JSON_DEPTH 16

/* Longest name quoted in full in a message. */
#define MAX_QUOTED_NAME 200

struct _CgSafetensors
{
  char *path;
  GBytes *bytes;                /* the whole file; holds the mapping */
  CgTensorView *tensors;        /* sorted by data offset */
  guint n_tensors;
  GStringChunk *names;
  GHashTable *by_name;          /* name -> CgTensorView *, into tensors */
  GHashTable *metadata;         /* string -> string */
};

/* A tensor entry while the header is being checked. */
typedef struct
{
  CgTensorView view;
  guint64 begin;
  guint64 end;
} Entry;

static const struct
{
  const char *name;
  gsize size;
} dtypes[] = {
  [CG_DTYPE_F32] = {"F32", 4},
  [CG_DTYPE_F16] = {"F16", 2},
  [CG_DTYPE_BF16] = {"BF16", 2},
};

static void set_error (GError ** error, CgError code, const char *path,
    const char *format, ...) G_GNUC_PRINTF (4, 5);

static void
set_error (GError ** error, CgError code, const char *path,
    const char *format, ...)
{
  va_list args;
  char *msg;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, CG_ERROR, code, "%s: %s", path, msg);
  g_free (msg);
}

/* A name as it appears in messages: in double quotes, with quotes,
 * backslashes and control characters escaped (names come from hostile
 * files and end up in logs), and cut short if very long. */
static char *
quote_name (const char *s)
{
  GString *q = g_string_new ("\"");
  const char *p;

  for (p = s; *p; p++) {
    guchar c = *p;

    if (p - s >= MAX_QUOTED_NAME && (c & 0xc0) != 0x80) {
      g_string_append (q, "...");
      break;
    }
    if (c == '"' || c == '\\')
      g_string_append_printf (q, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      g_string_append_printf (q, "\\x%02x", c);
    else
      g_string_append_c (q, c);
  }
  g_string_append_c (q, '"');
  return g_string_free (q, FALSE);
}

static char *
format_shape (const gint64 * shape, int n_dims)
{
  GString *s = g_string_new ("[");
  int i;

  for (i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

const char *
cg_dtype_name (CgDtype dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtypes), NULL);
  return dtypes[dtype].name;
}

gsize
cg_dtype_size (CgDtype dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtypes), 0);
  return dtypes[dtype].size;
}

static gboolean
dtype_from_name (const char *name, CgDtype * dtype)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (dtypes); i++) {
    if (strcmp (name, dtypes[i].name) == 0) {
      *dtype = i;
      return TRUE;
    }
  }
  return FALSE;
}

/* Elements of a shape; FALSE on overflow. A zero dimension makes the count
 * zero whatever the others are, in any order. */
static gboolean
count_elements (const gint64 * shape, int n_dims, guint64 * n)
{
  guint64 count = 1;
  int i;

  for (i = 0; i < n_dims; i++) {
    if (shape[i] == 0) {
      *n = 0;
      return TRUE;
    }
  }
  for (i = 0; i < n_dims; i++) {
    if (!g_uint64_checked_mul (&count, count, (guint64) shape[i]))
      return FALSE;
  }
  *n = count;
  return TRUE;
}

/* ---------------------------------------------------------------------------
 * Float16 and bfloat16
 */

static inline guint32
f32_bits (float f)
{
  guint32 u;

  memcpy (&u, &f, sizeof u);
  return u;
}

static inline float
bits_f32 (guint32 u)
{
  float f;

  memcpy (&f, &u, sizeof f);
  return f;
}

float
cg_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;

  if (exp == 0x1f)              /* inf, or NaN with its payload kept */
    return bits_f32 (sign | 0x7f800000 | (mant << 13));
  if (exp == 0) {
    /* Zero or subnormal: mant * 2^-24, exact in float32. */
    float v = (float) mant * 0x1p-24f;
    return sign ? -v : v;
  }
  return bits_f32 (sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

guint16
cg_f32_to_f16 (float f)
{
  guint32 u = f32_bits (f);
  guint16 sign = (u >> 16) & 0x8000;
  guint32 a = u & 0x7fffffff;
  guint32 h, rest;

  if (a > 0x7f800000)           /* NaN: keep it a NaN, quiet, top payload */
    return sign | 0x7e00 | ((a >> 13) & 0x3ff);
  if (a >= 0x477ff000)          /* >= 65520 rounds to inf (65504 is odd) */
    return sign | 0x7c00;
  if (a >= 0x38800000) {        /* normal in float16: >= 2^-14 */
    a -= (127 - 15) << 23;
    h = a >> 13;
    rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
      h++;                      /* a carry into the exponent is right too */
    return sign | h;
  }
  if (a <= 0x33000000)          /* <= 2^-25: the tie goes to even, zero */
    return sign;
  {
    /* Subnormal: the value in units of 2^-24, rounded to nearest even.
     * With e the biased exponent, value = m * 2^(e - 150), so units =
     * m >> (126 - e); e is 102..112 here, the shift 14..24. */
    guint32 e = a >> 23;
    guint32 m = (a & 0x7fffff) | 0x800000;
    guint32 shift = 126 - e;
    guint32 half = 1u << (shift - 1);

    h = m >> shift;
    rest = m & ((1u << shift) - 1);
    if (rest > half || (rest == half && (h & 1)))
      h++;
    return sign | h;
  }
}

float
cg_bf16_to_f32 (guint16 h)
{
  return bits_f32 ((guint32) h << 16);
}

guint16
cg_f32_to_bf16 (float f)
{
  guint32 u = f32_bits (f);

  if ((u & 0x7fffffff) > 0x7f800000)    /* NaN: truncating could make inf */
    return (u >> 16) | 0x0040;
  u += 0x7fff + ((u >> 16) & 1);
  return u >> 16;
}

void
cg_tensor_view_to_f32 (const CgTensorView * t, float *dst)
{
  gsize i, n;
  const guint8 *p;

  g_return_if_fail (t != NULL);
  g_return_if_fail (t->n_elements == 0 || dst != NULL);

  n = t->n_elements;
  p = t->data;
  switch (t->dtype) {
    case CG_DTYPE_F32:
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
      if (n)
        memcpy (dst, p, n * 4);
#else
      for (i = 0; i < n; i++) {
        guint32 u;

        memcpy (&u, p + 4 * i, 4);
        dst[i] = bits_f32 (GUINT32_FROM_LE (u));
      }
#endif
      break;
    case CG_DTYPE_F16:
      for (i = 0; i < n; i++)
        dst[i] = cg_f16_to_f32 (p[2 * i] | (p[2 * i + 1] << 8));
      break;
    case CG_DTYPE_BF16:
      for (i = 0; i < n; i++)
        dst[i] = cg_bf16_to_f32 (p[2 * i] | (p[2 * i + 1] << 8));
      break;
    default:
      g_return_if_reached ();
  }
}

/* ---------------------------------------------------------------------------
 * Reading
 */

static inline gboolean
is_json_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static gboolean
is_hex (char c)
{
  return g_ascii_isxdigit (c);
}

/* Check a JSON string starting at s[*i] == '"'; on success *i is past the
 * closing quote. */
static const char *
check_json_string (const char *s, gsize len, gsize * i)
{
  gsize p = *i + 1;

  while (p < len) {
    guchar c = s[p];

    if (c == '"') {
      *i = p + 1;
      return NULL;
    }
    if (c < 0x20)
      return "control character in a string";
    if (c != '\\') {
      p++;
      continue;
    }
    if (p + 1 >= len)
      break;
    c = s[p + 1];
    if (c && strchr ("\"\\/bfnrt", c)) {
      p += 2;
      continue;
    }
    if (c != 'u')
      return "invalid escape in a string";
    if (p + 6 > len || !is_hex (s[p + 2]) || !is_hex (s[p + 3])
        || !is_hex (s[p + 4]) || !is_hex (s[p + 5]))
      return "invalid \\u escape in a string";
    {
      guint cp = g_ascii_xdigit_value (s[p + 2]) << 12
          | g_ascii_xdigit_value (s[p + 3]) << 8
          | g_ascii_xdigit_value (s[p + 4]) << 4
          | g_ascii_xdigit_value (s[p + 5]);

      /* json-glib ends a string at an escaped NUL: a name would silently
       * become another name. */
      if (cp == 0)
        return "\\u0000 in a string";
      if (cp >= 0xdc00 && cp <= 0xdfff)
        return "unpaired surrogate in a string";
      p += 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p + 6 > len || s[p] != '\\' || s[p + 1] != 'u'
            || !is_hex (s[p + 2]) || !is_hex (s[p + 3])
            || !is_hex (s[p + 4]) || !is_hex (s[p + 5]))
          return "unpaired surrogate in a string";
        cp = g_ascii_xdigit_value (s[p + 2]) << 12
            | g_ascii_xdigit_value (s[p + 3]) << 8
            | g_ascii_xdigit_value (s[p + 4]) << 4
            | g_ascii_xdigit_value (s[p + 5]);
        if (cp < 0xdc00 || cp > 0xdfff)
          return "unpaired surrogate in a string";
        p += 6;
      }
    }
  }
  return "unterminated string";
}

static const char *
check_json_number (const char *s, gsize len, gsize * i)
{
  gsize p = *i;
  gsize digits;
  gboolean integer = TRUE;

  if (p < len && s[p] == '-')
    p++;
  if (p >= len || !g_ascii_isdigit (s[p]))
    return "invalid number";
  digits = p;
  if (s[p] == '0')
    p++;
  else
    while (p < len && g_ascii_isdigit (s[p]))
      p++;
  digits = p - digits;
  if (p < len && s[p] == '.') {
    integer = FALSE;
    p++;
    if (p >= len || !g_ascii_isdigit (s[p]))
      return "invalid number";
    while (p < len && g_ascii_isdigit (s[p]))
      p++;
  }
  if (p < len && (s[p] == 'e' || s[p] == 'E')) {
    integer = FALSE;
    p++;
    if (p < len && (s[p] == '+' || s[p] == '-'))
      p++;
    if (p >= len || !g_ascii_isdigit (s[p]))
      return "invalid number";
    while (p < len && g_ascii_isdigit (s[p]))
      p++;
  }
  /* json-glib wraps integers beyond 64 bits; with at most 19 digits every
   * value we accept is below 2^64, and those above 2^63 come out negative,
   * which the entry checks refuse. */
  if (integer && digits > 19)
    return "integer too large";
  *i = p;
  return NULL;
}

/* json-glib 1.6 accepts far more than JSON (single quotes, comments, raw
 * newlines in strings, hexadecimal numbers), ignores whatever follows the
 * first value, turns "\u0000" into the end of a string and recurses once per
 * nesting level. So the header's text is first checked here against RFC
 * 8259, without recursion and with a depth limit; json-glib then only ever
 * sees strict, shallow JSON whose top level is an object. */
static gboolean
check_json_text (const char *path, const char *s, gsize len, GError ** error)
{
  enum
  { VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, AFTER_VALUE } state = VALUE;
  char stack[MAX_JSON_DEPTH];
  int depth = 0;
  gsize i = 0;
  const char *why = NULL;

  while (i < len && is_json_space (s[i]))
    i++;
  if (i >= len || s[i] != '{') {
    set_error (error, CG_ERROR_FORMAT, path,
        "the header is not a JSON object (it does not start with '{')");
    return FALSE;
  }

  for (;;) {
    while (i < len && is_json_space (s[i]))
      i++;
    if (state == AFTER_VALUE && depth == 0)
      break;
    if (i >= len) {
      why = "unexpected end of the header";
      goto fail;
    }

    switch (state) {
      case VALUE_OR_CLOSE:
        if (s[i] == ']') {
          i++;
          depth--;
          state = AFTER_VALUE;
          continue;
        }
        /* fall through */
      case VALUE:
        switch (s[i]) {
          case '{':
          case '[':
            if (depth == MAX_JSON_DEPTH) {
              why = "nested too deeply";
              goto fail;
            }
            stack[depth++] = s[i];
            state = s[i] == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
            i++;
            continue;
          case '"':
            why = check_json_string (s, len, &i);
            break;
          case 't':
          case 'f':
          case 'n':{
            const char *lit = s[i] == 't' ? "true" :
                s[i] == 'f' ? "false" : "null";
            gsize n = strlen (lit);

            if (len - i < n || memcmp (s + i, lit, n) != 0)
              why = "invalid literal";
            else
              i += n;
            break;
          }
          default:
            why = check_json_number (s, len, &i);
            break;
        }
        if (why)
          goto fail;
        state = AFTER_VALUE;
        break;
      case KEY_OR_CLOSE:
        if (s[i] == '}') {
          i++;
          depth--;
          state = AFTER_VALUE;
          continue;
        }
        /* fall through */
      case KEY:
        if (s[i] != '"') {
          why = "expected a member name";
          goto fail;
        }
        why = check_json_string (s, len, &i);
        if (why)
          goto fail;
        while (i < len && is_json_space (s[i]))
          i++;
        if (i >= len || s[i] != ':') {
          why = "expected ':'";
          goto fail;
        }
        i++;
        state = VALUE;
        break;
      case AFTER_VALUE:
        if (s[i] == ',') {
          i++;
          state = stack[depth - 1] == '{' ? KEY : VALUE;
        } else if (s[i] == (stack[depth - 1] == '{' ? '}' : ']')) {
          i++;
          depth--;
        } else {
          why = stack[depth - 1] == '{' ? "expected ',' or '}'" :
              "expected ',' or ']'";
          goto fail;
        }
        break;
    }
  }

  if (i < len) {
    set_error (error, CG_ERROR_FORMAT, path,
        "the header is not valid JSON: data after the object at byte %"
        G_GSIZE_FORMAT, i);
    return FALSE;
  }
  return TRUE;

fail:
  set_error (error, CG_ERROR_FORMAT, path,
      "the header is not valid JSON: %s at byte %" G_GSIZE_FORMAT, why, i);
  return FALSE;
}

/* json-glib keeps the last of duplicate members silently. It emits
 * ::object-member after adding each one, so an object whose size did not
 * grow has just had a member replaced. */
typedef struct
{
  GHashTable *counts;           /* JsonObject * -> members seen */
  char *duplicate;
} DupCheck;

static void
on_object_member (JsonParser * parser, JsonObject * object,
    const char *name, DupCheck * dc)
{
  guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (dc->counts, object)) + 1;

  g_hash_table_insert (dc->counts, object, GUINT_TO_POINTER (seen));
  if (json_object_get_size (object) < seen && !dc->duplicate)
    dc->duplicate = g_strdup (name);
}

static void
on_object_end (JsonParser * parser, JsonObject * object, DupCheck * dc)
{
  /* A replaced member's object is freed and its address may come back. */
  g_hash_table_remove (dc->counts, object);
}

static gboolean
get_int (JsonNode * node, gint64 * v)
{
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *v = json_node_get_int (node);
  return TRUE;
}

static gboolean
parse_metadata (CgSafetensors * st, JsonNode * node, GError ** error)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "__metadata__ is not an object");
    return FALSE;
  }
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value)) {
    if (!JSON_NODE_HOLDS_VALUE (value)
        || json_node_get_value_type (value) != G_TYPE_STRING) {
      g_autofree char *q = quote_name (key);

      set_error (error, CG_ERROR_FORMAT, st->path,
          "__metadata__ %s: the value is not a string", q);
      return FALSE;
    }
    g_hash_table_insert (st->metadata, g_strdup (key),
        g_strdup (json_node_get_string (value)));
  }
  return TRUE;
}

static gboolean
parse_entry (CgSafetensors * st, const char *name, JsonNode * node,
    gsize data_len, Entry * e, GError ** error)
{
  g_autofree char *q = quote_name (name);
  g_autofree char *shape_str = NULL;
  JsonObject *obj;
  JsonObjectIter iter;
  const char *member;
  JsonNode *dtype, *shape, *offsets, *value;
  JsonArray *arr;
  guint64 n_elements, n_bytes;
  gint64 v;
  guint i, n;

  if (*name == '\0') {
    set_error (error, CG_ERROR_FORMAT, st->path, "a tensor has an empty name");
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: the entry is not an object", q);
    return FALSE;
  }
  obj = json_node_get_object (node);
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &member, &value)) {
    if (strcmp (member, "dtype") != 0 && strcmp (member, "shape") != 0
        && strcmp (member, "data_offsets") != 0) {
      g_autofree char *qm = quote_name (member);

      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensor %s: unknown field %s", q, qm);
      return FALSE;
    }
  }

  dtype = json_object_get_member (obj, "dtype");
  if (!dtype) {
    set_error (error, CG_ERROR_FORMAT, st->path, "tensor %s: no dtype", q);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_VALUE (dtype)
      || json_node_get_value_type (dtype) != G_TYPE_STRING) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: dtype is not a string", q);
    return FALSE;
  }
  if (!dtype_from_name (json_node_get_string (dtype), &e->view.dtype)) {
    g_autofree char *qd = quote_name (json_node_get_string (dtype));

    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: unsupported dtype %s (F32, F16 and BF16 are)", q, qd);
    return FALSE;
  }

  shape = json_object_get_member (obj, "shape");
  if (!shape) {
    set_error (error, CG_ERROR_FORMAT, st->path, "tensor %s: no shape", q);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (shape)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: shape is not an array", q);
    return FALSE;
  }
  arr = json_node_get_array (shape);
  n = json_array_get_length (arr);
  if (n > CG_ST_MAX_DIMS) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: shape has %u dimensions, more than %d", q, n,
        CG_ST_MAX_DIMS);
    return FALSE;
  }
  for (i = 0; i < n; i++) {
    if (!get_int (json_array_get_element (arr, i), &v)) {
      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensor %s: shape[%u] is not an integer", q, i);
      return FALSE;
    }
    if (v < 0) {
      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensor %s: shape[%u] is negative (or too large)", q, i);
      return FALSE;
    }
    e->view.shape[i] = v;
  }
  e->view.n_dims = n;
  shape_str = format_shape (e->view.shape, n);
  if (!count_elements (e->view.shape, n, &n_elements)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: shape %s: the element count overflows", q, shape_str);
    return FALSE;
  }
  if (!g_uint64_checked_mul (&n_bytes, n_elements,
          dtypes[e->view.dtype].size)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: shape %s: the byte size overflows", q, shape_str);
    return FALSE;
  }

  offsets = json_object_get_member (obj, "data_offsets");
  if (!offsets) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: no data_offsets", q);
    return FALSE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (offsets)
      || json_array_get_length (json_node_get_array (offsets)) != 2) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: data_offsets is not an array of two integers", q);
    return FALSE;
  }
  arr = json_node_get_array (offsets);
  for (i = 0; i < 2; i++) {
    if (!get_int (json_array_get_element (arr, i), &v)) {
      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensor %s: data_offsets is not an array of two integers", q);
      return FALSE;
    }
    if (v < 0) {
      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensor %s: data_offsets[%u] is negative (or too large)", q, i);
      return FALSE;
    }
    if (i == 0)
      e->begin = v;
    else
      e->end = v;
  }
  if (e->begin > e->end) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: data_offsets [%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
        "] begin after they end", q, e->begin, e->end);
    return FALSE;
  }
  if (e->end > data_len) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: data_offsets [%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
        "] go beyond the end of the data buffer (%" G_GSIZE_FORMAT
        " bytes; truncated file?)", q, e->begin, e->end, data_len);
    return FALSE;
  }
  if (e->end - e->begin != n_bytes) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "tensor %s: shape %s needs %" G_GUINT64_FORMAT
        " bytes, data_offsets span %" G_GUINT64_FORMAT, q, shape_str,
        n_bytes, e->end - e->begin);
    return FALSE;
  }

  /* n_bytes <= data_len now, so the counts fit everywhere. */
  e->view.name = g_string_chunk_insert (st->names, name);
  e->view.n_elements = n_elements;
  e->view.n_bytes = n_bytes;
  return TRUE;
}

static int
compare_entries (const void *pa, const void *pb)
{
  const Entry *a = pa, *b = pb;

  if (a->begin != b->begin)
    return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end)
    return a->end < b->end ? -1 : 1;
  return strcmp (a->view.name, b->view.name);
}

/* Sorted by begin, the ranges must follow each other with no gap and no
 * overlap from 0 to the end of the buffer: this also refuses two names for
 * the same bytes. Empty ranges take no bytes and may sit at any boundary. */
static gboolean
check_tiling (CgSafetensors * st, Entry * entries, guint n, gsize data_len,
    GError ** error)
{
  guint64 expected = 0;
  const Entry *prev = NULL;
  guint i;

  if (n > 1)
    qsort (entries, n, sizeof (Entry), compare_entries);
  for (i = 0; i < n; i++) {
    const Entry *e = &entries[i];
    g_autofree char *q = quote_name (e->view.name);

    if (e->begin < expected) {
      g_autofree char *qp = quote_name (prev->view.name);

      set_error (error, CG_ERROR_FORMAT, st->path,
          "tensors %s [%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "] and %s [%"
          G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "] overlap", qp, prev->begin,
          prev->end, q, e->begin, e->end);
      return FALSE;
    }
    if (e->begin > expected) {
      set_error (error, CG_ERROR_FORMAT, st->path,
          "bytes [%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
          ") of the data buffer belong to no tensor (a gap before tensor %s)",
          expected, e->begin, q);
      return FALSE;
    }
    if (e->end > e->begin) {
      expected = e->end;
      prev = e;
    }
  }
  if (expected != data_len) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "bytes [%" G_GUINT64_FORMAT ",%" G_GSIZE_FORMAT
        ") of the data buffer belong to no tensor (a gap at the end)",
        expected, data_len);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_header (CgSafetensors * st, GError ** error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (st->bytes, &len);
  const char *header;
  const char *bad_utf8;
  guint64 header_len;
  gsize data_len;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) json_error = NULL;
  DupCheck dc = { NULL, NULL };
  JsonObject *root;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  Entry *entries = NULL;
  guint n = 0, i;
  gboolean ok = FALSE;

  if (len < 8) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the file is %" G_GSIZE_FORMAT " bytes, too short for the 8-byte "
        "header length", len);
    return FALSE;
  }
  memcpy (&header_len, data, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (header_len == 0) {
    set_error (error, CG_ERROR_FORMAT, st->path, "the header length is 0");
    return FALSE;
  }
  if (header_len > CG_ST_MAX_HEADER) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header length %" G_GUINT64_FORMAT " is more than the limit of %u "
        "bytes", header_len, CG_ST_MAX_HEADER);
    return FALSE;
  }
  if (header_len > len - 8) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header length %" G_GUINT64_FORMAT " goes beyond the end of the "
        "file (%" G_GSIZE_FORMAT " bytes)", header_len, len);
    return FALSE;
  }
  header = (const char *) data + 8;
  data_len = len - 8 - header_len;

  /* Also refuses NUL bytes. */
  if (!g_utf8_validate_len (header, header_len, &bad_utf8)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header is not valid UTF-8 (at byte %" G_GSIZE_FORMAT ")",
        (gsize) (bad_utf8 - header));
    return FALSE;
  }
  if (!check_json_text (st->path, header, header_len, error))
    return FALSE;

  parser = json_parser_new_immutable ();
  dc.counts = g_hash_table_new (NULL, NULL);
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member),
      &dc);
  g_signal_connect (parser, "object-end", G_CALLBACK (on_object_end), &dc);
  if (!json_parser_load_from_data (parser, header, header_len, &json_error)) {
    /* check_json_text() should have caught anything json-glib refuses. */
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header is not valid JSON: %s", json_error->message);
    goto out;
  }
  if (dc.duplicate) {
    g_autofree char *q = quote_name (dc.duplicate);

    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header has the key %s twice in one object", q);
    goto out;
  }
  node = json_parser_get_root (parser);
  if (!node || !JSON_NODE_HOLDS_OBJECT (node)) {
    set_error (error, CG_ERROR_FORMAT, st->path,
        "the header is not a JSON object");
    goto out;
  }
  root = json_node_get_object (node);

  entries = g_new0 (Entry, json_object_get_size (root));
  json_object_iter_init (&iter, root);
  while (json_object_iter_next (&iter, &name, &node)) {
    if (strcmp (name, "__metadata__") == 0) {
      if (!parse_metadata (st, node, error))
        goto out;
      continue;
    }
    if (!parse_entry (st, name, node, data_len, &entries[n], error))
      goto out;
    n++;
  }
  if (!check_tiling (st, entries, n, data_len, error))
    goto out;

  st->tensors = g_new (CgTensorView, n);
  st->n_tensors = n;
  for (i = 0; i < n; i++) {
    st->tensors[i] = entries[i].view;
    st->tensors[i].data = data + 8 + header_len + entries[i].begin;
    g_hash_table_insert (st->by_name, (gpointer) st->tensors[i].name,
        &st->tensors[i]);
  }
  ok = TRUE;

out:
  g_free (entries);
  g_free (dc.duplicate);
  /* The parser may still emit nothing more, but disconnect before dc goes. */
  g_signal_handlers_disconnect_by_data (parser, &dc);
  g_hash_table_destroy (dc.counts);
  return ok;
}

CgSafetensors *
cg_safetensors_open_bytes (const char *name, GBytes * bytes, GError ** error)
{
  CgSafetensors *st;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  st = g_new0 (CgSafetensors, 1);
  st->path = g_strdup (name);
  st->bytes = g_bytes_ref (bytes);
  st->names = g_string_chunk_new (1024);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  if (!parse_header (st, error)) {
    cg_safetensors_close (st);
    return NULL;
  }
  return st;
}

CgSafetensors *
cg_safetensors_open (const char *path, GError ** error)
{
  CgSafetensors *st;
  GMappedFile *mapped;
  GBytes *bytes;
  GError *map_error = NULL;
  struct stat sb;
  int fd, saved_errno;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0) {
    saved_errno = errno;
    set_error (error, CG_ERROR_IO, path, "cannot open: %s",
        g_strerror (saved_errno));
    return NULL;
  }
  if (fstat (fd, &sb) != 0) {
    saved_errno = errno;
    set_error (error, CG_ERROR_IO, path, "cannot stat: %s",
        g_strerror (saved_errno));
    close (fd);
    return NULL;
  }
  if (!S_ISREG (sb.st_mode)) {
    set_error (error, CG_ERROR_IO, path, "cannot read: %s",
        S_ISDIR (sb.st_mode) ? g_strerror (EISDIR) : "not a regular file");
    close (fd);
    return NULL;
  }

  /* The views point into the mapping: a file truncated by someone else
   * while it is loaded can still fault, as with any mapped file. */
  mapped = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  close (fd);
  if (!mapped) {
    set_error (error, CG_ERROR_IO, path, "cannot map: %s",
        map_error->message);
    g_error_free (map_error);
    return NULL;
  }
  bytes = g_mapped_file_get_bytes (mapped);
  g_mapped_file_unref (mapped);
  st = cg_safetensors_open_bytes (path, bytes, error);
  g_bytes_unref (bytes);
  return st;
}

void
cg_safetensors_close (CgSafetensors * st)
{
  if (!st)
    return;
  g_free (st->tensors);
  g_hash_table_destroy (st->by_name);
  g_hash_table_destroy (st->metadata);
  g_string_chunk_free (st->names);
  g_bytes_unref (st->bytes);
  g_free (st->path);
  g_free (st);
}

const char *
cg_safetensors_path (const CgSafetensors * st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->path;
}

guint
cg_safetensors_n_tensors (const CgSafetensors * st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->n_tensors;
}

const CgTensorView *
cg_safetensors_tensor (const CgSafetensors * st, guint i)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (i < st->n_tensors, NULL);
  return &st->tensors[i];
}

const CgTensorView *
cg_safetensors_find (const CgSafetensors * st, const char *name)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (st->by_name, name);
}

GHashTable *
cg_safetensors_metadata (const CgSafetensors * st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->metadata;
}

/* ---------------------------------------------------------------------------
 * Writing
 */

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* A JSON string. json-glib 1.6's generator leaves 0x1f unescaped, which
 * strict readers (ours included) refuse, so the header is built here. */
static void
append_json_string (GString * out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++) {
    guchar c = *s;

    switch (c) {
      case '"':
        g_string_append (out, "\\\"");
        break;
      case '\\':
        g_string_append (out, "\\\\");
        break;
      case '\n':
        g_string_append (out, "\\n");
        break;
      case '\t':
        g_string_append (out, "\\t");
        break;
      case '\r':
        g_string_append (out, "\\r");
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          g_string_append_printf (out, "\\u%04x", c);
        else
          g_string_append_c (out, c);
        break;
    }
  }
  g_string_append_c (out, '"');
}

/* Check what is to be written and build the header, padded with spaces so
 * that the data starts at a multiple of 8. Nothing is written on failure. */
static GBytes *
build_header (const char *path, const CgTensorOut * tensors, guint n_tensors,
    GHashTable * metadata, GError ** error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GString *json = g_string_new ("{");
  guint64 offset = 0;
  gsize len;
  guint i;
  int d;

  /* Sorted keys: the same table always gives the same bytes. */
  if (metadata && g_hash_table_size (metadata) > 0) {
    guint n_keys;
    g_autofree gpointer *keys =
        g_hash_table_get_keys_as_array (metadata, &n_keys);

    qsort (keys, n_keys, sizeof (gpointer), compare_strings);
    g_string_append (json, "\"__metadata__\":{");
    for (i = 0; i < n_keys; i++) {
      const char *value = g_hash_table_lookup (metadata, keys[i]);

      if (!g_utf8_validate (keys[i], -1, NULL) || !value
          || !g_utf8_validate (value, -1, NULL)) {
        set_error (error, CG_ERROR_FORMAT, path,
            "cannot write: a __metadata__ key or value is not UTF-8 text");
        goto fail;
      }
      if (i > 0)
        g_string_append_c (json, ',');
      append_json_string (json, keys[i]);
      g_string_append_c (json, ':');
      append_json_string (json, value);
    }
    g_string_append_c (json, '}');
  }

  for (i = 0; i < n_tensors; i++) {
    const CgTensorOut *t = &tensors[i];
    guint64 n_elements, n_bytes;

    if (!t->name || !*t->name || !g_utf8_validate (t->name, -1, NULL)
        || strcmp (t->name, "__metadata__") == 0) {
      set_error (error, CG_ERROR_FORMAT, path,
          "cannot write: tensor %u has no valid name", i);
      goto fail;
    }
    if (!g_hash_table_add (seen, (gpointer) t->name)) {
      g_autofree char *q = quote_name (t->name);

      set_error (error, CG_ERROR_FORMAT, path,
          "cannot write: tensor %s is given twice", q);
      goto fail;
    }
    if ((guint) t->dtype >= G_N_ELEMENTS (dtypes) || t->n_dims < 0
        || t->n_dims > CG_ST_MAX_DIMS) {
      g_autofree char *q = quote_name (t->name);

      set_error (error, CG_ERROR_FORMAT, path,
          "cannot write: tensor %s has an invalid dtype or rank", q);
      goto fail;
    }
    for (d = 0; d < t->n_dims; d++) {
      if (t->shape[d] < 0)
        break;
    }
    if (d < t->n_dims || !count_elements (t->shape, t->n_dims, &n_elements)
        || !g_uint64_checked_mul (&n_bytes, n_elements,
            dtypes[t->dtype].size)
        || !g_uint64_checked_add (&offset, offset, n_bytes)
        || offset > G_MAXINT64 || (n_elements > 0 && !t->data)) {
      g_autofree char *q = quote_name (t->name);

      set_error (error, CG_ERROR_FORMAT, path,
          "cannot write: tensor %s has an invalid shape or no data", q);
      goto fail;
    }

    if (json->len > 1)
      g_string_append_c (json, ',');
    append_json_string (json, t->name);
    g_string_append_printf (json, ":{\"dtype\":\"%s\",\"shape\":[",
        dtypes[t->dtype].name);
    for (d = 0; d < t->n_dims; d++)
      g_string_append_printf (json, "%s%" G_GINT64_FORMAT, d ? "," : "",
          t->shape[d]);
    g_string_append_printf (json, "],\"data_offsets\":[%" G_GUINT64_FORMAT
        ",%" G_GUINT64_FORMAT "]}", offset - n_bytes, offset);
  }
  g_string_append_c (json, '}');

  /* Spaces after the object, so the data starts at a multiple of 8. */
  len = json->len;
  while (json->len % 8)
    g_string_append_c (json, ' ');
  if (json->len > CG_ST_MAX_HEADER) {
    set_error (error, CG_ERROR_FORMAT, path,
        "cannot write: the header would be %" G_GSIZE_FORMAT " bytes, more "
        "than the limit of %u", len, CG_ST_MAX_HEADER);
    goto fail;
  }
  return g_string_free_to_bytes (json);

fail:
  g_string_free (json, TRUE);
  return NULL;
}

static gboolean
write_all (GOutputStream * out, const char *path, const void *buf, gsize len,
    GCancellable * cancellable, GError ** error)
{
  GError *io_error = NULL;

  if (!g_output_stream_write_all (out, buf, len, NULL, cancellable,
          &io_error)) {
    set_error (error, CG_ERROR_IO, path, "cannot write: %s",
        io_error->message);
    g_error_free (io_error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_stream (GOutputStream * out, const char *path, GBytes * header,
    const CgTensorOut * tensors, guint n_tensors, GCancellable * cancellable,
    GError ** error)
{
  /* Conversion goes through a bounce buffer of this many elements. */
  enum
  { CHUNK = 8192 };
  g_autofree guint8 *buf = g_malloc (CHUNK * 4);
  guint64 header_len = g_bytes_get_size (header);
  guint64 le = GUINT64_TO_LE (header_len);
  guint i;

  if (!write_all (out, path, &le, 8, cancellable, error)
      || !write_all (out, path, g_bytes_get_data (header, NULL), header_len,
          cancellable, error))
    return FALSE;

  for (i = 0; i < n_tensors; i++) {
    const CgTensorOut *t = &tensors[i];
    guint64 n = 1, done, k, j;
    int d;

    for (d = 0; d < t->n_dims; d++)
      n *= t->shape[d];         /* checked in build_header() */
    for (done = 0; done < n; done += k) {
      const float *src = t->data + done;
      gsize size = dtypes[t->dtype].size;

      k = MIN (n - done, CHUNK);
      for (j = 0; j < k; j++) {
        guint32 u;

        switch (t->dtype) {
          case CG_DTYPE_F32:
            u = GUINT32_TO_LE (f32_bits (src[j]));
            memcpy (buf + 4 * j, &u, 4);
            break;
          case CG_DTYPE_F16:
            u = cg_f32_to_f16 (src[j]);
            buf[2 * j] = u & 0xff;
            buf[2 * j + 1] = u >> 8;
            break;
          case CG_DTYPE_BF16:
            u = cg_f32_to_bf16 (src[j]);
            buf[2 * j] = u & 0xff;
            buf[2 * j + 1] = u >> 8;
            break;
        }
      }
      if (!write_all (out, path, buf, k * size, cancellable, error))
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
cg_safetensors_write_to_stream (GOutputStream * out, const char *name,
    const CgTensorOut * tensors, guint n_tensors, GHashTable * metadata,
    GCancellable * cancellable, GError ** error)
{
  g_autoptr (GBytes) header = NULL;

  g_return_val_if_fail (G_IS_OUTPUT_STREAM (out), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (n_tensors == 0 || tensors != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  header = build_header (name, tensors, n_tensors, metadata, error);
  if (!header)
    return FALSE;
  return write_stream (out, name, header, tensors, n_tensors, cancellable,
      error);
}

typedef struct
{
  const char *path;
  GBytes *header;
  const CgTensorOut *tensors;
  guint n_tensors;
} WriteJob;

static gboolean
write_job (GOutputStream * out, gpointer data, GError ** error)
{
  const WriteJob *j = data;
  return write_stream (out, j->path, j->header, j->tensors, j->n_tensors,
      NULL, error);
}

gboolean
cg_safetensors_write (const char *path, const CgTensorOut * tensors,
    guint n_tensors, GHashTable * metadata, GError ** error)
{
  g_autoptr (GBytes) header = NULL;
  WriteJob job;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (n_tensors == 0 || tensors != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Everything is checked before the file system is touched. */
  header = build_header (path, tensors, n_tensors, metadata, error);
  if (!header)
    return FALSE;
  job = (WriteJob) {
  path, header, tensors, n_tensors};
  return cg_atomic_write (path, write_job, &job, error);
}
