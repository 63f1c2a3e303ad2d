#include "engine/rng.hpp"

#include <cmath>
#include <numbers>

namespace dtsim {
namespace {
constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;
__extension__ typedef unsigned __int128 u128;
}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

CounterRng::CounterRng(RngKey key) {
  std::uint64_t h = mix64(key.seed ^ 0x5DEECE66DULL);
  h = mix64(h ^ (static_cast<std::uint64_t>(key.purpose) << 32 | key.node));
  h = mix64(h ^ mix64(key.step + kGamma));
  base_ = h;
}

std::uint64_t CounterRng::next_u64() {
  ++counter_;
  return mix64(base_ + counter_ * kGamma);
}

double CounterRng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t CounterRng::uniform_int(std::uint64_t n) {
  // Lemire: multiply-shift, rejecting the low band that would bias small values.
  u128 m = static_cast<u128>(next_u64()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<u128>(next_u64()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

double CounterRng::normal() {
  double u1 = uniform();
  const double u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double CounterRng::gamma(double shape) {
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    const double g = gamma(shape + 1.0);
    double u = uniform();
    if (u < 1e-300) u = 1e-300;
    return g * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0;
    double v = 0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

}  // namespace dtsim
