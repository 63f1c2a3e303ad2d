#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "engine/blas_setup.hpp"
#include "engine/float_env.hpp"
#include "engine/kernels.hpp"

// Tests run with the same BLAS kernels and floating-point settings as dtsim itself.
int main(int argc, char** argv) {
  dtsim::select_blas_kernels(argv);
  dtsim::use_single_threaded_blas();
  dtsim::flush_denormals_to_zero();
  doctest::Context context(argc, argv);
  return context.run();
}
