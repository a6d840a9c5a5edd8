#pragma once

#include <cyclegan/cg-pixels.h>

G_BEGIN_DECLS

/* As cg_pixels_to_planar / cg_pixels_from_planar, with the planes' row
 * pitch and plane size given (in floats): the generator converts straight
 * into and out of its padded planes. */
void cg_pixels_to_planes (CgPixelFormat format, const guint8 * src,
    gsize src_stride, int width, int height, float *dst, int pitch,
    gsize plane);
void cg_pixels_from_planes (CgPixelFormat format, const float *src,
    int pitch, gsize plane, int width, int height, guint8 * dst,
    gsize dst_stride, const guint8 * alpha_src, gsize alpha_stride);

G_END_DECLS
