/* GStreamer unit tests for the cycleganfilter element
 * Copyright (C) 2025 The gst-cyclegan authors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * This library is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Lesser General Public License for more details.
 *
 * You should have received a copy of the GNU Lesser General Public
 * License along with this library; if not, write to the Free Software
 * Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301 USA
 */

#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/base/gstbasetransform.h>
#include <gst/video/video.h>

#include <cyclegan/cyclegan.h>

#include "test-model.h"

/* Written once by main () before the tests run (tests run in forked
 * children), removed after. ngf 4, one residual block: a frame takes a
 * few milliseconds. */
static gchar *tmp_dir;
static gchar *model_both;       /* G_A and G_B, seed 1 */
static gchar *model_both2;      /* G_A and G_B, seed 2 */
static gchar *model_single;     /* one generator: a2b only */
static gchar *model_bad;        /* not a safetensors file */
static gchar *model_missing;    /* does not exist */

static const gchar *all_formats[] = {
  "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR"
};

static CgPixelFormat
pixel_format (GstVideoFormat format)
{
  const gchar *name = gst_video_format_to_string (format);
  gint i;

  for (i = 0; i < CG_PIXEL_N_FORMATS; i++)
    if (g_strcmp0 (cg_pixel_format_name ((CgPixelFormat) i), name) == 0)
      return (CgPixelFormat) i;
  g_assert_not_reached ();
  return CG_PIXEL_N_FORMATS;
}

/* A frame of random bytes (padding and alpha included) and a copy of
 * them. */
typedef struct
{
  GstVideoInfo info;
  GstBuffer *buffer;
  guint8 *bytes;
} Frame;

static void
frame_init (Frame * f, const gchar * format, gint width, gint height,
    guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  GstMapInfo map;
  gsize i;

  gst_video_info_set_format (&f->info, gst_video_format_from_string (format),
      width, height);
  f->buffer = gst_buffer_new_allocate (NULL, f->info.size, NULL);
  fail_unless (gst_buffer_map (f->buffer, &map, GST_MAP_WRITE));
  for (i = 0; i < map.size; i++)
    map.data[i] = g_rand_int_range (rand, 0, 256);
  f->bytes = g_memdup2 (map.data, map.size);
  gst_buffer_unmap (f->buffer, &map);
  g_rand_free (rand);
}

static void
frame_clear (Frame * f)
{
  gst_clear_buffer (&f->buffer);
  g_clear_pointer (&f->bytes, g_free);
}

/* A pushable copy of the frame. */
static GstBuffer *
frame_buffer (const Frame * f)
{
  return gst_buffer_new_memdup (f->bytes, f->info.size);
}

/* What libcyclegan makes of the frame: the expected output, byte for
 * byte (padding bytes stay as in the input). */
static guint8 *
frame_translate (const Frame * f, const gchar * path, CgDirection direction)
{
  CgModel *model;
  CgGenerator *gen;
  GError *err = NULL;
  guint8 *out = g_memdup2 (f->bytes, f->info.size);

  model = cg_model_load (path, &err);
  fail_unless (model != NULL, "%s", err ? err->message : "");
  gen = cg_generator_new (model, direction, &err);
  fail_unless (gen != NULL, "%s", err ? err->message : "");
  cg_generator_set_threads (gen, 1);
  fail_unless (cg_generator_run_pixels (gen,
          pixel_format (GST_VIDEO_INFO_FORMAT (&f->info)), f->bytes,
          GST_VIDEO_INFO_PLANE_STRIDE (&f->info, 0), out,
          GST_VIDEO_INFO_PLANE_STRIDE (&f->info, 0),
          GST_VIDEO_INFO_WIDTH (&f->info), GST_VIDEO_INFO_HEIGHT (&f->info),
          &err), "%s", err ? err->message : "");
  cg_generator_free (gen);
  cg_model_unref (model);
  return out;
}

static gboolean
buffer_equals (GstBuffer * buf, const guint8 * expected, gsize size)
{
  return gst_buffer_get_size (buf) == size
      && gst_buffer_memcmp (buf, 0, expected, size) == 0;
}

static void
assert_buffer_equals (GstBuffer * buf, const guint8 * expected, gsize size)
{
  GstMapInfo map;
  gsize i;

  fail_unless_equals_int (gst_buffer_get_size (buf), size);
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  for (i = 0; i < size; i++)
    if (map.data[i] != expected[i])
      break;
  gst_buffer_unmap (buf, &map);
  fail_unless (i == size, "byte %" G_GSIZE_FORMAT " differs", i);
}

/* The element with its model, direction and one thread (as the references
 * above), owned by the caller. */
static GstElement *
filter_new (const gchar * model, const gchar * direction)
{
  GstElement *filter = gst_element_factory_make ("cycleganfilter", NULL);

  fail_unless (filter != NULL, "cycleganfilter not found");
  gst_object_ref_sink (filter);
  gst_util_set_object_arg (G_OBJECT (filter), "direction", direction);
  g_object_set (filter, "model", model, "threads", 1, NULL);
  return filter;
}

/* A harness around the element (which it takes over), playing, with a bus
 * of its own. */
static GstHarness *
harness_new (GstElement * filter, GstBus ** bus, const gchar * format,
    gint width, gint height)
{
  GstHarness *h;
  gchar *caps;

  if (bus != NULL) {
    *bus = gst_bus_new ();
    gst_element_set_bus (filter, *bus);
  }
  h = gst_harness_new_with_element (filter, "sink", "src");
  gst_object_unref (filter);

  caps = g_strdup_printf ("video/x-raw, format=%s, width=%d, height=%d, "
      "framerate=30/1", format, width, height);
  gst_harness_set_src_caps_str (h, caps);
  g_free (caps);
  return h;
}

/* Pushes the frame and returns the element's output. */
static GstBuffer *
harness_run (GstHarness * h, const Frame * f)
{
  fail_unless_equals_int (gst_harness_push (h, frame_buffer (f)), GST_FLOW_OK);
  return gst_harness_pull (h);
}

static void
harness_check (GstHarness * h, const Frame * f, const guint8 * expected)
{
  GstBuffer *out = harness_run (h, f);

  assert_buffer_equals (out, expected, f->info.size);
  gst_buffer_unref (out);
}

static GstMessage *
bus_wait (GstBus * bus, GstMessageType type)
{
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, type);

  fail_unless (msg != NULL, "no %s message", gst_message_type_get_name (type));
  return msg;
}

static void
assert_message (GstMessage * msg, GQuark domain, gint code,
    const gchar * needle)
{
  GError *err = NULL;
  gchar *debug = NULL;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error (msg, &err, &debug);
  else
    gst_message_parse_warning (msg, &err, &debug);
  GST_INFO ("message: %s (%s)", err->message, GST_STR_NULL (debug));
  fail_unless (g_error_matches (err, domain, code), "unexpected error %s %d",
      g_quark_to_string (err->domain), err->code);
  fail_unless (strstr (err->message, needle) != NULL,
      "message \"%s\" does not name \"%s\"", err->message, needle);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
}

GST_START_TEST (test_qos_enabled)
{
  GstElement *filter = filter_new (model_both, "a2b");

  fail_unless (gst_base_transform_is_qos_enabled (GST_BASE_TRANSFORM (filter)));
  gst_object_unref (filter);
}

GST_END_TEST;

GST_START_TEST (test_matches_library)
{
  GstHarness *h = harness_new (filter_new (model_both, "a2b"), NULL, "RGB",
      64, 48);
  guint32 seed;

  for (seed = 1; seed <= 3; seed++) {
    Frame f;
    guint8 *expected;

    frame_init (&f, "RGB", 64, 48, seed);
    expected = frame_translate (&f, model_both, CG_DIRECTION_A2B);
    fail_if (memcmp (expected, f.bytes, f.info.size) == 0);
    harness_check (h, &f, expected);
    g_free (expected);
    frame_clear (&f);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Every format, at an odd size; the X and alpha bytes come out as they
 * went in. */
GST_START_TEST (test_formats)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    GstHarness *h = harness_new (filter_new (model_both, "b2a"), NULL,
        all_formats[i], 37, 29);
    Frame f;
    guint8 *expected;
    GstBuffer *out;
    GstMapInfo map;
    gint x, y, alpha = -1, changed = 0;

    GST_INFO ("format %s", all_formats[i]);
    frame_init (&f, all_formats[i], 37, 29, 100 + i);
    expected = frame_translate (&f, model_both, CG_DIRECTION_B2A);
    out = harness_run (h, &f);
    assert_buffer_equals (out, expected, f.info.size);

    if (GST_VIDEO_INFO_HAS_ALPHA (&f.info))
      alpha = GST_VIDEO_INFO_COMP_POFFSET (&f.info, GST_VIDEO_COMP_A);
    else if (GST_VIDEO_INFO_COMP_PSTRIDE (&f.info, 0) == 4)
      /* the byte no color component uses */
      alpha = 6 - GST_VIDEO_INFO_COMP_POFFSET (&f.info, 0)
          - GST_VIDEO_INFO_COMP_POFFSET (&f.info, 1)
          - GST_VIDEO_INFO_COMP_POFFSET (&f.info, 2);

    fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
    for (y = 0; y < 29; y++) {
      gsize row = y * GST_VIDEO_INFO_PLANE_STRIDE (&f.info, 0);
      gint pstride = GST_VIDEO_INFO_COMP_PSTRIDE (&f.info, 0);

      for (x = 0; x < 37; x++) {
        gsize p = row + x * pstride;
        gint b;

        for (b = 0; b < pstride; b++) {
          if (b == alpha) {
            fail_unless_equals_int (map.data[p + b], f.bytes[p + b]);
          } else {
            changed += map.data[p + b] != f.bytes[p + b];
          }
        }
      }
    }
    gst_buffer_unmap (out, &map);
    /* the color bytes did go through the network */
    fail_unless (changed > 37 * 29, "only %d color bytes changed", changed);

    gst_buffer_unref (out);
    g_free (expected);
    frame_clear (&f);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_odd_size)
{
  const gchar *formats[] = { "RGB", "xBGR" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstHarness *h = harness_new (filter_new (model_both, "a2b"), NULL,
        formats[i], 333, 251);
    Frame f;
    guint8 *expected;

    frame_init (&f, formats[i], 333, 251, 7);
    expected = frame_translate (&f, model_both, CG_DIRECTION_A2B);
    harness_check (h, &f, expected);
    g_free (expected);
    frame_clear (&f);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_direction_switch)
{
  GstElement *filter = filter_new (model_both, "a2b");
  GstHarness *h;
  Frame f;
  guint8 *a2b, *b2a;

  gst_object_ref (filter);
  h = harness_new (filter, NULL, "BGRx", 40, 32);
  frame_init (&f, "BGRx", 40, 32, 11);
  a2b = frame_translate (&f, model_both, CG_DIRECTION_A2B);
  b2a = frame_translate (&f, model_both, CG_DIRECTION_B2A);
  fail_if (memcmp (a2b, b2a, f.info.size) == 0);

  harness_check (h, &f, a2b);
  gst_util_set_object_arg (G_OBJECT (filter), "direction", "b2a");
  harness_check (h, &f, b2a);
  harness_check (h, &f, b2a);
  gst_util_set_object_arg (G_OBJECT (filter), "direction", "a2b");
  harness_check (h, &f, a2b);

  g_free (a2b);
  g_free (b2a);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_object_unref (filter);
}

GST_END_TEST;

GST_START_TEST (test_direction_refused_playing)
{
  GstElement *filter = filter_new (model_single, "a2b");
  GstHarness *h;
  GstBus *bus;
  Frame f;
  guint8 *a2b;
  gint direction;

  gst_object_ref (filter);
  h = harness_new (filter, &bus, "RGBA", 24, 20);
  frame_init (&f, "RGBA", 24, 20, 12);
  a2b = frame_translate (&f, model_single, CG_DIRECTION_A2B);
  harness_check (h, &f, a2b);

  gst_util_set_object_arg (G_OBJECT (filter), "direction", "b2a");
  assert_message (bus_wait (bus, GST_MESSAGE_WARNING), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, model_single);
  g_object_get (filter, "direction", &direction, NULL);
  fail_unless_equals_int (direction, CG_DIRECTION_A2B);
  harness_check (h, &f, a2b);

  g_free (a2b);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_element_set_bus (filter, NULL);
  gst_object_unref (filter);
  gst_object_unref (bus);
}

GST_END_TEST;

static gpointer
set_model_thread (gpointer data)
{
  gpointer *args = data;

  g_object_set (args[0], "model", (const gchar *) args[1], NULL);
  return NULL;
}

/* Sets the model from another thread, then pushes frames until the new
 * model's output comes out; until then the old model's. */
static void
swap_model_and_wait (GstHarness * h, GstElement * filter, const Frame * f,
    const gchar * path, const guint8 * old_out, const guint8 * new_out)
{
  gpointer args[2] = { filter, (gpointer) path };
  GThread *thread = g_thread_new ("set-model", set_model_thread, args);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gboolean swapped = FALSE;

  g_thread_join (thread);
  while (!swapped && g_get_monotonic_time () < deadline) {
    GstBuffer *out = harness_run (h, f);

    swapped = buffer_equals (out, new_out, f->info.size);
    if (!swapped) {
      assert_buffer_equals (out, old_out, f->info.size);
      g_usleep (2000);
    }
    gst_buffer_unref (out);
  }
  fail_unless (swapped, "the new model never came into use");
}

GST_START_TEST (test_model_swap)
{
  GstElement *filter = filter_new (model_both, "a2b");
  GstHarness *h;
  Frame f;
  guint8 *out1, *out2;

  gst_object_ref (filter);
  h = harness_new (filter, NULL, "RGB", 48, 40);
  frame_init (&f, "RGB", 48, 40, 13);
  out1 = frame_translate (&f, model_both, CG_DIRECTION_A2B);
  out2 = frame_translate (&f, model_both2, CG_DIRECTION_A2B);
  fail_if (memcmp (out1, out2, f.info.size) == 0);

  harness_check (h, &f, out1);
  swap_model_and_wait (h, filter, &f, model_both2, out1, out2);
  harness_check (h, &f, out2);
  swap_model_and_wait (h, filter, &f, model_both, out2, out1);

  g_free (out1);
  g_free (out2);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_object_unref (filter);
}

GST_END_TEST;

/* A bad model set while playing: a warning, and the old model goes on. */
GST_START_TEST (test_model_swap_bad)
{
  GstElement *filter = filter_new (model_both, "b2a");
  GstHarness *h;
  GstBus *bus;
  Frame f;
  guint8 *out1, *out2;
  const gchar *bad[] = { model_bad, model_missing, model_single };
  guint i;

  gst_object_ref (filter);
  h = harness_new (filter, &bus, "ABGR", 32, 32);
  frame_init (&f, "ABGR", 32, 32, 14);
  out1 = frame_translate (&f, model_both, CG_DIRECTION_B2A);
  out2 = frame_translate (&f, model_both2, CG_DIRECTION_B2A);
  harness_check (h, &f, out1);

  /* garbage, a missing file, a model without the b2a generator */
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    gpointer args[2] = { filter, (gpointer) bad[i] };
    GThread *thread = g_thread_new ("set-model", set_model_thread, args);

    g_thread_join (thread);
    assert_message (bus_wait (bus, GST_MESSAGE_WARNING), GST_RESOURCE_ERROR,
        GST_RESOURCE_ERROR_OPEN_READ, bad[i]);
    harness_check (h, &f, out1);
  }

  /* a good one after them still swaps in */
  swap_model_and_wait (h, filter, &f, model_both2, out1, out2);

  g_free (out1);
  g_free (out2);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_element_set_bus (filter, NULL);
  gst_object_unref (filter);
  gst_object_unref (bus);
}

GST_END_TEST;

/* videotestsrc ! cycleganfilter ! fakesink must fail to start with an
 * OPEN_READ error naming `needle`, and nothing reaches the sink. */
static void
check_start_fails (const gchar * model, const gchar * direction,
    const gchar * needle)
{
  GstElement *pipeline, *filter, *sink;
  GstBus *bus;
  GstStateChangeReturn ret;
  guint handoffs = 0;

  pipeline = gst_parse_launch ("videotestsrc num-buffers=5 ! "
      "video/x-raw,width=32,height=24 ! cycleganfilter name=f ! "
      "fakesink name=sink signal-handoffs=true", NULL);
  fail_unless (pipeline != NULL);
  filter = gst_bin_get_by_name (GST_BIN (pipeline), "f");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  if (model != NULL)
    g_object_set (filter, "model", model, NULL);
  gst_util_set_object_arg (G_OBJECT (filter), "direction", direction);
  g_signal_connect_swapped (sink, "handoff", G_CALLBACK (g_atomic_int_inc),
      &handoffs);

  bus = gst_element_get_bus (pipeline);
  ret = gst_element_set_state (pipeline, GST_STATE_PLAYING);
  if (ret == GST_STATE_CHANGE_ASYNC)
    ret = gst_element_get_state (pipeline, NULL, NULL, 10 * GST_SECOND);
  fail_unless_equals_int (ret, GST_STATE_CHANGE_FAILURE);
  assert_message (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR),
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ, needle);

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (g_atomic_int_get (&handoffs), 0);

  gst_object_unref (bus);
  gst_object_unref (filter);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_bad_model_error)
{
  check_start_fails (model_bad, "a2b", model_bad);
}

GST_END_TEST;

GST_START_TEST (test_missing_model_error)
{
  check_start_fails (model_missing, "a2b", model_missing);
}

GST_END_TEST;

GST_START_TEST (test_no_model_error)
{
  check_start_fails (NULL, "a2b", "No model");
}

GST_END_TEST;

GST_START_TEST (test_direction_refused_start)
{
  check_start_fails (model_single, "b2a", model_single);
}

GST_END_TEST;

GST_START_TEST (test_strength_zero)
{
  GstHarness *h;
  GstElement *filter = filter_new (model_both, "a2b");
  Frame f;

  g_object_set (filter, "strength", 0.0, NULL);
  h = harness_new (filter, NULL, "RGBx", 30, 30);
  frame_init (&f, "RGBx", 30, 30, 15);
  harness_check (h, &f, f.bytes);
  frame_clear (&f);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_strength_half)
{
  GstElement *filter = filter_new (model_both, "a2b");
  GstHarness *h;
  Frame f;
  guint8 *t, *expected;
  GstBuffer *out;
  GstMapInfo map;
  gsize i;
  guint strictly_between = 0;

  gst_object_ref (filter);
  h = harness_new (filter, NULL, "BGRA", 30, 26);
  frame_init (&f, "BGRA", 30, 26, 16);
  t = frame_translate (&f, model_both, CG_DIRECTION_A2B);

  g_object_set (filter, "strength", 0.5, NULL);
  out = harness_run (h, &f);
  expected = g_malloc (f.info.size);
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  for (i = 0; i < f.info.size; i++) {
    gint in = f.bytes[i];
    gint lo = MIN (in, t[i]), hi = MAX (in, t[i]);

    expected[i] = (guint8) floor (in + 0.5 * (t[i] - in) + 0.5);
    fail_unless (map.data[i] >= lo && map.data[i] <= hi);
    strictly_between += map.data[i] > lo && map.data[i] < hi;
  }
  gst_buffer_unmap (out, &map);
  assert_buffer_equals (out, expected, f.info.size);
  fail_unless (strictly_between > f.info.size / 4);
  gst_buffer_unref (out);

  /* back to 1.0: the translation itself */
  g_object_set (filter, "strength", 1.0, NULL);
  harness_check (h, &f, t);

  g_free (t);
  g_free (expected);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_object_unref (filter);
}

GST_END_TEST;

GST_START_TEST (test_resolution_change)
{
  struct
  {
    const gchar *format;
    gint width, height;
  } steps[] = {
    {"RGB", 64, 48}, {"RGB", 40, 36}, {"BGRA", 23, 17}, {"xRGB", 5, 5},
    {"RGB", 64, 48},
  };
  GstHarness *h = harness_new (filter_new (model_both, "a2b"), NULL,
      steps[0].format, steps[0].width, steps[0].height);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (steps); i++) {
    gchar *caps = g_strdup_printf ("video/x-raw, format=%s, width=%d, "
        "height=%d, framerate=30/1", steps[i].format, steps[i].width,
        steps[i].height);
    Frame f;
    guint8 *expected;

    gst_harness_set_src_caps_str (h, caps);
    frame_init (&f, steps[i].format, steps[i].width, steps[i].height, 20 + i);
    expected = frame_translate (&f, model_both, CG_DIRECTION_A2B);
    harness_check (h, &f, expected);
    harness_check (h, &f, expected);
    g_free (expected);
    frame_clear (&f);
    g_free (caps);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Other threads hammer the properties while frames go through: every
 * frame is a whole translation of one direction or the other. */
GST_START_TEST (test_stress_properties)
{
  GstElement *filter = filter_new (model_both, "a2b");
  GstHarness *h;
  GstHarnessThread *threads[5];
  GValue a2b = G_VALUE_INIT, b2a = G_VALUE_INIT, model = G_VALUE_INIT,
      one = G_VALUE_INIT, full = G_VALUE_INIT;
  Frame f;
  guint8 *out_a2b, *out_b2a;
  guint i;
  gint n_a2b = 0, n_b2a = 0;
  GType direction_type;

  gst_object_ref (filter);
  h = harness_new (filter, NULL, "RGBx", 24, 24);
  frame_init (&f, "RGBx", 24, 24, 17);
  out_a2b = frame_translate (&f, model_both, CG_DIRECTION_A2B);
  out_b2a = frame_translate (&f, model_both, CG_DIRECTION_B2A);

  direction_type = G_PARAM_SPEC_VALUE_TYPE (g_object_class_find_property
      (G_OBJECT_GET_CLASS (filter), "direction"));
  g_value_init (&a2b, direction_type);
  g_value_set_enum (&a2b, CG_DIRECTION_A2B);
  g_value_init (&b2a, direction_type);
  g_value_set_enum (&b2a, CG_DIRECTION_B2A);
  g_value_init (&model, G_TYPE_STRING);
  g_value_set_string (&model, model_both);
  g_value_init (&one, G_TYPE_UINT);
  g_value_set_uint (&one, 1);
  g_value_init (&full, G_TYPE_DOUBLE);
  g_value_set_double (&full, 1.0);

  threads[0] = gst_harness_stress_property_start_full (h, "direction", &a2b,
      300);
  threads[1] = gst_harness_stress_property_start_full (h, "direction", &b2a,
      300);
  threads[2] = gst_harness_stress_property_start_full (h, "model", &model,
      2000);
  threads[3] = gst_harness_stress_property_start_full (h, "threads", &one,
      1000);
  threads[4] = gst_harness_stress_property_start_full (h, "strength", &full,
      1000);

  for (i = 0; i < 60; i++) {
    GstBuffer *out = harness_run (h, &f);

    if (buffer_equals (out, out_a2b, f.info.size))
      n_a2b++;
    else if (buffer_equals (out, out_b2a, f.info.size))
      n_b2a++;
    else
      fail ("frame %u is neither the a2b nor the b2a translation", i);
    gst_buffer_unref (out);
  }
  GST_INFO ("%d a2b frames, %d b2a frames", n_a2b, n_b2a);

  for (i = 0; i < G_N_ELEMENTS (threads); i++)
    gst_harness_stress_thread_stop (threads[i]);

  g_value_unset (&a2b);
  g_value_unset (&b2a);
  g_value_unset (&model);
  g_value_unset (&one);
  g_value_unset (&full);
  g_free (out_a2b);
  g_free (out_b2a);
  frame_clear (&f);
  gst_harness_teardown (h);
  gst_object_unref (filter);
}

GST_END_TEST;

GST_START_TEST (test_latency_query)
{
  GstHarness *h = harness_new (filter_new (model_both, "a2b"), NULL, "RGB",
      96, 64);
  GstQuery *query;
  Frame f;
  GstBuffer *out;
  gboolean live;
  GstClockTime min, max;

  gst_harness_set_upstream_latency (h, 10 * GST_MSECOND);
  frame_init (&f, "RGB", 96, 64, 18);
  out = harness_run (h, &f);
  gst_buffer_unref (out);

  query = gst_query_new_latency ();
  fail_unless (gst_pad_peer_query (h->sinkpad, query));
  gst_query_parse_latency (query, &live, &min, &max);
  GST_INFO ("latency: live %d min %" GST_TIME_FORMAT " max %"
      GST_TIME_FORMAT, live, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
  /* upstream's plus the time the frame took */
  fail_unless (min > 10 * GST_MSECOND);
  fail_unless (!GST_CLOCK_TIME_IS_VALID (max) || max >= min);
  gst_query_unref (query);

  frame_clear (&f);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Offline, not synchronised: every frame is processed, none dropped. */
GST_START_TEST (test_offline_every_frame)
{
  GstElement *pipeline, *sink;
  GstBus *bus;
  GstMessage *msg;
  gchar *desc;
  guint64 rendered = 0;

  desc = g_strdup_printf ("videotestsrc num-buffers=30 ! "
      "video/x-raw,format=RGB,width=32,height=24 ! "
      "cycleganfilter model=\"%s\" ! fakesink name=sink sync=false",
      model_both);
  pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_unless (pipeline != NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  bus = gst_element_get_bus (pipeline);

  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);

  {
    GstStructure *stats;

    g_object_get (sink, "stats", &stats, NULL);
    fail_unless (gst_structure_get_uint64 (stats, "rendered", &rendered));
    gst_structure_free (stats);
  }
  fail_unless_equals_uint64 (rendered, 30);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_state_cycles)
{
  GstElement *pipeline;
  gchar *desc;
  gint i;

  desc = g_strdup_printf ("videotestsrc ! "
      "video/x-raw,format=BGRx,width=16,height=16 ! "
      "cycleganfilter model=\"%s\" threads=1 ! fakesink", model_both);
  pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_unless (pipeline != NULL);

  for (i = 0; i < 100; i++) {
    GstStateChangeReturn ret;

    ret = gst_element_set_state (pipeline, GST_STATE_PLAYING);
    fail_if (ret == GST_STATE_CHANGE_FAILURE);
    ret = gst_element_get_state (pipeline, NULL, NULL, 10 * GST_SECOND);
    fail_unless_equals_int (ret, GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
cycleganfilter_suite (void)
{
  Suite *s = suite_create ("cycleganfilter");
  TCase *tc = tcase_create ("general");
  TCase *tc_cycles = tcase_create ("cycles");

  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_qos_enabled);
  tcase_add_test (tc, test_matches_library);
  tcase_add_test (tc, test_formats);
  tcase_add_test (tc, test_odd_size);
  tcase_add_test (tc, test_direction_switch);
  tcase_add_test (tc, test_direction_refused_playing);
  tcase_add_test (tc, test_direction_refused_start);
  tcase_add_test (tc, test_model_swap);
  tcase_add_test (tc, test_model_swap_bad);
  tcase_add_test (tc, test_bad_model_error);
  tcase_add_test (tc, test_missing_model_error);
  tcase_add_test (tc, test_no_model_error);
  tcase_add_test (tc, test_strength_zero);
  tcase_add_test (tc, test_strength_half);
  tcase_add_test (tc, test_resolution_change);
  tcase_add_test (tc, test_stress_properties);
  tcase_add_test (tc, test_latency_query);
  tcase_add_test (tc, test_offline_every_frame);

  /* slow under the sanitizers */
  suite_add_tcase (s, tc_cycles);
  tcase_set_timeout (tc_cycles, 300);
  tcase_add_test (tc_cycles, test_state_cycles);

  return s;
}

static void
write_models (void)
{
  GError *err = NULL;

  tmp_dir = g_dir_make_tmp ("cycleganfilter-XXXXXX", &err);
  g_assert_no_error (err);
  model_both = g_build_filename (tmp_dir, "both.safetensors", NULL);
  model_both2 = g_build_filename (tmp_dir, "both2.safetensors", NULL);
  model_single = g_build_filename (tmp_dir, "single.safetensors", NULL);
  model_bad = g_build_filename (tmp_dir, "bad.safetensors", NULL);
  model_missing = g_build_filename (tmp_dir, "missing.safetensors", NULL);

  g_assert_true (test_model_write (model_both, 4, 1, TRUE, 1, &err));
  g_assert_true (test_model_write (model_both2, 4, 1, TRUE, 2, &err));
  g_assert_true (test_model_write (model_single, 4, 1, FALSE, 3, &err));
  /* a header length far beyond the file */
  g_assert_true (g_file_set_contents (model_bad,
          "\xff\xff\xff\xff\xff\xff\xff\x7f{\"a\":1}", 16, &err));
}

static void
remove_models (void)
{
  const gchar *files[] = { model_both, model_both2, model_single, model_bad };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (files); i++)
    g_unlink (files[i]);
  g_rmdir (tmp_dir);
  g_free (model_both);
  g_free (model_both2);
  g_free (model_single);
  g_free (model_bad);
  g_free (model_missing);
  g_free (tmp_dir);
}

int
main (int argc, char **argv)
{
  int ret;

  gst_check_init (&argc, &argv);
  write_models ();
  ret = gst_check_run_suite (cycleganfilter_suite (), "cycleganfilter",
      __FILE__);
  remove_models ();
  return ret;
}
