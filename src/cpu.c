#include "cpu.h"


static gboolean force_portable;

void
cg_cpu_force_portable (gboolean force)
{
  force_portable = force;
}

static gboolean
have_avx512 (void)
{
  static gsize once;
  static gboolean have;

  if (g_once_init_enter (&once)) {
    /* CG_FORCE_PORTABLE=1 in the environment: the portable kernels, as a
     * CPU without AVX-512 would run them (tests, and bug reports). */
    const char *env = g_getenv ("CG_FORCE_PORTABLE");
#ifdef CG_HAVE_AVX512_KERNELS
    have = __builtin_cpu_supports ("avx512f");
#endif
    if (env && *env && *env != '0')
      have = FALSE;
    g_once_init_leave (&once, 1);
  }
  return have;
}

gboolean
cg_cpu_use_avx512 (void)
{
  return !force_portable && have_avx512 ();
}
