#include "engine/compress.hpp"

#include <stdexcept>

namespace dtsim {

Compressor::Compressor(const CodecConfig& config, std::size_t n, std::uint64_t seed, int worker,
                       const ParamLayout* layout, int stream)
    : config_(config), codec_(make_codec(config, {n, seed, worker, stream, layout})), x_(n) {
  if (uses_error_feedback(config_)) {
    memory_.assign(n, 0.0f);
    sent_.assign(n, 0.0f);
  }
  if (config_.kind == CodecKind::kTopK && config_.momentum_correction) velocity_.assign(n, 0.0f);
  if (codec_->rounds() > 0) sent_.assign(n, 0.0f);
}

void Compressor::add_memory(std::span<const float> g, double lr) {
  if (g.size() != size()) throw std::invalid_argument("encode: wrong vector size");
  const std::size_t n = size();
  if (!velocity_.empty()) {
    const auto m = static_cast<float>(config_.momentum);
    for (std::size_t i = 0; i < n; ++i) {
      velocity_[i] = m * velocity_[i] + g[i];
      x_[i] = memory_.empty() ? velocity_[i] : memory_[i] + velocity_[i];
    }
  } else if (!memory_.empty()) {
    const auto f = static_cast<float>(lr);
    for (std::size_t i = 0; i < n; ++i) x_[i] = memory_[i] + f * g[i];
  } else {
    std::copy(g.begin(), g.end(), x_.begin());
  }
}

void Compressor::update_memory() {
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < size(); ++i) memory_[i] = x_[i] - sent_[i];
  }
  // DGC's momentum factor masking: what was sent leaves the velocity (the memory is 0 there).
  if (!velocity_.empty()) {
    for (std::uint32_t i : codec_->sent_indices()) velocity_[i] = 0.0f;
  }
}

void Compressor::encode(std::span<const float> g, std::uint64_t step, Payload& out, double lr) {
  add_memory(g, lr);
  codec_->prepare(x_);
  codec_->encode(x_, step, out);
  if (!memory_.empty()) codec_->decode(out, step, sent_);
  update_memory();
}

Payload Compressor::encode(std::span<const float> g, std::uint64_t step, double lr) {
  Payload out;
  encode(g, step, out, lr);
  return out;
}

void Compressor::decode(std::span<const std::uint8_t> payload, std::span<float> out,
                        std::uint64_t step) const {
  if (out.size() != size()) throw std::invalid_argument("decode: wrong output size");
  codec_->decode(payload, step, out);
}

void Compressor::encode_round(int r, std::span<const float> g, std::uint64_t step, int p) {
  if (r == 0) add_memory(g, 1.0);
  codec_->encode_round(r, x_, step, p);
}

void Compressor::finish(std::uint64_t step, int p, std::span<float> out) {
  codec_->finish(x_, step, p, out, sent_);
  update_memory();
}

}  // namespace dtsim
