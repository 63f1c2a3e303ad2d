#include "engine/compress.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "engine/kernels.hpp"
#include "engine/rng.hpp"

namespace dtsim {
namespace {

// Little-endian byte writer into a payload sized in advance, and reader.
class Writer {
 public:
  Writer(Payload& out, std::size_t size) : out_(out) { out_.resize(size); }
  ~Writer() { out_.resize(at_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void f32(float v) { raw(&v, 4); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u16(std::uint16_t v) { raw(&v, 2); }
  void u8(std::uint8_t v) { raw(&v, 1); }

 private:
  void raw(const void* p, std::size_t n) {
    if (at_ + n > out_.size()) out_.resize(2 * (at_ + n));
    std::memcpy(out_.data() + at_, p, n);
    at_ += n;
  }
  Payload& out_;
  std::size_t at_ = 0;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  float f32() { return get<float>(); }
  std::uint32_t u32() { return get<std::uint32_t>(); }
  std::uint16_t u16() { return get<std::uint16_t>(); }
  std::uint8_t u8() { return get<std::uint8_t>(); }
  std::size_t left() const { return in_.size() - at_; }

 private:
  template <typename T>
  T get() {
    if (at_ + sizeof(T) > in_.size()) throw std::invalid_argument("payload too short");
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::span<const std::uint8_t> in_;
  std::size_t at_ = 0;
};

// Bits packed 8 to a byte, lowest bit first.
void pack_bits(Writer& w, const std::vector<bool>& bits) {
  for (std::size_t i = 0; i < bits.size(); i += 8) {
    std::uint8_t byte = 0;
    for (std::size_t j = 0; j < 8 && i + j < bits.size(); ++j) {
      if (bits[i + j]) byte = static_cast<std::uint8_t>(byte | (1u << j));
    }
    w.u8(byte);
  }
}

std::vector<bool> unpack_bits(Reader& r, std::size_t n) {
  std::vector<bool> bits(n);
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint8_t byte = r.u8();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) bits[i + j] = (byte >> j) & 1u;
  }
  return bits;
}

// A worker's own stream (QSGD, TernGrad), and the one every worker shares (random-k indices,
// PowerSGD's first Q); `stream` tells a parameter server's shards apart.
RngKey codec_key(std::uint64_t seed, int worker, int stream, std::uint64_t step) {
  return {seed, RngPurpose::kCodec,
          static_cast<std::uint32_t>(worker + 1) | (static_cast<std::uint32_t>(stream) << 20),
          step};
}

RngKey shared_key(std::uint64_t seed, int stream, std::uint64_t step) {
  return {seed, RngPurpose::kCodec, static_cast<std::uint32_t>(stream) << 20, step};
}

int qsgd_width(int levels) { return levels < 128 ? 1 : 2; }

// Round to nearest, ties to even, for |v| < 2^22, without a library call: adding 1.5 * 2^23
// leaves no fraction bits (default rounding mode).
float round_even(float v) {
  volatile float big = 12582912.0f;  // volatile: not folded away
  const float b = big;
  return (v + b) - b;
}

}  // namespace

bool allreduce_compatible(CodecKind kind) {
  return kind == CodecKind::kNone || kind == CodecKind::kFp16 || kind == CodecKind::kBf16 ||
         kind == CodecKind::kRandomK || kind == CodecKind::kPowerSgd;
}

bool uses_error_feedback(const CodecConfig& c) {
  switch (c.kind) {
    case CodecKind::kNone:
    case CodecKind::kSign:
      return false;
    case CodecKind::kEfSign:
      return true;
    case CodecKind::kOneBit:
    case CodecKind::kTopK:
    case CodecKind::kRandomK:
    case CodecKind::kPowerSgd:
      return c.error_feedback.value_or(true);
    default:
      return c.error_feedback.value_or(false);
  }
}

double encode_flops_per_element(const CodecConfig& c) {
  if (c.encode_flops) return *c.encode_flops;
  const double ef = uses_error_feedback(c) ? 2 : 0;  // add the memory, take the residual
  switch (c.kind) {
    case CodecKind::kNone:
      return 0;
    case CodecKind::kFp16:
    case CodecKind::kBf16:
      return 2 + ef;  // scale, round
    case CodecKind::kInt8:
      return 4 + ef;  // min/max, scale, round, clamp
    case CodecKind::kQsgd:
      return 6 + ef;  // norm, scale, floor, draw, compare, sign
    case CodecKind::kTernGrad:
      return 7 + ef;  // mean, std, clamp, max, draw, compare, sign
    case CodecKind::kOneBit:
    case CodecKind::kSign:
    case CodecKind::kEfSign:
      return 3 + ef;  // compare, sums, scale
    case CodecKind::kTopK:
      return 1 + std::log2(1.0 / std::max(c.ratio, 1e-9)) + ef + (c.momentum_correction ? 3 : 0);
    case CodecKind::kRandomK:
      return 1 + ef;
    case CodecKind::kPowerSgd:
      return 4.0 * c.rank + ef;  // P = M Q and Q = M^T P
  }
  return 0;
}

double decode_flops_per_element(const CodecConfig& c) {
  if (c.decode_flops) return *c.decode_flops;
  switch (c.kind) {
    case CodecKind::kNone:
      return 0;
    case CodecKind::kPowerSgd:
      return 2.0 * c.rank;  // P Q^T
    case CodecKind::kTopK:
    case CodecKind::kRandomK:
      return c.ratio * 2;  // scatter k values
    default:
      return 2;  // scale and add
  }
}

// IEEE binary16 by bit manipulation, round to nearest even (the compiler's _Float16
// conversions are library calls without F16C, and far slower).
std::uint16_t to_fp16_bits(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal, m * 2^(e - 150) in units of 2^-24
    // is m >> (126 - e), rounded to nearest even.
    const std::uint32_t e = abs >> 23;
    if (e < 102) return sign;  // below half of 2^-24 (float subnormals included)
    const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126 - e;
    std::uint32_t q = m >> shift;
    const std::uint32_t rest = m & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  std::uint32_t h = (abs >> 13) - (112u << 10);
  const std::uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float from_fp16_bits(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t man = h & 0x3FFu;
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    const float f = static_cast<float>(man) * (1.0f / 16777216.0f);
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(f));
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
}

std::uint16_t to_bf16_bits(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // a NaN stays a (quiet) NaN
  }
  u += 0x7FFFu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>(u >> 16);
}

float from_bf16_bits(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

float round_fp16(float x) { return from_fp16_bits(to_fp16_bits(x)); }
float round_bf16(float x) { return from_bf16_bits(to_bf16_bits(x)); }

void orthogonalize(std::span<float> m, std::size_t rows, std::size_t r, float eps) {
  for (std::size_t c = 0; c < r; ++c) {
    float* col = m.data() + c * rows;
    double norm = 0;
    for (std::size_t i = 0; i < rows; ++i) norm += static_cast<double>(col[i]) * col[i];
    const auto div = static_cast<float>(std::sqrt(norm)) + eps;
    for (std::size_t i = 0; i < rows; ++i) col[i] /= div;
    for (std::size_t d = c + 1; d < r; ++d) {
      float* other = m.data() + d * rows;
      double dot = 0;
      for (std::size_t i = 0; i < rows; ++i) dot += static_cast<double>(col[i]) * other[i];
      const auto f = static_cast<float>(dot);
      for (std::size_t i = 0; i < rows; ++i) other[i] -= f * col[i];
    }
  }
}

Compressor::Compressor(const CodecConfig& config, std::size_t n, std::uint64_t seed, int worker,
                       const ParamLayout* layout, int stream)
    : config_(config), n_(n), seed_(seed), worker_(worker), stream_(stream) {
  if (uses_error_feedback(config_)) memory_.assign(n, 0.0f);
  if (config_.kind == CodecKind::kTopK && config_.momentum_correction) velocity_.assign(n, 0.0f);
  if (config_.kind != CodecKind::kPowerSgd) return;
  // Which tensors PowerSGD compresses; without a layout the vector is one uncompressed tensor.
  std::vector<bool> in_matrix(n, false);
  if (layout != nullptr) {
    for (const TensorSlot& t : layout->tensors()) {
      if (t.shape.size() < 2 || t.offset + t.size > n) continue;
      const auto rows = static_cast<std::size_t>(t.shape[0]);
      const std::size_t cols = t.size / rows;
      const std::size_t r =
          std::min({rows, cols, static_cast<std::size_t>(std::max(1, config_.rank))});
      if ((rows + cols) * r * 2 >= rows * cols) continue;  // min_compression_rate 2
      matrices_.push_back({t.offset, rows, cols, r, p_size_, q_size_});
      p_size_ += rows * r;
      q_size_ += cols * r;
      std::fill(in_matrix.begin() + static_cast<std::ptrdiff_t>(t.offset),
                in_matrix.begin() + static_cast<std::ptrdiff_t>(t.offset + t.size), true);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!in_matrix[i]) rest_index_.push_back(i);
  }
}

std::size_t Compressor::k_at(std::uint64_t step) const {
  double density = config_.ratio;
  if (config_.kind == CodecKind::kTopK && config_.warmup_steps > 0 && step < config_.warmup_steps) {
    // Geometric from 1 towards ratio: ratio^((step + 1) / (warmup + 1)), DGC's schedule
    // with steps for epochs.
    density = std::pow(config_.ratio, static_cast<double>(step + 1) /
                                          static_cast<double>(config_.warmup_steps + 1));
  }
  const auto k = static_cast<std::size_t>(std::floor(density * static_cast<double>(n_)));
  return std::clamp<std::size_t>(k, 1, std::max<std::size_t>(1, n_));
}

std::uint64_t Compressor::payload_size(std::uint64_t step) const {
  const std::uint64_t n = n_;
  const std::uint64_t bits = (n + 7) / 8;
  switch (config_.kind) {
    case CodecKind::kNone:
      return 4 * n;
    case CodecKind::kFp16:
    case CodecKind::kBf16:
      return 2 * n;
    case CodecKind::kInt8:
      return 8 + n;
    case CodecKind::kQsgd: {
      const auto bucket = static_cast<std::uint64_t>(config_.bucket);
      return 4 * ((n + bucket - 1) / bucket) +
             n * static_cast<std::uint64_t>(qsgd_width(config_.levels));
    }
    case CodecKind::kTernGrad:
      return 4 + (2 * n + 7) / 8;
    case CodecKind::kOneBit:
      return 8 + bits;
    case CodecKind::kSign:
      return bits;
    case CodecKind::kEfSign:
      return 4 + bits;
    case CodecKind::kTopK:
      return 4 + 8 * k_at(step);
    case CodecKind::kRandomK:
      return 4 * k_at(step);
    case CodecKind::kPowerSgd:
      return 4 * powersgd_floats();
  }
  return 0;
}

Payload Compressor::encode(std::span<const float> g, std::uint64_t step, double lr) {
  if (g.size() != n_) throw std::invalid_argument("encode: wrong vector size");
  // x = g + e (ef-sign: e + lr g; top-k with momentum correction: v += (u = m u + g)).
  std::vector<float> x(g.begin(), g.end());
  if (config_.kind == CodecKind::kEfSign) {
    for (std::size_t i = 0; i < n_; ++i) x[i] = memory_[i] + static_cast<float>(lr) * g[i];
  } else if (!velocity_.empty()) {
    const auto m = static_cast<float>(config_.momentum);
    for (std::size_t i = 0; i < n_; ++i) {
      velocity_[i] = m * velocity_[i] + g[i];
      x[i] = memory_.empty() ? velocity_[i] : memory_[i] + velocity_[i];
    }
  } else if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) x[i] += memory_[i];
  }
  Payload out;
  std::vector<std::uint32_t> picked;  // top-k: the indices sent (DGC masks them)
  {
    Writer w(out, payload_size(step));
    switch (config_.kind) {
      case CodecKind::kNone:
        out.reserve(4 * n_);
        for (float v : x) w.f32(v);
        break;
      case CodecKind::kFp16:
        for (float v : x) w.u16(to_fp16_bits(v));
        break;
      case CodecKind::kBf16:
        for (float v : x) w.u16(to_bf16_bits(v));
        break;
      case CodecKind::kInt8: {
        // Asymmetric per-tensor quint8: s = (max(x_max, 0) - min(x_min, 0)) / 255,
        // z = -round(min(x_min, 0) / s), q = clamp(round(x / s) + z, 0, 255).
        float lo = 0, hi = 0;
        for (float v : x) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        float s = (hi - lo) / 255.0f;
        if (!(s > 0)) s = 1.0f;
        const float z = -round_even(lo / s);
        w.f32(s);
        w.f32(z);
        for (float v : x) {
          const float q = std::clamp(round_even(v / s) + z, 0.0f, 255.0f);
          w.u8(static_cast<std::uint8_t>(q));
        }
        break;
      }
      case CodecKind::kQsgd: {
        // Per bucket: its L2 norm, then sign * level with level = floor(a) + Bernoulli(a -
        // floor(a)), a = s |x| / norm (unbiased).
        CounterRng rng(codec_key(seed_, worker_, stream_, step));
        const int s = config_.levels;
        const auto bucket = static_cast<std::size_t>(config_.bucket);
        for (std::size_t b = 0; b < n_; b += bucket) {
          const std::size_t e = std::min(n_, b + bucket);
          double sq = 0;
          for (std::size_t i = b; i < e; ++i) sq += static_cast<double>(x[i]) * x[i];
          const auto norm = static_cast<float>(std::sqrt(sq));
          w.f32(norm);
          for (std::size_t i = b; i < e; ++i) {
            int level = 0;
            if (norm > 0) {
              const double a = s * std::fabs(static_cast<double>(x[i])) / norm;
              const auto fl = static_cast<double>(static_cast<int>(a));  // a >= 0
              level = static_cast<int>(fl) + (rng.uniform() < a - fl ? 1 : 0);
              level = std::min(level, s);
              if (x[i] < 0) level = -level;
            }
            if (qsgd_width(s) == 1) {
              w.u8(static_cast<std::uint8_t>(static_cast<std::int8_t>(level)));
            } else {
              w.u16(static_cast<std::uint16_t>(static_cast<std::int16_t>(level)));
            }
          }
        }
        break;
      }
      case CodecKind::kTernGrad: {
        // Clip at 2.5 standard deviations, s = max |x|, t_i = sign(x_i) Bernoulli(|x_i| / s),
        // 2 bits per element (0, +1, -1) and s.
        double mean = 0;
        for (float v : x) mean += v;
        mean /= static_cast<double>(std::max<std::size_t>(1, n_));
        double var = 0;
        for (float v : x) var += (v - mean) * (v - mean);
        const auto c = static_cast<float>(
            2.5 * std::sqrt(var / static_cast<double>(std::max<std::size_t>(1, n_))));
        float s = 0;
        for (float& v : x) {
          if (c > 0) v = std::clamp(v, -c, c);
          s = std::max(s, std::fabs(v));
        }
        w.f32(s);
        CounterRng rng(codec_key(seed_, worker_, stream_, step));
        std::vector<bool> bits(2 * n_);
        for (std::size_t i = 0; i < n_; ++i) {
          const bool on = s > 0 && rng.uniform() < std::fabs(x[i]) / s;
          bits[2 * i] = on;
          bits[2 * i + 1] = on && x[i] < 0;
        }
        pack_bits(w, bits);
        break;
      }
      case CodecKind::kOneBit: {
        // Seide et al.: a sign bit per element and the means of the negative and the other
        // elements as the two reconstruction values.
        double neg = 0, pos = 0;
        std::size_t nn = 0, np = 0;
        std::vector<bool> bits(n_);
        for (std::size_t i = 0; i < n_; ++i) {
          bits[i] = x[i] < 0;
          if (bits[i]) {
            neg += x[i];
            ++nn;
          } else {
            pos += x[i];
            ++np;
          }
        }
        w.f32(nn > 0 ? static_cast<float>(neg / static_cast<double>(nn)) : 0.0f);
        w.f32(np > 0 ? static_cast<float>(pos / static_cast<double>(np)) : 0.0f);
        pack_bits(w, bits);
        break;
      }
      case CodecKind::kSign: {
        std::vector<bool> bits(n_);
        for (std::size_t i = 0; i < n_; ++i) bits[i] = x[i] >= 0;  // sign(0) counts as +1
        pack_bits(w, bits);
        break;
      }
      case CodecKind::kEfSign: {
        // Delta = (||p||_1 / d) sign(p).
        double l1 = 0;
        for (float v : x) l1 += std::fabs(v);
        w.f32(static_cast<float>(l1 / static_cast<double>(std::max<std::size_t>(1, n_))));
        std::vector<bool> bits(n_);
        for (std::size_t i = 0; i < n_; ++i) bits[i] = x[i] >= 0;
        pack_bits(w, bits);
        break;
      }
      case CodecKind::kTopK: {
        // The k largest |x_i| (ties: lower index), sent as (index, value) pairs, by index.
        const std::size_t k = k_at(step);
        std::vector<std::uint32_t> idx(n_);
        std::iota(idx.begin(), idx.end(), 0u);
        std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k - 1), idx.end(),
                         [&](std::uint32_t a, std::uint32_t b) {
                           const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
                           return fa > fb || (fa == fb && a < b);
                         });
        idx.resize(k);
        std::sort(idx.begin(), idx.end());
        w.u32(static_cast<std::uint32_t>(k));
        for (std::uint32_t i : idx) {
          w.u32(i);
          w.f32(x[i]);
        }
        picked = std::move(idx);
        break;
      }
      case CodecKind::kRandomK: {
        for (std::uint32_t i : randomk_indices(step)) w.f32(x[i]);
        break;
      }
      case CodecKind::kPowerSgd:
        throw std::logic_error("powersgd rides an allreduce; it has no gathered payload");
    }
  }
  // e = x - decode(payload).
  if (!memory_.empty()) {
    std::vector<float> sent(n_);
    decode(out, sent, step);
    for (std::size_t i = 0; i < n_; ++i) memory_[i] = x[i] - sent[i];
  }
  // DGC's momentum factor masking: what was sent leaves the velocity (the memory is 0 there).
  if (!velocity_.empty()) {
    for (std::uint32_t i : picked) velocity_[i] = 0.0f;
  }
  return out;
}

void Compressor::decode(std::span<const std::uint8_t> payload, std::span<float> out,
                        std::uint64_t step) const {
  if (out.size() != n_) throw std::invalid_argument("decode: wrong output size");
  Reader r(payload);
  switch (config_.kind) {
    case CodecKind::kNone:
      for (float& v : out) v = r.f32();
      break;
    case CodecKind::kFp16:
      for (float& v : out) v = from_fp16_bits(r.u16());
      break;
    case CodecKind::kBf16:
      for (float& v : out) v = from_bf16_bits(r.u16());
      break;
    case CodecKind::kInt8: {
      const float s = r.f32();
      const float z = r.f32();
      for (float& v : out) v = s * (static_cast<float>(r.u8()) - z);
      break;
    }
    case CodecKind::kQsgd: {
      const int s = config_.levels;
      const auto bucket = static_cast<std::size_t>(config_.bucket);
      for (std::size_t b = 0; b < n_; b += bucket) {
        const std::size_t e = std::min(n_, b + bucket);
        const float scale = r.f32() / static_cast<float>(s);
        for (std::size_t i = b; i < e; ++i) {
          const int level = qsgd_width(s) == 1 ? static_cast<std::int8_t>(r.u8())
                                               : static_cast<std::int16_t>(r.u16());
          out[i] = scale * static_cast<float>(level);
        }
      }
      break;
    }
    case CodecKind::kTernGrad: {
      const float s = r.f32();
      const std::vector<bool> bits = unpack_bits(r, 2 * n_);
      for (std::size_t i = 0; i < n_; ++i) {
        out[i] = bits[2 * i] ? (bits[2 * i + 1] ? -s : s) : 0.0f;
      }
      break;
    }
    case CodecKind::kOneBit: {
      const float m0 = r.f32();
      const float m1 = r.f32();
      const std::vector<bool> bits = unpack_bits(r, n_);
      for (std::size_t i = 0; i < n_; ++i) out[i] = bits[i] ? m0 : m1;
      break;
    }
    case CodecKind::kSign: {
      const std::vector<bool> bits = unpack_bits(r, n_);
      for (std::size_t i = 0; i < n_; ++i) out[i] = bits[i] ? 1.0f : -1.0f;
      break;
    }
    case CodecKind::kEfSign: {
      const float scale = r.f32();
      const std::vector<bool> bits = unpack_bits(r, n_);
      for (std::size_t i = 0; i < n_; ++i) out[i] = bits[i] ? scale : -scale;
      break;
    }
    case CodecKind::kTopK: {
      std::fill(out.begin(), out.end(), 0.0f);
      const std::uint32_t k = r.u32();
      for (std::uint32_t j = 0; j < k; ++j) {
        const std::uint32_t i = r.u32();
        const float v = r.f32();
        if (i >= n_) throw std::invalid_argument("top-k payload: index out of range");
        out[i] = v;
      }
      break;
    }
    case CodecKind::kRandomK: {
      std::fill(out.begin(), out.end(), 0.0f);
      for (std::uint32_t i : randomk_indices(step)) out[i] = r.f32();
      break;
    }
    case CodecKind::kPowerSgd:
      throw std::logic_error("powersgd rides an allreduce; it has no gathered payload");
  }
  if (r.left() != 0) throw std::invalid_argument("payload too long");
}

std::vector<float> Compressor::cast_for_allreduce(std::span<const float> g, int p) {
  std::vector<float> x(g.begin(), g.end());
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) x[i] += memory_[i];
  }
  std::vector<float> out(n_);
  const float inv = 1.0f / static_cast<float>(p);  // pre-divided, as PyTorch's hooks
  for (std::size_t i = 0; i < n_; ++i) {
    const float v = x[i] * inv;
    out[i] = config_.kind == CodecKind::kBf16 ? round_bf16(v) : round_fp16(v);
  }
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) memory_[i] = x[i] - out[i] * static_cast<float>(p);
  }
  return out;
}

void Compressor::finish_cast(std::span<float> sum) const {
  for (float& v : sum) v = config_.kind == CodecKind::kBf16 ? round_bf16(v) : round_fp16(v);
}

std::vector<std::uint32_t> Compressor::randomk_indices(std::uint64_t step) const {
  // The same k indices on every worker: a partial Fisher-Yates from the shared seed, sorted.
  const std::size_t k = k_at(step);
  CounterRng rng(shared_key(seed_, stream_, step));
  std::vector<std::uint32_t> all(n_);
  std::iota(all.begin(), all.end(), 0u);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.uniform_int(n_ - i));
    std::swap(all[i], all[j]);
  }
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<float> Compressor::randomk_values(std::span<const float> g, std::uint64_t step) {
  std::vector<float> x(g.begin(), g.end());
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) x[i] += memory_[i];
  }
  const std::vector<std::uint32_t> idx = randomk_indices(step);
  std::vector<float> values;
  values.reserve(idx.size());
  for (std::uint32_t i : idx) values.push_back(x[i]);
  if (!memory_.empty()) {
    for (std::uint32_t i : idx) x[i] = 0.0f;
    std::copy(x.begin(), x.end(), memory_.begin());
  }
  return values;
}

void Compressor::randomk_expand(std::span<const float> sum, int p, std::uint64_t step,
                                std::span<float> out) const {
  std::fill(out.begin(), out.end(), 0.0f);
  const std::vector<std::uint32_t> idx = randomk_indices(step);
  const float inv = 1.0f / static_cast<float>(p);
  for (std::size_t j = 0; j < idx.size(); ++j) out[idx[j]] = sum[j] * inv;
}

std::size_t Compressor::powersgd_floats() const { return p_size_ + q_size_ + rest_index_.size(); }

std::vector<float> Compressor::powersgd_p(std::span<const float> g, std::uint64_t step) {
  corrected_.assign(g.begin(), g.end());
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) corrected_[i] += memory_[i];
  }
  rest_.clear();
  for (std::size_t i : rest_index_) rest_.push_back(corrected_[i]);
  if (!have_q_) {
    // A fresh Q ~ N(0, 1) from the shared seed, the same on every worker; later steps start
    // from the last Q (warm start).
    q_.assign(q_size_, 0.0f);
    CounterRng rng(shared_key(seed_, stream_, step));
    for (float& v : q_) v = static_cast<float>(rng.normal());
    have_q_ = true;
  }
  // P and Q are kept column by column: a rows x r matrix is stored as its r x rows transpose.
  std::vector<float> p(p_size_, 0.0f);
  for (const Matrix& m : matrices_) {
    float* q = q_.data() + m.q_offset;
    orthogonalize({q, m.cols * m.rank}, m.cols, m.rank);
    // P = M Q, i.e. P^T [r, rows] = Q^T [r, cols] * M^T (M is row-major [rows, cols]).
    gemm(false, true, static_cast<int>(m.rank), static_cast<int>(m.rows), static_cast<int>(m.cols),
         1.0f, q, corrected_.data() + m.offset, 0.0f, p.data() + m.p_offset);
  }
  return p;
}

std::vector<float> Compressor::powersgd_q(std::span<float> p_sum) {
  // Orthogonalise the summed P (not divided: it is normalised anyway), then Q = M^T P.
  p_.assign(p_sum.begin(), p_sum.end());
  std::vector<float> q(q_size_, 0.0f);
  for (const Matrix& m : matrices_) {
    float* p = p_.data() + m.p_offset;
    orthogonalize({p, m.rows * m.rank}, m.rows, m.rank);
    // Q = M^T P, i.e. Q^T [r, cols] = P^T [r, rows] * M [rows, cols].
    gemm(false, false, static_cast<int>(m.rank), static_cast<int>(m.cols), static_cast<int>(m.rows),
         1.0f, p, corrected_.data() + m.offset, 0.0f, q.data() + m.q_offset);
  }
  return q;
}

void Compressor::powersgd_finish(std::span<const float> q_sum, std::span<const float> rest_sum,
                                 int p, std::span<float> out) {
  const float inv = 1.0f / static_cast<float>(p);
  for (std::size_t j = 0; j < q_size_; ++j) q_[j] = q_sum[j] * inv;  // kept: warm start
  std::fill(out.begin(), out.end(), 0.0f);
  for (const Matrix& m : matrices_) {
    // M = P Q^T: [rows, cols] = (P^T)^T [rows, r] * Q^T [r, cols].
    gemm(true, false, static_cast<int>(m.rows), static_cast<int>(m.cols), static_cast<int>(m.rank),
         1.0f, p_.data() + m.p_offset, q_.data() + m.q_offset, 0.0f, out.data() + m.offset);
  }
  for (std::size_t j = 0; j < rest_index_.size(); ++j) out[rest_index_[j]] = rest_sum[j] * inv;
  // e = (g + e) - the mean's approximation (PyTorch: input copy minus the output).
  if (!memory_.empty()) {
    for (std::size_t i = 0; i < n_; ++i) memory_[i] = corrected_[i] - out[i];
  }
}

}  // namespace dtsim
