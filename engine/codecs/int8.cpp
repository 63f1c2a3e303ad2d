// int8: asymmetric per-tensor quint8 (PyTorch's quantize_per_tensor): a scale, a zero point
// and a byte per element. s = (max(x_max, 0) - min(x_min, 0)) / 255,
// z = -round(min(x_min, 0) / s), q = clamp(round(x / s) + z, 0, 255).
#include <algorithm>

#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"

namespace dtsim {
namespace {

// Round to nearest, ties to even, for |v| < 2^22, without a library call: adding 1.5 * 2^23
// leaves no fraction bits (default rounding mode).
float round_even(float v) {
  volatile float big = 12582912.0f;  // volatile: not folded away
  const float b = big;
  return (v + b) - b;
}

class Int8Codec final : public GatheredCodec {
 public:
  using GatheredCodec::GatheredCodec;
  std::uint64_t payload_size(std::uint64_t /*step*/) const override { return 8 + size(); }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    float lo = 0, hi = 0;
    for (float v : x) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    float s = (hi - lo) / 255.0f;
    if (!(s > 0)) s = 1.0f;
    const float z = -round_even(lo / s);
    payload::Writer w(out, payload_size(step));
    w.f32(s);
    w.f32(z);
    for (float v : x) {
      const float q = std::clamp(round_even(v / s) + z, 0.0f, 255.0f);
      w.u8(static_cast<std::uint8_t>(q));
    }
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    const float s = r.f32();
    const float z = r.f32();
    for (float& v : out) v = s * (static_cast<float>(r.u8()) - z);
    r.expect_end();
  }
};

}  // namespace

std::unique_ptr<Codec> make_int8_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<Int8Codec>(s);
}

}  // namespace dtsim
