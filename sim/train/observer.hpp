// What a training run reports as it runs, for recorders (metrics, traces, progress): the
// simulation's events (sim/des/event_observer.hpp) and the run's own.
//
// Called on the event loop's thread, in event order; observers must not change the run, and
// must outlive it (the run does not own them).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/des/event_observer.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

class SimObserver : public EventObserver {
 public:
  // The run starts; it will take `total_steps` global steps unless it diverges.
  virtual void on_run_start(std::uint64_t /*total_steps*/) {}
  // The strategy finished global step `step` (1-based) at time `t`.
  virtual void on_step_end(std::uint64_t /*step*/, SimTime /*t*/) {}
  // The global model was evaluated (a row of metrics.csv).
  virtual void on_evaluation(const EvalPoint& /*point*/) {}
  // The run ended; these faults happened in it (none: not called).
  virtual void on_faults(const std::vector<FaultRecord>& /*faults*/) {}
};

}  // namespace dtsim
