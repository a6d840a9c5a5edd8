#pragma once

#include <cyclegan/cg-error.h>

G_BEGIN_DECLS

/**
 * CgPixelFormat:
 *
 * Packed 8-bit formats, named by their bytes in memory (as GStreamer's
 * video/x-raw formats are). X bytes and alpha pass through untouched.
 */
typedef enum
{
  CG_PIXEL_RGB,
  CG_PIXEL_BGR,
  CG_PIXEL_RGBX,
  CG_PIXEL_BGRX,
  CG_PIXEL_XRGB,
  CG_PIXEL_XBGR,
  CG_PIXEL_RGBA,
  CG_PIXEL_BGRA,
  CG_PIXEL_ARGB,
  CG_PIXEL_ABGR,
  CG_PIXEL_N_FORMATS
} CgPixelFormat;

/* Bytes per pixel: 3 or 4. */
CG_API int cg_pixel_format_bpp (CgPixelFormat format);

/* "RGB", "BGRx", ... as GStreamer spells them; NULL for an invalid value. */
CG_API const char *cg_pixel_format_name (CgPixelFormat format);

/* Packed pixels -> three planes (R, G, B) of width*height floats in [-1, 1]:
 * v / 127.5 - 1. */
CG_API void cg_pixels_to_planar (CgPixelFormat format, const guint8 * src,
    gsize src_stride, int width, int height, float *dst);

/* Three planes (R, G, B) in [-1, 1] -> packed pixels, rounded to nearest and
 * clamped; the X/alpha byte of each pixel is copied from `alpha_src` (same
 * format and stride as dst, may equal dst, or NULL to write 255). */
CG_API void cg_pixels_from_planar (CgPixelFormat format, const float *src,
    int width, int height, guint8 * dst, gsize dst_stride,
    const guint8 * alpha_src);

G_END_DECLS
