// `dtsim explain`: what a scenario implies, computed before running it.
//
// Parameter count, FLOPs and gradient bytes per step, compute time per worker and step, the
// communication time the strategy should take with no contention (its prediction hook in the
// strategy table: the alpha-beta formulas of docs/simulator.md, alpha = the path latency
// between two workers, beta = the inverse link bandwidth, plus the per-float sums and copies),
// and so the predicted step time, run time and bottleneck. A prediction: the run measures the
// real thing.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/data/dataset.hpp"
#include "engine/model.hpp"
#include "sim/net/topology.hpp"
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

// What every strategy's prediction starts from (the default node and links).
struct PredictionBasis {
  const Scenario& scenario;
  const Model& model;
  const Topology& topology;
  int workers = 0;
  int servers = 0;
  double params = 0;           // n
  double bytes = 0;            // a gradient's bytes, 4n
  double flops_per_s = 0;      // a node's speed
  double gradient_s = 0;       // one gradient job (loading included)
  double optimizer_flops = 0;  // one optimizer step over the whole model
  double alpha = 0;            // path latency between workers 0 and 1, s
  double beta = 0;             // s per byte
};

// A strategy's prediction of one step, uncontended.
struct StepPrediction {
  double communicate_s = 0;
  double update_s = 0;
  std::string how;  // the formula used, for people
  // false: the mode has no lock-step, its time emerges from who waits for whom (the
  // prediction is then for the same cluster in bsp).
  bool lock_step = true;
  // A strategy that works out the whole step (a split model) gives it here, with its compute
  // share (the busiest node's), and communicate_s as the rest; < 0: gradient + update +
  // communication.
  double step_s = -1;
  double compute_s = -1;
  std::string bottleneck_waiting = "communication";        // what the non-compute share is
  std::vector<std::pair<std::string, std::string>> lines;  // more lines for explain
};

// The scenario's allreduce of the gradient among the workers (its collective), with each
// replica's update.
void predict_allreduce(const PredictionBasis& basis, StepPrediction& out);
// A parameter server's push and pull, the shards' sums and update.
void predict_parameter_server(const PredictionBasis& basis, StepPrediction& out);

// "1.5 ms", "20 us", "3.2 s", "235 ns".
std::string format_seconds(double s);

}  // namespace dtsim
