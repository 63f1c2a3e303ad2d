// A strategy: how the workers (and servers, or peers) of a run exchange what they compute.
// One class per family of sync modes (sim/strategies/*.cpp), made by its row of the strategy
// table (registry.hpp). It owns its per-worker and per-server state and provides its node
// programs; the shared services (gradients, job times, progress, evaluation, divergence) are
// the RunCore's (sim/train/run_core.hpp).
//
// Everything runs on the event loop's thread, except the work inside compute() jobs; a job
// may touch only what its node program owns until the job ends.
#pragma once

#include <cstdint>
#include <span>

#include "sim/train/run_core.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

class Strategy {
 public:
  explicit Strategy(RunCore& core) : core_(core) {}
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  // Spawns the node programs (core().sim().spawn(...)); they run when the simulation does.
  virtual void start() = 0;
  // The global model, for evaluation: one replica, the servers' shards, or the replicas'
  // average; `consensus` is the replicas' spread (NaN when there is one model).
  virtual std::span<const float> global_params(double& consensus) = 0;
  // Updates of the global model over the whole run: the run's steps, or one per gradient.
  virtual std::uint64_t total_updates() const { return core_.total_steps(); }
  // Whether the global model has versions, so that staleness is measured.
  virtual bool versioned() const { return true; }
  // Whether the run moves in global steps (a divergence is then reported by step).
  virtual bool lock_step() const { return true; }
  // Node `node` as nodes.csv shows it: the core fills the accounts, the role (worker or
  // server) and the steps; a strategy may say more.
  virtual void describe(int /*node*/, NodeStats& /*out*/) const {}
  // Worker w crashed or went down (a restart) and the others noticed: failure_timeout after
  // its fault. Called only for strategies whose row says survives_crash.
  virtual void worker_lost(int /*w*/) {}
  // The run ended: a strategy may add what it measured.
  virtual void finish(RunResult& /*result*/) {}

 protected:
  RunCore& core() { return core_; }
  const RunCore& core() const { return core_; }

 private:
  RunCore& core_;
};

}  // namespace dtsim
