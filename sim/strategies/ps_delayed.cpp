// ps, delayed with staleness = tau (the delayed-SGD model of the theory papers): gradient
// number u of the run (in the order workers ask for parameters) is computed on version
// max(0, u - tau) and applied as update u, in order: staleness is exactly tau after the first
// tau updates. Shards keep the last tau + 1 versions. tau = 0 is sequential SGD: one gradient
// at a time, so the workers mostly wait.
#include <algorithm>

#include "sim/scenario/checks.hpp"
#include "sim/strategies/ps_async.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

class DelayedRule : public ServerRule {
 public:
  explicit DelayedRule(const RunCore& core)
      : core_(core), tau_(static_cast<std::uint64_t>(*core.config().staleness)) {}

  std::vector<Pending> next_update(ServerShard& sv, int /*shard*/, double& lr) override {
    const auto next = std::find_if(sv.pending.begin(), sv.pending.end(),
                                   [&](const Pending& g) { return g.slot == sv.version; });
    if (next == sv.pending.end()) return {};
    std::vector<Pending> group;
    group.push_back(std::move(*next));
    sv.pending.erase(next);
    lr = core_.lr_at(sv.version / static_cast<std::uint64_t>(core_.workers()));
    return group;
  }
  bool may_answer(const ServerShard& sv, int /*shard*/, int /*w*/,
                  const PsWorker& wk) const override {
    return sv.version >= read_version(wk);
  }
  std::uint64_t served_version(const ServerShard& /*sv*/, const PsWorker& wk) const override {
    return read_version(wk);
  }
  const std::vector<float>& params_of(const ServerShard& sv, int shard,
                                      std::uint64_t version) const override {
    const auto& h = history_[static_cast<std::size_t>(shard)];
    return h[h.size() - 1 - static_cast<std::size_t>(sv.version - version)];
  }
  void ready(const ServerShard& sv, int /*shard*/) override {
    history_.emplace_back();
    if (core_.numerics()) history_.back().push_back(sv.params);
  }
  // Versions version - tau .. version.
  void updated(const ServerShard& sv, int shard) override {
    if (!core_.numerics()) return;
    auto& h = history_[static_cast<std::size_t>(shard)];
    h.push_back(sv.params);
    if (h.size() > tau_ + 1) h.erase(h.begin());
  }
  // Its older versions were in the memory it lost: each is now the checkpoint's.
  void restored(const ServerShard& sv, int shard) override {
    if (!core_.numerics()) return;
    auto& h = history_[static_cast<std::size_t>(shard)];
    std::fill(h.begin(), h.end(), sv.params);
  }
  bool update_per_gradient() const override { return true; }

 private:
  // The version its next gradient is computed on.
  std::uint64_t read_version(const PsWorker& wk) const {
    return wk.slot >= tau_ ? wk.slot - tau_ : 0;
  }
  const RunCore& core_;
  std::uint64_t tau_;
  std::vector<std::vector<std::vector<float>>> history_;  // per shard
};

}  // namespace

void check_ps_delayed(const Scenario& s, ScenarioChecks& checks) {
  checks.need(
      !s.strategy.staleness, "staleness",
      "the delay tau (staleness = 4: every gradient is computed on parameters 4 updates old)");
}

void predict_ps_delayed(const PredictionBasis& basis, StepPrediction& out) {
  predict_parameter_server(basis, out);
  out.lock_step = false;
}

std::unique_ptr<Strategy> make_ps_delayed(RunCore& core) {
  return std::make_unique<AsyncPs>(core, std::make_unique<DelayedRule>(core));
}

}  // namespace dtsim
