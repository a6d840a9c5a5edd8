/* Convolution by im2col + sgemm.
 *
 * The column matrix of a band of output rows is built with the padding
 * (zero or reflect) folded in, so no padded copy of the input is made; the
 * band is sized to keep the column buffer within the arena's budget while
 * giving sgemm a wide N.
 */
#include "cpu.h"
#include "gemm.h"
#include "layers.h"
#include "parallel.h"

#include <string.h>

void
cg_conv2d_out_size (const CgConvShape * s, int h, int w, int *oh, int *ow)
{
  *oh = (h + 2 * s->pad - s->k) / s->stride + 1;
  *ow = (w + 2 * s->pad - s->k) / s->stride + 1;
}

gsize
cg_conv2d_col_floats (const CgConvShape * s, int h, int w, gsize col_cap)
{
  int oh, ow;
  gsize rows_k = (gsize) s->cin * s->k * s->k;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  return rows_k * ow * cg_band_rows (rows_k, ow, oh, col_cap);
}

static void
im2col_channels (float *col, const float *in, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1, int ci0, int ci1)
{
  gsize n = (gsize) (y1 - y0) * ow;

  for (int ci = ci0; ci < ci1; ci++) {
    const float *plane = in + (gsize) ci * h * w;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        float *row = col + ((gsize) (ci * s->k + ky) * s->k + kx) * n;
        for (int y = y0; y < y1; y++) {
          float *dst = row + (gsize) (y - y0) * ow;
          int iy = y * s->stride - s->pad + ky;
          if (iy < 0 || iy >= h) {
            if (s->pad_mode == CG_PAD_ZERO) {
              memset (dst, 0, sizeof (float) * ow);
              continue;
            }
            iy = cg_reflect_index (iy, h);
          }
          cg_gather_span (dst, plane + (gsize) iy * w, w, 0, ow, s->stride,
              kx - s->pad, s->pad_mode);
        }
      }
    }
  }
}

typedef struct
{
  float *col;
  const float *in;
  const CgConvShape *s;
  int h, w, ow, y0, y1;
} Im2colJob;

static void
im2col_job (gpointer data, int begin, int end)
{
  const Im2colJob *j = data;
  im2col_channels (j->col, j->in, j->s, j->h, j->w, j->ow, j->y0, j->y1,
      begin, end);
}

/* Rows of the column matrix for output rows [y0, y1), input channels
 * split over the current thread pool. */
static void
im2col_band (float *col, const float *in, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1)
{
  Im2colJob job = { col, in, s, h, w, ow, y0, y1 };
  cg_parallel_for (s->cin, im2col_job, &job);
}

/* out [cout, oh, ow] = weight [cout, cin, k, k] (*) in [cin, h, w] + bias */
void
cg_conv2d_forward (float *out, const float *in, const float *weight,
    const float *bias, const CgConvShape * s, int h, int w, float *col,
    gsize col_cap)
{
  int oh, ow;
  int kk = s->cin * s->k * s->k;
  gsize ohw;
  int band;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  ohw = (gsize) oh * ow;
  band = cg_band_rows (kk, ow, oh, col_cap);

  for (int y0 = 0; y0 < oh; y0 += band) {
    int y1 = MIN (y0 + band, oh);
    int n = (y1 - y0) * ow;
    float *dst = out + (gsize) y0 * ow;

    if (bias) {
      for (int co = 0; co < s->cout; co++)
        for (int j = 0; j < n; j++)
          dst[co * ohw + j] = bias[co];
    }
    im2col_band (col, in, s, h, w, ow, y0, y1);
    cg_sgemm (FALSE, s->cout, n, kk, weight, kk, col, n, bias != NULL,
        dst, (int) ohw);
  }
}

/* ---- backward ---- */

void
cg_conv2d_im2col (float *col, const float *in, const CgConvShape * s, int h,
    int w, int y0, int y1)
{
  int oh, ow;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  im2col_band (col, in, s, h, w, ow, y0, y1);
}

/* The adjoint of im2col_band: each column entry adds into the input pixel
 * it was read from; entries read from the zero border are dropped, those
 * read from the reflected border add into the pixel they mirror. */
typedef struct
{
  float *din;
  const float *col;
  const CgConvShape *s;
  int h, w, ow, y0, y1;
} Col2imJob;

/* Input channels [begin, end): each adds only into its own plane. */
static void
col2im_channels (gpointer data, int begin, int end)
{
  const Col2imJob *j = data;
  float *din = j->din;
  const float *col = j->col;
  const CgConvShape *s = j->s;
  int h = j->h, w = j->w, ow = j->ow, y0 = j->y0, y1 = j->y1;
  gsize n = (gsize) (y1 - y0) * ow;

  for (int ci = begin; ci < end; ci++) {
    float *plane = din + (gsize) ci * h * w;
    for (int ky = 0; ky < s->k; ky++) {
      for (int kx = 0; kx < s->k; kx++) {
        const float *row = col + ((gsize) (ci * s->k + ky) * s->k + kx) * n;
        int off = kx - s->pad;
        /* x in [x_lo, x_hi) reads inside the row without reflection */
        int x_lo = off >= 0 ? 0 : (-off + s->stride - 1) / s->stride;
        int x_hi = w - off <= 0 ? 0 : (w - off + s->stride - 1) / s->stride;
        x_lo = MIN (x_lo, ow);
        x_hi = CLAMP (x_hi, x_lo, ow);
        for (int y = y0; y < y1; y++) {
          const float *src = row + (gsize) (y - y0) * ow;
          int iy = y * s->stride - s->pad + ky;
          float *dst;
          if (iy < 0 || iy >= h) {
            if (s->pad_mode == CG_PAD_ZERO)
              continue;
            iy = cg_reflect_index (iy, h);
          }
          dst = plane + (gsize) iy * w;
          if (s->pad_mode == CG_PAD_REFLECT) {
            for (int x = 0; x < x_lo; x++)
              dst[cg_reflect_index (x * s->stride + off, w)] += src[x];
            for (int x = x_hi; x < ow; x++)
              dst[cg_reflect_index (x * s->stride + off, w)] += src[x];
          }
          if (s->stride == 1) {
            float *d = dst + off;
            for (int x = x_lo; x < x_hi; x++)
              d[x] += src[x];
          } else {
            for (int x = x_lo; x < x_hi; x++)
              dst[x * s->stride + off] += src[x];
          }
        }
      }
    }
  }
}

static void
col2im_band (float *din, const float *col, const CgConvShape * s, int h,
    int w, int ow, int y0, int y1)
{
  Col2imJob job = { din, col, s, h, w, ow, y0, y1 };
  cg_parallel_for (s->cin, col2im_channels, &job);
}

/* ---- C += A . B^T with the columns of C split over the current pool ---- */

#define NT_BLOCK 32

typedef struct
{
  int m, n, k;
  const float *a, *b;
  int lda, ldb, ldc;
  float *c;
} NtJob;

static void
nt_columns (gpointer data, int begin, int end)
{
  const NtJob *j = data;
  int c0 = begin * NT_BLOCK, c1 = MIN (end * NT_BLOCK, j->n);

  if (c1 > c0)
    cg_gemm_nt_acc (j->m, c1 - c0, j->k, j->a, j->lda,
        j->b + (gsize) c0 * j->ldb, j->ldb, j->c + c0, j->ldc);
}

void
cg_sgemm_nt_acc (int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, float *c, int ldc)
{
  NtJob job = { m, n, k, a, b, lda, ldb, ldc, c };
  /* each piece packs all of A */
  cg_parallel_for_pieces ((n + NT_BLOCK - 1) / NT_BLOCK, 1, nt_columns,
      &job);
}

/* ---- the input gradient of a stride-1 convolution with few outputs ----
 *
 * Through columns it costs cin*k*k floats per output pixel written and
 * read back (the 7x7 to RGB: 3136 per pixel, from 3 channels of dout).
 * It is also the full correlation of dout with the flipped, transposed
 * kernel, a convolution over cout input channels onto the padded input
 * grid, whose border then folds back (reflected or dropped). */
static gboolean
use_adjoint (const CgConvShape * s)
{
  return s->stride == 1 && s->cout < s->cin;
}

static gsize
adjoint_floats (const CgConvShape * s, int h, int w)
{
  return (gsize) s->cin * s->cout * s->k * s->k +
      (gsize) s->cin * (h + 2 * s->pad) * (w + 2 * s->pad);
}

/* Planes [c, h, w] and the same zero-padded by `pad` [c, h + 2 pad, w +
 * 2 pad]: din += dpad's interior (fold), or dpad = din padded (pad), the
 * channels split over the current pool. */
typedef struct
{
  float *plain, *padded;
  int h, w, pad;
  gboolean fold;
} PaddedJob;

static void
padded_channels (gpointer data, int c0, int c1)
{
  const PaddedJob *j = data;
  int h = j->h, w = j->w, pad = j->pad, pw = w + 2 * pad;
  gsize pp = (gsize) (h + 2 * pad) * pw;

  for (int ch = c0; ch < c1; ch++) {
    float *padded = j->padded + ch * pp;
    if (!j->fold) {
      memset (padded, 0, sizeof (float) * pad * pw);
      memset (padded + (gsize) (h + pad) * pw, 0, sizeof (float) * pad * pw);
    }
    for (int y = 0; y < h; y++) {
      float *prow = padded + (gsize) (y + pad) * pw;
      float *row = j->plain + ((gsize) ch * h + y) * w;
      if (j->fold) {
        for (int x = 0; x < w; x++)
          row[x] += prow[pad + x];
      } else {
        memset (prow, 0, sizeof (float) * pad);
        memcpy (prow + pad, row, sizeof (float) * w);
        memset (prow + pad + w, 0, sizeof (float) * pad);
      }
    }
  }
}

static void
fold_padded (float *din, const float *dpad, int c, int h, int w, int pad,
    CgPadMode mode)
{
  PaddedJob job = { din, (float *) dpad, h, w, pad, TRUE };

  if (mode == CG_PAD_REFLECT)
    cg_reflect_pad_backward (din, dpad, c, h, w, pad);
  else
    cg_parallel_for (c, padded_channels, &job);
}

/* ---- the same for 3x3 stride-1 pad-1 layers (the residual blocks), by
 * Winograd: dout zero-padded by one more pixel, the pad-1 Winograd
 * convolution with the flipped kernel gives the padded input's gradient.
 * Everything it needs is carved from the column buffer. ---- */
static gboolean
use_winograd_adjoint (const CgConvShape * s)
{
  return s->k == 3 && s->stride == 1 && s->pad == 1;
}

static CgConvShape
winograd_adjoint_shape (const CgConvShape * s)
{
  CgConvShape a = {.cin = s->cout,.cout = s->cin,.k = 3,.stride = 1,.pad =
        1,.pad_mode = CG_PAD_ZERO };
  return a;
}

/* The adjoint convolution of a layer to few channels has those few as
 * its input: the thin kernel runs it, at wider zero padding (any k). */
static gboolean
use_thin_adjoint (const CgConvShape * s)
{
  return s->cout <= 4;
}

#define ROUND16(n) (((gsize) (n) + 15) & ~(gsize) 15)

static gsize
winograd_adjoint_floats (const CgConvShape * s, int h, int w, gsize col_cap)
{
  CgConvShape a = winograd_adjoint_shape (s);
  gsize pp = (gsize) (h + 2) * (w + 2);
  return ROUND16 (CG_WINOGRAD_PREPARED_FLOATS (&a)) +
      ROUND16 ((gsize) 9 * s->cin * s->cout) + ROUND16 (s->cout * pp) +
      ROUND16 (s->cin * pp) + cg_conv2d_winograd_scratch_floats (&a, h + 2,
      w + 2, col_cap);
}

static void
flip_transpose_3x3 (float *wt, const float *weight, const CgConvShape * s)
{
  for (int co = 0; co < s->cout; co++)
    for (int ci = 0; ci < s->cin; ci++)
      for (int t = 0; t < 9; t++)
        wt[((gsize) ci * s->cout + co) * 9 + (8 - t)] =
            weight[((gsize) co * s->cin + ci) * 9 + t];
}

gsize
cg_conv2d_winograd_adjoint_floats (const CgConvShape * s)
{
  CgConvShape a = winograd_adjoint_shape (s);
  return CG_WINOGRAD_PREPARED_FLOATS (&a);
}

void
cg_conv2d_winograd_adjoint_prepare (float *prepared, const float *weight,
    const CgConvShape * s)
{
  CgConvShape a = winograd_adjoint_shape (s);
  float *wt = g_new (float, (gsize) 9 * s->cin * s->cout);

  flip_transpose_3x3 (wt, weight, s);
  cg_conv2d_winograd_prepare (prepared, wt, &a);
  g_free (wt);
}

static void
winograd_adjoint_backward (float *dinput, const float *doutput,
    const float *weight, const float *prepared, const CgConvShape * s, int h,
    int w, float *col, gsize col_cap)
{
  CgConvShape a = winograd_adjoint_shape (s);
  int ph = h + 2, pw = w + 2;
  gsize pp = (gsize) ph * pw;
  float *u = col;
  float *wt = u + ROUND16 (CG_WINOGRAD_PREPARED_FLOATS (&a));
  float *gpad = wt + ROUND16 ((gsize) 9 * s->cin * s->cout);
  float *dpad = gpad + ROUND16 (s->cout * pp);
  float *scratch = dpad + ROUND16 (s->cin * pp);

  if (!prepared) {
    flip_transpose_3x3 (wt, weight, s);
    cg_conv2d_winograd_prepare (u, wt, &a);
    prepared = u;
  }
  {
    PaddedJob pad_job = { (float *) doutput, gpad, h, w, 1, FALSE };
    cg_parallel_for (s->cout, padded_channels, &pad_job);
  }
  if (cg_conv2d_winograd_fused_preferred (&a))
    cg_conv2d_winograd_forward_fused (dpad, gpad, NULL, prepared, NULL, &a, ph,
        pw, NULL);
  else
    cg_conv2d_winograd_forward (dpad, gpad, NULL, prepared, NULL, &a, ph, pw,
        scratch, col_cap, NULL);
  fold_padded (dinput, dpad, s->cin, h, w, 1, s->pad_mode);
}

/* Rows of a backward band's buffer: the weight gradient's transposed
 * column panels (taps rounded up to whole panels) and dout packed; the
 * input gradient's columns (kk rows) fit in the same. */
static gsize
backward_rows (const CgConvShape * s)
{
  gsize kk = (gsize) s->cin * s->k * s->k;
  return (kk + CG_GEMM_NR - 1) / CG_GEMM_NR * CG_GEMM_NR +
      cg_gemm_packed_a_floats (s->cout, 1);
}

gsize
cg_conv2d_backward_col_floats (const CgConvShape * s, int h, int w,
    gsize col_cap)
{
  int oh, ow;
  gsize cols;

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  cols = backward_rows (s) * ow * cg_band_rows (backward_rows (s), ow, oh,
      col_cap);

  /* each gradient's path in turn, as cg_conv2d_backward picks them */
  if (use_winograd_adjoint (s)) {
    cols = MAX (cols, winograd_adjoint_floats (s, h, w, col_cap));
    cols = MAX (cols, cg_conv2d_winograd_wgrad_floats (s, h, w, col_cap));
    return cols;
  }
  if (cg_conv2d_thin_preferred (s))
    cols = MAX (cols, cg_conv2d_thin_wgrad_floats (s, h, w, col_cap));
  if (use_adjoint (s)) {
    CgConvShape a = {.cin = s->cout,.cout = s->cin,.k = s->k,.stride =
          1,.pad = s->k - 1,.pad_mode = CG_PAD_ZERO };
    cols = MAX (cols, use_thin_adjoint (s) ?
        cg_conv2d_thin_scratch_floats (&a, oh, ow) :
        cg_conv2d_col_floats (&a, oh, ow, col_cap));
  }
  return cols;
}

/* ---- a 3x3 stride-2 pad-1 layer's input gradient, where the input's
 * sides are even: the transposed convolution of dout with the same
 * weights (a convolution's [cout][cin] is the transposed one's [in][out]),
 * by the direct kernel, added into dinput. Against W^T dout + col2im
 * (min of 15, 2 threads): 16->32 at 128x128 0.31-0.52 -> 0.21-0.33 ms,
 * 64->128 at 256x256 13.2-13.8 -> 10.5-11.7 ms, but 128->256 at 128x128
 * 9.2 -> 11.2-11.9 ms, where the GEMM has 1152 rows: up to 128 output
 * channels only. ---- */
static CgConvShape
direct_adjoint_shape (const CgConvShape * s)
{
  CgConvShape t = {.cin = s->cout,.cout = s->cin,.k = 3,.stride = 2,.pad =
        1,.pad_mode = CG_PAD_ZERO,.output_padding = 1 };
  return t;
}

static gboolean
use_direct_adjoint (const CgConvShape * s, int h, int w)
{
  CgConvShape t = direct_adjoint_shape (s);
  return s->k == 3 && s->stride == 2 && s->pad == 1
      && s->pad_mode == CG_PAD_ZERO && h % 2 == 0 && w % 2 == 0
      && s->cout <= 128 && cg_conv_transpose2d_direct_supported (&t);
}

static void
direct_adjoint_backward (float *dinput, const float *doutput,
    const float *weight, const CgConvShape * s, int h, int w)
{
  CgConvShape t = direct_adjoint_shape (s);
  float *prepared =
      cg_thread_scratch (cg_conv_transpose2d_direct_prepared_floats (&t));

  cg_conv_transpose2d_direct_prepare (prepared, weight, &t);
  cg_conv_transpose2d_direct_forward (dinput, doutput, prepared, NULL, &t,
      h / 2, w / 2, TRUE, NULL);
}

static void
adjoint_backward (float *dinput, const float *doutput, const float *weight,
    const CgConvShape * s, int h, int w, float *col, gsize col_cap)
{
  int k = s->k, oh, ow;
  float *wt = cg_thread_scratch (adjoint_floats (s, h, w));
  float *dpad = wt + (gsize) s->cin * s->cout * k * k;
  CgConvShape a = {.cin = s->cout,.cout = s->cin,.k = k,.stride = 1,.pad =
        k - 1,.pad_mode = CG_PAD_ZERO };

  cg_conv2d_out_size (s, h, w, &oh, &ow);
  /* wt [cin, cout, k, k] = weight [cout, cin, k, k] flipped */
  for (int co = 0; co < s->cout; co++)
    for (int ci = 0; ci < s->cin; ci++)
      for (int t = 0; t < k * k; t++)
        wt[((gsize) ci * s->cout + co) * k * k + (k * k - 1 - t)] =
            weight[((gsize) co * s->cin + ci) * k * k + t];
  if (use_thin_adjoint (s))
    cg_conv2d_thin_forward (dpad, doutput, NULL, wt, NULL, &a, oh, ow, FALSE,
        NULL, col);
  else
    cg_conv2d_forward (dpad, doutput, wt, NULL, &a, oh, ow, col, col_cap);
  fold_padded (dinput, dpad, s->cin, h, w, s->pad, s->pad_mode);
}

static void
plane_sums_acc (float *acc, const float *x, int c, gsize n)
{
  for (int ch = 0; ch < c; ch++) {
    const float *p = x + (gsize) ch * n;
    float lanes[8] = { 0 };
    double total = 0.0;
    gsize i = 0;
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; l++)
        lanes[l] += p[i + l];
    for (; i < n; i++)
      total += p[i];
    for (int l = 0; l < 8; l++)
      total += lanes[l];
    acc[ch] += (float) total;
  }
}

/* ---- the weight gradient: dweight [cout, kk] += dout [cout, n] . col^T
 * over a band of n output pixels. The column matrix is built transposed,
 * straight into cg_gemm_packed's panels (panel q: taps [48q, 48q + 48) of
 * every pixel, pixel-major) and dout is packed as A, so the product is
 * the kernel's plain form; threads take whole panels, each building the
 * ones it multiplies. ---- */
typedef struct
{
  float *dweight, *panels;
  const float *in, *apacked;
  const CgConvShape *s;
  int h, w, ow, y0, y1;
} WgradJob;

/* Columns are gathered row by row into a small tile in the usual layout
 * (sequential, memcpy where the stride is 1), then transposed into the
 * panel: writing the panel lane by lane instead touched a new cache line
 * with every store. */
#define WG_CHUNK 128

static void
wgrad_panels (gpointer data, int begin, int end)
{
  const WgradJob *j = data;
  const CgConvShape *s = j->s;
  int kk = s->cin * s->k * s->k, n = (j->y1 - j->y0) * j->ow;
  float *tile = cg_thread_scratch ((gsize) CG_GEMM_NR * WG_CHUNK);

  for (int q = begin; q < end; q++) {
    float *panel = j->panels + (gsize) q * n * CG_GEMM_NR;
    int lanes = MIN (CG_GEMM_NR, kk - q * CG_GEMM_NR);

    for (int y = j->y0; y < j->y1; y++)
      for (int x0 = 0; x0 < j->ow; x0 += WG_CHUNK) {
        int x1 = MIN (x0 + WG_CHUNK, j->ow);
        float *dst = panel + ((gsize) (y - j->y0) * j->ow + x0) * CG_GEMM_NR;

        for (int lane = 0; lane < lanes; lane++) {
          int p = q * CG_GEMM_NR + lane;
          int ci = p / (s->k * s->k), ky = p / s->k % s->k, kx = p % s->k;
          int iy = y * s->stride - s->pad + ky;
          float *row = tile + lane * WG_CHUNK;
          if ((iy < 0 || iy >= j->h) && s->pad_mode == CG_PAD_ZERO) {
            memset (row, 0, sizeof (float) * (x1 - x0));
            continue;
          }
          cg_gather_span (row, j->in + ((gsize) ci * j->h +
                  cg_reflect_index (iy, j->h)) * j->w, j->w, x0, x1,
              s->stride, kx - s->pad, s->pad_mode);
        }
        cg_gemm_panel_from_rows (dst, tile, WG_CHUNK, lanes, x1 - x0);
      }
    cg_gemm_packed (s->cout, lanes, n, j->apacked, panel, TRUE,
        j->dweight + q * CG_GEMM_NR, kk);
  }
}

/* dcol [kk, n] = weight^T . dout, then col2im; or the adjoint paths. One
 * buffer serves both gradients, in turn. */
void
cg_conv2d_backward (float *dinput, float *dweight, float *dbias,
    const float *doutput, const float *input, const float *weight,
    const float *adjoint_prepared, const CgConvShape * s, int h, int w,
    float *col, gsize col_cap)
{
  int oh, ow;
  int kk = s->cin * s->k * s->k;
  gsize ohw;
  int band;
  gboolean winograd = use_winograd_adjoint (s);
  gboolean direct = use_direct_adjoint (s, h, w);
  gboolean adjoint = winograd || direct || use_adjoint (s);

  if (dweight && winograd) {
    cg_conv2d_winograd_wgrad (dweight, doutput, input, s, h, w, col,
        col_cap);
    dweight = NULL;
  } else if (dweight && cg_conv2d_thin_preferred (s)) {
    cg_conv2d_thin_wgrad (dweight, doutput, input, s, h, w, col, col_cap);
    dweight = NULL;
  }
  cg_conv2d_out_size (s, h, w, &oh, &ow);
  ohw = (gsize) oh * ow;
  band = cg_band_rows (backward_rows (s), ow, oh, col_cap);

  if (dbias)
    plane_sums_acc (dbias, doutput, s->cout, ohw);
  if (!dweight && !(dinput && !adjoint))
    band = oh;                  /* nothing to do in the loop */

  for (int y0 = 0; y0 < oh && (dweight || (dinput && !adjoint)); y0 += band) {
    int y1 = MIN (y0 + band, oh);
    int n = (y1 - y0) * ow;
    const float *g = doutput + (gsize) y0 * ow;

    if (dweight) {
      int npanels = (kk + CG_GEMM_NR - 1) / CG_GEMM_NR;
      float *apacked = col + (gsize) npanels * CG_GEMM_NR * n;
      WgradJob job = { dweight, col, input, apacked, s, h, w, ow, y0, y1 };
      cg_gemm_pack_a (FALSE, s->cout, n, g, (int) ohw, apacked);
      cg_parallel_for (npanels, wgrad_panels, &job);
    }
    if (dinput && !adjoint) {
      cg_sgemm (TRUE, kk, n, s->cout, weight, kk, g, (int) ohw, FALSE, col,
          n);
      col2im_band (dinput, col, s, h, w, ow, y0, y1);
    }
  }
  if (dinput && winograd)
    winograd_adjoint_backward (dinput, doutput, weight, adjoint_prepared, s,
        h, w, col, col_cap);
  else if (dinput && direct)
    direct_adjoint_backward (dinput, doutput, weight, s, h, w);
  else if (dinput && adjoint)
    adjoint_backward (dinput, doutput, weight, s, h, w, col, col_cap);
}
