// Gradient compression in the GRACE shape (Xu et al., ICDCS 2021): a codec (engine/codecs/)
// that turns a vector into a payload of real bytes and back, wrapped with an error-feedback
// memory. Formulas, pitfalls and test vectors: docs/compression.md.
//
//   send:    x = g + e                      (e: the error-feedback memory, 0 when off)
//            payload = encode(x)            (the bytes on the wire, indices, scales, norms)
//            e = x - decode(payload)
//   receive: decode each payload, aggregate (engine/aggregate.hpp)
//
// Codecs that can be summed in the compressed domain also ride an allreduce (their summed
// form): fp16 and bf16 (pre-divided by p, as PyTorch's hooks do), random-k (every worker picks
// the same indices from the shared seed) and PowerSGD (linear given the shared Q). The others
// are gathered. A Compressor belongs to one worker (and one parameter-server shard's part),
// is used by one thread at a time, and allocates its workspaces once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/codecs/codec.hpp"
#include "engine/codecs/half.hpp"
#include "engine/codecs/powersgd.hpp"
#include "engine/names.hpp"
#include "engine/param_layout.hpp"

namespace dtsim {

enum class CodecKind {
  kNone,
  kFp16,
  kBf16,
  kInt8,
  kQsgd,
  kTernGrad,
  kOneBit,
  kSign,
  kEfSign,
  kTopK,
  kRandomK,
  kPowerSgd
};

struct CodecConfig {
  CodecKind kind = CodecKind::kNone;
  double ratio = 0.01;  // topk / randomk: share of the elements sent (at least one)
  int levels = 16;      // qsgd: s, quantization levels per sign
  int bucket = 128;     // qsgd: elements per norm
  int rank = 2;         // powersgd: r
  // Error feedback; unset: the codec's default (on for onebit, topk, randomk and powersgd,
  // off for the others; ef-sign always keeps its memory, sign never does).
  std::optional<bool> error_feedback;
  bool momentum_correction = false;  // topk: DGC's momentum correction and factor masking
  double momentum = 0.9;             // topk with momentum correction: DGC's m
  std::uint64_t warmup_steps = 0;    // topk: density decays from 1 to ratio over these steps
  // FLOPs per element to encode / decode, charged to the node; unset: the codec's default.
  std::optional<double> encode_flops;
  std::optional<double> decode_flops;
};

// The codecs' names, from their table (engine/codecs/codec_table.cpp).
NameTable<CodecKind> codec_names();
inline const char* to_string(CodecKind kind) { return name_of(codec_names(), kind); }
// Whether payloads can be summed by an allreduce (every worker uses the same code).
bool allreduce_compatible(CodecKind kind);
bool uses_error_feedback(const CodecConfig& c);
// FLOPs per element of encoding and decoding: the scenario's, or the codec's default
// (comparisons, rounding, RNG draws count as one each; top-k's selection as log2 of the kept
// share's inverse; error feedback adds 2).
double encode_flops_per_element(const CodecConfig& c);
double decode_flops_per_element(const CodecConfig& c);

class Compressor {
 public:
  // `n` elements; `layout` (PowerSGD's matrices) may be null. `seed`, `worker` and `stream`
  // (a parameter-server shard, < 4096) key the stochastic codecs' random streams; random-k
  // and PowerSGD share theirs across workers (seed, stream, step).
  Compressor(const CodecConfig& config, std::size_t n, std::uint64_t seed, int worker,
             const ParamLayout* layout = nullptr, int stream = 0);

  const CodecConfig& config() const { return config_; }
  std::size_t size() const { return codec_->size(); }
  const Codec& codec() const { return *codec_; }
  // The error-feedback memory e (empty when off).
  std::span<const float> memory() const { return memory_; }

  // ---- gathered ----
  // The payload of g + e for step `step`, updating e. `lr` is ef-sign's: p = e + lr g, as
  // GRACE folds the learning rate into the memory (the decoded payload is then in lr units).
  // The simulator passes 1, keeping the memory in gradient units so that a schedule does not
  // rescale it. With DGC's momentum correction, u = m u + g and x = e + u.
  void encode(std::span<const float> g, std::uint64_t step, Payload& out, double lr = 1.0);
  Payload encode(std::span<const float> g, std::uint64_t step, double lr = 1.0);
  // The size of encode()'s payload at `step`, without encoding (time-only runs).
  std::uint64_t payload_size(std::uint64_t step) const { return codec_->payload_size(step); }
  // Decodes a payload of this codec over n elements into `out` (overwrites it). Throws
  // std::invalid_argument on a payload or an output of the wrong size.
  void decode(std::span<const std::uint8_t> payload, std::span<float> out,
              std::uint64_t step) const;

  // ---- summed (allreduce_compatible codecs) ----
  // Per step: for each round r, encode_round(r, g) (g is read in round 0, with e added) and an
  // allreduce of each of parts(r) in place; then finish() writes the mean and updates e.
  int rounds() const { return codec_->rounds(); }
  double round_share(int r) const { return codec_->round_share(r); }
  void encode_round(int r, std::span<const float> g, std::uint64_t step, int p);
  std::vector<SumPart> parts(int r, std::uint64_t step) { return codec_->parts(r, step); }
  void finish(std::uint64_t step, int p, std::span<float> out);

 private:
  void add_memory(std::span<const float> g, double lr);  // x = e + lr g (or e + u)
  void update_memory();                                  // e = x - sent; DGC masking

  CodecConfig config_;
  std::unique_ptr<Codec> codec_;
  std::vector<float> memory_;    // error feedback e (and DGC's accumulated v)
  std::vector<float> velocity_;  // DGC's momentum u
  std::vector<float> x_;         // g + e of this step
  std::vector<float> sent_;      // what of x was sent
};

}  // namespace dtsim
