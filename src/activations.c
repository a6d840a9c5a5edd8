#include "layers.h"
#include "cg-orc.h"

#include <math.h>

void
cg_relu_forward (float *out, const float *in, gsize n)
{
  cg_orc_relu (out, in, (int) n);
}

/* ORC has no transcendental ops; the output layer is three planes, so
 * libm's tanhf costs little next to the convolution before it. */
void
cg_tanh_forward (float *out, const float *in, gsize n)
{
  for (gsize i = 0; i < n; i++)
    out[i] = tanhf (in[i]);
}

/* ---- training: LeakyReLU and the backward passes ---- */

void
cg_leaky_relu_forward (float *out, const float *in, gsize n)
{
  cg_orc_leaky_relu (out, in, CG_LRELU_SLOPE, (int) n);
}

void
cg_relu_backward (float *dinput, const float *doutput, const float *output,
    gsize n)
{
  cg_orc_leaky_relu_backward (dinput, doutput, output, 0.0f, 1.0f, (int) n);
}

void
cg_leaky_relu_backward (float *dinput, const float *doutput,
    const float *output, gsize n)
{
  cg_orc_leaky_relu_backward (dinput, doutput, output, CG_LRELU_SLOPE,
      1.0f - CG_LRELU_SLOPE, (int) n);
}

void
cg_tanh_backward (float *dinput, const float *doutput, const float *output,
    gsize n)
{
  cg_orc_tanh_backward (dinput, doutput, output, (int) n);
}

void
cg_add_backward (float *dacc, const float *doutput, gsize n)
{
/* In place: ORC works element by element, so an output may alias the
 * input at the same index despite the generated prototype's restrict. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
  cg_orc_add (dacc, dacc, doutput, (int) n);
#pragma GCC diagnostic pop
}
