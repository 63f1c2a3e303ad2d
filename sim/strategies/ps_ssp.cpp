// ps, ssp with staleness = s (Ho et al. 2013): a worker's c-th gradient (from 0) belongs to
// clock c. Clock c is applied as one step, the average of its gradients (summed in worker
// order), once every worker has sent its gradient of clock c or has finished; so the version
// is the number of complete clocks, and a worker at clock c sees every update of clocks
// < version. A worker about to compute clock c is answered once c <= version + s: nobody gets
// more than s clocks ahead of the slowest, and staleness never exceeds s. With s = 0 this is
// exactly bsp; with a large s nobody waits (asp's timing), but updates still apply clock by
// clock, as fast as the slowest worker completes them.
#include <algorithm>
#include <iterator>

#include "sim/scenario/checks.hpp"
#include "sim/strategies/ps_async.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

class SspRule : public ServerRule {
 public:
  explicit SspRule(const RunCore& core)
      : core_(core), bound_(static_cast<std::uint64_t>(*core.config().staleness)) {}
  std::vector<Pending> next_update(ServerShard& sv, int /*shard*/, double& lr) override {
    // Clock `version` is complete when every worker has sent its gradient of that clock or
    // will send no more.
    for (int v = 0; v < core_.workers(); ++v) {
      if (!sv.finished[static_cast<std::size_t>(v)] &&
          sv.clocks[static_cast<std::size_t>(v)] <= sv.version)
        return {};
    }
    const auto of_clock = [&](const Pending& g) { return g.clock == sv.version; };
    const auto split = std::stable_partition(sv.pending.begin(), sv.pending.end(), of_clock);
    if (split == sv.pending.begin()) return {};
    std::vector<Pending> group(std::make_move_iterator(sv.pending.begin()),
                               std::make_move_iterator(split));
    sv.pending.erase(sv.pending.begin(), split);
    lr = core_.lr_at(sv.version);
    return group;
  }
  // Its next gradient is of clock clocks[w]; `version` clocks are done.
  bool may_answer(const ServerShard& sv, int /*shard*/, int w,
                  const PsWorker& /*wk*/) const override {
    return sv.clocks[static_cast<std::size_t>(w)] <= sv.version + bound_;
  }
  bool update_per_gradient() const override { return false; }

 private:
  const RunCore& core_;
  std::uint64_t bound_;
};

}  // namespace

void check_ps_ssp(const Scenario& s, ScenarioChecks& checks) {
  checks.need(
      !s.strategy.staleness, "staleness",
      "the bound s (staleness = 2: no worker gets more than 2 clocks ahead of the slowest)");
}

void predict_ps_ssp(const PredictionBasis& basis, StepPrediction& out) {
  predict_parameter_server(basis, out);
  out.lock_step = false;
}

std::unique_ptr<Strategy> make_ps_ssp(RunCore& core) {
  return std::make_unique<AsyncPs>(core, std::make_unique<SspRule>(core));
}

}  // namespace dtsim
