/* Reflection padding: the border mirrors the image without repeating the
 * edge pixel, as torch.nn.ReflectionPad2d does. */
#include "layers.h"
#include "simd.h"
#include "parallel.h"

#include <string.h>

/* Index i in [-n+1, 2n-2] reflected into [0, n). Valid for pads < n. */
int
cg_reflect_index (int i, int n)
{
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * (n - 1) - i;
  return i;
}

/* in: [c, h, w] -> out: [c, h + 2 pad, w + 2 pad] */
void
cg_reflect_pad_forward (float *out, const float *in, int c, int h, int w,
    int pad)
{
  int ow = w + 2 * pad, oh = h + 2 * pad;

  for (int ch = 0; ch < c; ch++) {
    const float *src = in + (gsize) ch * h * w;
    float *dst = out + (gsize) ch * oh * ow;
    for (int y = 0; y < oh; y++) {
      const float *row = src + (gsize) cg_reflect_index (y - pad, h) * w;
      float *orow = dst + (gsize) y * ow;
      for (int x = 0; x < pad; x++)
        orow[x] = row[cg_reflect_index (x - pad, w)];
      memcpy (orow + pad, row, sizeof (float) * w);
      for (int x = pad + w; x < ow; x++)
        orow[x] = row[cg_reflect_index (x - pad, w)];
    }
  }
}

void
cg_reflect_extend (float *planes, int c, int h, int w, int ph, int pw)
{
  for (int ch = 0; ch < c; ch++) {
    float *p = planes + (gsize) ch * ph * pw;
    for (int y = 0; y < h; y++)
      for (int x = w; x < pw; x++)
        p[(gsize) y * pw + x] = p[(gsize) y * pw + cg_reflect_index (x, w)];
    for (int y = h; y < ph; y++)
      memcpy (p + (gsize) y * pw, p + (gsize) cg_reflect_index (y, h) * pw,
          sizeof (float) * pw);
  }
}

/* ---- backward ---- */

/* Each padded position's gradient goes back to the pixel it copied: per
 * padded row, the row it mirrors takes the interior as one vector add and
 * the few border columns one by one. Channels are split over the
 * current pool. */
typedef struct
{
  float *din;
  const float *dout;
  int h, w, pad;
} PadBackJob;

static void
pad_backward_channels (gpointer data, int c0, int c1)
{
  const PadBackJob *j = data;
  int h = j->h, w = j->w, pad = j->pad;
  int ow = w + 2 * pad, oh = h + 2 * pad;

  for (int ch = c0; ch < c1; ch++) {
    const float *src = j->dout + (gsize) ch * oh * ow;
    float *dst = j->din + (gsize) ch * h * w;
    for (int y = 0; y < oh; y++) {
      float *row = dst + (gsize) cg_reflect_index (y - pad, h) * w;
      const float *orow = src + (gsize) y * ow;
      for (int x = 0; x < w; x++)
        row[x] += orow[pad + x];
      for (int x = 0; x < pad; x++) {
        row[cg_reflect_index (x - pad, w)] += orow[x];
        row[cg_reflect_index (w + x, w)] += orow[pad + w + x];
      }
    }
  }
}

void
cg_reflect_pad_backward (float *dinput, const float *doutput, int c, int h,
    int w, int pad)
{
  PadBackJob job = { dinput, doutput, h, w, pad };
  cg_parallel_for (c, pad_backward_channels, &job);
}

/* ReLU (x * norm[0] + norm[1]), or x without a norm */
static inline float
norm_relu (float x, const float *norm)
{
  return norm ? MAX (x * norm[0] + norm[1], 0.0f) : x;
}

/* dst[x] = src[2 x] for x in [0, n), src holding `avail` floats: the even
 * lanes of 32 consecutive floats, sixteen outputs at a time while those
 * 32 are readable (the stride-2 layers' split; the AVX-512 clone makes
 * the shuffle one two-source permute), then one by one. With `norm`,
 * ReLU (x * norm[0] + norm[1]) of each. */
typedef float gather_v16 __attribute__ ((vector_size (64)));
typedef int gather_v16i __attribute__ ((vector_size (64)));

CG_SIMD_CLONES static void
gather_even (float *dst, const float *src, int n, int avail,
    const float *norm)
{
  const gather_v16i even = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
    26, 28, 30
  };
  gather_v16 scale = (gather_v16) { } + (norm ? norm[0] : 1.0f);
  gather_v16 offset = (gather_v16) { } + (norm ? norm[1] : 0.0f);
  gather_v16 zero = { };
  int x = 0;

  for (; x + 16 <= n && 2 * x + 32 <= avail; x += 16) {
    gather_v16 a, b, v;
    memcpy (&a, src + 2 * x, sizeof a);
    memcpy (&b, src + 2 * x + 16, sizeof b);
    v = __builtin_shuffle (a, b, even);
    if (norm) {
      v = v * scale + offset;
      v = (gather_v16) ((gather_v16i) v & (v > zero));
    }
    memcpy (dst + x, &v, sizeof v);
  }
  for (; x < n; x++)
    dst[x] = norm_relu (src[2 * x], norm);
}

/* cg_gather_span, and with `norm` cg_gather_span_norm_relu */
static void
gather_span (float *dst, const float *src, int w, int x0, int x1,
    int stride, int off, CgPadMode mode, const float *norm)
{
  /* x in [lo, hi) reads inside the row */
  int lo = off >= 0 ? x0 : MAX (x0, (-off + stride - 1) / stride);
  int hi = w - off <= 0 ? lo : (w - off + stride - 1) / stride;
  int x;

  /* a span shorter than the left border is all border */
  lo = MIN (lo, x1);
  hi = CLAMP (hi, lo, x1);
  for (x = x0; x < lo; x++)
    dst[x - x0] = mode == CG_PAD_REFLECT ?
        norm_relu (src[cg_reflect_index (x * stride + off, w)], norm) : 0.0f;
  if (stride == 1 && norm)
    cg_norm_relu_copy (dst + lo - x0, src + lo + off, hi - lo, norm[0],
        norm[1]);
  else if (stride == 1)
    memcpy (dst + lo - x0, src + lo + off, sizeof (float) * (hi - lo));
  else if (stride == 2)
    gather_even (dst + lo - x0, src + 2 * lo + off, hi - lo,
        w - off - 2 * lo, norm);
  else
    for (x = lo; x < hi; x++)
      dst[x - x0] = norm_relu (src[x * stride + off], norm);
  for (x = hi; x < x1; x++)
    dst[x - x0] = mode == CG_PAD_REFLECT ?
        norm_relu (src[cg_reflect_index (x * stride + off, w)], norm) : 0.0f;
}

/* dst[x - x0] = src[x * stride + off] for x in [x0, x1), positions
 * outside [0, w) reflected or zero. */
void
cg_gather_span (float *dst, const float *src, int w, int x0, int x1,
    int stride, int off, CgPadMode mode)
{
  gather_span (dst, src, w, x0, x1, stride, off, mode, NULL);
}

void
cg_gather_span_norm_relu (float *dst, const float *src, int w, int x0,
    int x1, int stride, int off, CgPadMode mode, float scale, float offset)
{
  const float norm[2] = { scale, offset };
  gather_span (dst, src, w, x0, x1, stride, off, mode, norm);
}
