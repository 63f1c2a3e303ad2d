// A parameter-server shard's checkpoints, and its recovery when it crashes or restarts
// (strategy.checkpoint_every, [[faults]] on a shard; docs/faults.md).
//
// After every checkpoint_every of its updates (at the first point it has answered its
// workers; none after the run's last update) the shard saves its part of the parameters and
// its optimizer state; it waits while they are written at its link's bandwidth (a synchronous
// checkpoint; the write does not load the network). Before its first checkpoint, the initial
// model serves as one (it is known to every node).
//
// A shard's crash or restart takes effect the next time it would serve anything after the
// fault's time (a bsp shard: when a step's gradients are in; an asynchronous one: when a
// request arrives): what it held in memory is gone, and it serves nothing until it is back.
// A crash brings up a spare in its place (same address and links) once the others noticed,
// failure_timeout after the fault; a restart brings the shard itself back after its
// duration. Either way the shard then reads its last checkpoint (at its link's bandwidth),
// gets the gradients waiting for it again from their workers (the same bytes, at that
// bandwidth), and goes on from the checkpoint's parameters and optimizer state: the updates
// since the checkpoint are lost (counted in the fault's record). Its update count goes on, so
// the run's length does not change. The fault's cost is the time from when the shard was
// next needed (the fault's time, or later) to the end of its restore.
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

  // Before the shard serves anything (an update, or parameters to a worker), `version`
  // updates done, `resent_bytes` of gradients waiting for it: if its crash or restart has
  // come, waits until it is back, gets those gradients again and restores `params` and
  // `optimizer` from the last checkpoint (true).
  Task<bool> recover(std::uint64_t version, std::vector<float>& params,
                     std::unique_ptr<Optimizer>& optimizer, std::uint64_t resent_bytes);
  // With `version` of the run's `total` updates done (after answering the workers): a
  // checkpoint, if checkpoint_every updates went by since the last one (none after the last).
  Task<> after_update(std::uint64_t version, std::uint64_t total, const std::vector<float>& params,
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
