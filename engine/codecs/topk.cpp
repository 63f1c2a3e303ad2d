// Top-k (Aji and Heafield 2017; with DGC's momentum correction and warm-up, Lin et al. 2018,
// in Compressor): the k largest |x_i| (ties: lower index), sent as (index, value) pairs by
// index, after a count.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "engine/codecs/payload_io.hpp"
#include "engine/codecs/sparse.hpp"
#include "engine/compress.hpp"

namespace dtsim {

std::size_t sparse_count(std::size_t n, double ratio, std::uint64_t warmup_steps,
                         std::uint64_t step) {
  double density = ratio;
  if (warmup_steps > 0 && step < warmup_steps) {
    density =
        std::pow(ratio, static_cast<double>(step + 1) / static_cast<double>(warmup_steps + 1));
  }
  const auto k = static_cast<std::size_t>(std::floor(density * static_cast<double>(n)));
  return std::clamp<std::size_t>(k, 1, std::max<std::size_t>(1, n));
}

namespace {

class TopKCodec final : public GatheredCodec {
 public:
  TopKCodec(const CodecConfig& c, const CodecSetup& s)
      : GatheredCodec(s), ratio_(c.ratio), warmup_(c.warmup_steps), magnitude_(s.n) {}

  std::size_t kept(std::uint64_t step) const override {
    return sparse_count(size(), ratio_, warmup_, step);
  }
  std::uint64_t payload_size(std::uint64_t step) const override { return 4 + 8 * kept(step); }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    // The k-th largest |x_i| is t: every |x_i| > t, then the lowest indices with |x_i| = t.
    // (A NaN counts as the largest.)
    const std::size_t k = kept(step);
    const std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) {
      const float a = std::fabs(x[i]);
      magnitude_[i] = std::isnan(a) ? std::numeric_limits<float>::infinity() : a;
    }
    const float t = kth_largest(k);
    std::size_t ties = k;
    for (std::size_t i = 0; i < n; ++i) ties -= magnitude_[i] > t;
    picked_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const float a = magnitude_[i];
      if (a > t) {
        picked_.push_back(static_cast<std::uint32_t>(i));
      } else if (a == t && ties > 0) {
        picked_.push_back(static_cast<std::uint32_t>(i));
        --ties;
      }
    }
    payload::Writer w(out, payload_size(step));
    w.u32(static_cast<std::uint32_t>(k));
    for (std::uint32_t i : picked_) {
      w.u32(i);
      w.f32(x[i]);
    }
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    std::fill(out.begin(), out.end(), 0.0f);
    payload::Reader r(payload);
    const std::uint32_t k = r.u32();
    for (std::uint32_t j = 0; j < k; ++j) {
      const std::uint32_t i = r.u32();
      const float v = r.f32();
      if (i >= size()) throw std::invalid_argument("top-k payload: index out of range");
      out[i] = v;
    }
    r.expect_end();
  }
  std::span<const std::uint32_t> sent_indices() const override { return picked_; }

 private:
  // The k-th largest of magnitude_, exactly. A large vector is first narrowed to candidates:
  // the values at or above a bound taken from an even sample, low enough that at least k
  // values pass it (else all of them are the candidates).
  float kth_largest(std::size_t k) {
    const std::size_t n = magnitude_.size();
    select_.clear();
    if (n >= 16384 && k <= n / 8) {
      const std::size_t stride = n / 4096;
      for (std::size_t i = 0; i < n; i += stride) select_.push_back(magnitude_[i]);
      // Twice the sample's share of k, and some: the bound is below the k-th largest unless
      // the sample is far from the whole.
      const std::size_t m = select_.size();
      const std::size_t rank = std::min(m - 1, 2 * k * m / n + 16);
      std::nth_element(select_.begin(), select_.begin() + static_cast<std::ptrdiff_t>(rank),
                       select_.end(), std::greater<float>());
      const float bound = select_[rank];
      select_.clear();
      for (const float a : magnitude_) {
        if (a >= bound) select_.push_back(a);
      }
      if (select_.size() < k) select_.clear();
    }
    if (select_.empty()) select_ = magnitude_;
    std::nth_element(select_.begin(), select_.begin() + static_cast<std::ptrdiff_t>(k - 1),
                     select_.end(), std::greater<float>());
    return select_[k - 1];
  }

  double ratio_;
  std::uint64_t warmup_;
  std::vector<float> magnitude_;       // |x_i|
  std::vector<float> select_;          // the candidates of the selection
  std::vector<std::uint32_t> picked_;  // the last encode's indices
};

}  // namespace

std::unique_ptr<Codec> make_topk_codec(const CodecConfig& c, const CodecSetup& s) {
  return std::make_unique<TopKCodec>(c, s);
}

}  // namespace dtsim
