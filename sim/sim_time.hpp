// Virtual time: a strong integer count of nanoseconds.
//
// Used both for instants (since the start of a run) and for durations. Integer arithmetic
// makes event order exact and the same on every machine; conversion to seconds happens only
// at the edges (reports, cost formulas).
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>

namespace dtsim {

class SimTime {
 public:
  constexpr SimTime() = default;
  static constexpr SimTime from_ns(std::int64_t ns) { return SimTime(ns); }
  // Rounds to the nearest nanosecond.
  static SimTime from_seconds(double seconds) {
    return SimTime(static_cast<std::int64_t>(std::llround(seconds * 1e9)));
  }

  constexpr std::int64_t ns() const { return ns_; }
  constexpr double seconds() const { return static_cast<double>(ns_) / 1e9; }

  constexpr SimTime operator+(SimTime o) const { return SimTime(ns_ + o.ns_); }
  constexpr SimTime operator-(SimTime o) const { return SimTime(ns_ - o.ns_); }
  constexpr SimTime& operator+=(SimTime o) {
    ns_ += o.ns_;
    return *this;
  }
  constexpr SimTime operator*(std::int64_t k) const { return SimTime(ns_ * k); }
  constexpr auto operator<=>(const SimTime&) const = default;

 private:
  constexpr explicit SimTime(std::int64_t ns) : ns_(ns) {}
  std::int64_t ns_ = 0;
};

}  // namespace dtsim
