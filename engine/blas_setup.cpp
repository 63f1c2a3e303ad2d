#include "engine/blas_setup.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace dtsim {

std::string blas_core_name() { return openblas_get_corename(); }

void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  if (const char* flag = std::getenv("DTSIM_BLAS_AUTOTUNE");
      flag != nullptr && std::strcmp(flag, "0") == 0) {
    return;
  }
  if (blas_core_name() != "Prescott") return;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return;
  const char* core = __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the generic kernels.
  unsetenv("OPENBLAS_CORETYPE");
#else
  (void)argv;
#endif
}

}  // namespace dtsim
