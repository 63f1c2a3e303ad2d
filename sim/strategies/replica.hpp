// A worker's own copy of the model and, where it updates it itself, its optimizer.
#pragma once

#include <memory>
#include <vector>

#include "engine/optimizer.hpp"
#include "sim/train/run_core.hpp"

namespace dtsim {

struct Replica {
  std::vector<float> params;             // empty in time-only mode
  std::unique_ptr<Optimizer> optimizer;  // null where a server updates the model

  // The run's initial model; with `own_optimizer`, the scenario's optimizer for it.
  static Replica initial(const RunCore& core, bool own_optimizer) {
    Replica r;
    if (!core.numerics()) return r;
    r.params = core.initial_params();
    if (own_optimizer) {
      r.optimizer = std::make_unique<Optimizer>(core.scenario().train.optimizer, core.num_params());
    }
    return r;
  }
};

}  // namespace dtsim
