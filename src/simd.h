/* Portable 8-float vectors (GCC/Clang vector extensions) for the kernels
 * that are not GEMMs, and function clones for AVX2+FMA machines chosen at
 * load time (the baseline build targets plain x86-64). */
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

#if defined(__x86_64__) && defined(__GNUC__)
#define CG_SIMD_CLONES __attribute__ ((target_clones ("arch=x86-64-v3", "default")))
#else
#define CG_SIMD_CLONES
#endif
