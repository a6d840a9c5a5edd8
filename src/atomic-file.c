#include "atomic-file.h"

#include <cyclegan/cg-error.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A minimal output stream over a file descriptor (GUnixOutputStream would
 * bring in gio-unix-2.0). */
typedef struct
{
  GOutputStream parent;
  int fd;
} CgFdStream;

typedef struct
{
  GOutputStreamClass parent_class;
} CgFdStreamClass;

static GType cg_fd_stream_get_type (void);
G_DEFINE_TYPE (CgFdStream, cg_fd_stream, G_TYPE_OUTPUT_STREAM);

static gssize
cg_fd_stream_write (GOutputStream * stream, const void *buf, gsize count,
    GCancellable * cancellable, GError ** error)
{
  CgFdStream *self = (CgFdStream *) stream;
  gssize n;

  do
    n = write (self->fd, buf, MIN (count, (gsize) G_MAXSSIZE));
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int saved_errno = errno;

    g_set_error_literal (error, G_IO_ERROR,
        g_io_error_from_errno (saved_errno), g_strerror (saved_errno));
    return -1;
  }
  return n;
}

static void
cg_fd_stream_class_init (CgFdStreamClass * klass)
{
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = cg_fd_stream_write;
}

static void
cg_fd_stream_init (CgFdStream * self)
{
  self->fd = -1;
}

/* After the rename, the directory entry itself must reach the disk. Best
 * effort: the new file is in place whatever this says. */
static void
sync_directory (const char *dir)
{
  int fd = g_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

  if (fd >= 0) {
    fsync (fd);
    close (fd);
  }
}

gboolean
cg_atomic_write (const char *path, CgWriteFunc func, gpointer data,
    GError ** error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  /* Hidden, and short enough for NAME_MAX whatever the name. */
  g_autofree char *tmp_name = g_strdup_printf (".%.200s.tmp-XXXXXX", base);
  g_autofree char *tmp_path = g_build_filename (dir, tmp_name, NULL);
  const char *failed = NULL;    /* what failed, with errno */
  CgFdStream *stream;
  struct stat old;
  int fd, saved_errno = 0;
  gboolean ok;

  fd = g_mkstemp_full (tmp_path, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    saved_errno = errno;
    g_set_error (error, CG_ERROR, CG_ERROR_IO, "%s: cannot write: cannot "
        "create a temporary file in %s: %s", path, dir,
        g_strerror (saved_errno));
    return FALSE;
  }
  /* A replaced file keeps its permissions. */
  if (stat (path, &old) == 0 && S_ISREG (old.st_mode))
    fchmod (fd, old.st_mode & 07777);

  stream = g_object_new (cg_fd_stream_get_type (), NULL);
  stream->fd = fd;
  ok = func (G_OUTPUT_STREAM (stream), data, error);
  g_object_unref (stream);

  /* fsync and close report what delayed allocation only finds out then
   * (ENOSPC, EIO, EDQUOT). */
  if (ok && fsync (fd) != 0) {
    saved_errno = errno;
    failed = "";
  }
  if (close (fd) != 0 && ok && !failed) {
    saved_errno = errno;
    failed = "";
  }
  if (ok && !failed && g_rename (tmp_path, path) != 0) {
    saved_errno = errno;
    failed = "cannot rename the temporary file into place: ";
  }
  if (ok && failed) {
    g_set_error (error, CG_ERROR, CG_ERROR_IO, "%s: cannot write: %s%s",
        path, failed, g_strerror (saved_errno));
    ok = FALSE;
  }
  if (!ok) {
    g_unlink (tmp_path);
    return FALSE;
  }
  sync_directory (dir);
  return TRUE;
}
