#include "sim/train/explain.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "engine/compress.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "sim/net/topology.hpp"

namespace dtsim {
namespace {

std::string secs(double s) {
  if (s >= 1) return fmt::format("{:.4g} s", s);
  if (s >= 1e-3) return fmt::format("{:.4g} ms", s * 1e3);
  return fmt::format("{:.4g} us", s * 1e6);
}

int ceil_log2(int p) {
  int l = 0;
  while ((1 << l) < p) ++l;
  return l;
}

}  // namespace

Explanation explain(const Scenario& s, const DatasetPair& data) {
  Explanation e;
  const Model model(s.model, {data.train.channels, data.train.height, data.train.width},
                    data.train.task, data.train.outputs);
  const int p = s.cluster.workers;
  const int k = s.strategy.architecture == Architecture::kParameterServer ? s.cluster.servers : 0;
  const int b = s.train.batch_size;
  const double n = static_cast<double>(model.num_params());
  const double speed = s.cluster.compute_flops_per_s;
  const double gradient_flops =
      model.forward_flops(b) + model.backward_flops(b) + (s.train.clip_norm > 0 ? 3 * n : 0);
  const double gradient_s = gradient_flops / speed + b * s.data.load_cost.seconds();
  const double opt_flops = optimizer_step_flops(s.train.optimizer.kind, model.num_params());
  const double bytes = 4 * n;

  e.lines.emplace_back("model", model.summary());
  e.lines.emplace_back(
      "FLOPs per step and worker",
      fmt::format("{:.4g} (forward {:.4g}, backward {:.4g}; batch {})", gradient_flops,
                  model.forward_flops(b), model.backward_flops(b), b));
  e.lines.emplace_back("gradient bytes per worker and step", fmt::format("{:.4g}", bytes));
  if (s.compression.kind != CodecKind::kNone) {
    const Compressor c(s.compression, model.num_params(), s.seed, 0, &model.layout());
    const auto sent =
        static_cast<double>(c.payload_size(std::numeric_limits<std::uint64_t>::max()));
    e.lines.emplace_back(
        "compressed payload per worker and step",
        fmt::format("{:.4g} bytes ({}, {:.1f}x smaller; {}); the prediction below is for "
                    "uncompressed bsp",
                    sent, to_string(s.compression.kind), bytes / std::max(1.0, sent),
                    allreduce_compatible(s.compression.kind) ? "allreduced" : "gathered"));
  }
  e.lines.emplace_back(
      "gradient time per worker and step",
      fmt::format("{} ({:.4g} FLOP/s{})", secs(gradient_s), speed,
                  s.data.load_cost.ns() > 0
                      ? fmt::format(", loading {} per sample", secs(s.data.load_cost.seconds()))
                      : ""));

  Topology topo(s.network, p + k);
  const double beta = 1 / s.network.link.bandwidth;
  const double alpha = p > 1 ? topo.path_latency(0, 1).seconds() : 0;
  double comm = 0;
  double update_s = 0;
  std::string how;
  if (k == 0) {
    update_s = (opt_flops + (p > 1 ? n : 0)) / speed;
    const double sums = n / speed;  // one pass over the vector: summing or copying
    const double pp = p;
    switch (s.strategy.collective) {
      case AllreduceAlgo::kRing:
        comm = 2 * (pp - 1) * alpha + 2 * (pp - 1) / pp * bytes * beta + 2 * (pp - 1) / pp * sums;
        how = "ring: 2(p-1)a + 2((p-1)/p) n b";
        break;
      case AllreduceAlgo::kTree: {
        const int lg = ceil_log2(p);
        comm = 2 * lg * (alpha + bytes * beta) + 2 * lg * sums;
        how = "tree: 2 ceil(lg p)(a + n b)";
        break;
      }
      case AllreduceAlgo::kHalvingDoubling: {
        int pof2 = 1;
        while (pof2 * 2 <= p) pof2 *= 2;
        const double q = pof2;
        comm =
            2 * ceil_log2(pof2) * alpha + 2 * (q - 1) / q * bytes * beta + 2 * (q - 1) / q * sums;
        if (pof2 != p) comm += 2 * (alpha + bytes * beta) + 2 * sums;
        how = "halving-doubling: 2 lg p a + 2((p-1)/p) n b (+ 2(a + n b) if p is not a power of 2)";
        break;
      }
      case AllreduceAlgo::kHierarchical: {
        const double g = s.network.nodes_per_machine;
        const double machines = pp / g;
        const double a1 = topo.path_latency(0, 1).seconds();
        const double b1 = s.network.topology == TopologyKind::kHierarchical
                              ? 1 / s.network.intra.bandwidth
                              : beta;
        const double a2 =
            p > static_cast<int>(g) ? topo.path_latency(0, static_cast<int>(g)).seconds() : 0;
        comm = 2 * ((g - 1) * a1 + (g - 1) / g * bytes * b1) + 2 * (machines - 1) * a2 +
               2 * (machines - 1) / machines * bytes * beta + 2 * (g - 1) / g * sums +
               2 * (machines - 1) / machines * sums / g;
        how = "hierarchical: 2[(g-1)a1 + ((g-1)/g) n b1] + 2(N-1)a2 + 2((N-1)/N) n b2";
        break;
      }
    }
    if (p == 1) {
      comm = 0;
      how = "one worker: no communication";
    }
  } else {
    // The slowest worker-to-server path sets the pace.
    double worst_path = 0;
    for (int w = 0; w < p; ++w) {
      for (int sv = 0; sv < k; ++sv)
        worst_path = std::max(worst_path, topo.path_latency(w, p + sv).seconds());
    }
    const double part = bytes / k;
    const double worst = std::max(bytes, p * part);
    const double server_sum = p * (n / k) / speed;
    update_s = n / speed;  // the worker copies the pulled parameters in
    comm = 2 * (worst_path + worst * beta) + server_sum + (opt_flops / k + n / k) / speed;
    how = fmt::format(
        "parameter server, {} shards: 2(a + max(n, p n / k) b) + the servers' sums and update", k);
  }
  const StrategyConfig& st = s.strategy;
  if (st.sync == SyncMode::kLocalSgd && p > 1) {
    // The allreduce moves the parameters every H steps, then each replica divides by p.
    const double h = *st.local_steps;
    comm = (comm + n / speed) / h;
    update_s = opt_flops / speed;
    how += fmt::format(", of the parameters, every {} steps", *st.local_steps);
  } else if (st.architecture == Architecture::kGossip && p > 1) {
    // d-psgd: the replica goes to every neighbour while the gradient is computed; on a ring
    // or full mesh each neighbour has its own link, on a star they share the node's.
    const int degree = s.network.topology == TopologyKind::kFull ? p - 1 : (p > 2 ? 2 : 1);
    const bool shared =
        s.network.topology != TopologyKind::kRing && s.network.topology != TopologyKind::kFull;
    const double exchange =
        topo.path_latency(0, 1).seconds() + (shared ? degree : 1) * bytes * beta;
    comm = std::max(0.0, exchange - gradient_s);
    update_s = (2.0 * (degree + 1) * n + opt_flops) / speed;
    how = fmt::format("gossip: replica to {} neighbour(s), {} (overlaps the gradient)", degree,
                      secs(exchange));
  }
  e.lines.emplace_back("alpha (path latency between workers 0 and 1)", secs(alpha));
  e.lines.emplace_back("beta (per byte)",
                       fmt::format("{:.4g} s/B ({:.4g} Gbps)", beta, 8e-9 / beta));
  e.lines.emplace_back("communication per step (no contention)",
                       fmt::format("{}  [{}]", secs(comm), how));
  e.lines.emplace_back("update per step", secs(update_s));

  e.compute_s = gradient_s + update_s;
  e.communicate_s = comm;
  e.step_s = e.compute_s + e.communicate_s;
  const std::uint64_t global_batch = static_cast<std::uint64_t>(p) * static_cast<std::uint64_t>(b);
  e.steps = s.train.steps > 0 ? s.train.steps
                              : static_cast<std::uint64_t>(s.train.epochs) *
                                    ((data.train.samples() + global_batch - 1) / global_batch);
  e.run_s = e.step_s * static_cast<double>(e.steps);
  e.bottleneck = e.communicate_s > e.compute_s ? "communication" : "computation";
  if (!s.cluster.groups.empty() || s.cluster.stragglers.fraction > 0 ||
      s.cluster.stragglers.jitter > 0) {
    e.lines.emplace_back("note",
                         "nodes differ ([[cluster.group]], stragglers): this prediction is "
                         "for the default node and links; the run measures the real thing");
  }
  const bool lock_step = (st.sync == SyncMode::kBsp && st.backup_workers == 0) ||
                         st.sync == SyncMode::kLocalSgd || st.sync == SyncMode::kDPsgd;
  if (!lock_step) {
    e.lines.emplace_back(
        "note",
        fmt::format("sync = \"{}\"{} has no lock-step: its time emerges from who "
                    "waits for whom. This prediction is for the same cluster in bsp; "
                    "the run measures the real thing (and the staleness)",
                    to_string(st.sync), st.backup_workers > 0 ? " with backup workers" : ""));
  }
  e.lines.emplace_back("predicted step time", secs(e.step_s));
  e.lines.emplace_back("predicted run",
                       fmt::format("{} steps, {} of virtual time", e.steps, secs(e.run_s)));
  e.lines.emplace_back(
      "expected bottleneck",
      fmt::format("{} ({:.0f}% of a step)", e.bottleneck,
                  100 * std::max(e.compute_s, e.communicate_s) / (e.step_s > 0 ? e.step_s : 1)));
  return e;
}

}  // namespace dtsim
