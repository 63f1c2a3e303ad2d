// What a Simulation reports as it runs, for recorders (metrics, traces, progress).
//
// Observers are called on the event loop's thread, in event order, after the fact: a span is
// reported when it ends. They must not change the simulation. The Simulation does not own
// them; they must outlive the run.
#pragma once

#include <cstdint>

#include "sim/network.hpp"
#include "sim/run_result.hpp"
#include "sim/sim_time.hpp"

namespace dtsim {

class SimObserver {
 public:
  virtual ~SimObserver() = default;
  // `node` computed from `start` to `end`; `what` is a static label ("gradient", "update",
  // "reduce", ...).
  virtual void on_compute(int /*node*/, const char* /*what*/, SimTime /*start*/, SimTime /*end*/) {}
  // A message left its sender at `sent` and reached its receiver at `arrived`.
  virtual void on_message(const Message& /*m*/, SimTime /*sent*/, SimTime /*arrived*/) {}
  // `node` was blocked waiting for communication from `start` to `end`.
  virtual void on_wait(int /*node*/, SimTime /*start*/, SimTime /*end*/) {}
  // The run starts; it will take `total_steps` global steps unless it diverges.
  virtual void on_run_start(std::uint64_t /*total_steps*/) {}
  // The strategy finished global step `step` (1-based) at time `t`.
  virtual void on_step_end(std::uint64_t /*step*/, SimTime /*t*/) {}
  // The global model was evaluated (a row of metrics.csv).
  virtual void on_evaluation(const EvalPoint& /*point*/) {}
};

}  // namespace dtsim
