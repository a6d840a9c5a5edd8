#pragma once

/* OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to the
 * SSE3 "Prescott" ones on CPUs it does not know (virtual Xeons report a
 * generic model): GEMMs 5x slower. It reads OPENBLAS_CORETYPE only when
 * it is loaded, so a command-line tool that finds the fallback in use on a
 * CPU with AVX2 or AVX-512 sets the variable and runs itself again. An
 * OPENBLAS_CORETYPE already set is left as it is. Call first in main(). */
void cg_tool_ensure_blas_kernels (char **argv);
