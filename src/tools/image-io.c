#include "image-io.h"
#include "atomic-file.h"

#include <cyclegan/cg-error.h>


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

static gboolean
write_png (GOutputStream * out, gpointer data, GError ** error)
{
  return gdk_pixbuf_save_to_stream (data, out, "png", NULL, error, NULL);
}

gboolean
cg_image_save_png (GdkPixbuf * pixbuf, const char *path, GError ** error)
{
  GError *local = NULL;

  if (cg_atomic_write (path, write_png, pixbuf, &local))
    return TRUE;
  /* Our own I/O errors name the file already; gdk-pixbuf's do not. */
  if (local->domain == CG_ERROR)
    g_propagate_error (error, local);
  else {
    g_set_error (error, local->domain, local->code, "%s: %s", path,
        local->message);
    g_error_free (local);
  }
  return FALSE;
}
