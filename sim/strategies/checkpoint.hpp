// A parameter-server shard's checkpoints, and its recovery when it crashes or restarts
// (strategy.checkpoint_every, [[faults]] on a shard; docs/faults.md).
//
// After every checkpoint_every of its updates (at the first point it has answered its
// workers) the shard saves its part of the parameters and
// its optimizer state; it waits while they are written at its link's bandwidth (a synchronous
// checkpoint; the write does not load the network). Before its first checkpoint, the initial
// model serves as one (it is known to every node).
//
// A shard's crash or restart takes effect the next time it is about to update after the
// fault's time (every gradient of that update in): what it held in memory is gone. A crash
// brings up a spare in its place (same address and links) once the others noticed,
// failure_timeout after the fault; a restart brings the shard itself back after its
// duration. Either way the shard then reads its last checkpoint (at its link's bandwidth),
// gets the update's gradients again from their workers (the same bytes, at that bandwidth),
// and goes on from the checkpoint's parameters and optimizer state: the updates since the
// checkpoint are lost (counted in the fault's record). Its update count goes on, so the run's
// length does not change.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/optimizer.hpp"
#include "sim/des/task.hpp"
#include "sim/train/run_core.hpp"

namespace dtsim {

class ShardCheckpoints {
 public:
  // The shard on `node` holds parameters [begin, end) of the model (time-only runs: none, and
  // no optimizer).
  ShardCheckpoints(RunCore& core, int node, std::uint64_t begin, std::uint64_t end);

  // Whether the shard takes checkpoints or has a crash or restart to recover from.
  bool active() const { return every_ > 0; }

  // Before an update whose gradients (`gradient_bytes` in all) are in, `version` updates
  // done: if the shard's crash or restart has come, waits until it is back and restores
  // `params` and `optimizer` from the last checkpoint (true).
  Task<bool> before_update(std::uint64_t version, std::vector<float>& params,
                           std::unique_ptr<Optimizer>& optimizer, std::uint64_t gradient_bytes);
  // With `version` updates done (after answering the workers): a checkpoint, if
  // checkpoint_every updates went by since the last one.
  Task<> after_update(std::uint64_t version, const std::vector<float>& params,
                      const Optimizer* optimizer);

 private:
  // The time to move `bytes` over the node's sending (`out`) or receiving links.
  SimTime transfer_time(std::uint64_t bytes, bool out) const;
  std::uint64_t checkpoint_bytes() const;

  RunCore& core_;
  int node_;
  std::uint64_t part_;
  std::uint64_t every_ = 0;
  const FaultConfig* fault_ = nullptr;  // its crash or restart
  bool hit_ = false;
  std::uint64_t saved_at_ = 0;  // updates in the checkpoint
  std::vector<float> saved_params_;
  std::unique_ptr<Optimizer> saved_optimizer_;
};

}  // namespace dtsim
