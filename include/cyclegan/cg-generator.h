#pragma once

#include <cyclegan/cg-model.h>
#include <cyclegan/cg-pixels.h>

G_BEGIN_DECLS

/**
 * CgGenerator:
 *
 * One generator of a model, ready to run: its weights prepared for the
 * convolution paths and a scratch arena planned for one frame size. Running
 * allocates nothing as long as the frame size stays the same. Not thread
 * safe: use one CgGenerator per thread (they may share the CgModel).
 *
 * Any frame size of at least 5x5 runs. When the height or width is not a
 * multiple of 4 the frame is reflection-padded at the bottom and right to the
 * next multiple of 4 and the output cropped back, so the output always has
 * the input's size.
 */
typedef struct _CgGenerator CgGenerator;

#define CG_MIN_FRAME_SIZE 5

CG_API CgGenerator *cg_generator_new (CgModel * model, CgDirection direction,
    GError ** error);
CG_API void cg_generator_free (CgGenerator * gen);

CG_API CgModel *cg_generator_get_model (const CgGenerator * gen);
CG_API CgDirection cg_generator_get_direction (const CgGenerator * gen);

/* Compute threads; 0 = all cores. The generator runs its own pool of
 * threads and splits every GEMM and pass over it; OpenBLAS itself is set
 * to one thread (a process-wide setting) while generators run. */
CG_API void cg_generator_set_threads (CgGenerator * gen, int n_threads);
CG_API int cg_generator_get_threads (const CgGenerator * gen);

/* Plan the scratch memory for a frame size (done by the run functions on a
 * size change; call it ahead to keep the first frame fast and to learn
 * whether the memory can be had). */
CG_API gboolean cg_generator_prepare (CgGenerator * gen, int width,
    int height, GError ** error);

/* Planar float in, planar float out: in_channels and out_channels planes of
 * width*height values in [-1, 1]. `src` and `dst` may be the same. */
CG_API gboolean cg_generator_run_planar (CgGenerator * gen, const float *src,
    float *dst, int width, int height, GError ** error);

/* Packed 8-bit pixels in and out (3-channel models only). `src` and `dst`
 * may be the same buffer (in place). X/alpha bytes are copied from src. */
CG_API gboolean cg_generator_run_pixels (CgGenerator * gen,
    CgPixelFormat format, const guint8 * src, gsize src_stride,
    guint8 * dst, gsize dst_stride, int width, int height, GError ** error);

/* Multiply-adds of one frame of that size, by direct convolution. */
CG_API double cg_generator_macs (const CgGenerator * gen, int width,
    int height);

G_END_DECLS
