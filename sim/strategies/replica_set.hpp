// Replicas that drift apart (local SGD, gossip): each worker steps its own copy, and the
// global model is their average, with their spread as the consensus distance.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "sim/strategies/replica.hpp"

namespace dtsim {

class ReplicaSet {
 public:
  // One replica per worker, from the initial model, each with its own optimizer.
  explicit ReplicaSet(RunCore& core);

  Replica& operator[](int w) { return replicas_[static_cast<std::size_t>(w)]; }

  // Worker w finished step `step` (1-based); `last` if it stops after it. When every worker
  // has finished the step it counts as progress; at every eval_every-th step (and the last)
  // the replicas are snapshot as each worker gets there, and their average is evaluated.
  void step_done(int w, std::uint64_t step, bool last);
  // Worker w stopped for good (a crash) after its last step_done: from now on a step is
  // complete without it, and the average is over the others.
  void drop(int w);
  // The average of the replicas, summed in worker order, and their spread
  // sqrt(mean_w ||x_w - mean||^2). `live`: the replicas as they are now; otherwise the
  // snapshots of the step being evaluated.
  std::span<const float> average(double& consensus, bool live);

 private:
  struct Step {
    int arrived = 0;
    std::vector<std::vector<float>> snapshots;
  };
  RunCore& core_;
  std::vector<Replica> replicas_;
  // Each step (counted once) when every live worker has finished it.
  void complete(std::uint64_t step);

  std::map<std::uint64_t, Step> steps_;  // steps not yet finished by every worker
  std::vector<bool> dropped_;
  int live_ = 0;
  std::uint64_t samples_ = 0;  // samples in the completed steps
  std::vector<std::vector<float>> snapshots_;
  std::vector<float> mean_;
};

}  // namespace dtsim
