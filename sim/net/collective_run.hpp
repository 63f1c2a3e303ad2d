// One collective on its own: what `dtsim collective` and the collective tests run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/names.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/topology.hpp"

namespace dtsim {

enum class CollectiveOp { kAllreduce, kAllgather, kReduceScatter, kBroadcast, kPs };

struct CollectiveSpec {
  CollectiveOp op = CollectiveOp::kAllreduce;
  AllreduceAlgo algo = AllreduceAlgo::kRing;  // allreduce only
  int nodes = 2;                              // participants (workers, for kPs)
  int servers = 1;                            // kPs: server shards, extra nodes after the workers
  std::uint64_t bytes = 0;                    // per participant; rounded up to whole floats
  NetworkConfig network;
  int threads = 1;
  // Each rank's speed for its sums and copies (one operation per float); 0: free, as dtsim
  // collective has it. Training runs pass each node's compute speed.
  double reduce_flops_per_s = 0;
};

struct CollectiveRun {
  double simulated_time_s = 0;
  double wall_time_s = 0;
  std::uint64_t bytes_sent_per_node = 0;  // the most any participant sent
  std::uint64_t bytes_sent_total = 0;     // by every node (servers included)
  std::uint64_t messages = 0;
  std::uint64_t events = 0;
};

// Simulates the collective once, from time 0, with every participant starting together.
// Time-only unless `data` is given: then data[r] is rank r's vector (in and out; all the same
// length, bytes is ignored). For kPs the servers only sum (no optimizer), so every worker ends
// with the sum.
CollectiveRun run_collective(const CollectiveSpec& spec,
                             std::vector<std::vector<float>>* data = nullptr);

inline NameTable<CollectiveOp> collective_op_names() {
  static constexpr Named<CollectiveOp> kNames[] = {
      {"allreduce", CollectiveOp::kAllreduce},
      {"allgather", CollectiveOp::kAllgather},
      {"reduce-scatter", CollectiveOp::kReduceScatter},
      {"broadcast", CollectiveOp::kBroadcast},
      {"ps", CollectiveOp::kPs},
  };
  return kNames;
}
inline const char* to_string(CollectiveOp op) { return name_of(collective_op_names(), op); }

}  // namespace dtsim
