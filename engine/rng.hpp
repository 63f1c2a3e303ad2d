// Counter-based random numbers.
//
// dtsim never shares a random generator between two consumers: every consumer derives its
// own stream from a key (seed, purpose, node, step). The i-th value of a stream is a pure
// function of the key and i (SplitMix64 over key + i * golden gamma), so results do not
// depend on which thread asked first or on how many values other consumers drew.
//
// A CounterRng is a small value type; copy it freely. Not thread-safe to share one object,
// but two objects with the same key produce the same stream.
#pragma once

#include <cstdint>
#include <span>

namespace dtsim {

// What a stream is used for; part of the key so streams for different jobs never collide.
enum class RngPurpose : std::uint32_t {
  kInit = 1,       // parameter initialisation
  kShuffle = 2,    // dataset shuffles (before taking the first N samples)
  kSynthetic = 3,  // synthetic dataset generation (blobs, linreg)
  kPartition = 4,  // partitioners (IID shuffle, Dirichlet draws)
  kBatch = 5,      // per-epoch sample order
  kJitter = 6,     // compute-time jitter (stragglers)
  kCodec = 7,      // stochastic compression
  kGossip = 8,     // gossip partner choice (ad-psgd)
  kFault = 9,      // Byzantine noise
  kLoss = 10,      // lost messages ([[faults]] kind = loss)
  kTest = 99,      // tests
};

struct RngKey {
  std::uint64_t seed = 1;
  RngPurpose purpose = RngPurpose::kTest;
  std::uint32_t node = 0;
  std::uint64_t step = 0;
};

class CounterRng {
 public:
  explicit CounterRng(RngKey key);

  std::uint64_t next_u64();
  // Uniform in [0, 1), 53 random bits.
  double uniform();
  // Uniform integer in [0, n); n > 0. Unbiased (Lemire's method with rejection).
  std::uint64_t uniform_int(std::uint64_t n);
  // Standard normal (Box-Muller; each call uses two fresh uniforms, nothing is cached).
  double normal();
  // Gamma(shape, 1), shape > 0 (Marsaglia-Tsang; shape < 1 via the shape+1 boost).
  double gamma(double shape);
  // Fisher-Yates shuffle of `values`.
  template <typename T>
  void shuffle(std::span<T> values) {
    for (std::size_t i = values.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(uniform_int(i));
      T tmp = values[i - 1];
      values[i - 1] = values[j];
      values[j] = tmp;
    }
  }

  // How many 64-bit values this stream has produced so far.
  std::uint64_t counter() const { return counter_; }

 private:
  std::uint64_t base_;
  std::uint64_t counter_ = 0;
};

// Mixes a 64-bit value (the SplitMix64 finaliser). Exposed for hashing keys.
std::uint64_t mix64(std::uint64_t x);

}  // namespace dtsim
