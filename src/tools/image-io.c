#include "image-io.h"

#include <glib/gstdio.h>
#include <gio/gio.h>

GdkPixbuf *
cg_image_load (const char *path, GError ** error)
{
  GError *local = NULL;
  GdkPixbuf *pb = gdk_pixbuf_new_from_file (path, &local);
  GdkPixbuf *oriented;

  if (!pb) {
    g_set_error (error, local->domain, local->code, "%s: %s", path,
        local->message);
    g_error_free (local);
    return NULL;
  }
  if (gdk_pixbuf_get_colorspace (pb) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_bits_per_sample (pb) != 8
      || gdk_pixbuf_get_n_channels (pb) < 3) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
        "%s: not an 8-bit RGB image", path);
    g_object_unref (pb);
    return NULL;
  }
  /* Camera JPEGs carry their rotation in EXIF. */
  oriented = gdk_pixbuf_apply_embedded_orientation (pb);
  g_object_unref (pb);
  return oriented;
}

gboolean
cg_image_save_png (GdkPixbuf * pixbuf, const char *path, GError ** error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  GError *local = NULL;

  /* g_file_replace writes a temporary file and renames it on close. */
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_REPLACE_DESTINATION,
      NULL, &local);
  if (out && gdk_pixbuf_save_to_stream (pixbuf, G_OUTPUT_STREAM (out), "png",
          NULL, &local, NULL)
      && g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &local))
    return TRUE;

  if (out) {
    /* Closing with a cancelled cancellable drops the temporary file. */
    g_autoptr (GCancellable) cancel = g_cancellable_new ();
    g_cancellable_cancel (cancel);
    g_output_stream_close (G_OUTPUT_STREAM (out), cancel, NULL);
  }
  g_set_error (error, local->domain, local->code, "%s: %s", path,
      local->message);
  g_error_free (local);
  return FALSE;
}
