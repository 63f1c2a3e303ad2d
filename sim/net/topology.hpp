// Network topologies: directed links with latency and bandwidth, and shortest-path routes.
//
// Links are full duplex, modelled as one directed link per direction. Nodes are numbered
// 0..nodes-1; switches are not nodes. Routes are computed on demand (no p^2 tables):
//   star          every node has an up and a down link to one switch: a path crosses 2 links
//                 (so a message pays 2 x latency)
//   ring          node i is linked to i+1 (mod p) in both directions; a path takes the shorter
//                 way round (clockwise on a tie) and crosses up to p/2 links
//   full          a direct link per ordered pair: 1 link (at most 1024 nodes)
//   hierarchical  machines of `nodes_per_machine` nodes; each node has intra up/down links to
//                 its machine's switch, each machine one NIC (up/down) to the top switch:
//                 2 intra links inside a machine, intra + NIC + NIC + intra across machines
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/des/sim_time.hpp"
#include "sim/net/network_config.hpp"

namespace dtsim {

// What is wrong with a network of `nodes` nodes under `config` (nothing: nullopt): the
// scenario key it concerns and why. The Topology constructor throws it as an InputError.
struct NetworkProblem {
  std::string key;
  std::string message;
};
std::optional<NetworkProblem> network_problem(const NetworkConfig& config, int nodes);

class Topology {
 public:
  // Throws InputError for impossible shapes (no nodes, full with more than 1024 nodes, ...).
  Topology(const NetworkConfig& config, int nodes);

  int nodes() const { return nodes_; }
  const NetworkConfig& config() const { return config_; }
  std::size_t num_links() const { return links_.size(); }
  const LinkSpec& link(int id) const { return links_[static_cast<std::size_t>(id)]; }
  // Replaces the spec of every link attached to `node` (its own up/down or ring links).
  void set_node_links(int node, const LinkSpec& spec);

  // The links that carry what `node` sends (`out`) and what it receives (`in`).
  std::vector<int> node_links(int node, bool out, bool in) const;

  // Appends the directed links from src to dst to `out` (src != dst).
  void route(int src, int dst, std::vector<int>& out) const;
  // The same route written to out[0..3] when it has at most 4 links (always for star, full
  // and hierarchical); returns its length, or -1 for a longer one (use the vector form).
  int short_route(int src, int dst, int out[4]) const {
    if (config_.topology == TopologyKind::kStar) {  // the common case, inline
      out[0] = 2 * src;
      out[1] = 2 * dst + 1;
      return 2;
    }
    return other_short_route(src, dst, out);
  }
  SimTime path_latency(int src, int dst) const;
  int machine_of(int node) const { return node / config_.nodes_per_machine; }

 private:
  // Calls add(link) for each link from src to dst, in order, and stops early (returning
  // false) when add returns false.
  template <typename Add>
  bool walk_route(int src, int dst, Add add) const;
  int other_short_route(int src, int dst, int out[4]) const;

  NetworkConfig config_;
  int nodes_;
  std::vector<LinkSpec> links_;
};

}  // namespace dtsim
