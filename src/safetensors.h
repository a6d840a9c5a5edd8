/* safetensors: the model file format, read and written.
 *
 * Layout (https://github.com/huggingface/safetensors):
 *   8 bytes   N, little-endian u64: the header's length
 *   N bytes   a JSON object (UTF-8), maybe padded with spaces:
 *               "NAME": {"dtype": "F32"|"F16"|"BF16",
 *                        "shape": [d0, d1, ...],
 *                        "data_offsets": [begin, end]}, ...
 *               "__metadata__": {"key": "string value", ...}  (optional)
 *   the rest  the data buffer; offsets are relative to its start, tensors
 *             are little-endian, C order, and tile the buffer exactly.
 *
 * The reader maps the file and validates everything before any tensor is
 * handed out: header length within the file and at most CG_ST_MAX_HEADER,
 * a JSON object, known dtypes, shapes without overflow, byte sizes equal to
 * dtype size times element count, ranges in order, non-overlapping and
 * covering the buffer with no gap. Messages name the file, the tensor and
 * the problem.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define CG_ST_MAX_HEADER (100u * 1024 * 1024)
#define CG_ST_MAX_DIMS 8

typedef enum
{
  CG_DTYPE_F32,
  CG_DTYPE_F16,
  CG_DTYPE_BF16,
} CgDtype;

typedef struct
{
  const char *name;
  CgDtype dtype;
  int n_dims;
  gint64 shape[CG_ST_MAX_DIMS];
  gint64 n_elements;
  const guint8 *data;           /* into the mapped file; not aligned */
  gsize n_bytes;
} CgTensorView;

typedef struct _CgSafetensors CgSafetensors;

CgSafetensors *cg_safetensors_open (const char *path, GError ** error);
/* The same checks on a file already in memory (the fuzzer parses from
 * here, with no file I/O). `name` heads the error messages; the views point
 * into `bytes`, which is kept alive until cg_safetensors_close(). */
CgSafetensors *cg_safetensors_open_bytes (const char *name, GBytes * bytes,
    GError ** error);
void cg_safetensors_close (CgSafetensors * st);

const char *cg_safetensors_path (const CgSafetensors * st);
guint cg_safetensors_n_tensors (const CgSafetensors * st);
/* In file order of data offsets. */
const CgTensorView *cg_safetensors_tensor (const CgSafetensors * st, guint i);
const CgTensorView *cg_safetensors_find (const CgSafetensors * st,
    const char *name);
/* __metadata__ as a string -> string table (never NULL; may be empty). */
GHashTable *cg_safetensors_metadata (const CgSafetensors * st);

/* Convert a tensor's elements to float32. */
void cg_tensor_view_to_f32 (const CgTensorView * t, float *dst);

const char *cg_dtype_name (CgDtype dtype);
gsize cg_dtype_size (CgDtype dtype);

/* One tensor to write: float32 data converted to `dtype` on the way out. */
typedef struct
{
  const char *name;
  CgDtype dtype;
  int n_dims;
  gint64 shape[CG_ST_MAX_DIMS];
  const float *data;
} CgTensorOut;

/* Write atomically (a temporary file beside `path`, then rename): a failure,
 * a full disk included, leaves any existing file as it was. `metadata` may
 * be NULL. */
gboolean cg_safetensors_write (const char *path, const CgTensorOut * tensors,
    guint n_tensors, GHashTable * metadata, GError ** error);
/* The part of the writer after the file is open: header and data to any
 * stream (tests point it at streams that fail, as a full disk does).
 * `name` heads the error messages. Nothing is written when the tensors or
 * the metadata are invalid. */
gboolean cg_safetensors_write_to_stream (GOutputStream * out,
    const char *name, const CgTensorOut * tensors, guint n_tensors,
    GHashTable * metadata, GCancellable * cancellable, GError ** error);

/* Float16 / bfloat16 conversions (round to nearest even). */
float cg_f16_to_f32 (guint16 h);
guint16 cg_f32_to_f16 (float f);
float cg_bf16_to_f32 (guint16 h);
guint16 cg_f32_to_bf16 (float f);

G_END_DECLS
