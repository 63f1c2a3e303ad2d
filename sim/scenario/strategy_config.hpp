// [strategy]: which architecture and sync mode a run uses, and their keys, as plain values.
// What each combination does, which keys it reads and checks, and how it runs: one row each
// in the strategy table (sim/strategies/registry.hpp).
#pragma once

#include <optional>

#include "engine/aggregate.hpp"
#include "sim/net/network_config.hpp"

namespace dtsim {

enum class Architecture { kAllreduce, kParameterServer, kGossip };
enum class SyncMode { kBsp, kAsp, kSsp, kDelayed, kLocalSgd, kDPsgd, kAdPsgd };

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
  AggregationConfig aggregation;   // where contributions meet (bsp); trim = f
};

}  // namespace dtsim
