// The codecs: one row each, with its name, whether it can ride an allreduce, its error-feedback
// default, its default cost per element, and its factory. Adding a codec means its enum value
// (engine/compress.hpp), one file in engine/codecs/ and a row here.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/codecs/codec.hpp"
#include "engine/compress.hpp"

namespace dtsim {

// Each codec's factory, defined in its own file.
std::unique_ptr<Codec> make_raw_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_fp16_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_bf16_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_int8_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_qsgd_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_terngrad_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_onebit_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_sign_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_ef_sign_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_topk_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_randomk_codec(const CodecConfig&, const CodecSetup&);
std::unique_ptr<Codec> make_powersgd_codec(const CodecConfig&, const CodecSetup&);

namespace {

enum class Feedback { kNever, kAlways, kDefaultOn, kDefaultOff };

struct CodecEntry {
  CodecKind kind;
  const char* name;
  // Payloads can be summed by an allreduce: the codec has a summed form, or (none) the plain
  // allreduce of the floats serves.
  bool allreduce;
  Feedback feedback;
  // Default FLOPs per element, given `ef`, the error feedback's (2 when on).
  double (*encode_flops)(const CodecConfig&, double ef);
  double (*decode_flops)(const CodecConfig&);
  std::unique_ptr<Codec> (*make)(const CodecConfig&, const CodecSetup&);
};

constexpr double kScaleAndAdd = 2;  // the usual decode: a scale and an add per element

const std::vector<CodecEntry>& table() {
  using K = CodecKind;
  using F = Feedback;
  static const std::vector<CodecEntry> rows = {
      // (none: the plain allreduce of the floats, or gathered floats for a robust rule)
      {K::kNone, "none", true, F::kNever, [](const CodecConfig&, double ef) { return 0.0 + ef; },
       [](const CodecConfig&) { return 0.0; }, &make_raw_codec},
      // scale, round
      {K::kFp16, "fp16", true, F::kDefaultOff,
       [](const CodecConfig&, double ef) { return 2.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_fp16_codec},
      {K::kBf16, "bf16", true, F::kDefaultOff,
       [](const CodecConfig&, double ef) { return 2.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_bf16_codec},
      // min/max, scale, round, clamp
      {K::kInt8, "int8", false, F::kDefaultOff,
       [](const CodecConfig&, double ef) { return 4.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_int8_codec},
      // norm, scale, floor, draw, compare, sign
      {K::kQsgd, "qsgd", false, F::kDefaultOff,
       [](const CodecConfig&, double ef) { return 6.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_qsgd_codec},
      // mean, std, clamp, max, draw, compare, sign
      {K::kTernGrad, "terngrad", false, F::kDefaultOff,
       [](const CodecConfig&, double ef) { return 7.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_terngrad_codec},
      // compare, sums, scale
      {K::kOneBit, "onebit", false, F::kDefaultOn,
       [](const CodecConfig&, double ef) { return 3.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_onebit_codec},
      {K::kSign, "sign", false, F::kNever, [](const CodecConfig&, double ef) { return 3.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_sign_codec},
      {K::kEfSign, "ef-sign", false, F::kAlways,
       [](const CodecConfig&, double ef) { return 3.0 + ef; },
       [](const CodecConfig&) { return kScaleAndAdd; }, &make_ef_sign_codec},
      // a comparison, the selection (log2 of the kept share's inverse), DGC's correction
      {K::kTopK, "topk", false, F::kDefaultOn,
       [](const CodecConfig& c, double ef) {
         return 1 + std::log2(1.0 / std::max(c.ratio, 1e-9)) + ef + (c.momentum_correction ? 3 : 0);
       },
       [](const CodecConfig& c) { return c.ratio * 2; }, &make_topk_codec},  // scatter k values
      {K::kRandomK, "randomk", true, F::kDefaultOn,
       [](const CodecConfig&, double ef) { return 1.0 + ef; },
       [](const CodecConfig& c) { return c.ratio * 2; }, &make_randomk_codec},
      // P = M Q and Q = M^T P; decoding P Q^T
      {K::kPowerSgd, "powersgd", true, F::kDefaultOn,
       [](const CodecConfig& c, double ef) { return 4.0 * c.rank + ef; },
       [](const CodecConfig& c) { return 2.0 * c.rank; }, &make_powersgd_codec},
  };
  return rows;
}

const CodecEntry& entry(CodecKind kind) {
  for (const CodecEntry& e : table()) {
    if (e.kind == kind) return e;
  }
  throw std::logic_error("a codec without a row in the codec table");
}

}  // namespace

NameTable<CodecKind> codec_names() {
  static const std::vector<Named<CodecKind>> names = [] {
    std::vector<Named<CodecKind>> out;
    for (const CodecEntry& e : table()) out.push_back({e.name, e.kind});
    return out;
  }();
  return names;
}

bool allreduce_compatible(CodecKind kind) { return entry(kind).allreduce; }

bool uses_error_feedback(const CodecConfig& c) {
  switch (entry(c.kind).feedback) {
    case Feedback::kNever:
      return false;
    case Feedback::kAlways:
      return true;
    case Feedback::kDefaultOn:
      return c.error_feedback.value_or(true);
    case Feedback::kDefaultOff:
      return c.error_feedback.value_or(false);
  }
  return false;
}

double encode_flops_per_element(const CodecConfig& c) {
  if (c.encode_flops) return *c.encode_flops;
  if (c.kind == CodecKind::kNone) return 0;
  const double ef = uses_error_feedback(c) ? 2 : 0;  // add the memory, take the residual
  return entry(c.kind).encode_flops(c, ef);
}

double decode_flops_per_element(const CodecConfig& c) {
  if (c.decode_flops) return *c.decode_flops;
  return entry(c.kind).decode_flops(c);
}

std::unique_ptr<Codec> make_codec(const CodecConfig& config, const CodecSetup& setup) {
  return entry(config.kind).make(config, setup);
}

}  // namespace dtsim
