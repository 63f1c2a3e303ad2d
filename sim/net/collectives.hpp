// Collective operations built from point-to-point messages on the simulated network.
//
// Every member of a group runs the same collective coroutine with its own rank; their
// messages cross the network, so the collective's time emerges from its schedule (and, with
// no contention, equals the alpha-beta formulas of Thakur, Rabenseifner and Gropp: see
// docs/simulator.md). With real data the vectors are really moved and reduced, in the
// order the schedule implies; in time-only mode only sizes travel.
//
// Element ranges: a vector of n floats cut into q parts gives part i the range
// [i*(n/q) + min(i, n%q), ...) so sizes differ by at most one element.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/des/simulation.hpp"
#include "sim/net/network_config.hpp"

namespace dtsim {

// What a collective works on: a rank's vector of floats (in and out), or in time-only mode
// just its length.
struct CollBuf {
  std::span<float> data;       // empty in time-only mode
  std::uint64_t elements = 0;  // = data.size() with real data
  // Bytes per element on the wire: 4, or 2 for values already rounded to fp16 / bf16 (the
  // sums are computed in float; see docs/compression.md).
  std::uint64_t element_bytes = 4;
  static CollBuf real(std::span<float> d, std::uint64_t element_bytes = 4) {
    return {d, d.size(), element_bytes};
  }
  static CollBuf sized(std::uint64_t n, std::uint64_t element_bytes = 4) {
    return {{}, n, element_bytes};
  }
  bool has_data() const { return !data.empty(); }
};

// Who takes part and how: group[i] is the node of rank i. `tag` must be unique to this call
// (every member passes the same one). Summing or copying a received part into the rank's
// vector is a job of one operation per float at reduce_flops_per_s (0: free).
struct CollContext {
  Simulation* sim = nullptr;
  std::span<const int> group;
  int rank = 0;
  std::uint64_t tag = 0;
  double reduce_flops_per_s = 0;
  int size() const { return static_cast<int>(group.size()); }
  int node(int r) const { return group[static_cast<std::size_t>(r)]; }
};

// Sum-allreduce: every rank ends with the element-wise sum of all ranks' vectors.
// kHierarchical groups consecutive ranks in machines of `per_machine` (size % per_machine == 0).
Task<> allreduce(CollContext ctx, CollBuf buf, AllreduceAlgo algo, int per_machine = 1);

// Why `algo` cannot run over `ranks` ranks in machines of `per_machine` (empty: it can), in
// the words of the caller: e.g. ("workers", "network.nodes_per_machine =") gives "... 6
// workers are not a multiple of network.nodes_per_machine = 4".
std::string allreduce_problem(AllreduceAlgo algo, int ranks, int per_machine,
                              std::string_view ranks_are, std::string_view machine_size);

// Ring reduce-scatter: afterwards rank r holds the sum of part (r + 1) mod p (p parts).
Task<> ring_reduce_scatter(CollContext ctx, CollBuf buf);
// Ring allgather of the parts left by ring_reduce_scatter: rank r starts owning part (r+1) mod p.
Task<> ring_allgather_after_rs(CollContext ctx, CollBuf buf);
// Allgather (ring): rank r contributes part r of the vector; every rank ends with all parts.
Task<> allgather(CollContext ctx, CollBuf buf);
// Reduce-scatter (ring): every rank ends with the sum of part r at part r (others undefined).
Task<> reduce_scatter(CollContext ctx, CollBuf buf);
// Binomial-tree broadcast of root's vector (blocking sends, so a sender's messages do not
// share its link).
Task<> broadcast(CollContext ctx, CollBuf buf, int root);

// Parameter server with k shards (the vector cut into k parts, part s on server s).
// Worker side of one BSP step: push the gradient's parts to their servers, then pull the
// servers' updated parts into `buf`.
Task<> ps_push_pull(CollContext ctx, CollBuf buf, std::span<const int> servers);
// Server side of one BSP step for shard `shard` of a vector of `total` elements: receive the
// part from every worker, sum in worker order into `sum` (size of the part), call `update`
// (which turns `sum` into the values to send back; time-only: may be empty), then send them to
// every worker.
struct PsServerStep {
  Simulation* sim = nullptr;
  int node = 0;
  std::span<const int> workers;
  int shard = 0;
  int shards = 1;
  std::uint64_t total = 0;
  std::uint64_t tag = 0;
  double reduce_flops_per_s = 0;
  bool numerics = true;  // false: time-only, `sum` is not used
};
Task<> ps_serve_step(PsServerStep step, std::span<float> sum, std::function<Task<>()> update);

// Ring allgather of opaque payloads of any size (compressed gradients): every rank ends with
// every rank's payload, indexed by rank. `bytes` is this rank's payload size on the wire (the
// payload may be null in time-only mode); forwarded payloads keep their sender's size.
struct Gathered {
  std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> payloads;
  std::vector<std::uint64_t> bytes;
};
Task<> allgather_payloads(CollContext ctx, std::shared_ptr<const std::vector<std::uint8_t>> mine,
                          std::uint64_t bytes, Gathered& out);

// [begin, end) of part i of n elements cut into q parts.
std::pair<std::uint64_t, std::uint64_t> part_range(std::uint64_t n, int q, int i);

}  // namespace dtsim
