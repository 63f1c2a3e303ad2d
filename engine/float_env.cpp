#include "engine/float_env.hpp"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define DTSIM_HAS_MXCSR 1
#endif

namespace dtsim {

namespace {
#ifdef DTSIM_HAS_MXCSR
constexpr unsigned kFlushBits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
#endif
}  // namespace

void flush_denormals_to_zero() {
#ifdef DTSIM_HAS_MXCSR
  _mm_setcsr(_mm_getcsr() | kFlushBits);
#endif
}

bool denormals_flushed() {
#ifdef DTSIM_HAS_MXCSR
  return (_mm_getcsr() & kFlushBits) == kFlushBits;
#else
  return true;
#endif
}

}  // namespace dtsim
