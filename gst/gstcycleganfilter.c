/* GStreamer CycleGAN filter
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

/**
 * SECTION:element-cycleganfilter
 * @title: cycleganfilter
 *
 * Translates every video frame from one image domain to another with a
 * CycleGAN ResNet generator (horse to zebra, summer to winter, photo to
 * Monet, ...), computed on the CPU by libcyclegan.
 *
 * The model is a safetensors file with one generator (serving a2b only) or
 * two (G_A for a2b, G_B for b2a), as the PyTorch CycleGAN code names them.
 * The file is loaded when the element goes from READY to PAUSED; a missing,
 * unreadable or malformed file, or a direction the model does not have,
 * makes that state change fail with an error naming the file and the
 * reason.
 *
 * The element works in place on packed 8-bit RGB formats; alpha and padding
 * bytes pass through untouched. Any frame size of at least 5x5 pixels runs,
 * and the size or format may change mid-stream. The cost grows with the
 * number of pixels: scale the video down before the element (and back up
 * after it) to trade resolution for speed.
 *
 * All properties can be changed while playing, from any thread. A new model
 * is loaded in a background thread and replaces the old one between two
 * frames, so the stream does not stall; if it fails to load, a warning is
 * posted and the old model keeps running. A new direction, thread count or
 * strength takes effect on the next frame.
 *
 * Quality of service is enabled: in a live pipeline, frames that arrive too
 * late are dropped before they are translated. Latency queries are answered
 * with the upstream latency plus the longest processing time measured per
 * frame; when that time grows, the element posts a latency message so that
 * the pipeline updates its latency.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -v videotestsrc ! video/x-raw,width=320,height=240 ! videoconvert ! cycleganfilter model=horse2zebra.safetensors direction=a2b ! videoconvert ! autovideosink
 * ]| Translates a test pattern with the a2b generator of
 * horse2zebra.safetensors and shows the result.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! cycleganfilter model=summer2winter.safetensors strength=0.7 ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]| Converts a video file offline, blending 70% of the translation into
 * the original frames.
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcycleganfilter.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_cyclegan_filter_debug);
#define GST_CAT_DEFAULT gst_cyclegan_filter_debug

#define DEFAULT_PROP_MODEL NULL
#define DEFAULT_PROP_DIRECTION GST_CYCLEGAN_DIRECTION_A2B
#define DEFAULT_PROP_THREADS 0
#define DEFAULT_PROP_STRENGTH 1.0

#define MAX_THREADS 1024

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DIRECTION,
  PROP_THREADS,
  PROP_STRENGTH,
};

#define CAPS_STR                                                          \
  "video/x-raw, "                                                         \
  "format = (string) { RGB, BGR, RGBx, BGRx, xRGB, xBGR, "                \
  "RGBA, BGRA, ARGB, ABGR }, "                                            \
  "width = (int) [ " G_STRINGIFY (CG_MIN_FRAME_SIZE) ", max ], "          \
  "height = (int) [ " G_STRINGIFY (CG_MIN_FRAME_SIZE) ", max ], "         \
  "framerate = " GST_VIDEO_FPS_RANGE

static GstStaticPadTemplate gst_cyclegan_filter_sink_template =
GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (CAPS_STR));

static GstStaticPadTemplate gst_cyclegan_filter_src_template =
GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (CAPS_STR));

/* A model loaded by the background loader, with a generator ready for the
 * proposed direction and the negotiated size, waiting to be swapped in by
 * the streaming thread. */
struct _GstCycleganPending
{
  CgModel *model;
  CgGenerator *gen;
  GstCycleganDirection direction;
};

#define gst_cyclegan_filter_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstCycleganFilter, gst_cyclegan_filter,
    GST_TYPE_VIDEO_FILTER,
    GST_DEBUG_CATEGORY_INIT (gst_cyclegan_filter_debug, "cycleganfilter", 0,
        "CycleGAN video filter"));
GST_ELEMENT_REGISTER_DEFINE (cycleganfilter, "cycleganfilter",
    GST_RANK_NONE, GST_TYPE_CYCLEGAN_FILTER);

GType
gst_cyclegan_direction_get_type (void)
{
  static gsize id = 0;
  static const GEnumValue values[] = {
    {GST_CYCLEGAN_DIRECTION_A2B,
        "Domain A to domain B (generator G_A)", "a2b"},
    {GST_CYCLEGAN_DIRECTION_B2A,
        "Domain B to domain A (generator G_B)", "b2a"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&id)) {
    GType type = g_enum_register_static ("GstCycleganDirection", values);
    g_once_init_leave (&id, type);
  }
  return (GType) id;
}

static const gchar *
gst_cyclegan_direction_nick (GstCycleganDirection direction)
{
  return cg_direction_to_string ((CgDirection) direction);
}

static gboolean
gst_cyclegan_filter_pixel_format (GstVideoFormat format, CgPixelFormat * out)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *out = CG_PIXEL_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *out = CG_PIXEL_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBx:
      *out = CG_PIXEL_RGBX;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRx:
      *out = CG_PIXEL_BGRX;
      return TRUE;
    case GST_VIDEO_FORMAT_xRGB:
      *out = CG_PIXEL_XRGB;
      return TRUE;
    case GST_VIDEO_FORMAT_xBGR:
      *out = CG_PIXEL_XBGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
      *out = CG_PIXEL_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
      *out = CG_PIXEL_BGRA;
      return TRUE;
    case GST_VIDEO_FORMAT_ARGB:
      *out = CG_PIXEL_ARGB;
      return TRUE;
    case GST_VIDEO_FORMAT_ABGR:
      *out = CG_PIXEL_ABGR;
      return TRUE;
    default:
      return FALSE;
  }
}

static void
gst_cyclegan_pending_free (GstCycleganPending * pending)
{
  if (pending == NULL)
    return;
  g_clear_pointer (&pending->gen, cg_generator_free);
  g_clear_pointer (&pending->model, cg_model_unref);
  g_free (pending);
}

/* Runs in the loader thread: everything slow about a new model (reading and
 * validating the file, preparing the weights, planning the memory). */
static GstCycleganPending *
gst_cyclegan_pending_load (const gchar * path, GstCycleganDirection direction,
    gint width, gint height, GError ** error)
{
  GstCycleganPending *pending;

  if (path == NULL) {
    g_set_error (error, CG_ERROR, CG_ERROR_IO, "no model file set");
    return NULL;
  }

  pending = g_new0 (GstCycleganPending, 1);
  pending->direction = direction;
  pending->model = cg_model_load (path, error);
  if (pending->model == NULL)
    goto failed;

  if (!cg_model_has_direction (pending->model, (CgDirection) direction)) {
    g_set_error (error, CG_ERROR, CG_ERROR_DIRECTION,
        "%s: the model has no %s generator", path,
        gst_cyclegan_direction_nick (direction));
    goto failed;
  }

  pending->gen = cg_generator_new (pending->model, (CgDirection) direction,
      error);
  if (pending->gen == NULL)
    goto failed;

  if (width > 0 && !cg_generator_prepare (pending->gen, width, height, error))
    goto failed;
  return pending;

failed:
  gst_cyclegan_pending_free (pending);
  return NULL;
}

static gpointer gst_cyclegan_filter_loader (gpointer data);

/* Call with the object lock held. Starts the loader thread if the element
 * is started, the model path changed since the last load and no loader is
 * running already (a running loader picks the change up itself). */
static void
gst_cyclegan_filter_maybe_load_unlocked (GstCycleganFilter * self)
{
  GThread *thread;
  GError *err = NULL;

  if (!self->started || self->loader_running
      || self->loaded_serial == self->model_serial)
    return;

  self->loader_running = TRUE;
  thread = g_thread_try_new ("cyclegan-load", gst_cyclegan_filter_loader,
      gst_object_ref (self), &err);
  if (thread == NULL) {
    GST_ERROR_OBJECT (self, "could not start the model loader: %s",
        err->message);
    g_clear_error (&err);
    self->loader_running = FALSE;
    /* the caller holds a reference: this is not the last one */
    g_object_unref (self);
    return;
  }
  g_thread_unref (thread);
}

/* The loader thread: loads the latest proposed model path until no newer
 * one has been set, and leaves the result for the streaming thread. */
static gpointer
gst_cyclegan_filter_loader (gpointer data)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (data);

  GST_OBJECT_LOCK (self);
  while (self->started && self->loaded_serial != self->model_serial) {
    guint serial = self->model_serial;
    gchar *path = g_strdup (self->model_path);
    GstCycleganDirection direction = self->direction;
    gint width = self->width;
    gint height = self->height;
    GstCycleganPending *pending, *stale = NULL;
    GError *err = NULL;

    self->loaded_serial = serial;
    GST_OBJECT_UNLOCK (self);

    GST_INFO_OBJECT (self, "loading model %s in the background",
        GST_STR_NULL (path));
    pending = gst_cyclegan_pending_load (path, direction, width, height, &err);

    GST_OBJECT_LOCK (self);
    if (pending != NULL && self->started && serial == self->model_serial) {
      stale = self->pending;
      self->pending = pending;
      pending = NULL;
    }
    GST_OBJECT_UNLOCK (self);

    /* superseded by a newer path, or the element stopped meanwhile */
    gst_cyclegan_pending_free (pending);
    gst_cyclegan_pending_free (stale);

    if (err != NULL) {
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
          ("Could not load the model file \"%s\": %s", GST_STR_NULL (path),
              err->message), ("The current model keeps running."));
      g_clear_error (&err);
    }
    g_free (path);

    GST_OBJECT_LOCK (self);
  }
  self->loader_running = FALSE;
  GST_OBJECT_UNLOCK (self);

  gst_object_unref (self);
  return NULL;
}

/* Streaming thread: a new generator planned for the negotiated size (if
 * any yet) and given the thread count, ready to replace the active one. */
static gboolean
gst_cyclegan_filter_ready_generator (GstCycleganFilter * self,
    CgGenerator * gen, guint threads, GError ** err)
{
  if (self->width > 0
      && !cg_generator_prepare (gen, self->width, self->height, err))
    return FALSE;
  cg_generator_set_threads (gen, threads);
  return TRUE;
}

/* Streaming thread: replace the active model and generator by a loaded
 * one. On failure the old ones stay. */
static void
gst_cyclegan_filter_swap_model (GstCycleganFilter * self,
    GstCycleganPending * pending, GstCycleganDirection direction, guint threads)
{
  CgGenerator *gen = NULL;
  CgModel *old_model;
  GError *err = NULL;
  const gchar *path = cg_model_get_path (pending->model);

  if (!cg_model_has_direction (pending->model, (CgDirection) direction))
    goto no_direction;

  if (pending->gen != NULL && pending->direction == direction) {
    gen = g_steal_pointer (&pending->gen);
  } else {
    gen = cg_generator_new (pending->model, (CgDirection) direction, &err);
    if (gen == NULL)
      goto failed;
  }

  /* a no-op prepare when the loader did it for this size already */
  if (!gst_cyclegan_filter_ready_generator (self, gen, threads, &err))
    goto failed;

  GST_INFO_OBJECT (self, "swapping in model %s (%s)", path,
      gst_cyclegan_direction_nick (direction));

  g_clear_pointer (&self->gen, cg_generator_free);
  self->gen = gen;
  self->active_threads = threads;

  GST_OBJECT_LOCK (self);
  old_model = self->model;
  self->model = cg_model_ref (pending->model);
  self->active_direction = direction;
  GST_OBJECT_UNLOCK (self);

  cg_model_unref (old_model);
  gst_cyclegan_pending_free (pending);
  return;

  /* ERRORS */
no_direction:
  {
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
        ("The model file \"%s\" has no %s generator.", path,
            gst_cyclegan_direction_nick (direction)),
        ("The current model keeps running."));
    gst_cyclegan_pending_free (pending);
    return;
  }
failed:
  {
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
        ("Could not set up the model file \"%s\": %s", path, err->message),
        ("The current model keeps running."));
    g_clear_error (&err);
    g_clear_pointer (&gen, cg_generator_free);
    gst_cyclegan_pending_free (pending);
    return;
  }
}

/* Streaming thread: run the other generator of the active model. On
 * failure the old direction stays, proposed and active. */
static void
gst_cyclegan_filter_switch_direction (GstCycleganFilter * self,
    GstCycleganDirection direction, guint threads)
{
  CgGenerator *gen;
  GError *err = NULL;

  gen = cg_generator_new (self->model, (CgDirection) direction, &err);
  if (gen == NULL
      || !gst_cyclegan_filter_ready_generator (self, gen, threads, &err))
    goto failed;

  GST_INFO_OBJECT (self, "switching to direction %s",
      gst_cyclegan_direction_nick (direction));

  g_clear_pointer (&self->gen, cg_generator_free);
  self->gen = gen;
  self->active_threads = threads;

  GST_OBJECT_LOCK (self);
  self->active_direction = direction;
  GST_OBJECT_UNLOCK (self);
  return;

  /* ERRORS */
failed:
  {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Could not switch to direction %s: %s",
            gst_cyclegan_direction_nick (direction), err->message),
        ("Direction %s keeps running.",
            gst_cyclegan_direction_nick (self->active_direction)));
    g_clear_error (&err);
    g_clear_pointer (&gen, cg_generator_free);

    GST_OBJECT_LOCK (self);
    if (self->direction == direction)
      self->direction = self->active_direction;
    GST_OBJECT_UNLOCK (self);
    g_object_notify (G_OBJECT (self), "direction");
    return;
  }
}

/* Streaming thread, at a frame boundary: make the proposed values active.
 * Returns the strength to use for this frame. */
static gdouble
gst_cyclegan_filter_update (GstCycleganFilter * self)
{
  GstCycleganPending *pending;
  GstCycleganDirection direction;
  guint threads;
  gdouble strength;

  GST_OBJECT_LOCK (self);
  pending = g_steal_pointer (&self->pending);
  direction = self->direction;
  threads = self->threads;
  strength = self->strength;
  GST_OBJECT_UNLOCK (self);

  if (pending != NULL)
    gst_cyclegan_filter_swap_model (self, pending, direction, threads);

  if (direction != self->active_direction) {
    if (cg_model_has_direction (self->model, (CgDirection) direction)) {
      gst_cyclegan_filter_switch_direction (self, direction, threads);
    } else {
      /* the model was swapped after the setter had accepted the direction */
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("The model file \"%s\" has no %s generator.",
              cg_model_get_path (self->model),
              gst_cyclegan_direction_nick (direction)),
          ("Direction %s keeps running.",
              gst_cyclegan_direction_nick (self->active_direction)));
      GST_OBJECT_LOCK (self);
      if (self->direction == direction)
        self->direction = self->active_direction;
      GST_OBJECT_UNLOCK (self);
      g_object_notify (G_OBJECT (self), "direction");
    }
  }

  if (threads != self->active_threads) {
    GST_DEBUG_OBJECT (self, "using %u threads", threads);
    cg_generator_set_threads (self->gen, threads);
    self->active_threads = threads;
  }

  return strength;
}

/* out = in + strength * (translated - in), rounded to nearest. X and alpha
 * bytes are equal in both and come out unchanged. */
static void
gst_cyclegan_filter_blend (guint8 * data, gsize stride,
    const guint8 * translated, gsize translated_stride, gsize row_bytes,
    gint height, gdouble strength)
{
  gint y;
  gsize i;

  for (y = 0; y < height; y++) {
    guint8 *d = data + y * stride;
    const guint8 *t = translated + y * translated_stride;

    for (i = 0; i < row_bytes; i++) {
      gdouble v = d[i] + strength * ((gint) t[i] - (gint) d[i]);

      d[i] = (guint8) floor (v + 0.5);
    }
  }
}

static void
gst_cyclegan_filter_record_time (GstCycleganFilter * self, GstClockTime elapsed)
{
  gboolean post = FALSE;

  GST_OBJECT_LOCK (self);
  if (elapsed > self->proc_max) {
    self->proc_max = elapsed;
    /* tell the pipeline when the latency we reported is clearly too low */
    if (self->proc_max > self->proc_reported + self->proc_reported / 4) {
      self->proc_reported = self->proc_max;
      post = TRUE;
    }
  }
  GST_OBJECT_UNLOCK (self);

  if (post) {
    GST_DEBUG_OBJECT (self, "processing time grew to %" GST_TIME_FORMAT,
        GST_TIME_ARGS (elapsed));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

static gboolean
gst_cyclegan_filter_start (GstBaseTransform * trans)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (trans);
  gchar *path;
  GstCycleganDirection direction;
  guint threads, serial;
  CgModel *model = NULL;
  CgGenerator *gen;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->model_path);
  direction = self->direction;
  threads = self->threads;
  serial = self->model_serial;
  GST_OBJECT_UNLOCK (self);

  if (path == NULL)
    goto no_model;

  GST_DEBUG_OBJECT (self, "loading model %s", path);
  model = cg_model_load (path, &err);
  if (model == NULL)
    goto load_failed;

  if (!cg_model_has_direction (model, (CgDirection) direction))
    goto no_direction;

  gen = cg_generator_new (model, (CgDirection) direction, &err);
  if (gen == NULL)
    goto load_failed;
  cg_generator_set_threads (gen, threads);

  self->gen = gen;
  self->active_threads = threads;
  self->format = CG_PIXEL_N_FORMATS;

  GST_OBJECT_LOCK (self);
  self->model = model;
  self->active_direction = direction;
  self->started = TRUE;
  self->loaded_serial = serial;
  self->width = 0;
  self->height = 0;
  self->proc_max = 0;
  self->proc_reported = 0;
  /* the path may have changed while we were loading */
  gst_cyclegan_filter_maybe_load_unlocked (self);
  GST_OBJECT_UNLOCK (self);

  g_free (path);
  return TRUE;

  /* ERRORS */
no_model:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("No model file set."),
        ("Set the \"model\" property to the path of a CycleGAN model file "
            "(safetensors)."));
    return FALSE;
  }
load_failed:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the model file \"%s\": %s", path, err->message),
        ("%s", err->message));
    g_clear_error (&err);
    g_clear_pointer (&model, cg_model_unref);
    g_free (path);
    return FALSE;
  }
no_direction:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("The model file \"%s\" has no %s generator.", path,
            gst_cyclegan_direction_nick (direction)),
        ("A file with a single generator serves a2b only; b2a needs a file "
            "with both G_A and G_B."));
    cg_model_unref (model);
    g_free (path);
    return FALSE;
  }
}

static gboolean
gst_cyclegan_filter_stop (GstBaseTransform * trans)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (trans);
  GstCycleganPending *pending;
  CgModel *model;

  GST_OBJECT_LOCK (self);
  self->started = FALSE;
  pending = g_steal_pointer (&self->pending);
  model = g_steal_pointer (&self->model);
  self->width = 0;
  self->height = 0;
  GST_OBJECT_UNLOCK (self);

  gst_cyclegan_pending_free (pending);
  g_clear_pointer (&self->gen, cg_generator_free);
  g_clear_pointer (&model, cg_model_unref);
  g_clear_pointer (&self->blend, g_free);
  self->blend_size = 0;

  return TRUE;
}

static gboolean
gst_cyclegan_filter_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (trans);
  gboolean live;
  GstClockTime min, max, ours;

  if (direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction,
        query);

  /* forwards upstream */
  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query))
    return FALSE;

  gst_query_parse_latency (query, &live, &min, &max);

  GST_OBJECT_LOCK (self);
  ours = self->proc_max;
  self->proc_reported = ours;
  GST_OBJECT_UNLOCK (self);

  GST_DEBUG_OBJECT (self, "upstream latency min %" GST_TIME_FORMAT " max %"
      GST_TIME_FORMAT ", adding %" GST_TIME_FORMAT, GST_TIME_ARGS (min),
      GST_TIME_ARGS (max), GST_TIME_ARGS (ours));

  min += ours;
  if (GST_CLOCK_TIME_IS_VALID (max))
    max += ours;
  gst_query_set_latency (query, live, min, max);

  return TRUE;
}

static void
gst_cyclegan_filter_before_transform (GstBaseTransform * trans, GstBuffer * buf)
{
  GstClockTime timestamp, stream_time;

  timestamp = GST_BUFFER_PTS (buf);
  stream_time = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
      timestamp);
  if (GST_CLOCK_TIME_IS_VALID (stream_time))
    gst_object_sync_values (GST_OBJECT (trans), stream_time);
}

static gboolean
gst_cyclegan_filter_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (filter);
  CgPixelFormat format;
  gint width = GST_VIDEO_INFO_WIDTH (in_info);
  gint height = GST_VIDEO_INFO_HEIGHT (in_info);
  GError *err = NULL;

  if (!gst_cyclegan_filter_pixel_format (GST_VIDEO_INFO_FORMAT (in_info),
          &format))
    goto unsupported;

  GST_DEBUG_OBJECT (self, "preparing for %s %dx%d",
      cg_pixel_format_name (format), width, height);

  if (!cg_generator_prepare (self->gen, width, height, &err))
    goto prepare_failed;

  self->format = format;
  /* the blend buffer is allocated on the first frame that needs it */
  g_clear_pointer (&self->blend, g_free);
  self->blend_size = 0;

  GST_OBJECT_LOCK (self);
  self->width = width;
  self->height = height;
  /* the processing time is measured anew for the new size */
  self->proc_max = 0;
  GST_OBJECT_UNLOCK (self);

  return TRUE;

  /* ERRORS */
unsupported:
  {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("unsupported format %s",
            gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (in_info))));
    return FALSE;
  }
prepare_failed:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Could not prepare the network for %dx%d frames: %s", width,
            height, err->message), ("%s", err->message));
    g_clear_error (&err);
    return FALSE;
  }
}

static GstFlowReturn
gst_cyclegan_filter_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (filter);
  GstClockTime start = gst_util_get_timestamp ();
  guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  gsize stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gdouble strength;
  GError *err = NULL;

  strength = gst_cyclegan_filter_update (self);

  if (strength <= 0.0) {
    GST_LOG_OBJECT (self, "strength 0: passing the frame through");
    return GST_FLOW_OK;
  }

  if (strength >= 1.0) {
    if (!cg_generator_run_pixels (self->gen, self->format, data, stride,
            data, stride, width, height, &err))
      goto run_failed;
  } else {
    gsize row_bytes = (gsize) width * cg_pixel_format_bpp (self->format);

    if (self->blend_size < row_bytes * height) {
      g_free (self->blend);
      self->blend_size = row_bytes * height;
      self->blend = g_malloc (self->blend_size);
    }
    if (!cg_generator_run_pixels (self->gen, self->format, data, stride,
            self->blend, row_bytes, width, height, &err))
      goto run_failed;
    gst_cyclegan_filter_blend (data, stride, self->blend, row_bytes,
        row_bytes, height, strength);
  }

  gst_cyclegan_filter_record_time (self, gst_util_get_timestamp () - start);

  return GST_FLOW_OK;

  /* ERRORS */
run_failed:
  {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Could not translate a %dx%d frame: %s", width, height,
            err->message), ("%s", err->message));
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
}

static void gst_cyclegan_filter_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_cyclegan_filter_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_cyclegan_filter_finalize (GObject * object);

static void
gst_cyclegan_filter_class_init (GstCycleganFilterClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *vfilter_class = GST_VIDEO_FILTER_CLASS (klass);

  gobject_class->set_property = gst_cyclegan_filter_set_property;
  gobject_class->get_property = gst_cyclegan_filter_get_property;
  gobject_class->finalize = gst_cyclegan_filter_finalize;

  /**
   * GstCycleganFilter:model:
   *
   * Path of the model file (safetensors) with one generator (a2b only) or
   * two (G_A for a2b, G_B for b2a). It is loaded when the element goes from
   * READY to PAUSED, and the state change fails if it cannot be.
   *
   * Set while playing, the new file is loaded in a background thread and
   * replaces the old model between two frames, without stalling the
   * stream. If it cannot be loaded (or lacks the current direction), a
   * warning naming the file and the reason is posted and the old model
   * keeps running; the property keeps the new path, which the next start
   * loads again.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the CycleGAN model file (safetensors). "
          "Set while playing, the new model is loaded in the background "
          "and replaces the old one between two frames; if it cannot be "
          "loaded, a warning is posted and the old model keeps running.",
          DEFAULT_PROP_MODEL,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
          G_PARAM_STATIC_STRINGS));

  /**
   * GstCycleganFilter:direction:
   *
   * Which generator runs: a2b (G_A) translates domain A to domain B, b2a
   * (G_B) translates back. A model file with a single generator serves a2b
   * only.
   *
   * A change while playing takes effect on the next frame. A direction the
   * running model does not have is refused with a warning and the old
   * direction stays; at start it makes the state change fail with an error.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_DIRECTION,
      g_param_spec_enum ("direction", "Direction",
          "Which generator runs: a2b translates domain A to domain B, "
          "b2a translates back (needs a model with both generators). "
          "A change while playing takes effect on the next frame.",
          GST_TYPE_CYCLEGAN_DIRECTION, DEFAULT_PROP_DIRECTION,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
          G_PARAM_STATIC_STRINGS));

  /**
   * GstCycleganFilter:threads:
   *
   * Number of compute threads, 0 for one per core. Each element runs its
   * own threads, so several elements in one process each take this many.
   * A change while playing takes effect on the next frame.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_uint ("threads", "Threads",
          "Number of compute threads; 0 uses one per core. "
          "A change while playing takes effect on the next frame.",
          0, MAX_THREADS, DEFAULT_PROP_THREADS,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
          G_PARAM_STATIC_STRINGS));

  /**
   * GstCycleganFilter:strength:
   *
   * How much of the translation to show: each output byte is
   * in + strength * (translated - in), rounded to nearest. 1.0 shows the
   * translation, 0.0 skips the network and passes the frame through
   * untouched. Controllable; a change while playing takes effect on the
   * next frame.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STRENGTH,
      g_param_spec_double ("strength", "Strength",
          "Blend between the input (0.0) and its translation (1.0). "
          "At 0.0 the network is skipped and frames pass through untouched.",
          0.0, 1.0, DEFAULT_PROP_STRENGTH,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
          GST_PARAM_CONTROLLABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "CycleGAN filter", "Filter/Effect/Video",
      "Translates video frames from one image domain to another (or back) "
      "with a CycleGAN ResNet generator computed on the CPU",
      "The gst-cyclegan authors");

  gst_element_class_add_static_pad_template (element_class,
      &gst_cyclegan_filter_sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &gst_cyclegan_filter_src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_cyclegan_filter_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_cyclegan_filter_stop);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_cyclegan_filter_query);
  trans_class->before_transform =
      GST_DEBUG_FUNCPTR (gst_cyclegan_filter_before_transform);

  vfilter_class->set_info = GST_DEBUG_FUNCPTR (gst_cyclegan_filter_set_info);
  vfilter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_cyclegan_filter_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_CYCLEGAN_DIRECTION, 0);
}

static void
gst_cyclegan_filter_init (GstCycleganFilter * self)
{
  self->model_path = g_strdup (DEFAULT_PROP_MODEL);
  self->direction = DEFAULT_PROP_DIRECTION;
  self->threads = DEFAULT_PROP_THREADS;
  self->strength = DEFAULT_PROP_STRENGTH;
  self->active_direction = DEFAULT_PROP_DIRECTION;
  self->format = CG_PIXEL_N_FORMATS;

  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_cyclegan_filter_finalize (GObject * object)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (object);

  /* stop () freed the model, the generator and any pending model; the
   * loader thread holds a reference, so none runs any more */
  g_free (self->model_path);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_cyclegan_filter_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (object);

  switch (prop_id) {
    case PROP_MODEL:
      GST_OBJECT_LOCK (self);
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      self->model_serial++;
      gst_cyclegan_filter_maybe_load_unlocked (self);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_DIRECTION:{
      GstCycleganDirection direction = g_value_get_enum (value);
      gchar *refused_by = NULL;

      GST_OBJECT_LOCK (self);
      if (self->model != NULL
          && !cg_model_has_direction (self->model, (CgDirection) direction))
        refused_by = g_strdup (cg_model_get_path (self->model));
      else
        self->direction = direction;
      GST_OBJECT_UNLOCK (self);

      if (refused_by != NULL) {
        GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
            ("The model file \"%s\" has no %s generator.", refused_by,
                gst_cyclegan_direction_nick (direction)),
            ("A file with a single generator serves a2b only; the old "
                "direction stays."));
        g_free (refused_by);
      }
      break;
    }
    case PROP_THREADS:
      GST_OBJECT_LOCK (self);
      self->threads = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STRENGTH:
      GST_OBJECT_LOCK (self);
      self->strength = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_cyclegan_filter_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstCycleganFilter *self = GST_CYCLEGAN_FILTER (object);

  switch (prop_id) {
    case PROP_MODEL:
      GST_OBJECT_LOCK (self);
      g_value_set_string (value, self->model_path);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_DIRECTION:
      GST_OBJECT_LOCK (self);
      g_value_set_enum (value, self->direction);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_THREADS:
      GST_OBJECT_LOCK (self);
      g_value_set_uint (value, self->threads);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STRENGTH:
      GST_OBJECT_LOCK (self);
      g_value_set_double (value, self->strength);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}
