#include "sim/strategies/replica_set.hpp"

#include <cmath>

namespace dtsim {

ReplicaSet::ReplicaSet(RunCore& core) : core_(core) {
  for (int w = 0; w < core.workers(); ++w) replicas_.push_back(Replica::initial(core, true));
  dropped_.assign(static_cast<std::size_t>(core.workers()), false);
  live_ = core.workers();
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
  ++r.arrived;
  complete(step);
}

void ReplicaSet::complete(std::uint64_t step) {
  const auto it = steps_.find(step);
  if (it == steps_.end() || it->second.arrived < live_) return;
  // Every live replica finished this step (steps complete in order: a later one needs
  // everyone past this one). Evaluate their average if this is an evaluation step.
  const bool snapshot = !it->second.snapshots.empty();
  snapshots_ = std::move(it->second.snapshots);
  steps_.erase(it);
  samples_ += static_cast<std::uint64_t>(live_) * static_cast<std::uint64_t>(core_.batch());
  using EvalNow = RunCore::EvalNow;
  core_.progress(step, samples_,
                 core_.numerics() ? (snapshot ? EvalNow::kYes : EvalNow::kNo) : EvalNow::kIfDue);
}

void ReplicaSet::drop(int w) {
  dropped_[static_cast<std::size_t>(w)] = true;
  --live_;
  // The steps it will never finish may be complete now, in order.
  std::vector<std::uint64_t> pending;
  for (const auto& [step, r] : steps_) pending.push_back(step);
  for (std::uint64_t step : pending) complete(step);
}

std::span<const float> ReplicaSet::average(double& consensus, bool live) {
  std::vector<std::span<const float>> reps;
  for (int w = 0; w < core_.workers(); ++w) {
    if (dropped_[static_cast<std::size_t>(w)]) continue;
    reps.emplace_back(live ? (*this)[w].params : snapshots_[static_cast<std::size_t>(w)]);
  }
  const int p = static_cast<int>(reps.size());
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
