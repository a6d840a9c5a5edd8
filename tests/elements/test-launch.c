/* The acceptance check, as a test: a pipeline as gst-launch-1.0
 * would run it (videotestsrc ! FORMAT ! tee: one branch as it is, one
 * through cycleganfilter) gives, in every format and both directions, the
 * frame cyclegan-translate makes of the same picture, within one 8-bit
 * level. Raw RGB files carry the frames; the input is written as PNG for
 * the tool with gdk-pixbuf. */
#include <gst/gst.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>

#include <stdlib.h>
#include <string.h>

#define W 53
#define H 37
/* GStreamer's RGB rows are padded to 4 bytes */
#define RGB_STRIDE GST_ROUND_UP_4 (W * 3)

static char *tmp_dir;

static const char *const formats[] = {
  "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB",
  "ABGR",
};

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static void
run_pipeline (const char *desc)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstBus *bus;
  GstMessage *msg;

  g_assert_no_error (error);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err;
    gst_message_parse_error (msg, &err, NULL);
    g_error ("%s: %s", desc, err->message);
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

static guint8 *
read_rgb (const char *path)
{
  char *data;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, ==, RGB_STRIDE * H);
  return (guint8 *) data;
}

static void
check (const char *format, const char *direction)
{
  g_autofree char *in_rgb = tmp_path ("in.rgb"), *out_rgb =
      tmp_path ("out.rgb");
  g_autofree char *in_png = tmp_path ("in.png"), *ref_png =
      tmp_path ("ref.png");
  g_autofree char *desc = NULL, *err = NULL;
  GdkPixbuf *pb;
  guint8 *in, *out;
  const guint8 *ref;
  int status, worst = 0, stride;
  GError *error = NULL;
  const char *argv[] = { g_getenv ("CG_TRANSLATE"), "--model", MODEL,
    "--direction", direction, in_png, ref_png, NULL
  };

  desc = g_strdup_printf ("videotestsrc num-buffers=1 pattern=smpte ! "
      "video/x-raw,format=%s,width=%d,height=%d ! tee name=t "
      "t. ! queue ! videoconvert ! video/x-raw,format=RGB ! "
      "filesink location=%s "
      "t. ! queue ! cycleganfilter model=%s direction=%s ! videoconvert ! "
      "video/x-raw,format=RGB ! filesink location=%s", format, W, H, in_rgb,
      MODEL, direction, out_rgb);
  run_pipeline (desc);

  in = read_rgb (in_rgb);
  out = read_rgb (out_rgb);
  pb = gdk_pixbuf_new_from_data (in, GDK_COLORSPACE_RGB, FALSE, 8, W, H,
      RGB_STRIDE, NULL, NULL);
  gdk_pixbuf_save (pb, in_png, "png", &error, NULL);
  g_assert_no_error (error);
  g_object_unref (pb);

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL,
          G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status,
          &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("cyclegan-translate failed: %s", err);

  pb = gdk_pixbuf_new_from_file (ref_png, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_n_channels (pb), ==, 3);
  ref = gdk_pixbuf_get_pixels (pb);
  stride = gdk_pixbuf_get_rowstride (pb);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W * 3; x++)
      worst = MAX (worst, abs (out[y * RGB_STRIDE + x] - ref[y * stride +
                  x]));
  g_test_message ("%s %s: worst difference %d level(s)", format, direction,
      worst);
  g_assert_cmpint (worst, <=, 1);
  g_object_unref (pb);
  g_free (in);
  g_free (out);
}

static void
test_format (gconstpointer data)
{
  check (data, "a2b");
  check (data, "b2a");
}

int
main (int argc, char **argv)
{
  int ret;

  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (g_getenv ("CG_TRANSLATE"));
  tmp_dir = g_dir_make_tmp ("cg-launch-XXXXXX", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    char *name = g_strdup_printf ("/launch/matches-translate/%s",
        formats[i]);
    g_test_add_data_func (name, formats[i], test_format);
    g_free (name);
  }
  ret = g_test_run ();

  {
    const char *names[] = { "in.rgb", "out.rgb", "in.png", "ref.png" };
    for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
      g_autofree char *p = tmp_path (names[i]);
      g_unlink (p);
    }
    g_rmdir (tmp_dir);
  }
  return ret;
}
