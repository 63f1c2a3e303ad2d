// fp16 and bf16: 2 bytes per element. Gathered, or summed in one allreduce: each worker sends
// g / p rounded (pre-divided, as PyTorch's fp16 / bf16 compression hooks do), the sum (in
// float) is rounded again and is the mean.
#include "engine/codecs/half.hpp"

#include <bit>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define DTSIM_F16C 1
#endif

#include "engine/codecs/codec.hpp"
#include "engine/codecs/payload_io.hpp"
#include "engine/compress.hpp"

namespace dtsim {

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

namespace {

void round_fp16_scaled_portable(const float* x, float scale, float unscale, float* out,
                                std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = round_fp16(x[i] * scale) * unscale;
}

#ifdef DTSIM_F16C
// vcvtps2ph rounds to nearest even (imm8 0, not MXCSR's mode), with subnormals and overflow
// to infinity as IEEE says: the same halves as to_fp16_bits.
__attribute__((target("avx,f16c"))) void round_fp16_scaled_f16c(const float* x, float scale,
                                                                float unscale, float* out,
                                                                std::size_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 u = _mm256_set1_ps(unscale);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), 0);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtph_ps(h), u));
  }
  round_fp16_scaled_portable(x + i, scale, unscale, out + i, n - i);
}

// (clang before 18 does not know "f16c" in __builtin_cpu_supports: CPUID leaf 1, ECX bit 29.
// "avx" also says the OS saves the YMM registers.)
bool have_f16c() {
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) != 0 &&
           (c & (1u << 29)) != 0;
  }();
  return yes;
}
#endif

}  // namespace

void round_fp16_scaled(const float* x, float scale, float unscale, float* out, std::size_t n) {
#ifdef DTSIM_F16C
  if (have_f16c()) {
    round_fp16_scaled_f16c(x, scale, unscale, out, n);
    return;
  }
#endif
  round_fp16_scaled_portable(x, scale, unscale, out, n);
}
float round_bf16(float x) { return from_bf16_bits(to_bf16_bits(x)); }

namespace {

template <std::uint16_t (*ToBits)(float), float (*FromBits)(std::uint16_t)>
class HalfCodec final : public Codec {
 public:
  explicit HalfCodec(const CodecSetup& s) : Codec(s) {}
  std::uint64_t payload_size(std::uint64_t /*step*/) const override { return 2 * size(); }
  void encode(std::span<const float> x, std::uint64_t step, Payload& out) override {
    payload::Writer w(out, payload_size(step));
    for (float v : x) w.u16(ToBits(v));
  }
  void decode(std::span<const std::uint8_t> payload, std::uint64_t /*step*/,
              std::span<float> out) const override {
    payload::Reader r(payload);
    for (float& v : out) v = FromBits(r.u16());
    r.expect_end();
  }

  int rounds() const override { return 1; }
  std::vector<SumPart> parts(int /*r*/, std::uint64_t /*step*/) override {
    return {{values_, size(), 2}};
  }
  void encode_round(int /*r*/, std::span<const float> x, std::uint64_t /*step*/, int p) override {
    values_.resize(size());
    const float inv = 1.0f / static_cast<float>(p);  // pre-divided, as PyTorch's hooks
    round_all(x.data(), inv, 1.0f, values_.data(), size());
  }
  void finish(std::span<const float> x, std::uint64_t /*step*/, int p, std::span<float> out,
              std::span<float> sent) override {
    const float inv = 1.0f / static_cast<float>(p);
    round_all(values_.data(), 1.0f, 1.0f, out.data(), size());
    // What this worker put in the sum.
    round_all(x.data(), inv, static_cast<float>(p), sent.data(), size());
  }

 private:
  // out[i] = round(x[i] * scale) * unscale.
  static void round_all(const float* x, float scale, float unscale, float* out, std::size_t n) {
    if constexpr (ToBits == &to_fp16_bits) {
      round_fp16_scaled(x, scale, unscale, out, n);
    } else {
      for (std::size_t i = 0; i < n; ++i) out[i] = FromBits(ToBits(x[i] * scale)) * unscale;
    }
  }
  std::vector<float> values_;
};

}  // namespace

std::unique_ptr<Codec> make_fp16_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<HalfCodec<to_fp16_bits, from_fp16_bits>>(s);
}

std::unique_ptr<Codec> make_bf16_codec(const CodecConfig&, const CodecSetup& s) {
  return std::make_unique<HalfCodec<to_bf16_bits, from_bf16_bits>>(s);
}

}  // namespace dtsim
