/* Writing a file so that it is either there whole or not changed at all:
 * a temporary file beside the target, written, fsynced, closed, and only
 * then renamed over it. A failure, a full disk included, leaves any old
 * file as it was and no partial file behind.
 *
 * (GIO's g_file_replace() is not enough: when the target does not exist
 * yet it writes it in place, so a failed write leaves a partial file under
 * the final name.) */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Writes the contents to `out`; FALSE with `error` set on failure. */
typedef gboolean (*CgWriteFunc) (GOutputStream * out, gpointer data,
    GError ** error);

/* Errors from the file system are CG_ERROR_IO, "PATH: cannot write: ...";
 * errors from `func` are passed on as they are. */
gboolean cg_atomic_write (const char *path, CgWriteFunc func, gpointer data,
    GError ** error);

G_END_DECLS
