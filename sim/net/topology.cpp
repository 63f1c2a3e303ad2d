#include "sim/net/topology.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "engine/errors.hpp"

namespace dtsim {

std::optional<NetworkProblem> network_problem(const NetworkConfig& config, int nodes) {
  if (nodes < 1) return NetworkProblem{"cluster.workers", "a network needs at least one node"};
  if (!(config.link.bandwidth > 0) || !(config.intra.bandwidth > 0)) {
    return NetworkProblem{
        config.link.bandwidth > 0 ? "network.intra_bandwidth" : "network.bandwidth",
        "expected a bandwidth above zero"};
  }
  const auto p = static_cast<std::size_t>(nodes);
  if (config.topology == TopologyKind::kFull && nodes > 1024) {
    return NetworkProblem{"network.topology",
                          fmt::format("a full mesh of {} nodes needs {} links; use at most 1024 "
                                      "nodes, or a star",
                                      nodes, p * (p - 1))};
  }
  if (config.topology == TopologyKind::kHierarchical && config.nodes_per_machine < 1) {
    return NetworkProblem{"network.nodes_per_machine", "expected at least 1"};
  }
  return std::nullopt;
}

Topology::Topology(const NetworkConfig& config, int nodes) : config_(config), nodes_(nodes) {
  if (const auto problem = network_problem(config, nodes)) {
    throw InputError({}, problem->key, problem->message);
  }
  const auto p = static_cast<std::size_t>(nodes);
  switch (config.topology) {
    case TopologyKind::kStar:
      links_.assign(2 * p, config.link);
      break;
    case TopologyKind::kRing:
      links_.assign(2 * p, config.link);
      break;
    case TopologyKind::kFull:
      links_.assign(p * p, config.link);
      break;
    case TopologyKind::kHierarchical: {
      const std::size_t machines =
          (p + static_cast<std::size_t>(config.nodes_per_machine) - 1) / config.nodes_per_machine;
      links_.assign(2 * p, config.intra);
      links_.resize(2 * p + 2 * machines, config.link);
      break;
    }
  }
}

void Topology::set_node_links(int node, const LinkSpec& spec) {
  const auto n = static_cast<std::size_t>(node);
  const auto p = static_cast<std::size_t>(nodes_);
  switch (config_.topology) {
    case TopologyKind::kStar:
    case TopologyKind::kHierarchical:
      links_[2 * n] = spec;
      links_[2 * n + 1] = spec;
      break;
    case TopologyKind::kRing:
      links_[n] = spec;                    // n -> n+1
      links_[p + (n + p - 1) % p] = spec;  // n -> n-1
      break;
    case TopologyKind::kFull:
      for (std::size_t o = 0; o < p; ++o) {
        links_[n * p + o] = spec;
        links_[o * p + n] = spec;
      }
      break;
  }
}

std::vector<int> Topology::node_links(int node, bool out, bool in) const {
  const int n = node;
  const int p = nodes_;
  std::vector<int> links;
  switch (config_.topology) {
    case TopologyKind::kStar:
    case TopologyKind::kHierarchical:
      if (out) links.push_back(2 * n);
      if (in) links.push_back(2 * n + 1);
      break;
    case TopologyKind::kRing:
      if (p < 2) break;
      if (out) {
        links.push_back(n);                    // n -> n+1
        links.push_back(p + (n + p - 1) % p);  // n -> n-1
      }
      if (in) {
        links.push_back((n + p - 1) % p);  // n-1 -> n
        links.push_back(p + (n + 1) % p);  // n+1 -> n
      }
      break;
    case TopologyKind::kFull:
      for (int o = 0; o < p; ++o) {
        if (o == n) continue;
        if (out) links.push_back(n * p + o);
        if (in) links.push_back(o * p + n);
      }
      break;
  }
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  return links;
}

template <typename Add>
bool Topology::walk_route(int src, int dst, Add add) const {
  const int p = nodes_;
  switch (config_.topology) {
    case TopologyKind::kStar:
      return add(2 * src) && add(2 * dst + 1);
    case TopologyKind::kRing: {
      const int forward = (dst - src + p) % p;
      if (forward <= p - forward) {
        for (int i = 0, at = src; i < forward; ++i, at = (at + 1) % p) {
          if (!add(at)) return false;
        }
      } else {
        // Link p + j carries j+1 -> j.
        for (int i = 0, at = src; i < p - forward; ++i, at = (at - 1 + p) % p) {
          if (!add(p + (at - 1 + p) % p)) return false;
        }
      }
      return true;
    }
    case TopologyKind::kFull:
      return add(src * p + dst);
    case TopologyKind::kHierarchical: {
      const int ms = machine_of(src);
      const int md = machine_of(dst);
      if (!add(2 * src)) return false;
      if (ms != md && !(add(2 * p + 2 * ms) && add(2 * p + 2 * md + 1))) return false;
      return add(2 * dst + 1);
    }
  }
  return true;
}

void Topology::route(int src, int dst, std::vector<int>& out) const {
  walk_route(src, dst, [&](int l) {
    out.push_back(l);
    return true;
  });
}

int Topology::other_short_route(int src, int dst, int out[4]) const {
  int n = 0;
  const bool fits = walk_route(src, dst, [&](int l) {
    if (n == 4) return false;
    out[n++] = l;
    return true;
  });
  return fits ? n : -1;
}

SimTime Topology::path_latency(int src, int dst) const {
  std::vector<int> links;
  route(src, dst, links);
  SimTime total;
  for (int l : links) total += link(l).latency;
  return total;
}

}  // namespace dtsim
