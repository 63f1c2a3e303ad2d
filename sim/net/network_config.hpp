// How the network is configured: plain values, no simulation machinery, so that a scenario
// can name them without compiling the event loop. The models behind them: topology.hpp,
// network.hpp, collectives.hpp.
#pragma once

#include "engine/names.hpp"
#include "sim/des/sim_time.hpp"

namespace dtsim {

struct LinkSpec {
  double bandwidth = 25e9 / 8;  // bytes per second, each direction
  SimTime latency = SimTime::from_ns(10'000);
};

enum class TopologyKind { kStar, kRing, kFull, kHierarchical };

struct NetworkConfig {
  TopologyKind topology = TopologyKind::kStar;
  LinkSpec link;              // star/ring/full links; hierarchical: the machines' NICs
  int nodes_per_machine = 4;  // hierarchical
  LinkSpec intra{600e9, SimTime::from_ns(1'000)};  // hierarchical: links inside a machine
};

// The allreduce algorithms of sim/net/collectives.hpp.
enum class AllreduceAlgo { kRing, kTree, kHalvingDoubling, kHierarchical };

inline NameTable<TopologyKind> topology_names() {
  static constexpr Named<TopologyKind> kNames[] = {
      {"star", TopologyKind::kStar},
      {"ring", TopologyKind::kRing},
      {"full", TopologyKind::kFull},
      {"hierarchical", TopologyKind::kHierarchical},
  };
  return kNames;
}
inline NameTable<AllreduceAlgo> allreduce_algo_names() {
  static constexpr Named<AllreduceAlgo> kNames[] = {
      {"ring", AllreduceAlgo::kRing},
      {"tree", AllreduceAlgo::kTree},
      {"halving-doubling", AllreduceAlgo::kHalvingDoubling},
      {"hierarchical", AllreduceAlgo::kHierarchical},
  };
  return kNames;
}
inline const char* to_string(TopologyKind kind) { return name_of(topology_names(), kind); }
inline const char* to_string(AllreduceAlgo algo) { return name_of(allreduce_algo_names(), algo); }

}  // namespace dtsim
