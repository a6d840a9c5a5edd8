/* Packed 8-bit pixels <-> planar floats in [-1, 1].
 *
 * In: v / 127.5 - 1. Out: round ((x + 1) * 127.5) clamped to 0..255, i.e.
 * trunc (x * 127.5 + 128) for in-range values. Four-byte formats go through
 * ORC; the three-byte ones through a plain loop (ORC splits only powers of
 * two).
 */
#include <cyclegan/cg-pixels.h>
#include "pixels-private.h"
#include "cg-orc.h"

#include <string.h>

typedef struct
{
  const char *name;
  int bpp;
  int r, g, b;                  /* byte offsets in a pixel */
  int x;                        /* X/alpha byte offset, or -1 */
} FormatInfo;

static const FormatInfo formats[CG_PIXEL_N_FORMATS] = {
  [CG_PIXEL_RGB] = {"RGB", 3, 0, 1, 2, -1},
  [CG_PIXEL_BGR] = {"BGR", 3, 2, 1, 0, -1},
  [CG_PIXEL_RGBX] = {"RGBx", 4, 0, 1, 2, 3},
  [CG_PIXEL_BGRX] = {"BGRx", 4, 2, 1, 0, 3},
  [CG_PIXEL_XRGB] = {"xRGB", 4, 1, 2, 3, 0},
  [CG_PIXEL_XBGR] = {"xBGR", 4, 3, 2, 1, 0},
  [CG_PIXEL_RGBA] = {"RGBA", 4, 0, 1, 2, 3},
  [CG_PIXEL_BGRA] = {"BGRA", 4, 2, 1, 0, 3},
  [CG_PIXEL_ARGB] = {"ARGB", 4, 1, 2, 3, 0},
  [CG_PIXEL_ABGR] = {"ABGR", 4, 3, 2, 1, 0},
};

#define TO_SCALE (1.0f / 127.5f)
#define TO_OFFSET (-1.0f)
#define FROM_SCALE 127.5f
#define FROM_OFFSET 128.0f

int
cg_pixel_format_bpp (CgPixelFormat format)
{
  g_return_val_if_fail ((unsigned) format < CG_PIXEL_N_FORMATS, 0);
  return formats[format].bpp;
}

const char *
cg_pixel_format_name (CgPixelFormat format)
{
  if ((unsigned) format >= CG_PIXEL_N_FORMATS)
    return NULL;
  return formats[format].name;
}

static inline guint8
to_u8 (float x)
{
  float f = x * FROM_SCALE + FROM_OFFSET;
  if (!(f >= 0.0f))             /* NaN too */
    return 0;
  if (f >= 255.0f)
    return 255;
  return (guint8) f;
}

/* ORC works through a row in chunks so that the X/alpha plane it must
 * write or read somewhere fits a small buffer on the stack. */
#define CHUNK 256
/* ORC reads and writes the pixels as 32-bit words and needs them aligned
 * to 4 bytes (GStreamer's rows are); other rows take the plain loop. */
#define USE_ORC(p, q) (G_BYTE_ORDER == G_LITTLE_ENDIAN \
    && (((guintptr) (p) | (guintptr) (q)) & 3) == 0)

void
cg_pixels_to_planar (CgPixelFormat format, const guint8 * src,
    gsize src_stride, int width, int height, float *dst)
{
  cg_pixels_to_planes (format, src, src_stride, width, height, dst, width,
      (gsize) width * height);
}

void
cg_pixels_from_planar (CgPixelFormat format, const float *src, int width,
    int height, guint8 * dst, gsize dst_stride, const guint8 * alpha_src)
{
  cg_pixels_from_planes (format, src, width, (gsize) width * height, width,
      height, dst, dst_stride, alpha_src, dst_stride);
}

void
cg_pixels_to_planes (CgPixelFormat format, const guint8 * src,
    gsize src_stride, int width, int height, float *dst, int pitch,
    gsize plane)
{
  const FormatInfo *fi;
  float scratch[CHUNK];

  g_return_if_fail ((unsigned) format < CG_PIXEL_N_FORMATS);
  fi = &formats[format];

  for (int y = 0; y < height; y++) {
    const guint8 *row = src + y * src_stride;
    float *r = dst + (gsize) y * pitch;
    float *g = r + plane, *b = g + plane;

    if (fi->bpp == 4 && USE_ORC (row, row)) {
      for (int x0 = 0; x0 < width; x0 += CHUNK) {
        int n = MIN (CHUNK, width - x0);
        float *planes[4];
        planes[fi->r] = r + x0;
        planes[fi->g] = g + x0;
        planes[fi->b] = b + x0;
        planes[fi->x] = scratch;
        cg_orc_unpack_4b (planes[0], planes[1], planes[2], planes[3],
            (const guint32 *) (row + (gsize) x0 * 4), TO_SCALE, TO_OFFSET, n);
      }
      continue;
    }
    for (int x = 0; x < width; x++) {
      const guint8 *p = row + (gsize) x * fi->bpp;
      r[x] = p[fi->r] * TO_SCALE + TO_OFFSET;
      g[x] = p[fi->g] * TO_SCALE + TO_OFFSET;
      b[x] = p[fi->b] * TO_SCALE + TO_OFFSET;
    }
  }
}

void
cg_pixels_from_planes (CgPixelFormat format, const float *src, int pitch,
    gsize plane, int width, int height, guint8 * dst, gsize dst_stride,
    const guint8 * alpha_src, gsize alpha_stride)
{
  const FormatInfo *fi;
  guint8 bytes[3][CHUNK], opaque[CHUNK];
  guint32 merged[CHUNK];

  g_return_if_fail ((unsigned) format < CG_PIXEL_N_FORMATS);
  fi = &formats[format];
  memset (opaque, 255, sizeof opaque);

  for (int y = 0; y < height; y++) {
    guint8 *row = dst + y * dst_stride;
    const guint8 *arow = alpha_src ? alpha_src + y * alpha_stride : NULL;
    const float *r = src + (gsize) y * pitch;
    const float *g = r + plane, *b = g + plane;

    if (fi->bpp == 4 && USE_ORC (row, arow)) {
      for (int x0 = 0; x0 < width; x0 += CHUNK) {
        int n = MIN (CHUNK, width - x0);
        guint32 *out = (guint32 *) (row + (gsize) x0 * 4);
        const guint8 *by[4];
        cg_orc_quantize_u8 (bytes[0], r + x0, FROM_SCALE, FROM_OFFSET, n);
        cg_orc_quantize_u8 (bytes[1], g + x0, FROM_SCALE, FROM_OFFSET, n);
        cg_orc_quantize_u8 (bytes[2], b + x0, FROM_SCALE, FROM_OFFSET, n);
        by[fi->r] = bytes[0];
        by[fi->g] = bytes[1];
        by[fi->b] = bytes[2];
        by[fi->x] = opaque;     /* 255 where no alpha is kept */
        if (arow) {
          guint32 keep = 0xffu << (8 * fi->x);
          cg_orc_merge_4b (merged, by[0], by[1], by[2], by[3], n);
          cg_orc_keep_bytes (out, merged,
              (const guint32 *) (arow + (gsize) x0 * 4), (int) keep,
              (int) ~keep, n);
        } else {
          cg_orc_merge_4b (out, by[0], by[1], by[2], by[3], n);
        }
      }
      continue;
    }
    for (int x = 0; x < width; x++) {
      guint8 *p = row + (gsize) x * fi->bpp;
      guint8 a = fi->x < 0 ? 0 : arow ? arow[(gsize) x * 4 + fi->x] : 255;
      p[fi->r] = to_u8 (r[x]);
      p[fi->g] = to_u8 (g[x]);
      p[fi->b] = to_u8 (b[x]);
      if (fi->x >= 0)
        p[fi->x] = a;
    }
  }
}
