// A training run: the scenario's model, data, cluster, network and strategy, simulated.
//
// Every worker is a node program (a coroutine) that really computes its gradients as oneTBB
// jobs and exchanges real data through the simulated network:
//   allreduce + bsp:  gradient -> allreduce (the scenario's collective) -> local update
//   ps + bsp:         gradient -> push to k server shards -> servers sum, update -> pull
// With one worker there is no communication. Evaluation of the global model (worker 0's
// replica, identical on every worker in BSP) takes no virtual time.
#pragma once

#include <functional>
#include <vector>

#include "engine/data/dataset.hpp"
#include "sim/observer.hpp"
#include "sim/run_result.hpp"
#include "sim/scenario.hpp"

namespace dtsim {

// Loads (or generates) the scenario's training and test sets: shuffled with the scenario's
// seed, then cut to train_samples / test_samples. Throws DatasetError or InputError.
DatasetPair load_data(const Scenario& scenario);

// Called with each evaluation point as soon as it is computed (to stream metrics.csv).
using EvalCallback = std::function<void(const EvalPoint&)>;

// Runs the scenario with `threads` threads for jobs (>= 1, counting the caller's). The
// result, and every callback, is the same for any thread count. In time-only mode `data` may
// be empty (only its shape is used if present) and no numerics run.
// `observers` (not owned) see every compute span, message, wait and step end.
RunResult run_training(const Scenario& scenario, const DatasetPair& data, int threads,
                       const EvalCallback& on_eval = {},
                       const std::vector<SimObserver*>& observers = {});

}  // namespace dtsim
