// QSGD (Alistarh et al. 2017): per bucket of `bucket` elements, its L2 norm, then each element
// as sign * level with level = floor(a) + Bernoulli(a - floor(a)), a = s |x| / norm (unbiased),
// s = `levels`; a level takes a byte (two from 128 levels on).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"
#include "engine/compress.hpp"

namespace dtsim {
namespace {

class QsgdCodec final : public GatheredCodec {
 public:
  QsgdCodec(const CodecConfig& c, const CodecSetup& s)
      : GatheredCodec(s), levels_(c.levels), bucket_(static_cast<std::size_t>(c.bucket)) {}

  std::uint64_t payload_size(std::uint64_t /*step*/) const override {
    const std::uint64_t n = size();
    return 4 * ((n + bucket_ - 1) / bucket_) + n * static_cast<std::uint64_t>(width());
  }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    CounterRng rng(own_key(step));
    const std::size_t n = size();
    // Written in place (the payload's layout is payload_io's: little-endian, packed).
    out.resize(payload_size(step));
    std::uint8_t* at = out.data();
    for (std::size_t b = 0; b < n; b += bucket_) {
      const std::size_t e = std::min(n, b + bucket_);
      double sq = 0;
      for (std::size_t i = b; i < e; ++i) sq += static_cast<double>(x[i]) * x[i];
      const auto norm = static_cast<float>(std::sqrt(sq));
      std::memcpy(at, &norm, 4);
      at += 4;
      for (std::size_t i = b; i < e; ++i) {
        int level = 0;
        if (norm > 0) {
          const double a = levels_ * std::fabs(static_cast<double>(x[i])) / norm;
          const auto fl = static_cast<double>(static_cast<int>(a));  // a >= 0
          level = static_cast<int>(fl) + (rng.uniform() < a - fl ? 1 : 0);
          level = std::min(level, levels_);
          if (x[i] < 0) level = -level;
        }
        if (width() == 1) {
          *at++ = static_cast<std::uint8_t>(static_cast<std::int8_t>(level));
        } else {
          const auto v = static_cast<std::uint16_t>(static_cast<std::int16_t>(level));
          std::memcpy(at, &v, 2);
          at += 2;
        }
      }
    }
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    const std::size_t n = size();
    for (std::size_t b = 0; b < n; b += bucket_) {
      const std::size_t e = std::min(n, b + bucket_);
      const float scale = r.f32() / static_cast<float>(levels_);
      for (std::size_t i = b; i < e; ++i) {
        const int level =
            width() == 1 ? static_cast<std::int8_t>(r.u8()) : static_cast<std::int16_t>(r.u16());
        out[i] = scale * static_cast<float>(level);
      }
    }
    r.expect_end();
  }

 private:
  int width() const { return levels_ < 128 ? 1 : 2; }
  int levels_;
  std::size_t bucket_;
};

}  // namespace

std::unique_ptr<Codec> make_qsgd_codec(const CodecConfig& c, const CodecSetup& s) {
  return std::make_unique<QsgdCodec>(c, s);
}

}  // namespace dtsim
