#include "sim/train/explain.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "engine/compress.hpp"
#include "engine/optimizer.hpp"
#include "sim/des/units.hpp"
#include "sim/strategies/registry.hpp"

namespace dtsim {
namespace {

int ceil_log2(int p) {
  int l = 0;
  while ((1 << l) < p) ++l;
  return l;
}

// What one worker computes and sends per step.
void model_lines(const Scenario& s, const Model& model, double gradient_flops, double gradient_s,
                 Explanation& e) {
  const int b = s.train.batch_size;
  const double bytes = 4 * static_cast<double>(model.num_params());
  const double speed = s.cluster.compute_flops_per_s;
  e.lines.emplace_back("model", model.summary());
  e.lines.emplace_back(
      "FLOPs per step and worker",
      fmt::format("{} (forward {}, backward {}; batch {})", with_prefix(gradient_flops, "FLOP"),
                  with_prefix(model.forward_flops(b), "FLOP"),
                  with_prefix(model.backward_flops(b), "FLOP"), b));
  e.lines.emplace_back("gradient bytes per worker and step", with_prefix(bytes, "B"));
  if (s.compression.kind != CodecKind::kNone) {
    const Compressor c(s.compression, model.num_params(), s.seed, 0, &model.layout());
    const auto sent =
        static_cast<double>(c.payload_size(std::numeric_limits<std::uint64_t>::max()));
    e.lines.emplace_back(
        "compressed payload per worker and step",
        fmt::format("{} ({}, {:.1f}x smaller; {}); the prediction below is for "
                    "uncompressed bsp",
                    with_prefix(sent, "B"), to_string(s.compression.kind),
                    bytes / std::max(1.0, sent),
                    allreduce_compatible(s.compression.kind) ? "allreduced" : "gathered"));
  }
  e.lines.emplace_back(
      "gradient time per worker and step",
      fmt::format(
          "{} ({}{})", format_seconds(gradient_s), with_prefix(speed, "FLOP/s"),
          s.data.load_cost.ns() > 0
              ? fmt::format(", loading {} per sample", format_seconds(s.data.load_cost.seconds()))
              : ""));
}

}  // namespace

std::string format_seconds(double s) {
  if (s >= 1) return fmt::format("{:.4g} s", s);
  if (s >= 1e-3) return fmt::format("{:.4g} ms", s * 1e3);
  if (s >= 1e-6 || s == 0) return fmt::format("{:.4g} us", s * 1e6);
  return fmt::format("{:.4g} ns", s * 1e9);
}

void predict_allreduce(const PredictionBasis& b, StepPrediction& out) {
  const Scenario& s = b.scenario;
  const int p = b.workers;
  const double n = b.params;
  const double alpha = b.alpha;
  const double beta = b.beta;
  const double bytes = b.bytes;
  out.update_s = (b.optimizer_flops + (p > 1 ? n : 0)) / b.flops_per_s;
  if (p == 1) {
    out.communicate_s = 0;
    out.how = "one worker: no communication";
    return;
  }
  const double sums = n / b.flops_per_s;  // one pass over the vector: summing or copying
  const double pp = p;
  switch (s.strategy.collective) {
    case AllreduceAlgo::kRing:
      out.communicate_s =
          2 * (pp - 1) * alpha + 2 * (pp - 1) / pp * bytes * beta + 2 * (pp - 1) / pp * sums;
      out.how = "ring: 2(p-1)a + 2((p-1)/p) n b";
      break;
    case AllreduceAlgo::kTree: {
      const int lg = ceil_log2(p);
      out.communicate_s = 2 * lg * (alpha + bytes * beta) + 2 * lg * sums;
      out.how = "tree: 2 ceil(lg p)(a + n b)";
      break;
    }
    case AllreduceAlgo::kHalvingDoubling: {
      int pof2 = 1;
      while (pof2 * 2 <= p) pof2 *= 2;
      const double q = pof2;
      out.communicate_s =
          2 * ceil_log2(pof2) * alpha + 2 * (q - 1) / q * bytes * beta + 2 * (q - 1) / q * sums;
      if (pof2 != p) out.communicate_s += 2 * (alpha + bytes * beta) + 2 * sums;
      out.how =
          "halving-doubling: 2 lg p a + 2((p-1)/p) n b (+ 2(a + n b) if p is not a power of 2)";
      break;
    }
    case AllreduceAlgo::kHierarchical: {
      const double g = s.network.nodes_per_machine;
      const double machines = pp / g;
      const double a1 = b.topology.path_latency(0, 1).seconds();
      const double b1 =
          s.network.topology == TopologyKind::kHierarchical ? 1 / s.network.intra.bandwidth : beta;
      const double a2 =
          p > static_cast<int>(g) ? b.topology.path_latency(0, static_cast<int>(g)).seconds() : 0;
      out.communicate_s = 2 * ((g - 1) * a1 + (g - 1) / g * bytes * b1) + 2 * (machines - 1) * a2 +
                          2 * (machines - 1) / machines * bytes * beta + 2 * (g - 1) / g * sums +
                          2 * (machines - 1) / machines * sums / g;
      out.how = "hierarchical: 2[(g-1)a1 + ((g-1)/g) n b1] + 2(N-1)a2 + 2((N-1)/N) n b2";
      break;
    }
  }
}

void predict_parameter_server(const PredictionBasis& b, StepPrediction& out) {
  const int p = b.workers;
  const int k = b.servers;
  // The slowest worker-to-server path sets the pace.
  double worst_path = 0;
  for (int w = 0; w < p; ++w) {
    for (int sv = 0; sv < k; ++sv)
      worst_path = std::max(worst_path, b.topology.path_latency(w, p + sv).seconds());
  }
  const double part = b.bytes / k;
  const double worst = std::max(b.bytes, p * part);
  const double server_sum = p * (b.params / k) / b.flops_per_s;
  out.update_s = b.params / b.flops_per_s;  // the worker copies the pulled parameters in
  out.communicate_s = 2 * (worst_path + worst * b.beta) + server_sum +
                      (b.optimizer_flops / k + b.params / k) / b.flops_per_s;
  out.how = fmt::format(
      "parameter server, {} shards: 2(a + max(n, p n / k) b) + the servers' sums and update", k);
}

Explanation explain(const Scenario& s, const DatasetPair& data) {
  Explanation e;
  const Model model(s.model, {data.train.channels, data.train.height, data.train.width},
                    data.train.task, data.train.outputs);
  const int p = s.cluster.workers;
  const int k = server_count(s);
  const int b = s.train.batch_size;
  const double n = static_cast<double>(model.num_params());
  const double speed = s.cluster.compute_flops_per_s;
  const double gradient_flops =
      model.forward_flops(b) + model.backward_flops(b) + (s.train.clip_norm > 0 ? 3 * n : 0);
  const double gradient_s = gradient_flops / speed + b * s.data.load_cost.seconds();
  const double bytes = 4 * n;

  model_lines(s, model, gradient_flops, gradient_s, e);

  const Topology topo(s.network, p + k);
  const PredictionBasis basis{s,
                              model,
                              topo,
                              p,
                              k,
                              n,
                              bytes,
                              speed,
                              gradient_s,
                              optimizer_step_flops(s.train.optimizer.kind, model.num_params()),
                              p > 1 ? topo.path_latency(0, 1).seconds() : 0,
                              1 / s.network.link.bandwidth};
  StepPrediction step;
  strategy_of(s.strategy).predict(basis, step);
  e.lines.emplace_back("alpha (path latency between workers 0 and 1)", format_seconds(basis.alpha));
  e.lines.emplace_back("beta (per byte)", fmt::format("{:.4g} ns/B ({})", basis.beta * 1e9,
                                                      with_prefix(8 / basis.beta, "bps")));
  e.lines.emplace_back("communication per step (no contention)",
                       fmt::format("{}  [{}]", format_seconds(step.communicate_s), step.how));
  if (step.step_s < 0) e.lines.emplace_back("update per step", format_seconds(step.update_s));

  for (const auto& line : step.lines) e.lines.push_back(line);
  if (step.step_s >= 0) {
    e.compute_s = step.compute_s;
    e.communicate_s = step.step_s - step.compute_s;
    e.step_s = step.step_s;
  } else {
    e.compute_s = gradient_s + step.update_s;
    e.communicate_s = step.communicate_s;
    e.step_s = e.compute_s + e.communicate_s;
  }
  const std::uint64_t global_batch =
      static_cast<std::uint64_t>(data_replicas(s)) * static_cast<std::uint64_t>(b);
  e.steps = s.train.steps > 0 ? s.train.steps
                              : static_cast<std::uint64_t>(s.train.epochs) *
                                    ((data.train.samples() + global_batch - 1) / global_batch);
  e.run_s = e.step_s * static_cast<double>(e.steps);
  e.bottleneck = e.communicate_s > e.compute_s ? step.bottleneck_waiting : "computation";
  if (!s.cluster.groups.empty() || s.cluster.stragglers.fraction > 0 ||
      s.cluster.stragglers.jitter > 0) {
    e.lines.emplace_back("note",
                         "nodes differ ([[cluster.group]], stragglers): this prediction is "
                         "for the default node and links; the run measures the real thing");
  }
  if (!step.lock_step) {
    e.lines.emplace_back(
        "note", fmt::format("sync = \"{}\"{} has no lock-step: its time emerges from who "
                            "waits for whom. This prediction is for the same cluster in bsp; "
                            "the run measures the real thing (and the staleness)",
                            to_string(s.strategy.sync),
                            s.strategy.backup_workers > 0 ? " with backup workers" : ""));
  }
  e.lines.emplace_back("predicted step time", format_seconds(e.step_s));
  e.lines.emplace_back("predicted run", fmt::format("{} steps, {} of virtual time", e.steps,
                                                    format_seconds(e.run_s)));
  e.lines.emplace_back(
      "expected bottleneck",
      fmt::format("{} ({:.0f}% of a step)", e.bottleneck,
                  100 * std::max(e.compute_s, e.communicate_s) / (e.step_s > 0 ? e.step_s : 1)));
  return e;
}

}  // namespace dtsim
