// Random-k (Stich et al. 2018): the values at k indices that every worker draws alike from
// the shared key, so that the payloads can also be summed in an allreduce.
#include <algorithm>
#include <numeric>

#include "engine/codecs/payload_io.hpp"
#include "engine/codecs/sparse.hpp"
#include "engine/compress.hpp"

namespace dtsim {

RandomKCodec::RandomKCodec(const CodecConfig& c, const CodecSetup& s)
    : Codec(s), ratio_(c.ratio), all_(s.n) {}

std::size_t RandomKCodec::kept(std::uint64_t step) const {
  return sparse_count(size(), ratio_, 0, step);
}

void RandomKCodec::pick(std::uint64_t step) const {
  if (picked_step_ == step) return;
  const std::size_t n = size();
  const std::size_t k = kept(step);
  CounterRng rng(shared_key(step));
  std::iota(all_.begin(), all_.end(), 0u);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.uniform_int(n - i));
    std::swap(all_[i], all_[j]);
  }
  picked_.assign(all_.begin(), all_.begin() + static_cast<std::ptrdiff_t>(k));
  std::sort(picked_.begin(), picked_.end());
  picked_step_ = step;
}

std::vector<std::uint32_t> RandomKCodec::indices(std::uint64_t step) const {
  pick(step);
  return picked_;
}

void RandomKCodec::encode(std::span<const float> x, std::uint64_t step, Payload& out) {
  pick(step);
  payload::Writer w(out, payload_size(step));
  for (std::uint32_t i : picked_) w.f32(x[i]);
}

void RandomKCodec::decode(std::span<const std::uint8_t> payload, std::uint64_t step,
                          std::span<float> out) const {
  pick(step);
  std::fill(out.begin(), out.end(), 0.0f);
  payload::Reader r(payload);
  for (std::uint32_t i : picked_) out[i] = r.f32();
  r.expect_end();
}

std::vector<SumPart> RandomKCodec::parts(int /*r*/, std::uint64_t step) {
  return {{values_, kept(step), 4}};
}

void RandomKCodec::encode_round(int /*r*/, std::span<const float> x, std::uint64_t step,
                                int /*p*/) {
  pick(step);
  values_.resize(picked_.size());
  for (std::size_t j = 0; j < picked_.size(); ++j) values_[j] = x[picked_[j]];
}

void RandomKCodec::finish(std::span<const float> x, std::uint64_t step, int p, std::span<float> out,
                          std::span<float> sent) {
  pick(step);
  std::fill(out.begin(), out.end(), 0.0f);
  std::fill(sent.begin(), sent.end(), 0.0f);
  const float inv = 1.0f / static_cast<float>(p);
  for (std::size_t j = 0; j < picked_.size(); ++j) {
    out[picked_[j]] = values_[j] * inv;
    sent[picked_[j]] = x[picked_[j]];
  }
}

std::unique_ptr<Codec> make_randomk_codec(const CodecConfig& c, const CodecSetup& s) {
  return std::make_unique<RandomKCodec>(c, s);
}

}  // namespace dtsim
