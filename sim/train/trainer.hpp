// A training run: the scenario's model, data, cluster, network and strategy, simulated.
//
// Every worker is a node program (a coroutine) that really computes its gradients as oneTBB
// jobs and exchanges real data through the simulated network, in the scenario's sync mode
// (sim/strategies/registry.cpp lists the strategies; docs/simulator.md gives their rules), e.g.
//   allreduce + bsp:  gradient -> allreduce (the scenario's collective) -> local update
//   ps + bsp:         gradient -> push to k server shards -> servers sum, update -> pull
//   ps + asp:         gradient -> push; the shards apply it on arrival -> pull
// With one worker there is no communication. Evaluation of the global model takes no virtual
// time.
#pragma once

#include <memory>
#include <vector>

#include "engine/data/dataset.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/observer.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

// Loads (or generates) the scenario's training and test sets: shuffled with the scenario's
// seed, then cut to train_samples / test_samples. Throws DatasetError or InputError.
DatasetPair load_data(const Scenario& scenario);

// A training run, set up and checked but not yet started. The constructor does everything that
// can fail on bad input (model shapes, partitions, server shards) and throws InputError, so a
// caller can create output files only once the run is known to be possible.
class Training {
 public:
  // `threads` >= 1 threads for jobs, counting the caller's. In time-only mode no numerics
  // run; `data` still gives the dataset's shape and partitions.
  Training(const Scenario& scenario, const DatasetPair& data, int threads);
  ~Training();
  // Runs it (once). The result, and everything observers see, is the same for any thread
  // count. `observers` (not owned) see every compute span, message, wait, step end and
  // evaluation as it happens; the metrics recorder is one of them.
  RunResult run(const std::vector<SimObserver*>& observers = {});
  // The global model (as evaluated) after the run, or before it: the initial parameters.
  // Empty in time-only mode.
  std::vector<float> global_params();

  class Run;

 private:
  std::unique_ptr<Run> run_;
};

// Training(scenario, data, threads).run(observers).
RunResult run_training(const Scenario& scenario, const DatasetPair& data, int threads,
                       const std::vector<SimObserver*>& observers = {});

}  // namespace dtsim
