// Gradient compression in the GRACE shape (Xu et al., ICDCS 2021): a codec that turns a
// vector into a payload of real bytes and back, an error-feedback memory, and the collective
// the codec can ride. Formulas, pitfalls and test vectors: docs/compression.md.
//
//   send:    x = g + e                      (e: the error-feedback memory, 0 when off)
//            payload = encode(x)            (the bytes on the wire, indices, scales, norms)
//            e = x - decode(payload)
//   receive: decode each payload, aggregate (engine/aggregate.hpp)
//
// Codecs that can be summed in the compressed domain ride an allreduce: fp16 and bf16
// (pre-divided by p, as PyTorch's hooks do), random-k (every worker picks the same indices
// from the shared seed) and PowerSGD (linear given the shared Q). The others are gathered.
// A Compressor belongs to one worker (and one parameter-server shard's part) and is used by
// one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

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
  // Error feedback; unset: on for onebit, topk, randomk and powersgd, off for the others
  // (ef-sign always keeps its memory; sign never does).
  std::optional<bool> error_feedback;
  bool momentum_correction = false;  // topk: DGC's momentum correction and factor masking
  double momentum = 0.9;             // topk with momentum correction: DGC's m
  std::uint64_t warmup_steps = 0;    // topk: density decays from 1 to ratio over these steps
  // FLOPs per element to encode / decode, charged to the node; unset: the codec's default.
  std::optional<double> encode_flops;
  std::optional<double> decode_flops;
};

inline NameTable<CodecKind> codec_names() {
  static constexpr Named<CodecKind> kNames[] = {
      {"none", CodecKind::kNone},       {"fp16", CodecKind::kFp16},
      {"bf16", CodecKind::kBf16},       {"int8", CodecKind::kInt8},
      {"qsgd", CodecKind::kQsgd},       {"terngrad", CodecKind::kTernGrad},
      {"onebit", CodecKind::kOneBit},   {"sign", CodecKind::kSign},
      {"ef-sign", CodecKind::kEfSign},  {"topk", CodecKind::kTopK},
      {"randomk", CodecKind::kRandomK}, {"powersgd", CodecKind::kPowerSgd},
  };
  return kNames;
}
inline const char* to_string(CodecKind kind) { return name_of(codec_names(), kind); }
// Whether payloads can be summed by an allreduce (every worker uses the same code).
bool allreduce_compatible(CodecKind kind);
bool uses_error_feedback(const CodecConfig& c);
// Default FLOPs per element of encoding and decoding (comparisons, rounding, RNG draws count
// as one each; top-k's selection as log2 of the kept share's inverse).
double encode_flops_per_element(const CodecConfig& c);
double decode_flops_per_element(const CodecConfig& c);

// Round to the nearest representable value, ties to even (IEEE 754), and back to float.
float round_fp16(float x);
float round_bf16(float x);
std::uint16_t to_fp16_bits(float x);
float from_fp16_bits(std::uint16_t h);
std::uint16_t to_bf16_bits(float x);
float from_bf16_bits(std::uint16_t b);

using Payload = std::vector<std::uint8_t>;

class Compressor {
 public:
  // `n` elements; `layout` (PowerSGD's matrices) may be null for the other codecs. `seed`,
  // `worker` and `stream` (a parameter-server shard, < 4096) key the stochastic codecs'
  // random streams; random-k and PowerSGD share theirs across workers (seed, stream, step).
  Compressor(const CodecConfig& config, std::size_t n, std::uint64_t seed, int worker,
             const ParamLayout* layout = nullptr, int stream = 0);

  const CodecConfig& config() const { return config_; }
  std::size_t size() const { return n_; }
  std::span<const float> memory() const { return memory_; }

  // Gathered codecs (and fp16 / bf16 / random-k as payloads to a parameter server): the
  // payload of g + e for step `step`, updating e. `lr` is ef-sign's: p = e + lr g, as GRACE
  // folds the learning rate into the memory (the decoded payload is then in lr units). The
  // simulator passes 1, keeping the memory in gradient units so that a schedule does not
  // rescale it.
  Payload encode(std::span<const float> g, std::uint64_t step, double lr = 1.0);
  // The size of encode()'s payload at `step`, without encoding (time-only runs).
  std::uint64_t payload_size(std::uint64_t step) const;
  // Decodes a payload of this codec over n elements into `out` (overwrites it). Throws
  // std::invalid_argument on a payload of the wrong size.
  void decode(std::span<const std::uint8_t> payload, std::span<float> out,
              std::uint64_t step) const;

  // Allreduce codecs, fp16 / bf16: the values to sum (g + e pre-divided by p and rounded);
  // after the sum, finish() rounds it to the codec and takes it as the mean.
  std::vector<float> cast_for_allreduce(std::span<const float> g, int p);
  void finish_cast(std::span<float> sum) const;
  // Random-k: the k values of g + e at the step's shared indices; expand() writes the
  // summed values / p back at those indices (zeros elsewhere).
  std::vector<float> randomk_values(std::span<const float> g, std::uint64_t step);
  void randomk_expand(std::span<const float> sum, int p, std::uint64_t step,
                      std::span<float> out) const;
  std::vector<std::uint32_t> randomk_indices(std::uint64_t step) const;
  // Top-k / random-k: the elements sent at `step` (top-k's warm-up sends more at first).
  std::size_t k_at(std::uint64_t step) const;

  // PowerSGD (PyTorch's powerSGD_hook semantics): matrices n x m (a tensor's first dimension
  // by the rest) with (n + m) r * 2 < n m are compressed, the rest (biases, small matrices)
  // travel uncompressed. Step by step, around two allreduces (P, then Q) and one of the rest:
  //   p_buffer = powersgd_p(g)                  allreduce(p_buffer) (sum)
  //   q_buffer = powersgd_q(p_sum)              allreduce(q_buffer) (sum)
  //   powersgd_finish(q_sum, rest_sum, p, out)  out = the mean's low-rank approximation
  // rest_buffer() holds the uncompressed elements to allreduce (sum) alongside.
  std::vector<float> powersgd_p(std::span<const float> g, std::uint64_t step);
  std::vector<float> powersgd_q(std::span<float> p_sum);
  const std::vector<float>& powersgd_rest() const { return rest_; }
  void powersgd_finish(std::span<const float> q_sum, std::span<const float> rest_sum, int p,
                       std::span<float> out);
  // Floats PowerSGD sends per step: P, Q and the uncompressed rest.
  std::size_t powersgd_floats() const;
  struct PowerSgdSizes {
    std::size_t p;
    std::size_t q;
    std::size_t rest;
  };
  PowerSgdSizes powersgd_sizes() const { return {p_size_, q_size_, rest_index_.size()}; }

 private:
  struct Matrix {
    std::size_t offset = 0;  // in the flat vector
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::size_t rank = 0;
    std::size_t p_offset = 0;  // in the P buffer (rows * rank)
    std::size_t q_offset = 0;  // in the Q buffer (cols * rank)
  };

  CodecConfig config_;
  std::size_t n_;
  std::uint64_t seed_;
  int worker_;
  int stream_;
  std::vector<float> memory_;    // error feedback e (and DGC's accumulated v)
  std::vector<float> velocity_;  // DGC's momentum u
  // PowerSGD
  std::vector<Matrix> matrices_;
  std::vector<std::size_t> rest_index_;  // uncompressed elements, in order
  std::vector<float> corrected_;         // g + e of this step
  std::vector<float> q_;                 // warm-started Q, all matrices
  std::vector<float> p_;                 // P after orthogonalisation
  std::vector<float> rest_;
  std::size_t p_size_ = 0;
  std::size_t q_size_ = 0;
  bool have_q_ = false;
};

// Gram-Schmidt orthonormalisation of the r columns of a rows x r column-major matrix, each
// divided by (its norm + eps) (PyTorch's _orthogonalize_gram_schmidt; eps avoids 0 / 0).
void orthogonalize(std::span<float> m, std::size_t rows, std::size_t r, float eps = 1e-8f);

}  // namespace dtsim
