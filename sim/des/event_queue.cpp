#include "sim/des/event_queue.hpp"

#include <stdexcept>

namespace dtsim {

void EventQueue::schedule_slow(SimTime t, Event e) {
  const std::int64_t ns = t.ns();
  // pop()'s fast path relies on this (and the simulation on time never going back).
  if (ns < popping_time_) throw std::logic_error("event queue: an event scheduled in the past");
  auto [it, inserted] = buckets_.try_emplace(ns);
  if (inserted) {
    times_.push(ns);
    if (!spare_.empty()) {
      it->second.events = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  cached_time_ = ns;
  cached_ = &it->second;
  cached_->events.push_back(e);
  ++size_;
}

Event EventQueue::pop_slow(SimTime& t) {
  const std::int64_t ns = times_.top();
  t = SimTime::from_ns(ns);
  if (ns != popping_time_ || popping_ == nullptr) {
    popping_ = &buckets_.find(ns)->second;
    popping_time_ = ns;
  }
  Bucket& bucket = *popping_;
  const Event e = bucket.events[bucket.next++];
  --size_;
  ++popped_;
  if (bucket.next == bucket.events.size()) {
    bucket.events.clear();
    spare_.push_back(std::move(bucket.events));
    buckets_.erase(ns);
    times_.pop();
    if (cached_time_ == ns) cached_ = nullptr;
    popping_ = nullptr;
  }
  return e;
}

}  // namespace dtsim
