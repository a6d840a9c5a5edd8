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
