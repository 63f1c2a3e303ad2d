// The sparsifiers' shared parts: how many elements a step keeps, and random-k's indices.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/codecs/codec.hpp"

namespace dtsim {

// Elements kept of n at density `ratio` (at least one); top-k's warm-up (warmup_steps > 0)
// decays the density geometrically from 1 towards ratio: ratio^((step + 1) / (warmup + 1)),
// DGC's schedule with steps for epochs.
std::size_t sparse_count(std::size_t n, double ratio, std::uint64_t warmup_steps,
                         std::uint64_t step);

// Random-k: the same k indices on every worker at `step` (a partial Fisher-Yates from the
// shared key), ascending.
class RandomKCodec final : public Codec {
 public:
  RandomKCodec(const CodecConfig& c, const CodecSetup& s);
  std::vector<std::uint32_t> indices(std::uint64_t step) const;

  std::size_t kept(std::uint64_t step) const override;
  std::uint64_t payload_size(std::uint64_t step) const override { return 4 * kept(step); }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override;
  void decode(std::span<const std::uint8_t> payload, std::uint64_t step,
              std::span<float> out) const override;
  std::span<const std::uint32_t> sent_indices() const override { return picked_; }
  // Summed: the k values at the shared indices; the sums / p land there, zeros elsewhere.
  int rounds() const override { return 1; }
  std::vector<SumPart> parts(int r, std::uint64_t step) override;
  void encode_round(int r, std::span<const float> x, std::uint64_t step, int p) override;
  void finish(std::span<const float> x, std::uint64_t step, int p, std::span<float> out,
              std::span<float> sent) override;

 private:
  void pick(std::uint64_t step) const;
  double ratio_;
  mutable std::vector<std::uint32_t> all_;     // workspace of the draw
  mutable std::vector<std::uint32_t> picked_;  // the last step's indices
  mutable std::uint64_t picked_step_ = ~0ULL;
  std::vector<float> values_;
};

}  // namespace dtsim
