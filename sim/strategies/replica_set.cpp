#include "sim/strategies/replica_set.hpp"

#include <cmath>

namespace dtsim {

ReplicaSet::ReplicaSet(RunCore& core) : core_(core) {
  for (int w = 0; w < core.workers(); ++w) replicas_.push_back(Replica::initial(core, true));
}

void ReplicaSet::step_done(int w, std::uint64_t step, bool last) {
  const int p = core_.workers();
  Step& r = steps_[step];
  const bool snapshot =
      core_.numerics() &&
      (step % static_cast<std::uint64_t>(core_.scenario().train.eval_every) == 0 || last);
  if (snapshot) {
    r.snapshots.resize(static_cast<std::size_t>(p));
    r.snapshots[static_cast<std::size_t>(w)] = (*this)[w].params;
  }
  if (++r.arrived < p) return;
  // Every replica finished this step (steps complete in order: a later one needs everyone
  // past this one). Evaluate their average if this is an evaluation step.
  snapshots_ = std::move(r.snapshots);
  steps_.erase(step);
  using EvalNow = RunCore::EvalNow;
  core_.progress(step,
                 step * static_cast<std::uint64_t>(p) * static_cast<std::uint64_t>(core_.batch()),
                 core_.numerics() ? (snapshot ? EvalNow::kYes : EvalNow::kNo) : EvalNow::kIfDue);
}

std::span<const float> ReplicaSet::average(double& consensus, bool live) {
  const int p = core_.workers();
  std::vector<std::span<const float>> reps;
  for (int w = 0; w < p; ++w) {
    reps.emplace_back(live ? (*this)[w].params : snapshots_[static_cast<std::size_t>(w)]);
  }
  const std::size_t n = core_.num_params();
  mean_.assign(n, 0.0f);
  for (const auto& r : reps) {
    for (std::size_t i = 0; i < n; ++i) mean_[i] += r[i];
  }
  const float inv = 1.0f / static_cast<float>(p);
  for (float& v : mean_) v *= inv;
  double spread = 0;
  for (const auto& r : reps) {
    for (std::size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(r[i]) - static_cast<double>(mean_[i]);
      spread += d * d;
    }
  }
  consensus = std::sqrt(spread / static_cast<double>(p));
  return mean_;
}

}  // namespace dtsim
