// How long modeled work takes in virtual time.
//
// A job of F floating-point operations over S samples on a node of speed R FLOP/s takes
// F / R seconds plus S times the per-sample data-loading cost, rounded to the nearest
// nanosecond. (Slowdowns and jitter of stragglers multiply the compute part; later issues.)
#pragma once

#include "sim/sim_time.hpp"

namespace dtsim {

struct NodeSpeed {
  double flops_per_s = 5e12;
  SimTime load_cost_per_sample;
};

inline SimTime compute_time(const NodeSpeed& speed, double flops, int samples = 0) {
  return SimTime::from_seconds(flops / speed.flops_per_s) + speed.load_cost_per_sample * samples;
}

}  // namespace dtsim
