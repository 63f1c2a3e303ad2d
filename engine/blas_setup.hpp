// Choosing OpenBLAS's kernels for this CPU.
//
// Debian 12's OpenBLAS (0.3.21, built with DYNAMIC_ARCH) does not recognise recent Intel
// server CPUs (Sapphire Rapids and later) and falls back to its generic "Prescott" kernels,
// which run sgemm about 8x slower (17 vs 145 GFLOP/s on one core). OpenBLAS picks its kernels
// when it is loaded, so the only fix from inside a program is to set OPENBLAS_CORETYPE and
// start again. Programs (dtsim and the test runners) call select_blas_kernels() first thing.
#pragma once

#include <string>

namespace dtsim {

// If OPENBLAS_CORETYPE is unset, OpenBLAS chose "Prescott", and the CPU has AVX-512, sets
// OPENBLAS_CORETYPE to "Cooperlake" (with AVX-512 BF16) or "SkylakeX" and re-executes the
// program with the same arguments; otherwise returns at once. Set DTSIM_BLAS_AUTOTUNE=0 to
// keep OpenBLAS's own choice.
void select_blas_kernels(char** argv);

// The kernel family OpenBLAS is using, e.g. "Cooperlake".
std::string blas_core_name();

}  // namespace dtsim
