// What a Simulation reports as it runs, for recorders (traces, timelines).
//
// Observers are called on the event loop's thread, in event order, after the fact: a span is
// reported when it ends. They must not change the simulation. The Simulation does not own
// them; they must outlive the run. (A training run adds its own events: sim/train/observer.hpp.)
#pragma once

#include "sim/des/sim_time.hpp"
#include "sim/net/network.hpp"

namespace dtsim {

class EventObserver {
 public:
  virtual ~EventObserver() = default;
  // `node` computed from `start` to `end`; `what` is a static label ("gradient", "update",
  // "reduce", ...).
  virtual void on_compute(int /*node*/, const char* /*what*/, SimTime /*start*/, SimTime /*end*/) {}
  // A message left its sender at `sent` and reached its receiver at `arrived`.
  virtual void on_message(const Message& /*m*/, SimTime /*sent*/, SimTime /*arrived*/) {}
  // `node` was blocked waiting for communication from `start` to `end`.
  virtual void on_wait(int /*node*/, SimTime /*start*/, SimTime /*end*/) {}
};

}  // namespace dtsim
