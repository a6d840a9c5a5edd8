/* Portable 8-float vectors (GCC/Clang vector extensions) for the kernels
 * that are not GEMMs, and function clones for AVX-512 and AVX2+FMA
 * machines chosen at load time (the baseline build targets plain x86-64).
 * The AVX-512 clone took 0.3 ms off ngf 16's last layer at 640x480,
 * whose ring copy (cg_norm_relu_copy) is such a function. */
#pragma once

#include <string.h>

typedef float cg_v8 __attribute__ ((vector_size (32)));
typedef int cg_v8i __attribute__ ((vector_size (32)));

static inline cg_v8
cg_v8_load (const float *p)
{
  cg_v8 v;
  memcpy (&v, p, sizeof v);
  return v;
}

static inline cg_v8
cg_v8_splat (float x)
{
  return (cg_v8) {
  x, x, x, x, x, x, x, x};
}

/* mask ? a : b, lane by lane (mask lanes from a comparison: -1 or 0) */
static inline cg_v8
cg_v8_select (cg_v8i mask, cg_v8 a, cg_v8 b)
{
  return (cg_v8) (((cg_v8i) a & mask) | ((cg_v8i) b & ~mask));
}

static inline void
cg_v8_store (float *p, cg_v8 v)
{
  memcpy (p, &v, sizeof v);
}

/* Unaligned load and store of any vector type T, through a local (a
 * memcpy straight into an array element can become two half loads and a
 * stalled reload). For the kernels written for several widths. */
#define CG_VLOAD(T, p) \
  ({ T cg_v_; memcpy (&cg_v_, (p), sizeof cg_v_); cg_v_; })
#define CG_VSTORE(p, v) \
  G_STMT_START { __typeof__ (v) cg_v_ = (v); \
    memcpy ((p), &cg_v_, sizeof cg_v_); } G_STMT_END

/* e^x, 8 lanes, for x in [-87, 87]: x = k ln2 + r with |r| <= ln2/2,
 * e^r by the Cephes polynomial (relative error ~1e-7), 2^k from the
 * exponent bits. */
static inline cg_v8
cg_v8_exp (cg_v8 x)
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
static inline cg_v8
cg_v8_tanh (cg_v8 x)
{
  /* tanh(9) is 1 in float; the clamp keeps e^2x finite */
  x = cg_v8_select (x < -9.0f, cg_v8_splat (-9.0f), x);
  x = cg_v8_select (x > 9.0f, cg_v8_splat (9.0f), x);
  return 1.0f - 2.0f / (cg_v8_exp (2.0f * x) + 1.0f);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define CG_SIMD_CLONES __attribute__ ((target_clones ("arch=x86-64-v4", \
    "arch=x86-64-v3", "default")))
#else
#define CG_SIMD_CLONES
#endif
