#include "sim/strategies/membership.hpp"

#include <algorithm>

namespace dtsim {

Membership::Membership(RunCore& core) : core_(core) {
  const int p = core.workers();
  for (int w = 0; w < p && core.faults() != nullptr; ++w) {
    active_ = active_ || core.faults()->stop_of(w) != nullptr;
  }
  member_.assign(static_cast<std::size_t>(p), true);
  hit_.assign(static_cast<std::size_t>(p), false);
  noticed_.assign(static_cast<std::size_t>(p), false);
  notice_waiter_.assign(static_cast<std::size_t>(p), nullptr);
  rank_.assign(static_cast<std::size_t>(p), -1);
  for (int w = 0; w < p; ++w) {
    group_.push_back(w);
    group_nodes_.push_back(core.worker(w).node);
    rank_[static_cast<std::size_t>(w)] = w;
  }
}

bool Membership::hit(int w) {
  const auto i = static_cast<std::size_t>(w);
  if (!active_ || hit_[i]) return false;
  const FaultConfig* f = core_.faults()->stop_of(w);
  if (f == nullptr || core_.sim().now() < f->at) return false;
  hit_[i] = true;
  return true;
}

bool Membership::Awaiter::await_suspend(std::coroutine_handle<> h) {
  m.arrived_.push_back(w);
  m.waiting_.push_back(h);
  m.last_arrival_ = m.core_.sim().now();
  if (m.all_arrived()) m.open_gate();
  return true;
}

bool Membership::all_arrived() const {
  std::size_t members = 0;
  std::size_t arrived = 0;
  for (std::size_t w = 0; w < member_.size(); ++w) members += member_[w] ? 1 : 0;
  for (int w : arrived_) arrived += member_[static_cast<std::size_t>(w)] ? 1 : 0;
  return arrived == members;
}

void Membership::lost(int w) {
  const auto i = static_cast<std::size_t>(w);
  member_[i] = false;
  noticed_[i] = true;
  if (notice_waiter_[i]) {
    core_.sim().schedule_resume(core_.sim().now(), notice_waiter_[i]);
    notice_waiter_[i] = nullptr;
  }
  if (waiting_.empty() || !all_arrived()) return;
  // The gate waited for w alone since the last arrival (unless w itself was in).
  if (std::find(arrived_.begin(), arrived_.end(), w) == arrived_.end()) {
    core_.faults()->stalled(w, core_.sim().now() - last_arrival_);
  }
  open_gate();
}

void Membership::open_gate() {
  Simulation& sim = core_.sim();
  group_ = arrived_;
  std::sort(group_.begin(), group_.end());
  group_nodes_.clear();
  std::fill(rank_.begin(), rank_.end(), -1);
  for (std::size_t r = 0; r < group_.size(); ++r) {
    group_nodes_.push_back(core_.worker(group_[r]).node);
    rank_[static_cast<std::size_t>(group_[r])] = static_cast<int>(r);
  }
  for (std::coroutine_handle<> h : waiting_) sim.schedule_resume(sim.now(), h);
  arrived_.clear();
  waiting_.clear();
  history_.push_back(group_nodes_);
  ++opened_;
  for (auto it = opened_waiters_.begin(); it != opened_waiters_.end();) {
    if (it->first < opened_) {
      sim.schedule_resume(sim.now(), it->second);
      it = opened_waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

int Membership::rank_of(int w) const { return rank_[static_cast<std::size_t>(w)]; }

std::vector<int> Membership::take_rejoining() {
  std::vector<int> out;
  out.swap(rejoining_);
  for (int w : out) member_[static_cast<std::size_t>(w)] = true;
  return out;
}

}  // namespace dtsim
