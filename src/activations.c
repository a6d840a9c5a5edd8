#include "layers.h"
#include "cg-orc.h"
#include "parallel.h"
#include "simd.h"

#include <math.h>

CG_SIMD_CLONES static void
tanh_range (float *out, const float *in, gsize begin, gsize end)
{
  gsize i = begin;

  for (; i + 8 <= end; i += 8)
    cg_v8_store (out + i, cg_v8_tanh (cg_v8_load (in + i)));
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
