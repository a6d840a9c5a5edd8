#include "layers.h"
#include "cg-orc.h"
#include "parallel.h"
#include "simd.h"

#include <math.h>

/* e^x, 8 lanes, for x in [-87, 87]: x = k ln2 + r with |r| <= ln2/2,
 * e^r by the Cephes polynomial (relative error ~1e-7), 2^k from the
 * exponent bits. */
static inline cg_v8
v8_exp (cg_v8 x)
{
  cg_v8 t = x * 1.44269504088896341f + 0.5f;
  cg_v8i k = __builtin_convertvector (t, cg_v8i);
  cg_v8 kf, r, p;

  kf = __builtin_convertvector (k, cg_v8);
  k += (cg_v8i) (kf > t);       /* truncation to floor: -1 where it rounded up */
  kf = __builtin_convertvector (k, cg_v8);
  r = x - kf * 0.693359375f + kf * 2.12194440e-4f;
  p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * (cg_v8) ((k + 127) << 23);
}

/* tanh x = 1 - 2 / (e^2x + 1). Absolute error ~1e-7 (it loses relative
 * accuracy near 0, where the output is tiny against its 8-bit step). */
CG_SIMD_CLONES static void
tanh_range (float *out, const float *in, gsize begin, gsize end)
{
  gsize i = begin;

  for (; i + 8 <= end; i += 8) {
    cg_v8 x = cg_v8_load (in + i);
    /* tanh(9) is 1 in float; the clamp keeps e^2x finite */
    x = cg_v8_select (x < -9.0f, cg_v8_splat (-9.0f), x);
    x = cg_v8_select (x > 9.0f, cg_v8_splat (9.0f), x);
    cg_v8_store (out + i, 1.0f - 2.0f / (v8_exp (2.0f * x) + 1.0f));
  }
  for (; i < end; i++)
    out[i] = tanhf (in[i]);
}

/* ---- elementwise passes, split over the current pool: alone on the
 * calling thread the ORC ones left the others idle (a training step runs
 * dozens of them over whole activations). ---- */
typedef enum
{
  EW_TANH,
  EW_RELU,
  EW_LEAKY_RELU,
  EW_LEAKY_RELU_BACKWARD,       /* slope 0: ReLU's */
  EW_TANH_BACKWARD,
  EW_ADD,
} EwOp;

typedef struct
{
  EwOp op;
  float *d;
  const float *a, *b;
  float slope;
  gsize n;
} EwJob;

#define EW_CHUNK 8192

static void
ew_chunks (gpointer data, int begin, int end)
{
  const EwJob *j = data;
  gsize i0 = (gsize) begin * EW_CHUNK;
  int n = (int) (MIN ((gsize) end * EW_CHUNK, j->n) - i0);
  float *d = j->d + i0;
  const float *a = j->a + i0, *b = j->b ? j->b + i0 : NULL;

/* Outputs may alias inputs at the same index (in-place passes): ORC
 * works element by element, despite the generated prototypes' restrict. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
  switch (j->op) {
    case EW_TANH:
      tanh_range (d, a, 0, n);
      break;
    case EW_RELU:
      cg_orc_relu (d, a, n);
      break;
    case EW_LEAKY_RELU:
      cg_orc_leaky_relu (d, a, j->slope, n);
      break;
    case EW_LEAKY_RELU_BACKWARD:
      cg_orc_leaky_relu_backward (d, a, b, j->slope, 1.0f - j->slope, n);
      break;
    case EW_TANH_BACKWARD:
      cg_orc_tanh_backward (d, a, b, n);
      break;
    case EW_ADD:
      cg_orc_add (d, a, b, n);
      break;
  }
#pragma GCC diagnostic pop
}

static void
elementwise (EwOp op, float *d, const float *a, const float *b, float slope,
    gsize n)
{
  EwJob job = { op, d, a, b, slope, n };
  cg_parallel_for ((int) ((n + EW_CHUNK - 1) / EW_CHUNK), ew_chunks, &job);
}

void
cg_relu_forward (float *out, const float *in, gsize n)
{
  elementwise (EW_RELU, out, in, NULL, 0.0f, n);
}

/* ORC has no transcendental ops: tanh is vector extensions. */
void
cg_tanh_forward (float *out, const float *in, gsize n)
{
  elementwise (EW_TANH, out, in, NULL, 0.0f, n);
}

/* ---- training: LeakyReLU and the backward passes ---- */

void
cg_leaky_relu_forward (float *out, const float *in, gsize n)
{
  elementwise (EW_LEAKY_RELU, out, in, NULL, CG_LRELU_SLOPE, n);
}

void
cg_relu_backward (float *dinput, const float *doutput, const float *output,
    gsize n)
{
  elementwise (EW_LEAKY_RELU_BACKWARD, dinput, doutput, output, 0.0f, n);
}

void
cg_leaky_relu_backward (float *dinput, const float *doutput,
    const float *output, gsize n)
{
  elementwise (EW_LEAKY_RELU_BACKWARD, dinput, doutput, output,
      CG_LRELU_SLOPE, n);
}

void
cg_tanh_backward (float *dinput, const float *doutput, const float *output,
    gsize n)
{
  elementwise (EW_TANH_BACKWARD, dinput, doutput, output, 0.0f, n);
}

void
cg_add_forward (float *out, const float *a, const float *b, gsize n)
{
  elementwise (EW_ADD, out, a, b, 0.0f, n);
}

void
cg_add_backward (float *dacc, const float *doutput, gsize n)
{
  elementwise (EW_ADD, dacc, dacc, doutput, 0.0f, n);
}
