#include "engine/codecs/codec.hpp"

#include <stdexcept>

namespace dtsim {

RngKey Codec::own_key(std::uint64_t step) const {
  return {setup_.seed, RngPurpose::kCodec,
          static_cast<std::uint32_t>(setup_.worker + 1) |
              (static_cast<std::uint32_t>(setup_.stream) << 20),
          step};
}

RngKey Codec::shared_key(std::uint64_t step) const {
  return {setup_.seed, RngPurpose::kCodec, static_cast<std::uint32_t>(setup_.stream) << 20, step};
}

namespace {

[[noreturn]] void not_summable() {
  throw std::logic_error("this codec's payloads cannot be summed; gather them");
}

}  // namespace

std::vector<SumPart> GatheredCodec::parts(int, std::uint64_t) { not_summable(); }
void GatheredCodec::encode_round(int, std::span<const float>, std::uint64_t, int) {
  not_summable();
}
void GatheredCodec::finish(std::span<const float>, std::uint64_t, int, std::span<float>,
                           std::span<float>) {
  not_summable();
}

}  // namespace dtsim
