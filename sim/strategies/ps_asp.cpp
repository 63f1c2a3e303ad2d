// ps, asp (Downpour): each shard applies every gradient part as it arrives, one optimizer step
// each, at lr(u / p) for the u-th update, and answers the worker's pull at once. With one
// worker this is sequential SGD exactly.
#include "sim/strategies/ps_async.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

class AspRule : public ServerRule {
 public:
  explicit AspRule(const RunCore& core) : core_(core) {}
  std::vector<Pending> next_update(ServerShard& sv, int /*shard*/, double& lr) override {
    if (sv.pending.empty()) return {};
    std::vector<Pending> group;
    group.push_back(std::move(sv.pending.front()));
    sv.pending.erase(sv.pending.begin());
    lr = core_.lr_at(sv.version / static_cast<std::uint64_t>(core_.workers()));
    return group;
  }
  bool update_per_gradient() const override { return true; }

 private:
  const RunCore& core_;
};

}  // namespace

void predict_ps_asp(const PredictionBasis& basis, StepPrediction& out) {
  predict_parameter_server(basis, out);
  out.lock_step = false;
}

std::unique_ptr<Strategy> make_ps_asp(RunCore& core) {
  return std::make_unique<AsyncPs>(core, std::make_unique<AspRule>(core));
}

}  // namespace dtsim
