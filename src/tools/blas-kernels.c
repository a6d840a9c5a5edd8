#include "blas-kernels.h"

#include <glib.h>
#include <cblas.h>
#include <unistd.h>

void
cg_tool_ensure_blas_kernels (char **argv)
{
  const char *core = openblas_get_corename ();
  const char *want = NULL;

  if (g_getenv ("OPENBLAS_CORETYPE") || !core
      || g_ascii_strcasecmp (core, "prescott") != 0)
    return;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init ();
  if (__builtin_cpu_supports ("avx512f"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports ("avx2"))
    want = "Haswell";
#endif
  if (!want)
    return;
  g_setenv ("OPENBLAS_CORETYPE", want, TRUE);
  execv ("/proc/self/exe", argv);
  /* no /proc: carry on with the slow kernels */
}
