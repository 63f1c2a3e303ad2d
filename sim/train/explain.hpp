// `dtsim explain`: what a scenario implies, computed before running it.
//
// Parameter count, FLOPs and gradient bytes per step, compute time per worker and step, the
// communication time the chosen collective should take with no contention (the alpha-beta
// formulas of docs/simulator.md, alpha = the path latency between two workers, beta = the
// inverse link bandwidth, plus the per-float sums and copies), and so the predicted step time,
// run time and bottleneck. A prediction: the run measures the real thing.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/data/dataset.hpp"
#include "sim/scenario/scenario.hpp"

namespace dtsim {

struct Explanation {
  std::vector<std::pair<std::string, std::string>> lines;  // (what, value), in reading order
  double compute_s = 0;                                    // per step and worker: gradient + update
  double communicate_s = 0;  // per step: the collective or the push/pull, uncontended
  double step_s = 0;         // compute + communicate
  std::uint64_t steps = 0;
  double run_s = 0;        // steps * step_s
  std::string bottleneck;  // "computation" or "communication"
};

Explanation explain(const Scenario& scenario, const DatasetPair& data);

}  // namespace dtsim
