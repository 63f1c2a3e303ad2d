// ps, bsp with backup_workers = b (TensorFlow's SyncReplicasOptimizer): a shard keeps a
// gradient computed on its current version and drops an older one; when p - b are kept it
// averages them (in worker order) and steps; a worker is answered once the version it computed
// on is over. A dropped worker starts again on the newest version. Each shard decides on its
// own, so with several shards and uneven paths they may keep different workers' parts;
// `dropped` counts what shard 0 dropped. Made by the ps bsp row's factory (ps_bsp.cpp).
#include "sim/strategies/ps_async.hpp"

namespace dtsim {
namespace {

class BackupRule : public ServerRule {
 public:
  explicit BackupRule(RunCore& core) : core_(core) {}

  std::vector<Pending> next_update(ServerShard& sv, int shard, double& lr) override {
    // Drop what was computed on an old version, or arrives after the last step.
    for (auto g = sv.pending.begin(); g != sv.pending.end();) {
      if (g->read_version != sv.version || sv.version >= core_.total_steps()) {
        if (shard == 0) ++core_.worker(g->worker).dropped;
        g = sv.pending.erase(g);
      } else {
        ++g;
      }
    }
    const auto needed = static_cast<std::size_t>(core_.workers() - core_.config().backup_workers);
    if (sv.pending.size() < needed) return {};
    std::vector<Pending> group = std::move(sv.pending);
    sv.pending.clear();
    lr = core_.lr_at(sv.version);
    return group;
  }
  bool may_answer(const ServerShard& sv, int shard, int /*w*/, const PsWorker& wk) const override {
    return !wk.req_gradient || sv.version >= core_.total_steps() ||
           sv.version > wk.read_version[static_cast<std::size_t>(shard)];
  }
  bool rounds() const override { return true; }
  bool update_per_gradient() const override { return false; }

 private:
  RunCore& core_;
};

}  // namespace

std::unique_ptr<Strategy> make_ps_backup(RunCore& core) {
  return std::make_unique<AsyncPs>(core, std::make_unique<BackupRule>(core));
}

}  // namespace dtsim
