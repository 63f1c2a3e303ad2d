// No compression: the floats themselves (4 bytes each), gathered when a robust aggregation
// rule needs every worker's gradient.
#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"

namespace dtsim {
namespace {

class RawCodec final : public GatheredCodec {
 public:
  using GatheredCodec::GatheredCodec;
  std::uint64_t payload_size(std::uint64_t /*step*/) const override { return 4 * size(); }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    payload::Writer w(out, payload_size(step));
    for (float v : x) w.f32(v);
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    for (float& v : out) v = r.f32();
    r.expect_end();
  }
};

}  // namespace

std::unique_ptr<Codec> make_raw_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<RawCodec>(s);
}

}  // namespace dtsim
