// Training on one node: the scenario's model, data and optimizer, with virtual time charged
// from the cost model. The simulator's multi-node strategies build on the same pieces.
#pragma once

#include <functional>

#include "engine/data/dataset.hpp"
#include "sim/run_result.hpp"
#include "sim/scenario.hpp"

namespace dtsim {

// Loads (or generates) the scenario's training and test sets: shuffled with the scenario's
// seed, then cut to train_samples / test_samples. Throws DatasetError or InputError.
DatasetPair load_data(const Scenario& scenario);

// Called with each evaluation point as soon as it is computed (to stream metrics.csv).
using EvalCallback = std::function<void(const EvalPoint&)>;

// Trains one node for the scenario's epochs or steps. Evaluates the initial model, then
// every eval_every steps and after the last step; evaluation does not advance virtual time.
// A non-finite training loss stops the run with result.diverged set (the report is still
// written by the caller).
RunResult train_single_node(const Scenario& scenario, const DatasetPair& data,
                            const EvalCallback& on_eval = {});

}  // namespace dtsim
