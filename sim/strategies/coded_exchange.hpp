// Exchanges of compressed gradients and robust aggregation in bsp (engine/compress.hpp,
// engine/aggregate.hpp; the rules are in docs/compression.md).
//
// Allreduce architecture, one step of worker w after its gradient (clipped, and corrupted if
// the worker is Byzantine):
//   fp16 / bf16   g + e pre-divided by p and rounded, allreduced at 2 bytes per element
//                 (summed in float), the sum rounded again
//   random-k      the k values at the step's shared indices, allreduced, expanded / p
//   powersgd      allreduce P, orthogonalise, allreduce Q (and the uncompressed tensors)
//   the others    encode, ring-allgather the payloads (each its real size), decode all p,
//                 aggregate with the scenario's rule (sign: majority vote)
// and with no codec but a robust rule, the raw gradients are gathered. Encoding and decoding
// are jobs charged per element (compression.encode_flops_per_element, ..._decode_...).
//
// Parameter server: each worker encodes each shard's part with its own compressor (and
// memory) and pushes the payload; the shard decodes the p payloads, aggregates, steps.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/aggregate.hpp"
#include "engine/compress.hpp"
#include "sim/train/run_core.hpp"

namespace dtsim {

// Whether a bsp step exchanges through a codec or an aggregation rule (else a plain sum).
bool uses_coded_exchange(const Scenario& s);
// The scenario's rule, or the majority vote that codec = "sign" implies.
AggregationConfig aggregation_rule(const Scenario& s);

class CodedAllreduce {
 public:
  explicit CodedAllreduce(RunCore& core);
  // Exchanges worker w's gradient (core.worker(w).grads) at `step`, and leaves the
  // aggregated mean there.
  Task<> exchange(int w, std::uint64_t step);

 private:
  // Every worker decodes and aggregates the same p payloads, so the first job of a step
  // computes the result and the others copy it (each is still charged the full time).
  struct SharedAggregate {
    std::once_flag once;
    std::vector<float> result;
    int taken = 0;
  };
  Task<> summed(int w, std::uint64_t step);
  // Encoding and decoding one gradient, in FLOPs.
  std::pair<double, double> coding_flops() const;
  Task<> gathered(int w, std::uint64_t step);

  RunCore& core_;
  std::vector<std::unique_ptr<Compressor>> codecs_;  // per worker
  std::map<std::uint64_t, std::unique_ptr<SharedAggregate>> shared_;
  // The p decoded payloads (one step aggregates at a time, in one job).
  std::vector<std::vector<float>> decoded_;
};

class CodedPs {
 public:
  explicit CodedPs(RunCore& core);
  // Worker w encodes each shard's part of its gradient and sends the payloads (step_tag).
  Task<> push(int w, std::uint64_t step);
  // Shard s receives the p payloads of `step`, decodes and aggregates them into `buffer`, and
  // steps `params` with `optimizer` (null in time-only mode).
  Task<> serve(int s, std::uint64_t step, std::vector<float>& params, std::vector<float>& buffer,
               Optimizer* optimizer);

 private:
  RunCore& core_;
  std::vector<std::vector<std::unique_ptr<Compressor>>> codecs_;  // per worker, per shard
  std::vector<std::unique_ptr<Compressor>> decoders_;             // per shard
  std::vector<std::vector<std::vector<float>>> decoded_;          // per shard: p payloads
};

}  // namespace dtsim
