// The simulator's event queue: callbacks ordered by (virtual time, scheduling order).
//
// Events with the same time run in the order they were scheduled, so ties break the same way
// on every run. Events that share a time are kept together in one FIFO bucket, and only the
// distinct times go through the heap: a collective step in which thousands of messages arrive
// at the same instant costs one heap operation, not thousands. Single-threaded: only the event
// loop's thread touches it.
#pragma once

#include <cstdint>
#include <deque>
#include <queue>
#include <unordered_map>
#include <vector>

#include "sim/des/sim_time.hpp"

namespace dtsim {

// A callback without allocation: fn(target, arg).
struct Event {
  void (*fn)(void* target, std::uint64_t arg) = nullptr;
  void* target = nullptr;
  std::uint64_t arg = 0;
};

class EventQueue {
 public:
  // Schedules `e` at time `t` (t >= the time of the event being run).
  void schedule(SimTime t, Event e) {
    if (t.ns() == cached_time_ && cached_ != nullptr) {
      cached_->events.push_back(e);
      ++size_;
      return;
    }
    schedule_slow(t, e);
  }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // Time of the next event; precondition: !empty().
  SimTime next_time() const { return SimTime::from_ns(times_.top()); }
  // Removes and returns the next event, setting `t` to its time; precondition: !empty().
  Event pop(SimTime& t) {
    // The bucket being drained stays the earliest until it is empty: nothing is scheduled
    // before the current event's time.
    if (popping_ != nullptr && popping_->next + 1 < popping_->events.size()) {
      t = SimTime::from_ns(popping_time_);
      --size_;
      ++popped_;
      return popping_->events[popping_->next++];
    }
    return pop_slow(t);
  }
  std::uint64_t events_run() const { return popped_; }

 private:
  void schedule_slow(SimTime t, Event e);
  Event pop_slow(SimTime& t);

  struct Bucket {
    std::vector<Event> events;
    std::size_t next = 0;
  };
  std::priority_queue<std::int64_t, std::vector<std::int64_t>, std::greater<>> times_;
  std::unordered_map<std::int64_t, Bucket> buckets_;
  std::int64_t cached_time_ = -1;  // the bucket most recently scheduled into
  Bucket* cached_ = nullptr;
  std::int64_t popping_time_ = -1;  // the bucket pop() is draining
  Bucket* popping_ = nullptr;
  std::vector<std::vector<Event>> spare_;  // emptied bucket storage, reused
  std::size_t size_ = 0;
  std::uint64_t popped_ = 0;
};

}  // namespace dtsim
