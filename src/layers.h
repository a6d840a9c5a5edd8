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

/* A channel's count, mean and sum of squared deviations. The
 * convolution kernels gather them as they write their output (sums of
 * their registers, or of the band they just wrote, merged as Chan, Golub
 * and LeVeque do), so that the norm after them need not read the whole
 * tensor once more for them. */
typedef struct
{
  double n, mean, m2;
} CgMoments;
void cg_moments_of_span (CgMoments * m, const float *x, gsize n);
/* From n values' sums of (x - shift) and (x - shift)^2: the kernels that
 * gather them from their accumulators (thin and direct), row by row. */
void cg_moments_from_sums (CgMoments * m, double n, double shift,
    double s1, double s2);
void cg_moments_merge (CgMoments * into, const CgMoments * from);
/* The norm's y = x * scale + offset for a channel of these moments. */
void cg_moments_coeffs (const CgMoments * m, float *scale, float *offset);
/* out[ch] = the merge of parts[p * c + ch] over p < n_parts (out may be
 * parts). */
void cg_moments_reduce (CgMoments * out, const CgMoments * parts,
    int n_parts, int c);
/* x = ReLU (x * scale + offset) over n values: the norm of the layer
 * before, applied by a convolution as it copies its input rows. The
 * convolutions that take `in_norm` (the input channels' moments, or
 * NULL) read each input value as ReLU (InstanceNorm (x)) that way,
 * padding zeros left zero, so that the norm is not a pass of its own. */
void cg_norm_relu_span (float *x, int n, float scale, float offset);
/* The same from src into dst, in one pass. */
void cg_norm_relu_copy (float *restrict dst, const float *restrict src,
    int n, float scale, float offset);

/* How many rows of `rows` fit a column buffer of `budget` floats when
 * each takes rows_k * width floats: at least one, at most all. */
static inline int
cg_band_rows (gsize rows_k, int width, int rows, gsize budget)
{
  gsize per_row = rows_k * (gsize) width;
  gsize n = per_row ? budget / per_row : (gsize) rows;
  return (int) CLAMP (n, 1, (gsize) rows);
}

/* pad.c */
int cg_reflect_index (int i, int n);
/* dst[x - x0] = src[x * stride + off] for x in [x0, x1), positions
 * outside [0, w) reflected or zero: a span of one column-matrix row. */
void cg_gather_span (float *dst, const float *src, int w, int x0, int x1,
    int stride, int off, CgPadMode mode);
/* The same with the input norm (cg_norm_relu_span) applied to the image's
 * values as they are gathered, in the same pass; zero padding stays
 * zero. */
void cg_gather_span_norm_relu (float *dst, const float *src, int w, int x0,
    int x1, int stride, int off, CgPadMode mode, float scale, float offset);
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

/* conv_thin.c: few output (or input) channels (the 7x7 to and from RGB,
 * the discriminator's last 4x4), stride 1, by direct convolution over a
 * ring of padded input rows: "same" padding, or any zero padding up to
 * k - 1 (output h + 2 pad - k + 1 rows; k - 1 is the adjoint of a layer
 * to RGB). With `tanh`, the output is tanh of the
 * convolution (the generator's last layer). `moments`: NULL, or room for
 * _moments_len entries; the first cout then hold the output channels'
 * moments (of the convolution, before any tanh). `scratch` holds
 * cg_conv2d_thin_scratch_floats. */
gsize cg_conv2d_thin_scratch_floats (const CgConvShape * s, int h, int w);
gsize cg_conv2d_thin_moments_len (const CgConvShape * s, int h);
void cg_conv2d_thin_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *weight, const float *bias,
    const CgConvShape * s, int h, int w, gboolean tanh, CgMoments * moments,
    float *scratch);
/* Stride 1, padding as above and at most 4 channels in or out: where
 * these kernels beat im2col (the generator's, the trainer's and the
 * backward's choice). */
gboolean cg_conv2d_thin_preferred (const CgConvShape * s);
/* Its weight gradient (accumulated), over bands of padded input rows
 * copied into `scratch` (cg_conv2d_thin_wgrad_floats). */
gsize cg_conv2d_thin_wgrad_floats (const CgConvShape * s, int h, int w,
    gsize budget);
void cg_conv2d_thin_wgrad (float *dweight, const float *doutput,
    const float *input, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget);

/* conv_winograd.c: Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions
 * with pad 1: the input and output transforms around 36 GEMMs.
 * `prepared` holds CG_WINOGRAD_PREPARED_FLOATS floats from
 * cg_conv2d_winograd_prepare (the transformed weights, packed for
 * cg_gemm_packed). */
#define CG_WINOGRAD_PREPARED_FLOATS(s) \
  ((gsize) 36 * (((s)->cout + 7) / 8 * 8) * (s)->cin)
void cg_conv2d_winograd_prepare (float *prepared, const float *weight,
    const CgConvShape * s);
gsize cg_conv2d_winograd_scratch_floats (const CgConvShape * s, int h,
    int w, gsize budget);
/* Per-thread working rows (cg_thread_scratch) the transforms need. */
gsize cg_conv2d_winograd_thread_floats (const CgConvShape * s, int h,
    int w, gsize budget);
/* `moments`: NULL, or room for _moments_len entries; the first cout then
 * hold the output channels' moments. */
gsize cg_conv2d_winograd_moments_len (const CgConvShape * s, int h);
void cg_conv2d_winograd_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, float *scratch, gsize budget,
    CgMoments * moments);
/* The same products in another order: each thread takes bands of tile
 * rows through all three stages in its own scratch (_thread_floats),
 * none shared. Faster where the transformed weights fit in L2 beside a
 * band, which _fused_preferred tells. */
gboolean cg_conv2d_winograd_fused_preferred (const CgConvShape * s);
void cg_conv2d_winograd_forward_fused (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, CgMoments * moments);

/* conv_panels.c: convolutions (any k, stride, padding) and transposed
 * convolutions (phase by phase) as GEMMs over column blocks gathered
 * straight into packed panels, each thread in its own scratch
 * (cg_thread_scratch, _thread_floats). The weights are packed once by
 * _prepare into _prepared_floats floats. */
gsize cg_conv2d_panels_prepared_floats (const CgConvShape * s);
void cg_conv2d_panels_prepare (float *prepared, const float *weight,
    const CgConvShape * s);
gsize cg_conv2d_panels_thread_floats (const CgConvShape * s);
/* The shared scratch: the input padded and split by column phase
 * (cg_conv2d_split_input): padded row py of channel ci at row ci * (h + 2
 * pad) + py, each row its stride phases of cg_conv2d_split_width floats,
 * phase r holding the padded row's columns r, r + stride, ..., and
 * `in_norm` applied as it is split. */
gsize cg_conv2d_panels_scratch_floats (const CgConvShape * s, int h, int w);
int cg_conv2d_split_width (const CgConvShape * s, int w);
void cg_conv2d_split_input (float *split, const float *in,
    const CgMoments * in_norm, const CgConvShape * s, int h, int w);
/* One padded row py of channel ci of it, into dst. */
void cg_conv2d_split_row (float *dst, const float *in,
    const CgMoments * in_norm, const CgConvShape * s, int h, int w, int ci,
    int py);
void cg_conv2d_panels_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w, float *scratch);
/* Output exactly stride x the input (k - 2 pad + output_padding ==
 * stride), stride <= 4, k <= 16. */
gboolean cg_conv_transpose2d_panels_supported (const CgConvShape * s);
gsize cg_conv_transpose2d_panels_prepared_floats (const CgConvShape * s);
void cg_conv_transpose2d_panels_prepare (float *prepared,
    const float *weight, const CgConvShape * s);
gsize cg_conv_transpose2d_panels_thread_floats (const CgConvShape * s);
void cg_conv_transpose2d_panels_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w);

/* conv_direct.c: the 3x3 stride-2 transposed convolution (pad 1, output
 * padding 1) computed directly from the input rows, on AVX-512 CPUs
 * (_supported says FALSE elsewhere). Weights rearranged once by
 * _prepare into _prepared_floats floats. */
gboolean cg_conv_transpose2d_direct_supported (const CgConvShape * s);
gsize cg_conv_transpose2d_direct_prepared_floats (const CgConvShape * s);
void cg_conv_transpose2d_direct_prepare (float *prepared,
    const float *weight, const CgConvShape * s);
/* `accumulate`: out += the product (a stride-2 convolution's input
 * gradient, which is this transposed convolution of dout). `moments`:
 * NULL, or room for _moments_len entries (0: it cannot gather them); the
 * first cout then hold the output channels' moments (not with
 * `accumulate`). */
gsize cg_conv_transpose2d_direct_moments_len (const CgConvShape * s, int h);
void cg_conv_transpose2d_direct_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w, gboolean accumulate, CgMoments * moments);
/* And the 3x3 stride-2 convolution (any padding), over the input split
 * by column phase (cg_conv2d_split_row) a few rows at a time in
 * `scratch` (_scratch_floats). `moments`: NULL, or room for _moments_len
 * entries (0: it cannot gather them); the first cout then hold the
 * output channels' moments. */
gboolean cg_conv2d_direct_supported (const CgConvShape * s);
/* ...and faster than the panels there (the choosers' test) */
gboolean cg_conv2d_direct_preferred (const CgConvShape * s);
gsize cg_conv2d_direct_prepared_floats (const CgConvShape * s);
void cg_conv2d_direct_prepare (float *prepared, const float *weight,
    const CgConvShape * s);
gsize cg_conv2d_direct_scratch_floats (const CgConvShape * s, int h, int w);
gsize cg_conv2d_direct_moments_len (const CgConvShape * s, int h);
void cg_conv2d_direct_forward (float *out, const float *in,
    const CgMoments * in_norm, const float *prepared, const float *bias,
    const CgConvShape * s, int h, int w, CgMoments * moments,
    float *scratch);

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
/* The same two with the channels' moments known (NULL: read them). */
void cg_instance_norm_relu_apply (float *out, const float *in,
    const CgMoments * moments, int c, int hw);
void cg_instance_norm_add_apply (float *out, const float *in,
    const float *residual, const CgMoments * moments, int c, int hw);

/* activations.c */
void cg_relu_forward (float *out, const float *in, gsize n);
void cg_tanh_forward (float *out, const float *in, gsize n);

/* ---- Training: forward passes the generator does not need, and every
 * layer's backward pass, beside the forward in the same file. Arguments
 * in the forward's order with the gradients first: (dinput, dweight,
 * dbias, doutput, input, weight, shape, dims, scratch). Backward passes
 * of layers with parameters or fan-in *accumulate* into their gradient
 * buffers (zeroing is cg_zero_grad); a NULL gradient is not computed. ---- */

/* pad.c: din [c, h, w] += the reflected sum of dout [c, h+2p, w+2p]. */
void cg_reflect_pad_backward (float *dinput, const float *doutput, int c,
    int h, int w, int pad);

/* conv.c. The column matrix of output rows y0..y1 of a convolution (the
 * forward's im2col, padding folded in): [cin*k*k, (y1-y0)*ow]. */
void cg_conv2d_im2col (float *col, const float *in, const CgConvShape * s,
    int h, int w, int y0, int y1);
/* dinput [cin, h, w] += W^T . dout (col2im, reflect padding folds the
 * border's gradient back onto the pixels it mirrors); dweight [cout, cin,
 * k, k] += dout . col^T; dbias [cout] += plane sums of dout. `col` holds
 * cg_conv2d_backward_col_floats (same budget): stride-1 layers with fewer
 * outputs than inputs take dinput from an adjoint convolution instead. */
gsize cg_conv2d_backward_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap);
void cg_conv2d_backward (float *dinput, float *dweight, float *dbias,
    const float *doutput, const float *input, const float *weight,
    const float *adjoint_prepared, const CgConvShape * s, int h, int w,
    float *col, gsize col_cap);
/* 3x3 stride-1 pad-1 layers take dinput by Winograd, with the flipped
 * kernel's transform: made per call unless `adjoint_prepared` holds it
 * (cg_conv2d_winograd_adjoint_floats floats from _adjoint_prepare; a
 * trainer keeps it while the weights stay the same). */
gsize cg_conv2d_winograd_adjoint_floats (const CgConvShape * s);
/* ... and dweight [cout, cin, 3, 3] += by Winograd too (conv_winograd.c),
 * in _wgrad_floats of scratch. */
gsize cg_conv2d_winograd_wgrad_floats (const CgConvShape * s, int h, int w,
    gsize budget);
void cg_conv2d_winograd_wgrad (float *dweight, const float *doutput,
    const float *input, const CgConvShape * s, int h, int w, float *scratch,
    gsize budget);
void cg_conv2d_winograd_adjoint_prepare (float *prepared,
    const float *weight, const CgConvShape * s);

/* C [m, n] += A [m, k] . B [n, k]^T (row-major), the columns of C split
 * over the current thread pool (parallel.h): the weight gradients. */
void cg_sgemm_nt_acc (int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, float *c, int ldc);

/* conv_transpose.c: the input gradient of a transposed convolution is the
 * plain convolution of dout with the same weight, so the column matrix of
 * dout ([cout*k*k, h*w]) serves both gradients. `col` holds
 * cg_conv_transpose2d_col_floats floats. */
void cg_conv_transpose2d_backward (float *dinput, float *dweight,
    float *dbias, const float *doutput, const float *input,
    const float *weight, const CgConvShape * s, int h, int w, float *col,
    gsize col_cap);

/* instance_norm.c: dinput += rstd (dout - mean (dout) - xhat mean (dout
 * xhat)), the statistics recomputed from `input` (the layer's input, as
 * saved by the forward). */
void cg_instance_norm_backward (float *dinput, const float *doutput,
    const float *input, int c, int hw);
/* The same from the gradient of an activation after the norm (`output`:
 * the activation's output; slope 0 for ReLU, CG_LRELU_SLOPE; NULL: none),
 * channel by channel so that each plane stays in cache from the
 * activation's backward to the last pass. doutput is overwritten with
 * the activation's input gradient, and dinput is written, not summed
 * into. */
void cg_instance_norm_act_backward (float *dinput, float *doutput,
    const float *output, float slope, const float *input, int c, int hw);

/* activations.c. Elementwise backward passes write (they may run in place,
 * dinput == doutput): in these networks an activation's input has no
 * other consumer, so nothing needs summing. */
#define CG_LRELU_SLOPE 0.2f
void cg_leaky_relu_forward (float *out, const float *in, gsize n);
/* `output` is the forward's output (its sign is the input's). */
void cg_relu_backward (float *dinput, const float *doutput,
    const float *output, gsize n);
void cg_leaky_relu_backward (float *dinput, const float *doutput,
    const float *output, gsize n);
void cg_tanh_backward (float *dinput, const float *doutput,
    const float *output, gsize n);
/* The residual add out = x + f: both branches receive dout; this adds it
 * into the branch that already holds a gradient (acc += dout). */
void cg_add_backward (float *dacc, const float *doutput, gsize n);
/* out = a + b (out may be either) */
void cg_add_forward (float *out, const float *a, const float *b, gsize n);

G_END_DECLS
