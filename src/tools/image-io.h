/* Still images for the tools: any format gdk-pixbuf reads, PNG out. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

G_BEGIN_DECLS

/* An RGB or RGBA pixbuf of the file, or NULL with an error naming it. */
GdkPixbuf *cg_image_load (const char *path, GError ** error);

/* Write a PNG atomically (cg_atomic_write): a failure, a full disk too,
 * leaves nothing behind. */
gboolean cg_image_save_png (GdkPixbuf * pixbuf, const char *path,
    GError ** error);

G_END_DECLS
