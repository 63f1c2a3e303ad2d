// Codecs, error feedback and aggregation rules: the reference sheet's test vectors
// (sections A and C) and the invariants of docs/compression.md.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/aggregate.hpp"
#include "engine/codecs/half.hpp"
#include "engine/codecs/sparse.hpp"
#include "engine/compress.hpp"

using namespace dtsim;

namespace {

CodecConfig codec(CodecKind kind) {
  CodecConfig c;
  c.kind = kind;
  return c;
}

std::vector<float> decoded(const Compressor& c, const Payload& p, std::uint64_t step = 0) {
  std::vector<float> out(c.size());
  c.decode(p, out, step);
  return out;
}

// The summed form's allreduce: every part of round r summed over the compressors, in place.
void allreduce_round(const std::vector<Compressor*>& ranks, int r, std::uint64_t step) {
  std::vector<std::vector<SumPart>> parts;
  for (Compressor* c : ranks) parts.push_back(c->parts(r, step));
  for (std::size_t k = 0; k < parts[0].size(); ++k) {
    for (std::size_t i = 0; i < parts[0][k].values.size(); ++i) {
      float sum = 0;
      for (const auto& rank : parts) sum += rank[k].values[i];
      for (auto& rank : parts) rank[k].values[i] = sum;
    }
  }
}

const RandomKCodec& random_k(const Compressor& c) {
  return dynamic_cast<const RandomKCodec&>(c.codec());
}

void check_close(std::span<const float> a, std::vector<double> b, double eps = 1e-6) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i] == doctest::Approx(b[i]).epsilon(eps).scale(1.0));
  }
}

}  // namespace

TEST_CASE("fp16 rounding of arrays (F16C where the CPU has it) is the bit routine's") {
  // Every float whose bits are a multiple of 4099 (a prime): all exponents, subnormals, ties
  // at every scale, infinities; plus exact ties, the overflow edge and the subnormal edges.
  std::vector<float> x;
  for (std::uint64_t b = 0; b <= 0xFFFFFFFFu; b += 4099)
    x.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(b)));
  for (const float v : {1.0f + std::ldexp(1.0f, -11), 65520.0f, 65519.0f, 65504.0f,
                        std::ldexp(1.0f, -25), std::ldexp(3.0f, -26), std::ldexp(1.0f, -14), -0.0f,
                        std::numeric_limits<float>::infinity()}) {
    x.push_back(v);
    x.push_back(-v);
  }
  for (const auto& [scale, unscale] :
       {std::pair(1.0f, 1.0f), std::pair(0.125f, 8.0f), std::pair(1.0f / 3, 3.0f)}) {
    CAPTURE(scale);
    std::vector<float> fast(x.size());
    round_fp16_scaled(x.data(), scale, unscale, fast.data(), x.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float slow = round_fp16(x[i] * scale) * unscale;
      // (NaNs may keep different payload bits; they stay NaNs.)
      const bool same = std::isnan(slow) ? std::isnan(fast[i])
                                         : std::bit_cast<std::uint32_t>(slow) ==
                                               std::bit_cast<std::uint32_t>(fast[i]);
      differ += !same;
    }
    CHECK(differ == 0);
  }
  // In place.
  std::vector<float> y = {1.0f + std::ldexp(1.0f, -11), 3.3f, -7e-6f};
  round_fp16_scaled(y.data(), 1.0f, 1.0f, y.data(), y.size());
  CHECK(y[0] == 1.0f);
  CHECK(y[1] == round_fp16(3.3f));
  CHECK(y[2] == round_fp16(-7e-6f));
}

TEST_CASE("fp16 and bf16 round to nearest, ties to even") {
  CHECK(round_fp16(1.0f + std::ldexp(1.0f, -11)) == 1.0f);  // tie -> even
  CHECK(round_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 1.0f + std::ldexp(1.0f, -9));
  CHECK(round_fp16(65504.0f) == 65504.0f);
  CHECK(std::isinf(round_fp16(65520.0f)));  // halfway to 65536 rounds up: overflow
  CHECK(round_fp16(65519.0f) == 65504.0f);
  CHECK(round_fp16(std::ldexp(1.0f, -24)) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(round_fp16(std::ldexp(1.0f, -26)) == 0.0f);                   // flushes to zero
  CHECK(std::signbit(round_fp16(-0.0f)));
  CHECK(round_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);  // tie -> even
  CHECK(round_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(round_bf16(3e38f) == doctest::Approx(3e38).epsilon(0.01));  // fp32's range
  CHECK(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isinf(round_bf16(std::numeric_limits<float>::infinity())));
  // As payloads: 2 bytes per element.
  Compressor c(codec(CodecKind::kFp16), 3, 1, 0);
  const Payload p = c.encode(std::vector<float>{1.0f, -2.5f, 1e-3f}, 0);
  CHECK(p.size() == 6);
  check_close(decoded(c, p), {1.0, -2.5, round_fp16(1e-3f)});
}

TEST_CASE("the fp16 bit conversion agrees with the compiler's _Float16 everywhere") {
  // Every 1009th float bit pattern over the whole range (normals, subnormals, inf, NaN), and
  // the values around every half-precision rounding boundary.
  std::uint64_t checked = 0, wrong = 0;
  const auto check = [&](float x) {
    const auto expected = std::bit_cast<std::uint16_t>(static_cast<_Float16>(x));
    const std::uint16_t got = to_fp16_bits(x);
    ++checked;
    if (std::isnan(x)) {
      wrong += (got & 0x7C00u) == 0x7C00u && (got & 0x3FFu) != 0 ? 0 : 1;
      return;
    }
    const float back = static_cast<float>(static_cast<_Float16>(x));
    wrong += got == expected && std::bit_cast<std::uint32_t>(from_fp16_bits(got)) ==
                                    std::bit_cast<std::uint32_t>(back)
                 ? 0
                 : 1;
  };
  for (std::uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 1009) {
    check(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
  }
  for (std::uint32_t h = 0; h < 0x7C00u; ++h) {
    const float lo = static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(h)));
    const float hi = static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(h + 1)));
    const float mid = lo + (hi - lo) / 2;  // exact: a tie
    for (const float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid}) {
      check(x);
    }
  }
  CHECK(checked > 4'000'000);
  CHECK(wrong == 0);
}

TEST_CASE("int8: per-tensor scale and zero point") {
  Compressor c(codec(CodecKind::kInt8), 4, 1, 0);
  const Payload p = c.encode(std::vector<float>{-1, 0, 1, 3}, 0);
  CHECK(p.size() == 8 + 4);  // scale, zero point, a byte per element
  CHECK(p[8] == 0);
  CHECK(p[9] == 64);
  CHECK(p[10] == 128);
  CHECK(p[11] == 255);
  const float s = 4.0f / 255.0f;
  check_close(decoded(c, p), {-64 * s, 0, 64 * s, 191 * s});
  CHECK(decoded(c, p)[3] == doctest::Approx(2.9961).epsilon(1e-4));
}

TEST_CASE("qsgd: the reference vector, unbiased, with its variance") {
  CodecConfig cfg = codec(CodecKind::kQsgd);
  cfg.levels = 2;
  Compressor c(cfg, 2, 7, 0);
  double mean0 = 0, mean1 = 0, sq = 0;
  const int trials = 20000;
  for (int t = 0; t < trials; ++t) {
    const Payload p = c.encode(std::vector<float>{3, -4}, static_cast<std::uint64_t>(t));
    REQUIRE(p.size() == 4 + 2);  // one norm, one signed level byte per element
    const std::vector<float> q = decoded(c, p);
    CHECK((q[0] == 2.5f || q[0] == 5.0f));
    CHECK((q[1] == -2.5f || q[1] == -5.0f));
    mean0 += q[0];
    mean1 += q[1];
    sq += (q[0] - 3.0) * (q[0] - 3.0) + (q[1] + 4.0) * (q[1] + 4.0);
  }
  CHECK(mean0 / trials == doctest::Approx(3.0).epsilon(0.01));
  CHECK(mean1 / trials == doctest::Approx(-4.0).epsilon(0.01));
  CHECK(sq / trials == doctest::Approx(2.5).epsilon(0.03));  // E||Q - v||^2 = 1.0 + 1.5
  // 300 elements in buckets of 128: three norms.
  Compressor big(codec(CodecKind::kQsgd), 300, 1, 0);
  CHECK(big.encode(std::vector<float>(300, 0.5f), 0).size() == 3 * 4 + 300);
}

TEST_CASE("each worker and each shard draws its own random stream") {
  CodecConfig cfg = codec(CodecKind::kQsgd);
  cfg.levels = 1;
  const std::vector<float> g(64, 0.5f);  // norm 4: each level is 1 w.p. 1/8
  Compressor a(cfg, 64, 3, 0, nullptr, 0), b(cfg, 64, 3, 1, nullptr, 0),
      c(cfg, 64, 3, 0, nullptr, 1), a2(cfg, 64, 3, 0, nullptr, 0);
  const Payload pa = a.encode(g, 5);
  CHECK(pa == a2.encode(g, 5));  // the same key, the same draws
  CHECK(pa != b.encode(g, 5));
  CHECK(pa != c.encode(g, 5));
}

TEST_CASE("terngrad: the reference vector, unbiased") {
  Compressor c(codec(CodecKind::kTernGrad), 4, 3, 1);
  const std::vector<float> g = {0.1f, -0.3f, 0.2f, 0.0f};
  std::vector<double> mean(4, 0.0), nonzero(4, 0.0);
  const int trials = 20000;
  for (int t = 0; t < trials; ++t) {
    const Payload p = c.encode(g, static_cast<std::uint64_t>(t));
    REQUIRE(p.size() == 4 + 1);  // s, and 2 bits per element
    const std::vector<float> q = decoded(c, p);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK((q[i] == 0.0f || std::fabs(q[i]) == doctest::Approx(0.3)));
      mean[i] += q[i];
      nonzero[i] += q[i] != 0.0f ? 1 : 0;
    }
  }
  const double p_nonzero[] = {1.0 / 3, 1.0, 2.0 / 3, 0.0};
  for (std::size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(mean[i] / trials == doctest::Approx(g[i]).epsilon(0.02).scale(0.3));
    CHECK(nonzero[i] / trials == doctest::Approx(p_nonzero[i]).epsilon(0.02).scale(1));
  }
}

TEST_CASE("1-bit SGD with error feedback: the reference vector and the invariant") {
  Compressor c(codec(CodecKind::kOneBit), 4, 1, 0);
  const Payload p = c.encode(std::vector<float>{1, -2, 3, -4}, 0);
  CHECK(p.size() == 8 + 1);
  check_close(decoded(c, p), {2, -3, 2, -3});
  check_close(c.memory(), {-1, 1, 1, -1});
  // Next step: (input + old error) = sent + new error.
  const std::vector<float> g = {0.5f, 0.25f, -1.0f, 2.0f};
  const std::vector<float> old(c.memory().begin(), c.memory().end());
  const std::vector<float> sent = decoded(c, c.encode(g, 1));
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(g[i] + old[i] == doctest::Approx(sent[i] + c.memory()[i]));
}

TEST_CASE("signSGD: one bit each, majority vote with ties at zero") {
  Compressor c(codec(CodecKind::kSign), 3, 1, 0);
  std::vector<std::vector<float>> votes;
  for (const std::vector<float>& g : {std::vector<float>{1, -1, 2}, {3, 1, -1}, {-1, -2, 5}}) {
    const Payload p = c.encode(g, 0);
    CHECK(p.size() == 1);
    votes.push_back(decoded(c, p));
  }
  std::vector<std::span<const float>> in(votes.begin(), votes.end());
  std::vector<float> out(3);
  aggregate({AggregationKind::kSignVote}, in, {}, out);
  check_close(out, {1, -1, 1});  // sums [1, -1, 1]
  in.pop_back();
  aggregate({AggregationKind::kSignVote}, in, {}, out);
  check_close(out, {1, 0, 0});  // sums [2, 0, 0]: ties do not move
}

TEST_CASE("ef-sign: the reference vector") {
  Compressor c(codec(CodecKind::kEfSign), 4, 1, 0);
  const Payload p = c.encode(std::vector<float>{1, -2, 3, -4}, 0, 1.0);
  CHECK(p.size() == 4 + 1);
  check_close(decoded(c, p), {2.5, -2.5, 2.5, -2.5});
  check_close(c.memory(), {-1.5, 0.5, 0.5, -1.5});
  // lr is folded into the memory: p = e + lr g.
  Compressor d(codec(CodecKind::kEfSign), 2, 1, 0);
  const std::vector<float> sent = decoded(d, d.encode(std::vector<float>{1, -3}, 0, 0.5));
  check_close(sent, {1, -1});             // p = [0.5, -1.5], scale 1
  check_close(d.memory(), {-0.5, -0.5});  // e = p - Delta
}

TEST_CASE("top-k with error feedback: the reference vector") {
  CodecConfig cfg = codec(CodecKind::kTopK);
  cfg.ratio = 0.5;
  Compressor c(cfg, 4, 1, 0);
  const Payload p = c.encode(std::vector<float>{0.1f, -0.5f, 0.3f, 0.05f}, 0);
  CHECK(p.size() == 4 + 2 * 8);  // count, then (index, value) pairs
  check_close(decoded(c, p), {0, -0.5, 0.3, 0});
  check_close(c.memory(), {0.1, 0, 0, 0.05});
  // Without error feedback nothing is remembered.
  cfg.error_feedback = false;
  Compressor no_ef(cfg, 4, 1, 0);
  no_ef.encode(std::vector<float>{0.1f, -0.5f, 0.3f, 0.05f}, 0);
  CHECK(no_ef.memory().empty());
}

TEST_CASE("top-k keeps the k largest magnitudes, ties to the lower index") {
  CodecConfig cfg = codec(CodecKind::kTopK);
  cfg.error_feedback = false;
  cfg.ratio = 0.4;  // 2 of 5
  Compressor c(cfg, 5, 1, 0);
  check_close(decoded(c, c.encode(std::vector<float>{1, -1, 1, 0.5f, -1}, 0)), {1, -1, 0, 0, 0});
  // A large vector with many ties (values on a coarse grid), against sorting by (-|x|, index).
  const std::size_t n = 20000;
  cfg.ratio = 0.013;
  Compressor big(cfg, n, 1, 0);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 7919) % 41) - 20.0f;
  const std::vector<float> got = decoded(big, big.encode(x, 0));
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::pair(-std::fabs(x[a]), a) < std::pair(-std::fabs(x[b]), b);
  });
  std::vector<float> want(n, 0.0f);
  for (std::size_t j = 0; j < 260; ++j) want[order[j]] = x[order[j]];  // floor(0.013 n)
  CHECK(got == want);
  // Large values only where the selection samples (every 4th of the first 600): the sample's
  // bound lets too few through, and the selection falls back to the whole vector.
  std::vector<float> y(n, 1.0f);
  for (std::size_t i = 0; i < 600; i += 4) y[i] = 100.0f;
  y[n - 1] = 2.0f;
  Compressor again(cfg, n, 1, 0);
  const std::vector<float> kept = decoded(again, again.encode(y, 0));
  std::vector<float> expect(n, 0.0f);
  for (std::size_t i = 0; i < 600; i += 4) expect[i] = 100.0f;  // 150 of them
  expect[n - 1] = 2.0f;
  for (std::size_t i = 1, left = 260 - 151; left > 0; ++i) {  // then ties at 1, lowest first
    if (expect[i] == 0.0f) {
      expect[i] = 1.0f;
      --left;
    }
  }
  CHECK(kept == expect);
}

TEST_CASE("top-k with DGC's momentum correction and warm-up") {
  CodecConfig cfg = codec(CodecKind::kTopK);
  cfg.ratio = 0.25;
  cfg.momentum_correction = true;
  cfg.momentum = 0.5;
  cfg.warmup_steps = 3;
  Compressor c(cfg, 8, 1, 0);
  // Density 0.25^((t + 1) / 4): 8 * [0.707, 0.5, 0.354] -> k = 5, 4, 2, then 2.
  CHECK(c.codec().kept(0) == 5);
  CHECK(c.codec().kept(1) == 4);
  CHECK(c.codec().kept(2) == 2);
  CHECK(c.codec().kept(3) == 2);
  // Invariant: sent + new v = old v + new u, and sent coordinates are 0 in both u and v.
  std::vector<float> u(8, 0.0f), v(8, 0.0f);
  for (std::uint64_t t = 0; t < 5; ++t) {
    std::vector<float> g(8);
    for (std::size_t i = 0; i < 8; ++i) g[i] = std::sin(static_cast<float>(i * 7 + t));
    for (std::size_t i = 0; i < 8; ++i) u[i] = 0.5f * u[i] + g[i];
    const std::vector<float> sent = decoded(c, c.encode(g, t), t);
    for (std::size_t i = 0; i < 8; ++i) {
      CAPTURE(i);
      CHECK(sent[i] + c.memory()[i] == doctest::Approx(v[i] + u[i]));
      if (sent[i] != 0.0f) {
        CHECK(c.memory()[i] == 0.0f);
        u[i] = 0.0f;
      }
      v[i] = c.memory()[i];
    }
  }
}

TEST_CASE("random-k: every worker picks the same indices, different each step") {
  CodecConfig cfg = codec(CodecKind::kRandomK);
  cfg.ratio = 0.3;
  Compressor a(cfg, 10, 9, 0), b(cfg, 10, 9, 5);
  CHECK(random_k(a).indices(4) == random_k(b).indices(4));
  CHECK(random_k(a).indices(4) != random_k(a).indices(5));
  CHECK(random_k(a).indices(4).size() == 3);
  // Values only on the wire; the memory keeps the rest.
  std::vector<float> g(10);
  for (std::size_t i = 0; i < 10; ++i) g[i] = static_cast<float>(i) + 1;
  const Payload p = a.encode(g, 4);
  CHECK(p.size() == 3 * 4);
  const std::vector<float> sent = decoded(a, p, 4);
  for (std::size_t i = 0; i < 10; ++i) CHECK(sent[i] + a.memory()[i] == g[i]);
  // As an allreduce: the summed values / p land at the shared indices, zeros elsewhere.
  cfg.error_feedback = false;
  Compressor c(cfg, 10, 9, 0), d(cfg, 10, 9, 1);
  std::vector<float> h(10);
  for (std::size_t i = 0; i < 10; ++i) h[i] = 10.0f * static_cast<float>(i);
  c.encode_round(0, g, 6, 2);
  d.encode_round(0, h, 6, 2);
  allreduce_round({&c, &d}, 0, 6);
  std::vector<float> out(10);
  c.finish(6, 2, out);
  const std::vector<std::uint32_t> idx = random_k(c).indices(6);
  for (std::size_t i = 0; i < 10; ++i) {
    const bool picked = std::find(idx.begin(), idx.end(), i) != idx.end();
    CHECK(out[i] == doctest::Approx(picked ? (g[i] + h[i]) / 2 : 0.0));
  }
}

TEST_CASE("error feedback keeps (input + old error) = sent + new error") {
  for (const CodecKind kind :
       {CodecKind::kInt8, CodecKind::kQsgd, CodecKind::kTernGrad, CodecKind::kOneBit,
        CodecKind::kTopK, CodecKind::kRandomK, CodecKind::kFp16}) {
    CAPTURE(to_string(kind));
    CodecConfig cfg = codec(kind);
    cfg.error_feedback = true;
    cfg.ratio = 0.2;
    Compressor c(cfg, 50, 3, 2);
    for (std::uint64_t t = 0; t < 4; ++t) {
      std::vector<float> g(50);
      for (std::size_t i = 0; i < 50; ++i) g[i] = std::cos(static_cast<float>(3 * i + 11 * t));
      const std::vector<float> old(c.memory().begin(), c.memory().end());
      const std::vector<float> sent = decoded(c, c.encode(g, t), t);
      for (std::size_t i = 0; i < 50; ++i) {
        CHECK(g[i] + old[i] == doctest::Approx(sent[i] + c.memory()[i]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("powersgd is exact on a low-rank mean, and leaves vectors alone") {
  // A 4 x 6 rank-1 matrix u v^T and a bias of 4: (4 + 6) * 1 * 2 < 24, so it is compressed.
  ParamLayout layout;
  layout.add("w", {4, 6});
  layout.add("b", {4});
  CodecConfig cfg = codec(CodecKind::kPowerSgd);
  cfg.rank = 1;
  const std::vector<float> u = {1, 2, 0, -1}, v = {3, 4, 0, 1, -2, 0.5f};
  const auto matrix = [&](float scale, float bias) {
    std::vector<float> g(28);
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 6; ++j) g[i * 6 + j] = scale * u[i] * v[j];
    for (std::size_t i = 0; i < 4; ++i) g[24 + i] = bias + static_cast<float>(i);
    return g;
  };
  // Two workers whose mean is rank 1: 1.5 u v^T.
  Compressor a(cfg, 28, 4, 0, &layout), b(cfg, 28, 4, 1, &layout);
  CHECK(a.payload_size(0) == 4 * (4 + 6 + 4));  // P, Q and the uncompressed bias, as floats
  const std::vector<float> ga = matrix(1.0f, 1.0f), gb = matrix(2.0f, 3.0f);
  for (int r = 0; r < a.rounds(); ++r) {  // P; then Q and the rest
    a.encode_round(r, ga, 0, 2);
    b.encode_round(r, gb, 0, 2);
    allreduce_round({&a, &b}, r, 0);
  }
  std::vector<float> oa(28), ob(28);
  a.finish(0, 2, oa);
  b.finish(0, 2, ob);
  const std::vector<float> mean = matrix(1.5f, 2.0f);
  for (std::size_t i = 0; i < 28; ++i) {
    CAPTURE(i);
    CHECK(oa[i] == doctest::Approx(mean[i]).epsilon(1e-5).scale(1));
    CHECK(oa[i] == ob[i]);
    // Error feedback: (g + e_old) = output + e_new, e_old = 0.
    CHECK(ga[i] == doctest::Approx(oa[i] + a.memory()[i]).epsilon(1e-5).scale(1));
  }
}

TEST_CASE("aggregation rules: the reference 1-D example with an outlier") {
  const std::vector<std::vector<float>> g = {{0.0f}, {0.1f}, {0.2f}, {0.3f}, {10.0f}};
  std::vector<std::span<const float>> in(g.begin(), g.end());
  std::vector<float> out(1);
  const auto run = [&](AggregationKind k, int f = 1, int m = 0) {
    aggregate({k, f, m}, in, {}, out);
    return out[0];
  };
  CHECK(run(AggregationKind::kMean) == doctest::Approx(2.12));
  CHECK(run(AggregationKind::kMedian) == doctest::Approx(0.2));
  CHECK(run(AggregationKind::kTrimmedMean) == doctest::Approx(0.2));
  CHECK(run(AggregationKind::kKrum) == doctest::Approx(0.1));
  CHECK(run(AggregationKind::kMultiKrum, 1, 3) == doctest::Approx(0.1));
  CHECK(run(AggregationKind::kMax) == doctest::Approx(10.0));
  const std::vector<double> scores = krum_scores(in, 1);
  const double expected[] = {0.05, 0.02, 0.02, 0.05, 190.13};
  for (std::size_t i = 0; i < 5; ++i)
    CHECK(scores[i] == doctest::Approx(expected[i]).epsilon(1e-4));
  // Even count: the mean of the two middle values.
  in.pop_back();
  CHECK(run(AggregationKind::kMedian) == doctest::Approx(0.15));
  // Weighted by samples.
  const std::vector<double> w = {1, 1, 1, 5};
  aggregate({AggregationKind::kWeightedMean}, in, w, out);
  CHECK(out[0] == doctest::Approx((0.1 + 0.2 + 1.5) / 8));
  // Too few contributions for the rule.
  CHECK_THROWS_AS(aggregate({AggregationKind::kKrum, 1}, in, {}, out), std::invalid_argument);
  CHECK(min_contributions({AggregationKind::kKrum, 1}) == 5);
  CHECK(min_contributions({AggregationKind::kTrimmedMean, 2}) == 5);
}
