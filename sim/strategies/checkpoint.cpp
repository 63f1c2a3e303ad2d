#include "sim/strategies/checkpoint.hpp"

#include <algorithm>
#include <limits>

#include "sim/net/wire.hpp"
#include "sim/train/faults.hpp"

namespace dtsim {

ShardCheckpoints::ShardCheckpoints(RunCore& core, int node, std::uint64_t begin, std::uint64_t end)
    : core_(core), node_(node), part_(end - begin) {
  every_ = static_cast<std::uint64_t>(core.config().checkpoint_every);
  if (every_ == 0) return;
  if (core.faults() != nullptr) fault_ = core.faults()->stop_of(node);
  if (core.numerics()) {
    const std::vector<float>& init = core.initial_params();
    saved_params_.assign(init.begin() + static_cast<std::ptrdiff_t>(begin),
                         init.begin() + static_cast<std::ptrdiff_t>(end));
    saved_optimizer_ = std::make_unique<Optimizer>(core.scenario().train.optimizer, part_);
  }
}

std::uint64_t ShardCheckpoints::checkpoint_bytes() const {
  // The parameters and the optimizer's state: velocity (momentum, nesterov), two moments (adam).
  const OptimizerKind kind = core_.scenario().train.optimizer.kind;
  const std::uint64_t state =
      kind == OptimizerKind::kSgd ? 0 : (kind == OptimizerKind::kAdam ? 2 : 1);
  return (1 + state) * part_ * wire::kFloatBytes;
}

SimTime ShardCheckpoints::transfer_time(std::uint64_t bytes, bool out) const {
  const Topology& topo = core_.sim().network().topology();
  double bandwidth = std::numeric_limits<double>::infinity();
  for (const int l : topo.node_links(node_, out, !out))
    bandwidth = std::min(bandwidth, topo.link(l).bandwidth);
  return SimTime::from_seconds(static_cast<double>(bytes) / bandwidth);  // (bytes/s)
}

Task<bool> ShardCheckpoints::recover(std::uint64_t version, std::vector<float>& params,
                                     std::unique_ptr<Optimizer>& optimizer,
                                     std::uint64_t resent_bytes) {
  Simulation& sim = core_.sim();
  if (fault_ == nullptr || hit_ || sim.now() < fault_->at) co_return false;
  hit_ = true;
  const SimTime needed = sim.now();
  // Down from the fault until a spare (crash) or the shard itself (restart) is up.
  const SimTime up = fault_->kind == FaultKind::kCrash ? fault_->at + core_.config().failure_timeout
                                                       : fault_->at + *fault_->duration;
  if (up > sim.now()) co_await sim.delay(up - sim.now());
  co_await sim.compute(node_, transfer_time(checkpoint_bytes() + resent_bytes, false), {},
                       "restore");
  if (core_.numerics()) {
    params = saved_params_;
    *optimizer = *saved_optimizer_;
  }
  core_.faults()->shard_restored(node_, needed, sim.now(), version - saved_at_);
  co_return true;
}

Task<> ShardCheckpoints::after_update(std::uint64_t version, std::uint64_t total,
                                      const std::vector<float>& params,
                                      const Optimizer* optimizer) {
  if (version < saved_at_ + every_ || version >= total) co_return;
  saved_at_ = version;
  if (core_.numerics()) {
    saved_params_ = params;
    *saved_optimizer_ = *optimizer;
  }
  const SimTime t = transfer_time(checkpoint_bytes(), true);
  co_await core_.sim().compute(node_, t, {}, "checkpoint");
  core_.record_checkpoint(t);
}

}  // namespace dtsim
