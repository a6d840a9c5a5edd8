/* Which vector kernels run: the AVX-512 ones where the CPU has AVX-512F,
 * else the portable ones (8-float vectors, with AVX2 clones). The
 * environment variable CG_FORCE_PORTABLE=1, or the call below, makes an
 * AVX-512 machine run the portable ones: the tests check both. */
#pragma once

#include <glib.h>

/* Where the AVX-512 kernels are compiled at all (GCC target attributes
 * on x86-64); cg_cpu_use_avx512 () says whether they run. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CG_HAVE_AVX512_KERNELS 1
#endif

G_BEGIN_DECLS

gboolean cg_cpu_use_avx512 (void);

/* The kernel to run of a pair compiled for 8 and 16 floats: the second
 * only exists (and is only named) where CG_HAVE_AVX512_KERNELS. */
#ifdef CG_HAVE_AVX512_KERNELS
#define CG_CPU_KERNEL(portable, avx512) \
  (cg_cpu_use_avx512 () ? (avx512) : (portable))
#else
#define CG_CPU_KERNEL(portable, avx512) (portable)
#endif

/* TRUE: every kernel takes its portable form (cg_gemm runs OpenBLAS).
 * Not thread-safe; set it before any work. */
void cg_cpu_force_portable (gboolean force);

G_END_DECLS
