// Floating-point environment of threads that run numerics.
//
// Subnormal floats (below ~1.2e-38) are 10-100x slower on x86 and appear naturally in
// training: the momentum of a weight whose gradient is zero (a dead ReLU unit) decays
// geometrically towards them. Like most training frameworks, dtsim flushes them to zero.
// The setting is per thread, so every thread that runs a job must call this (the simulator's
// task arena does it on entry); then results do not depend on which thread ran a job.
#pragma once

namespace dtsim {

// Sets flush-to-zero and denormals-are-zero for the calling thread (no-op off x86).
void flush_denormals_to_zero();
// Whether the calling thread currently flushes denormals.
bool denormals_flushed();

}  // namespace dtsim
