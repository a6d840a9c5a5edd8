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

#ifndef __GST_CYCLEGAN_FILTER_H__
#define __GST_CYCLEGAN_FILTER_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include <cyclegan/cyclegan.h>

G_BEGIN_DECLS

/**
 * GstCycleganDirection:
 * @GST_CYCLEGAN_DIRECTION_A2B: translate domain A to domain B (generator G_A)
 * @GST_CYCLEGAN_DIRECTION_B2A: translate domain B to domain A (generator G_B)
 *
 * Which of the model's two generators runs.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_CYCLEGAN_DIRECTION_A2B = CG_DIRECTION_A2B,
  GST_CYCLEGAN_DIRECTION_B2A = CG_DIRECTION_B2A,
} GstCycleganDirection;

#define GST_TYPE_CYCLEGAN_DIRECTION (gst_cyclegan_direction_get_type ())
GType gst_cyclegan_direction_get_type (void);

#define GST_TYPE_CYCLEGAN_FILTER (gst_cyclegan_filter_get_type ())
G_DECLARE_FINAL_TYPE (GstCycleganFilter, gst_cyclegan_filter,
    GST, CYCLEGAN_FILTER, GstVideoFilter);

typedef struct _GstCycleganPending GstCycleganPending;

/**
 * GstCycleganFilter:
 *
 * Opaque data structure.
 */
struct _GstCycleganFilter
{
  GstVideoFilter videofilter;

  /* < private > */

  /* Proposed values, set by the property setters under the object lock. */
  gchar *model_path;
  GstCycleganDirection direction;
  guint threads;
  gdouble strength;

  /* Background model loading, under the object lock. */
  gboolean started;
  guint model_serial;           /* bumped on each set of "model" */
  guint loaded_serial;          /* the serial the loader last handled */
  gboolean loader_running;
  GstCycleganPending *pending;  /* a loaded model waiting to be swapped in */
  gint width, height;           /* negotiated size, for the loader */

  /* Active state, owned by the streaming thread (model and direction are
   * also written under the object lock so the setters can read them). */
  CgModel *model;
  CgGenerator *gen;
  GstCycleganDirection active_direction;
  guint active_threads;
  CgPixelFormat format;
  guint8 *blend;                /* translated frame, for strength < 1 */
  gsize blend_size;

  /* Measured processing time per frame, under the object lock. */
  GstClockTime proc_max;
  GstClockTime proc_reported;
};

GST_ELEMENT_REGISTER_DECLARE (cycleganfilter);

G_END_DECLS

#endif /* __GST_CYCLEGAN_FILTER_H__ */
