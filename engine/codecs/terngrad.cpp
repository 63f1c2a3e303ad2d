// TernGrad (Wen et al. 2017): clip at 2.5 standard deviations (prepare(), so that error
// feedback remembers against the clipped vector), s = max |x|, then each element as
// sign(x_i) * Bernoulli(|x_i| / s) in {-1, 0, +1}: 2 bits per element (on, negative) and s.
#include <algorithm>
#include <cmath>

#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"

namespace dtsim {
namespace {

class TernGradCodec final : public GatheredCodec {
 public:
  explicit TernGradCodec(const CodecSetup& s) : GatheredCodec(s), on_(s.n) {}

  std::uint64_t payload_size(std::uint64_t /*step*/) const override {
    return 4 + (2 * size() + 7) / 8;
  }
  void prepare(std::span<float> x) const override {
    const double count = static_cast<double>(std::max<std::size_t>(1, size()));
    double mean = 0;
    for (float v : x) mean += v;
    mean /= count;
    double var = 0;
    for (float v : x) var += (v - mean) * (v - mean);
    const auto c = static_cast<float>(2.5 * std::sqrt(var / count));
    if (c > 0) {
      for (float& v : x) v = std::clamp(v, -c, c);
    }
  }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    // x is prepared (clipped).
    const std::size_t n = size();
    float s = 0;
    for (float v : x) s = std::max(s, std::fabs(v));
    CounterRng rng(own_key(step));
    for (std::size_t i = 0; i < n; ++i) {
      on_[i] = s > 0 && rng.uniform() < std::fabs(x[i]) / s ? 1 : 0;
    }
    payload::Writer w(out, payload_size(step));
    w.f32(s);
    payload::pack_bits(w, 2 * n, [&](std::size_t j) {
      const std::size_t i = j / 2;
      return on_[i] != 0 && (j % 2 == 0 || x[i] < 0);
    });
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    const float s = r.f32();
    payload::unpack_bits(r, 2 * size(), [&](std::size_t j, bool bit) {
      const std::size_t i = j / 2;
      if (j % 2 == 0) {
        out[i] = bit ? s : 0.0f;
      } else if (bit) {
        out[i] = -s;
      }
    });
    r.expect_end();
  }

 private:
  std::vector<std::uint8_t> on_;
};

}  // namespace

std::unique_ptr<Codec> make_terngrad_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<TernGradCodec>(s);
}

}  // namespace dtsim
