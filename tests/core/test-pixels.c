/* Pixel conversions, every format, against a plain per-byte reading of
 * what each format means. */
#include <cyclegan/cg-pixels.h>

#include <math.h>
#include <string.h>

typedef struct
{
  CgPixelFormat format;
  const char *name;
  const char *order;            /* the bytes in memory; 'x' or 'a' kept */
} Fmt;

static const Fmt fmts[] = {
  {CG_PIXEL_RGB, "RGB", "rgb"},
  {CG_PIXEL_BGR, "BGR", "bgr"},
  {CG_PIXEL_RGBX, "RGBx", "rgbx"},
  {CG_PIXEL_BGRX, "BGRx", "bgrx"},
  {CG_PIXEL_XRGB, "xRGB", "xrgb"},
  {CG_PIXEL_XBGR, "xBGR", "xbgr"},
  {CG_PIXEL_RGBA, "RGBA", "rgba"},
  {CG_PIXEL_BGRA, "BGRA", "bgra"},
  {CG_PIXEL_ARGB, "ARGB", "argb"},
  {CG_PIXEL_ABGR, "ABGR", "abgr"},
};

static int
channel_of (char c)
{
  return c == 'r' ? 0 : c == 'g' ? 1 : c == 'b' ? 2 : -1;
}

/* Width 300 spans more than one of the ORC path's 256-pixel chunks. */
#define W 300
#define H 3

static void
check_format (const Fmt * f, gsize stride)
{
  int bpp = (int) strlen (f->order);
  guint8 *src = g_malloc (stride * H), *out = g_malloc (stride * H);
  float *planes = g_new (float, 3 * W * H);

  g_assert_cmpstr (cg_pixel_format_name (f->format), ==, f->name);
  g_assert_cmpint (cg_pixel_format_bpp (f->format), ==, bpp);
  for (gsize i = 0; i < stride * H; i++)
    src[i] = (guint8) (i * 37 + i / 7);

  cg_pixels_to_planar (f->format, src, stride, W, H, planes);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int b = 0; b < bpp; b++) {
        int ch = channel_of (f->order[b]);
        guint8 v = src[y * stride + x * bpp + b];
        if (ch < 0)
          continue;
        g_assert_cmpfloat (fabsf (planes[(ch * H + y) * W + x] -
                (v / 127.5f - 1.0f)), <=, 1e-6);
      }

  /* back: exact round trip, X/alpha from alpha_src */
  memset (out, 0xAB, stride * H);
  cg_pixels_from_planar (f->format, planes, W, H, out, stride, src);
  for (int y = 0; y < H; y++)
    g_assert_cmpmem (out + y * stride, W * bpp, src + y * stride, W * bpp);

  /* without alpha_src, X/alpha is opaque */
  cg_pixels_from_planar (f->format, planes, W, H, out, stride, NULL);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int b = 0; b < bpp; b++)
        if (channel_of (f->order[b]) < 0)
          g_assert_cmpint (out[y * stride + x * bpp + b], ==, 255);

  g_free (src);
  g_free (out);
  g_free (planes);
}

/* Rows aligned to 4 bytes take the ORC path for 4-byte formats; odd
 * strides the plain loop. Both must agree with the format's meaning. */
static void
test_format (gconstpointer data)
{
  const Fmt *f = data;
  int bpp = (int) strlen (f->order);

  check_format (f, W * bpp + 8);
  check_format (f, W * bpp + 5);
}

/* Rounding to nearest, clamping, and NaN: the same on the ORC path
 * (4-byte formats) and the plain one (3-byte). */
static void
test_rounding (void)
{
  static const struct
  {
    float x;
    int want;
  } cases[] = {
    {-1.0f, 0}, {1.0f, 255}, {0.0f, 128}, {-2.0f, 0}, {3.0f, 255},
    {-1.0f + 0.4f / 127.5f, 0}, {-1.0f + 0.6f / 127.5f, 1},
    {100.0f / 127.5f - 1.0f, 100}, {(100.4f) / 127.5f - 1.0f, 100},
    {(100.6f) / 127.5f - 1.0f, 101}, {NAN, 0}, {INFINITY, 255},
    {-INFINITY, 0},
  };
  int n = G_N_ELEMENTS (cases);
  float *planes = g_new0 (float, 3 * n);
  guint8 rgb[3 * G_N_ELEMENTS (cases)], rgbx[4 * G_N_ELEMENTS (cases)];

  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      planes[ch * n + i] = cases[i].x;
  cg_pixels_from_planar (CG_PIXEL_RGB, planes, n, 1, rgb, sizeof rgb, NULL);
  cg_pixels_from_planar (CG_PIXEL_RGBX, planes, n, 1, rgbx, sizeof rgbx,
      NULL);
  for (int i = 0; i < n; i++) {
    g_test_message ("x = %g: RGB %d, RGBx %d, want %d", cases[i].x,
        rgb[3 * i], rgbx[4 * i], cases[i].want);
    g_assert_cmpint (rgb[3 * i], ==, cases[i].want);
    /* ORC's float-to-int of NaN differs between its backends; the network
     * cannot produce NaN from finite weights and pixels. */
    if (!isnan (cases[i].x))
      g_assert_cmpint (rgbx[4 * i], ==, cases[i].want);
  }
  g_free (planes);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (fmts); i++) {
    char *p = g_strdup_printf ("/pixels/%s", fmts[i].name);
    g_test_add_data_func (p, &fmts[i], test_format);
    g_free (p);
  }
  g_test_add_func ("/pixels/rounding", test_rounding);
  return g_test_run ();
}
