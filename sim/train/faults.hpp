// The run's faults ([[faults]], docs/faults.md): when each begins and ends, what it does to
// the nodes and links, and what it cost.
//
// Byzantine faults are the gradient's (RunCore::gradient). The others are the run's:
//   slow       job_time() multiplies a job the node starts inside the window by `factor`
//   link-down  the node's links' capacity is 0 inside the window (Network::set_capacity)
//   loss       the node's links lose transfers inside the window (Network::set_loss)
//   crash      the node's program stops at its next step; the strategy hears of it
//              failure_timeout after `at` (Strategy::worker_lost) and goes on without it
//   restart    the same, and the node is back at at + duration (the strategy rejoins it)
//   A parameter-server shard that crashes or restarts resumes from its last checkpoint
//   (sim/strategies/checkpoint.hpp); the strategy is not told.
// Single-threaded: used from the event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/des/simulation.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

class FaultSchedule {
 public:
  // `lost` is called failure_timeout after a worker crashed or went down (restart), with the
  // worker's index (not for a server shard).
  FaultSchedule(const Scenario& s, Simulation& sim, std::function<void(int)> lost);
  FaultSchedule(const FaultSchedule&) = delete;
  FaultSchedule& operator=(const FaultSchedule&) = delete;

  // Schedules every fault's start and end (before the run).
  void start();

  // The compute-time multiplier of a job `node` starts now (1 outside slow faults); the
  // extra time is charged to the fault.
  double slow_factor(int node, SimTime base);

  // Node w's crash or restart fault, if it has one (workers are nodes 0..p-1).
  const FaultConfig* stop_of(int w) const;
  // Whether worker w is down now (crashed, or inside its restart's window).
  bool down(int w) const;
  // When a restarting worker is back (SimTime max for a crash).
  SimTime back_at(int w) const;

  // Costs, charged by the strategies to worker w's crash or restart fault.
  void lost_gradient(int w, SimTime compute);  // a gradient computed and never used
  void stalled(int w, SimTime t);              // the run waited t for it (detection, rejoin)
  void rejoined(int w, SimTime at);
  // A server shard on `node`, needed again at `needed`, resumed from its checkpoint at `at`,
  // undoing `lost_updates`.
  void shard_restored(int node, SimTime needed, SimTime at, std::uint64_t lost_updates);

  // What happened, for summary.json, the report and trace.json (the network's retransmissions
  // counted in); in [[faults]] order.
  std::vector<FaultRecord> records() const;

 private:
  static void begin_event(void* self, std::uint64_t index);
  static void end_event(void* self, std::uint64_t index);
  static void lost_event(void* self, std::uint64_t index);
  // The links a link-down or loss fault hits.
  std::vector<int> links_of(const FaultConfig& f) const;
  FaultRecord& record_of_stop(int w);

  const Scenario& s_;
  Simulation& sim_;
  std::function<void(int)> lost_;
  std::vector<FaultRecord> records_;  // one per [[faults]] entry
  std::vector<double> slow_;          // by node: the current multiplier
  std::vector<int> slow_fault_;       // by node: the slow fault's index, or -1
  std::vector<int> stop_;             // by worker: its crash/restart fault, or -1
  // Loss faults: the links' retransmission counts when the fault began (or ended).
  std::vector<std::uint64_t> loss_base_;
  std::vector<std::uint64_t> loss_bytes_base_;
  std::vector<bool> ended_;
};

}  // namespace dtsim
