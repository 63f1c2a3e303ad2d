// Virtual time: a strong integer count of nanoseconds.
//
// Used both for instants (since the start of a run) and for durations. Integer arithmetic
// makes event order exact and the same on every machine; conversion to seconds happens only
// at the edges (reports, cost formulas).
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace dtsim {

// Virtual time left the representable range (about 292 years), e.g. from a bandwidth of
// 1e-300 bit/s. Bad input, reported as such.
class SimTimeOverflow : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

class SimTime {
 public:
  constexpr SimTime() = default;
  static constexpr SimTime from_ns(std::int64_t ns) { return SimTime(ns); }
  // Rounds to the nearest nanosecond. Throws SimTimeOverflow outside about +-292 years.
  static SimTime from_seconds(double seconds) {
    const double ns = seconds * 1e9;
    if (!(std::abs(ns) < 9.2e18)) {
      throw SimTimeOverflow("virtual time overflow: a duration of " + std::to_string(seconds) +
                            " s cannot be represented (check latencies, bandwidths, compute "
                            "speeds and sizes)");
    }
    return SimTime(static_cast<std::int64_t>(std::llround(ns)));
  }

  constexpr std::int64_t ns() const { return ns_; }
  constexpr double seconds() const { return static_cast<double>(ns_) / 1e9; }

  SimTime operator+(SimTime o) const {
    std::int64_t r = 0;
    if (__builtin_add_overflow(ns_, o.ns_, &r)) overflow();
    return SimTime(r);
  }
  SimTime operator-(SimTime o) const {
    std::int64_t r = 0;
    if (__builtin_sub_overflow(ns_, o.ns_, &r)) overflow();
    return SimTime(r);
  }
  SimTime& operator+=(SimTime o) { return *this = *this + o; }
  SimTime operator*(std::int64_t k) const {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(ns_, k, &r)) overflow();
    return SimTime(r);
  }
  constexpr auto operator<=>(const SimTime&) const = default;

 private:
  constexpr explicit SimTime(std::int64_t ns) : ns_(ns) {}
  [[noreturn]] static void overflow() {
    throw SimTimeOverflow("virtual time overflow (more than about 292 years)");
  }
  std::int64_t ns_ = 0;
};

}  // namespace dtsim
