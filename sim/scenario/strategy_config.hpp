// [strategy]: which architecture and sync mode a run uses, and their keys, as plain values.
// What each combination does, which keys it reads and checks, and how it runs: one row each
// in the strategy table (sim/strategies/registry.hpp).
#pragma once

#include <optional>
#include <vector>

#include "engine/aggregate.hpp"
#include "sim/des/sim_time.hpp"
#include "sim/net/network_config.hpp"

namespace dtsim {

enum class Architecture { kAllreduce, kParameterServer, kGossip, kPipeline, kTensor };
enum class SyncMode { kBsp, kAsp, kSsp, kDelayed, kLocalSgd, kDPsgd, kAdPsgd, kGPipe, k1F1B };

struct StrategyConfig {
  Architecture architecture = Architecture::kAllreduce;
  SyncMode sync = SyncMode::kBsp;
  AllreduceAlgo collective = AllreduceAlgo::kRing;
  bool time_only = false;          // move sizes, not data; no numerics, no accuracy
  std::optional<int> staleness;    // ssp: the clock bound s; delayed: the exact delay tau
  std::optional<int> local_steps;  // local-sgd: average every H steps
  int backup_workers = 0;          // bsp: each step uses the first (workers - b) gradients
  bool staleness_lr = false;       // asp/ssp/delayed: lr / max(1, staleness)
  double delay_compensation = 0;   // asp/ssp/delayed: DC-ASGD lambda (0: off)
  double consensus_step = 0.5;     // d-psgd with [compression]: CHOCO-SGD's gamma
  AggregationConfig aggregation;   // where contributions meet (bsp); trim = f
  // Model parallelism: nodes per model replica (pipeline stages, or tensor shards / column
  // groups) and replicas (data parallel across them).
  int stages = 1;                 // pipeline: p
  int micro_batches = 1;          // pipeline: m, dividing train.batch_size
  std::vector<int> stage_layers;  // pipeline: blocks per stage, by hand; empty: FLOP-balanced
  int tensor_parallel = 1;        // tensor: t
  int data_parallel = 1;          // pipeline, tensor: d replicas of the split model
  // How long the others take to notice a crashed worker (a missed heartbeat): they go on
  // without it that long after it stops ([[faults]] crash, restart).
  SimTime failure_timeout = SimTime::from_ns(1'000'000'000);
  // ps: each server shard saves its part of the model and its optimizer state after every
  // this many of its updates (0: never); a shard that crashes or restarts resumes from it.
  int checkpoint_every = 0;
};

// Whether the model itself is split among nodes (pipeline or tensor).
inline bool model_parallel(const StrategyConfig& s) {
  return s.architecture == Architecture::kPipeline || s.architecture == Architecture::kTensor;
}
// Nodes per model replica: stages, tensor shards, or 1.
inline int replica_nodes(const StrategyConfig& s) {
  if (s.architecture == Architecture::kPipeline) return s.stages;
  if (s.architecture == Architecture::kTensor) return s.tensor_parallel;
  return 1;
}

}  // namespace dtsim
