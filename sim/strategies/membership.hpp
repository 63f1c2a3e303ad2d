// Who takes part in a lock-step strategy's steps when workers crash or restart ([[faults]],
// docs/faults.md).
//
// Each step's exchange begins at a gate: it opens when every member has arrived, and the
// members that arrived are the step's group (its collective is formed over them, ranked in
// worker order, and its mean divides by their number). A worker whose crash or restart time
// has come finds out when it arrives at its next gate: the gradient it was computing is lost
// and it does not check in. The others notice failure_timeout after its fault (lost()): it is
// no longer a member, and a gate that waited only for it opens then; what the others waited
// beyond the last arrival is charged to the fault. A restarted worker rejoins at a step's end:
// the step's leader (its group's first worker) sends it the model and optimizer state, and
// from the next step it is a member again.
//
// Only runs with crash or restart faults use it (active()); the others have no gate and keep
// their timing exactly.
#pragma once

#include <coroutine>
#include <cstdint>
#include <vector>

#include "sim/train/run_core.hpp"

namespace dtsim {

class Membership {
 public:
  explicit Membership(RunCore& core);

  bool active() const { return active_; }

  // Whether worker w's fault hits it now, at its arrival at a gate (once per fault).
  bool hit(int w);

  struct Awaiter {
    Membership& m;
    int w;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
  };
  // Worker w arrives at its step's gate; resumes when the gate opens.
  Awaiter arrive(int w) { return {*this, w}; }
  // The others noticed worker w is gone.
  void lost(int w);

  // Resumes when the k-th gate (from 0: step k's, in lock-step strategies) has opened; then
  // group_nodes_of(k) is its group. For the parameter servers, which serve each step's group.
  struct OpenedAwaiter {
    Membership& m;
    std::uint64_t k;
    bool await_ready() const noexcept { return m.opened_ > k; }
    void await_suspend(std::coroutine_handle<> h) { m.opened_waiters_.emplace_back(k, h); }
    void await_resume() const noexcept {}
  };
  OpenedAwaiter opened(std::uint64_t k) { return {*this, k}; }
  const std::vector<int>& group_nodes_of(std::uint64_t k) const {
    return history_[static_cast<std::size_t>(k)];
  }

  // The open step's group: its nodes in worker order, w's rank among them, its size.
  const std::vector<int>& group_nodes() const { return group_nodes_; }
  int rank_of(int w) const;
  int size() const { return static_cast<int>(group_.size()); }
  int leader() const { return group_.empty() ? 0 : group_.front(); }

  // Resumes when the others have noticed worker w is gone (lost(w) has been called).
  struct NoticeAwaiter {
    Membership& m;
    int w;
    bool await_ready() const noexcept { return m.noticed_[static_cast<std::size_t>(w)]; }
    void await_suspend(std::coroutine_handle<> h) {
      m.notice_waiter_[static_cast<std::size_t>(w)] = h;
    }
    void await_resume() const noexcept {}
  };
  NoticeAwaiter noticed(int w) { return {*this, w}; }

  // Restart: worker w is back and waits to rejoin; the leader of a step calls take_rejoining()
  // at the step's end and makes them members from the next step.
  void want_rejoin(int w) { rejoining_.push_back(w); }
  std::vector<int> take_rejoining();
  // The run's last step ended: nobody will rejoin any more.
  void close() { closed_ = true; }
  bool closed() const { return closed_; }

 private:
  void open_gate();
  // Whether every member has arrived at the open gate.
  bool all_arrived() const;

  RunCore& core_;
  bool active_ = false;
  std::vector<bool> member_;   // by worker
  std::vector<bool> hit_;      // by worker: its fault has hit it
  std::vector<bool> noticed_;  // by worker: lost() was called
  std::vector<std::coroutine_handle<>> notice_waiter_;
  std::vector<int> arrived_;  // this gate's arrivals (workers)
  std::vector<std::coroutine_handle<>> waiting_;
  SimTime last_arrival_;
  std::vector<int> group_;  // the open step's workers, in order
  std::vector<int> group_nodes_;
  std::vector<int> rank_;  // by worker: its rank in group_, or -1
  std::vector<int> rejoining_;
  bool closed_ = false;
  std::uint64_t opened_ = 0;               // gates opened so far
  std::vector<std::vector<int>> history_;  // each opened gate's group nodes
  std::vector<std::pair<std::uint64_t, std::coroutine_handle<>>> opened_waiters_;
};

}  // namespace dtsim
