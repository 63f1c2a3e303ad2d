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

std::vector<SumPart> GatheredCodec::parts(int /*r*/, std::uint64_t /*step*/) {
  throw std::logic_error("this codec's payloads cannot be summed; gather them");
}

void GatheredCodec::encode_round(int r, std::span<const float> /*x*/, std::uint64_t step,
                                 int /*p*/) {
  parts(r, step);
}

void GatheredCodec::finish(std::span<const float> /*x*/, std::uint64_t step, int /*p*/,
                           std::span<float> /*out*/, std::span<float> /*sent*/) {
  parts(0, step);
}

}  // namespace dtsim
