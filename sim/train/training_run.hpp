// One training run: the RunCore's shared services paired with the scenario's Strategy, made
// by its row of the strategy table. Internal to sim/ (sim/train/trainer.hpp is the interface).
#pragma once

#include <memory>

#include "sim/strategies/strategy.hpp"
#include "sim/train/run_core.hpp"

namespace dtsim {

class TrainingRun {
 public:
  // Throws InputError for impossible set-ups (model shapes, partitions, server shards).
  TrainingRun(const Scenario& s, const DatasetPair& data, int threads);
  void add_observer(SimObserver* o) { core_.add_observer(o); }
  RunResult run() { return core_.run(); }
  std::vector<float> global_params() {
    if (!core_.numerics()) return {};
    double consensus = 0;
    const std::span<const float> p = strategy_->global_params(consensus);
    return {p.begin(), p.end()};
  }

 private:
  // Destroyed after the core, whose simulation runs the strategy's programs and jobs.
  std::unique_ptr<Strategy> strategy_;
  RunCore core_;
};

}  // namespace dtsim
