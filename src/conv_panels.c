/* Convolutions and transposed convolutions as GEMMs whose column matrix
 * is built block by block straight into cg_gemm_packed's B panels.
 *
 * im2col into one big buffer and then a GEMM that packs it again moves
 * every column value through memory twice. Here each thread takes blocks
 * of output pixels, gathers a block's columns (padding folded in) into
 * panels in its own scratch, sized to stay in its L2, and multiplies them
 * at once with the weights packed when the generator was made. No
 * thread waits on another until the layer is done.
 *
 * A stride-2 transposed convolution is four ordinary convolutions over
 * the input grid, one per output phase (oy % 2, ox % 2), each with the
 * taps that land on that phase (1, 2, 2 and 4 of the 3x3): the same
 * multiply-adds as weight^T . input + col2im, without the cout*9-row
 * column matrix and its scatter-add.
 */
#include "gemm.h"
#include "layers.h"
#include "parallel.h"
#include "simd.h"

#include <string.h>

/* Column-matrix floats per block: a few hundred KiB, so the panels and
 * the block of C stay in L2 next to the packed weights. */
#define BLOCK_FLOATS (96 << 10)

static int
block_cols (int k)
{
  int panels = MAX (1, BLOCK_FLOATS / (k * CG_GEMM_NR));
  return panels * CG_GEMM_NR;
}

/* Spread one row of the column matrix (nb values) over the panels. */
static inline void
to_panels (float *panels, int k, int p, const float *row, int nb)
{
  for (int j0 = 0; j0 < nb; j0 += CG_GEMM_NR) {
    float *dst = panels + (gsize) (j0 / CG_GEMM_NR) * k * CG_GEMM_NR +
        (gsize) p * CG_GEMM_NR;
    int n = MIN (CG_GEMM_NR, nb - j0);
    /* a constant size: inline vector moves, not a libc call per panel */
    if (n == CG_GEMM_NR) {
      memcpy (dst, row + j0, sizeof (float) * CG_GEMM_NR);
      continue;
    }
    memcpy (dst, row + j0, sizeof (float) * n);
    memset (dst + n, 0, sizeof (float) * (CG_GEMM_NR - n));
  }
}

/* ---- convolution ---- */

gsize
cg_conv2d_panels_prepared_floats (const CgConvShape * s)
{
  return cg_gemm_packed_a_floats (s->cout, s->cin * s->k * s->k);
}

void
cg_conv2d_panels_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  int k = s->cin * s->k * s->k;
  cg_gemm_pack_a (FALSE, s->cout, k, weight, k, prepared);
}

gsize
cg_conv2d_panels_thread_floats (const CgConvShape * s)
{
  int k = s->cin * s->k * s->k, nb = block_cols (k);
  /* the panels, and one gathered row */
  return (gsize) k *nb + nb;
}

/* The input, padded and split by column phase, which the gather reads:
 * row py of channel ci (py over the padded rows) holds the padded row's
 * columns r, r + stride, r + 2 stride, ... for each phase r in turn,
 * split_width of each. Tap (ky, kx) of output pixel (oy, ox) is then
 * element ox + kx / stride of phase kx % stride of row oy * stride + ky:
 * every span of the gather is one contiguous copy. Gathering with the
 * stride and the borders, element by element, cost as much as the
 * layer's products (perf, ngf 16 at 640x480). */
int
cg_conv2d_split_width (const CgConvShape * s, int w)
{
  return (w + 2 * s->pad + s->stride - 1) / s->stride;
}

gsize
cg_conv2d_panels_scratch_floats (const CgConvShape * s, int h, int w)
{
  return (gsize) s->cin * (h + 2 * s->pad) * s->stride *
      cg_conv2d_split_width (s, w);
}

typedef struct
{
  float *split;
  const float *in;
  const CgMoments *in_norm;
  const CgConvShape *s;
  int h, w;
} SplitJob;

void
cg_conv2d_split_row (float *dst, const float *in, const CgMoments * in_norm,
    const CgConvShape * s, int h, int w, int ci, int py)
{
  int st = s->stride, pad = s->pad, iy = py - pad;
  int pws = cg_conv2d_split_width (s, w);
  const float *src;
  float scale, offset;

  if ((iy < 0 || iy >= h) && s->pad_mode == CG_PAD_ZERO) {
    memset (dst, 0, sizeof (float) * st * pws);
    return;
  }
  src = in + ((gsize) ci * h + cg_reflect_index (iy, h)) * w;
  if (in_norm)
    cg_moments_coeffs (&in_norm[ci], &scale, &offset);
  for (int r = 0; r < st; r++) {
    if (in_norm)
      cg_gather_span_norm_relu (dst + r * pws, src, w, 0, pws, st, r - pad,
          s->pad_mode, scale, offset);
    else
      cg_gather_span (dst + r * pws, src, w, 0, pws, st, r - pad,
          s->pad_mode);
  }
}

/* Rows [begin, end) of the split input, over channels x padded rows. */
static void
split_rows (gpointer data, int begin, int end)
{
  const SplitJob *j = data;
  const CgConvShape *s = j->s;
  int ph = j->h + 2 * s->pad, pws = cg_conv2d_split_width (s, j->w);

  for (int rr = begin; rr < end; rr++)
    cg_conv2d_split_row (j->split + (gsize) rr * s->stride * pws, j->in,
        j->in_norm, s, j->h, j->w, rr / ph, rr % ph);
}

typedef struct
{
  float *out;
  const float *split, *prepared, *bias;
  const CgConvShape *s;
  int h, w, oh, ow, nb;
} PanelJob;

static void
conv_blocks (gpointer data, int begin, int end)
{
  const PanelJob *j = data;
  const CgConvShape *s = j->s;
  int k = s->cin * s->k * s->k;
  gsize ohw = (gsize) j->oh * j->ow;
  float *panels = cg_thread_scratch (cg_conv2d_panels_thread_floats (s));
  float *row = panels + (gsize) k * j->nb;
  int st = s->stride, ph = j->h + 2 * s->pad;
  int pws = cg_conv2d_split_width (s, j->w);

  for (int b = begin; b < end; b++) {
    gsize n0 = (gsize) b * j->nb;
    int nb = (int) MIN ((gsize) j->nb, ohw - n0);

    for (int ci = 0; ci < s->cin; ci++)
      for (int ky = 0; ky < s->k; ky++)
        for (int kx = 0; kx < s->k; kx++) {
          int p = (ci * s->k + ky) * s->k + kx;
          const float *tap = j->split +
              (((gsize) ci * ph + ky) * st + kx % st) * pws + kx / st;
          /* the block's pixels, output row by output row */
          for (int jj = 0; jj < nb;) {
            int oy = (int) ((n0 + jj) / j->ow), ox = (int) ((n0 + jj) % j->ow);
            int n = MIN (j->ow - ox, nb - jj);
            memcpy (row + jj, tap + (gsize) oy * st * st * pws + ox,
                sizeof (float) * n);
            jj += n;
          }
          to_panels (panels, k, p, row, nb);
        }

    if (j->bias)
      for (int co = 0; co < s->cout; co++)
        for (int x = 0; x < nb; x++)
          j->out[co * ohw + n0 + x] = j->bias[co];
    cg_gemm_packed (s->cout, nb, k, j->prepared, panels, j->bias != NULL,
        j->out + n0, (int) ohw);
  }
}

void
cg_conv2d_split_input (float *split, const float *in,
    const CgMoments * in_norm, const CgConvShape * s, int h, int w)
{
  SplitJob job = { split, in, in_norm, s, h, w };
  cg_parallel_for (s->cin * (h + 2 * s->pad), split_rows, &job);
}

void
cg_conv2d_panels_forward (float *out, const float *in, const float *prepared,
    const float *bias, const CgConvShape * s, int h, int w, float *scratch)
{
  int oh, ow;
  PanelJob job;

  cg_conv2d_split_input (scratch, in, NULL, s, h, w);
  cg_conv2d_out_size (s, h, w, &oh, &ow);
  job = (PanelJob) {
  out, scratch, prepared, bias, s, h, w, oh, ow,
        block_cols (s->cin * s->k * s->k)};
  cg_parallel_for ((int) (((gsize) oh * ow + job.nb - 1) / job.nb),
      conv_blocks, &job);
}

/* ---- transposed convolution, phase by phase ---- */

/* The taps of phase `a` (one axis): ky with (a + pad - ky) divisible by
 * the stride, reading input row y + dy for output row y * stride + a. */
static int
phase_taps (const CgConvShape * s, int a, int ky[], int dy[])
{
  int n = 0;
  for (int t = 0; t < s->k; t++) {
    int num = a + s->pad - t;
    if (((num % s->stride) + s->stride) % s->stride == 0) {
      ky[n] = t;
      dy[n] = num >= 0 ? num / s->stride : -((-num + s->stride - 1) /
          s->stride);
      n++;
    }
  }
  return n;
}

/* Packed weights of each phase (a, b), one after another: A[co][(ci, ty,
 * tx)] = weight[ci][co][ky[ty]][kx[tx]]. */
static gsize
phase_floats (const CgConvShape * s, int a, int b)
{
  int ky[16], dy[16], kx[16], dx[16];
  int ny = phase_taps (s, a, ky, dy), nx = phase_taps (s, b, kx, dx);
  return cg_gemm_packed_a_floats (s->cout, s->cin * ny * nx);
}

gsize
cg_conv_transpose2d_panels_prepared_floats (const CgConvShape * s)
{
  gsize n = 0;
  for (int a = 0; a < s->stride; a++)
    for (int b = 0; b < s->stride; b++)
      n += phase_floats (s, a, b);
  return n;
}

gboolean
cg_conv_transpose2d_panels_supported (const CgConvShape * s)
{
  /* every phase has taps and the output is exactly stride x the input
   * (the generator's k 3, stride 2, pad 1, output padding 1) */
  return s->stride >= 1 && s->stride <= 4 && s->k <= 16
      && s->k - 2 * s->pad + s->output_padding == s->stride
      && s->k >= s->stride;
}

void
cg_conv_transpose2d_panels_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  for (int a = 0; a < s->stride; a++)
    for (int b = 0; b < s->stride; b++) {
      int ky[16], dy[16], kx[16], dx[16];
      int ny = phase_taps (s, a, ky, dy), nx = phase_taps (s, b, kx, dx);
      int k = s->cin * ny * nx;
      float *a_rows = g_new (float, (gsize) s->cout * k);
      for (int co = 0; co < s->cout; co++)
        for (int ci = 0; ci < s->cin; ci++)
          for (int ty = 0; ty < ny; ty++)
            for (int tx = 0; tx < nx; tx++)
              a_rows[(gsize) co * k + (ci * ny + ty) * nx + tx] =
                  weight[(((gsize) ci * s->cout + co) * s->k + ky[ty]) *
                  s->k + kx[tx]];
      cg_gemm_pack_a (FALSE, s->cout, k, a_rows, k, prepared);
      prepared += phase_floats (s, a, b);
      g_free (a_rows);
    }
}

gsize
cg_conv_transpose2d_panels_thread_floats (const CgConvShape * s)
{
  int kmax = s->cin * ((s->k + s->stride - 1) / s->stride) *
      ((s->k + s->stride - 1) / s->stride);
  int nb = block_cols (kmax);
  /* panels, one gathered row, the block of C of each column phase */
  return (gsize) kmax *nb + nb + (gsize) s->stride * s->cout * nb;
}

typedef struct
{
  float *out;
  const float *in, *prepared, *bias;
  const CgConvShape *s;
  int h, w, nb, blocks;         /* blocks per row phase */
} PhaseJob;

/* dst[2x] = c0[x] + bias, dst[2x + 1] = c1[x] + bias: the two column
 * phases of one output row, interleaved eight pixels at a time (strided
 * scalar stores were a third of the layer's time). */
CG_SIMD_CLONES static void
interleave2 (float *dst, const float *c0, const float *c1, float bias, int n)
{
  const cg_v8i lo = { 0, 8, 1, 9, 2, 10, 3, 11 };
  const cg_v8i hi = { 4, 12, 5, 13, 6, 14, 7, 15 };
  cg_v8 b = cg_v8_splat (bias);
  int x = 0;

  for (; x + 8 <= n; x += 8) {
    cg_v8 a0 = cg_v8_load (c0 + x) + b, a1 = cg_v8_load (c1 + x) + b;
    cg_v8_store (dst + 2 * x, __builtin_shuffle (a0, a1, lo));
    cg_v8_store (dst + 2 * x + 8, __builtin_shuffle (a0, a1, hi));
  }
  for (; x < n; x++) {
    dst[2 * x] = c0[x] + bias;
    dst[2 * x + 1] = c1[x] + bias;
  }
}

/* Gather phase (a, b)'s columns for the block's nb input pixels from n0
 * into the panels and multiply: c [cout, nb], rows j->nb apart. */
static void
phase_product (const PhaseJob * j, int a, int b, gsize n0, int nb,
    float *panels, float *row, float *c)
{
  const CgConvShape *s = j->s;
  int st = s->stride;
  gsize hw = (gsize) j->h * j->w;
  int ky[16], dy[16], kx[16], dx[16];
  int ny = phase_taps (s, a, ky, dy), nx = phase_taps (s, b, kx, dx);
  int k = s->cin * ny * nx;
  const float *prepared = j->prepared;

  for (int q = 0; q < a * st + b; q++)
    prepared += phase_floats (s, q / st, q % st);

  for (int ci = 0; ci < s->cin; ci++) {
    const float *plane = j->in + (gsize) ci * hw;
    for (int ty = 0; ty < ny; ty++)
      for (int tx = 0; tx < nx; tx++) {
        for (int jj = 0; jj < nb;) {
          int y = (int) ((n0 + jj) / j->w), x = (int) ((n0 + jj) % j->w);
          int x1 = MIN (j->w, x + (nb - jj));
          int iy = y + dy[ty];
          if (iy < 0 || iy >= j->h)
            memset (row + jj, 0, sizeof (float) * (x1 - x));
          else
            cg_gather_span (row + jj, plane + (gsize) iy * j->w, j->w, x, x1,
                1, dx[tx], CG_PAD_ZERO);
          jj += x1 - x;
        }
        to_panels (panels, k, (ci * ny + ty) * nx + tx, row, nb);
      }
  }
  cg_gemm_packed (s->cout, nb, k, prepared, panels, FALSE, c, j->nb);
}

/* Tasks are (row phase a, block of input pixels); each computes every
 * column phase b of its block, so that it writes whole output rows. */
static void
phase_blocks (gpointer data, int begin, int end)
{
  const PhaseJob *j = data;
  const CgConvShape *s = j->s;
  int st = s->stride, oh = j->h * st, ow = j->w * st;
  float *panels =
      cg_thread_scratch (cg_conv_transpose2d_panels_thread_floats (s));
  int kmax = s->cin * ((s->k + st - 1) / st) * ((s->k + st - 1) / st);
  float *row = panels + (gsize) kmax * j->nb;
  float *c = row + j->nb;
  gsize cplane = (gsize) s->cout * j->nb;

  for (int task = begin; task < end; task++) {
    int a = task / j->blocks;
    gsize n0 = (gsize) (task % j->blocks) * j->nb;
    int nb = (int) MIN ((gsize) j->nb, (gsize) j->h * j->w - n0);

    for (int b = 0; b < st; b++)
      phase_product (j, a, b, n0, nb, panels, row, c + b * cplane);

    /* the phases' pixels into output row y * st + a, with the bias,
     * input row by input row */
    for (int jj = 0; jj < nb;) {
      int y = (int) ((n0 + jj) / j->w), x0 = (int) ((n0 + jj) % j->w);
      int n = MIN (j->w - x0, nb - jj);
      for (int co = 0; co < s->cout; co++) {
        float bias = j->bias ? j->bias[co] : 0.0f;
        const float *src = c + (gsize) co * j->nb + jj;
        float *dst = j->out + (gsize) co * oh * ow +
            (gsize) (y * st + a) * ow + (gsize) x0 * st;
        if (st == 2)
          interleave2 (dst, src, src + cplane, bias, n);
        else
          for (int b = 0; b < st; b++)
            for (int x = 0; x < n; x++)
              dst[x * st + b] = src[b * cplane + x] + bias;
      }
      jj += n;
    }
  }
}

void
cg_conv_transpose2d_panels_forward (float *out, const float *in,
    const float *prepared, const float *bias, const CgConvShape * s, int h,
    int w)
{
  int kmax = s->cin * ((s->k + s->stride - 1) / s->stride) *
      ((s->k + s->stride - 1) / s->stride);
  int nb = block_cols (kmax);
  int blocks = (int) (((gsize) h * w + nb - 1) / nb);
  PhaseJob job = { out, in, prepared, bias, s, h, w, nb, blocks };

  g_return_if_fail (cg_conv_transpose2d_panels_supported (s));
  cg_parallel_for (s->stride * blocks, phase_blocks, &job);
}
