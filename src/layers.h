/* The layers of the ResNet generator, forward passes (backward passes sit
 * beside them as the trainer adds them).
 *
 * Tensors are planar float32, C x H x W, one image (batch 1). Kernels take
 * no GError: shapes are checked when the network is planned.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  CG_PAD_ZERO,
  CG_PAD_REFLECT,
} CgPadMode;

/* A convolution's geometry. For a transposed convolution `cin`/`cout` are
 * the layer's input/output channels too (the weight is [cin, cout, k, k] as
 * PyTorch stores it), and `output_padding` adds rows/columns at the end. */
typedef struct
{
  int cin, cout;
  int k, stride, pad;
  CgPadMode pad_mode;
  int output_padding;
} CgConvShape;

/* pad.c */
int cg_reflect_index (int i, int n);
void cg_reflect_pad_forward (float *out, const float *in, int c, int h, int w,
    int pad);
/* Extend each of `c` planes of `h` x `w` (stored with row pitch `w`) in a
 * buffer of planes of `ph` x `pw` by reflection at the bottom and right. */
void cg_reflect_extend (float *planes, int c, int h, int w, int ph, int pw);

/* conv.c: im2col (padding fused in) + cblas_sgemm, in bands of output rows
 * so that the column buffer stays within `col_cap` floats. */
void cg_conv2d_out_size (const CgConvShape * s, int h, int w, int *oh,
    int *ow);
gsize cg_conv2d_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap);
void cg_conv2d_forward (float *out, const float *in, const float *weight,
    const float *bias, const CgConvShape * s, int h, int w, float *col,
    gsize col_cap);

/* conv_transpose.c: cblas_sgemm into columns, then col2im, in bands of
 * input rows. */
void cg_conv_transpose2d_out_size (const CgConvShape * s, int h, int w,
    int *oh, int *ow);
gsize cg_conv_transpose2d_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap);
void cg_conv_transpose2d_forward (float *out, const float *in,
    const float *weight, const float *bias, const CgConvShape * s, int h,
    int w, float *col, gsize col_cap);

/* instance_norm.c: InstanceNorm2d without affine, eps 1e-5, biased
 * variance, fused with what follows it in the generator. `out` may equal
 * `in`; `residual` may equal `out`. */
#define CG_IN_EPS 1e-5f
void cg_instance_norm_forward (float *out, const float *in, int c, int hw);
void cg_instance_norm_relu_forward (float *out, const float *in, int c,
    int hw);
void cg_instance_norm_add_forward (float *out, const float *in,
    const float *residual, int c, int hw);

/* activations.c */
void cg_relu_forward (float *out, const float *in, gsize n);
void cg_tanh_forward (float *out, const float *in, gsize n);

G_END_DECLS
