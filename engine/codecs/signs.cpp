// One bit per element:
//   onebit   1-bit SGD (Seide et al. 2014): the sign bit, and the means of the negative and of
//            the other elements as the two reconstruction values
//   sign     signSGD (Bernstein et al. 2018): the sign alone (sign(0) counts as +1); the
//            receivers take a majority vote (engine/aggregate.hpp)
//   ef-sign  EF-signSGD (Karimireddy et al. 2019): (||x||_1 / d) sign(x)
#include <cmath>

#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"

namespace dtsim {
namespace {

enum class SignKind { kOneBit, kSign, kScaled };

class SignCodec final : public GatheredCodec {
 public:
  SignCodec(const CodecSetup& s, SignKind kind) : GatheredCodec(s), kind_(kind) {}

  std::uint64_t payload_size(std::uint64_t /*step*/) const override {
    const std::uint64_t bits = (size() + 7) / 8;
    return kind_ == SignKind::kOneBit ? 8 + bits : kind_ == SignKind::kScaled ? 4 + bits : bits;
  }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    const std::size_t n = size();
    payload::Writer w(out, payload_size(step));
    if (kind_ == SignKind::kOneBit) {
      double neg = 0, pos = 0;
      std::size_t nn = 0, np = 0;
      for (float v : x) {
        if (v < 0) {
          neg += v;
          ++nn;
        } else {
          pos += v;
          ++np;
        }
      }
      w.f32(nn > 0 ? static_cast<float>(neg / static_cast<double>(nn)) : 0.0f);
      w.f32(np > 0 ? static_cast<float>(pos / static_cast<double>(np)) : 0.0f);
      payload::pack_bits(w, n, [&](std::size_t i) { return x[i] < 0; });
      return;
    }
    if (kind_ == SignKind::kScaled) {
      double l1 = 0;
      for (float v : x) l1 += std::fabs(v);
      w.f32(static_cast<float>(l1 / static_cast<double>(std::max<std::size_t>(1, n))));
    }
    payload::pack_bits(w, n, [&](std::size_t i) { return x[i] >= 0; });
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    if (kind_ == SignKind::kOneBit) {
      const float m0 = r.f32();
      const float m1 = r.f32();
      payload::unpack_bits(r, size(), [&](std::size_t i, bool neg) { out[i] = neg ? m0 : m1; });
    } else {
      const float scale = kind_ == SignKind::kScaled ? r.f32() : 1.0f;
      payload::unpack_bits(r, size(),
                           [&](std::size_t i, bool pos) { out[i] = pos ? scale : -scale; });
    }
    r.expect_end();
  }

 private:
  SignKind kind_;
};

}  // namespace

std::unique_ptr<Codec> make_onebit_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<SignCodec>(s, SignKind::kOneBit);
}
std::unique_ptr<Codec> make_sign_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<SignCodec>(s, SignKind::kSign);
}
std::unique_ptr<Codec> make_ef_sign_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<SignCodec>(s, SignKind::kScaled);
}

}  // namespace dtsim
