// The resolved settings: every value a run will use, with units written out.
#include <fmt/format.h>

#include "sim/des/units.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/strategies/registry.hpp"

namespace dtsim {
namespace {

using Settings = std::vector<std::pair<std::string, std::string>>;

std::string list(const std::vector<int>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }
// Quantities as people write them: "20 us", "1.5 ms", "5 TFLOP/s", "25 Gbps (3.125 GB/s)",
// in units the scenario format reads back (up to 4 significant digits).
std::string secs(SimTime t) {
  const double s = t.seconds();
  if (s == 0) return "0 s";
  if (s < 1e-6) return fmt::format("{:.4g} ns", s * 1e9);
  if (s < 1e-3) return fmt::format("{:.4g} us", s * 1e6);
  if (s < 1) return fmt::format("{:.4g} ms", s * 1e3);
  return fmt::format("{:.4g} s", s);
}
std::string bandwidth(double bytes_per_s) {
  return fmt::format("{} ({})", with_prefix(bytes_per_s * 8, "bps"),
                     with_prefix(bytes_per_s, "B/s"));
}

void model_and_data(const Scenario& s, Settings& out) {
  const auto add = [&](const char* key, std::string value) { out.emplace_back(key, value); };
  add("seed", fmt::format("{}", s.seed));
  add("model.kind", to_string(s.model.kind));
  if (s.model.kind != ModelKind::kSoftmax) {
    add("model.hidden", list(s.model.hidden));
    add("model.activation", to_string(s.model.activation));
  }
  if (s.model.kind == ModelKind::kCnn) {
    add("model.channels", list(s.model.channels));
    add("model.kernel", fmt::format("{}", s.model.kernel));
  }
  add("data.dataset", s.data.dataset);
  if (s.data.dataset == "fashion-mnist") add("data.path", s.data.path);
  add("data.train_samples",
      s.data.train_samples > 0 ? fmt::format("{}", s.data.train_samples) : "all");
  add("data.test_samples",
      s.data.test_samples > 0 ? fmt::format("{}", s.data.test_samples) : "all");
  add("data.split", to_string(s.data.partition.split));
  if (s.data.partition.split == SplitKind::kDirichlet) {
    add("data.alpha", fmt::format("{}", s.data.partition.alpha));
  }
  add("data.load_cost", secs(s.data.load_cost));
}

void training(const Scenario& s, Settings& out) {
  const auto add = [&](const char* key, std::string value) { out.emplace_back(key, value); };
  add("train.optimizer", to_string(s.train.optimizer.kind));
  add("train.lr", fmt::format("{}", s.train.schedule.lr));
  if (s.train.optimizer.kind == OptimizerKind::kMomentum ||
      s.train.optimizer.kind == OptimizerKind::kNesterov) {
    add("train.momentum", fmt::format("{}", s.train.optimizer.momentum));
  }
  add("train.weight_decay", fmt::format("{}", s.train.optimizer.weight_decay));
  add("train.batch_size", fmt::format("{} per worker", s.train.batch_size));
  if (s.train.steps > 0) {
    add("train.steps", fmt::format("{}", s.train.steps));
  } else {
    add("train.epochs", fmt::format("{}", s.train.epochs));
  }
  add("train.schedule", to_string(s.train.schedule.kind));
  add("train.warmup_steps", fmt::format("{}", s.train.schedule.warmup_steps));
  add("train.clip_norm", s.train.clip_norm > 0 ? fmt::format("{}", s.train.clip_norm) : "off");
  add("train.eval_every", fmt::format("{} steps", s.train.eval_every));
  add("train.target_accuracy",
      s.train.target_accuracy ? fmt::format("{}", *s.train.target_accuracy) : "none");
}

void cluster_and_network(const Scenario& s, Settings& out) {
  const auto add = [&](const char* key, std::string value) { out.emplace_back(key, value); };
  add("cluster.workers", fmt::format("{}", s.cluster.workers));
  if (server_count(s) > 0) add("cluster.servers", fmt::format("{}", s.cluster.servers));
  add("cluster.compute", with_prefix(s.cluster.compute_flops_per_s, "FLOP/s"));
  add("network.topology", to_string(s.network.topology));
  add("network.latency", secs(s.network.link.latency));
  add("network.bandwidth", bandwidth(s.network.link.bandwidth));
  if (s.network.topology == TopologyKind::kHierarchical) {
    add("network.nodes_per_machine", fmt::format("{}", s.network.nodes_per_machine));
    add("network.intra_latency", secs(s.network.intra.latency));
    add("network.intra_bandwidth", bandwidth(s.network.intra.bandwidth));
  }
}

// The keys the strategy reads (its row of the strategy table), in the table's order.
void strategy(const Scenario& s, Settings& out) {
  const StrategyConfig& st = s.strategy;
  const StrategyEntry& entry = strategy_of(st);
  const auto add = [&](std::string_view key, std::string value) {
    out.emplace_back(fmt::format("strategy.{}", key), value);
  };
  add("architecture", to_string(st.architecture));
  add("sync", to_string(st.sync));
  for (std::string_view key : entry.keys) {
    if (key == "collective") add(key, to_string(st.collective));
    if (key == "staleness" && st.staleness) add(key, fmt::format("{}", *st.staleness));
    if (key == "local_steps" && st.local_steps) add(key, fmt::format("{}", *st.local_steps));
    if (key == "backup_workers" && st.backup_workers > 0) {
      add(key, fmt::format("{}", st.backup_workers));
    }
    if (key == "staleness_lr") add(key, st.staleness_lr ? "true" : "false");
    if (key == "delay_compensation") add(key, fmt::format("{}", st.delay_compensation));
    if (key == "consensus_step" && s.compression.kind != CodecKind::kNone) {
      add(key, fmt::format("{}", st.consensus_step));
    }
    if (key == "stages") add(key, fmt::format("{}", st.stages));
    if (key == "micro_batches") add(key, fmt::format("{}", st.micro_batches));
    if (key == "stage_layers") {
      add(key, st.stage_layers.empty() ? std::string("balanced by FLOPs") : list(st.stage_layers));
    }
    if (key == "tensor_parallel") add(key, fmt::format("{}", st.tensor_parallel));
    if (key == "data_parallel") add(key, fmt::format("{}", st.data_parallel));
    if (key == "aggregation" && st.backup_workers == 0) {
      const AggregationKind kind = st.aggregation.kind;
      add(key, to_string(kind));
      if (kind == AggregationKind::kTrimmedMean || kind == AggregationKind::kKrum ||
          kind == AggregationKind::kMultiKrum) {
        add("trim", fmt::format("{}", st.aggregation.f));
      }
      if (kind == AggregationKind::kMultiKrum) {
        add("krum_m", st.aggregation.m > 0 ? fmt::format("{}", st.aggregation.m)
                                           : std::string("workers - trim - 2"));
      }
    }
  }
  add("time_only", st.time_only ? "true" : "false");
}

void compression(const CodecConfig& c, Settings& out) {
  if (c.kind == CodecKind::kNone) return;
  const auto add = [&](const char* key, std::string value) { out.emplace_back(key, value); };
  add("compression.codec", to_string(c.kind));
  if (c.kind == CodecKind::kTopK || c.kind == CodecKind::kRandomK) {
    add("compression.ratio", fmt::format("{}", c.ratio));
  }
  if (c.kind == CodecKind::kQsgd) {
    add("compression.levels", fmt::format("{}", c.levels));
    add("compression.bucket", fmt::format("{}", c.bucket));
  }
  if (c.kind == CodecKind::kPowerSgd) add("compression.rank", fmt::format("{}", c.rank));
  add("compression.error_feedback", uses_error_feedback(c) ? "true" : "false");
  if (c.kind == CodecKind::kTopK) {
    add("compression.momentum_correction", c.momentum_correction ? "true" : "false");
    add("compression.warmup_steps", fmt::format("{}", c.warmup_steps));
  }
  add("compression.encode_flops_per_element", fmt::format("{}", encode_flops_per_element(c)));
  add("compression.decode_flops_per_element", fmt::format("{}", decode_flops_per_element(c)));
}

}  // namespace

std::string describe_fault(const FaultConfig& f) {
  const std::string window = f.duration ? fmt::format(" for {} s", f.duration->seconds()) : "";
  const std::string links =
      f.links == FaultLinks::kBoth ? "" : fmt::format(" ({} link)", to_string(f.links));
  switch (f.kind) {
    case FaultKind::kByzantine:
      return fmt::format("byzantine {} x {} from {} s{}", to_string(f.mode), f.factor,
                         f.at.seconds(), window);
    case FaultKind::kCrash:
      return fmt::format("crash at {} s", f.at.seconds());
    case FaultKind::kRestart:
      return fmt::format("restart: down at {} s{}", f.at.seconds(), window);
    case FaultKind::kSlow:
      return fmt::format("slow x {} from {} s{}", f.factor, f.at.seconds(), window);
    case FaultKind::kLinkDown:
      return fmt::format("link-down{} at {} s{}", links, f.at.seconds(), window);
    case FaultKind::kLoss:
      return fmt::format("loss p = {}{} from {} s{}, retransmitted after {} s", f.probability,
                         links, f.at.seconds(), window, f.timeout.seconds());
  }
  return "";
}

Settings resolved_settings(const Scenario& s) {
  Settings out;
  model_and_data(s, out);
  training(s, out);
  cluster_and_network(s, out);
  strategy(s, out);
  compression(s.compression, out);
  bool crashes = false;
  for (const FaultConfig& f : s.faults) {
    out.emplace_back(fmt::format("faults (node {})", f.node), describe_fault(f));
    crashes = crashes || f.kind == FaultKind::kCrash || f.kind == FaultKind::kRestart;
  }
  if (crashes) out.emplace_back("strategy.failure_timeout", secs(s.strategy.failure_timeout));
  if (s.strategy.checkpoint_every > 0) {
    out.emplace_back("strategy.checkpoint_every",
                     fmt::format("{} updates per shard", s.strategy.checkpoint_every));
  }
  for (const Expectation& e : s.expect) out.emplace_back("expect." + e.key, e.text);
  return out;
}

}  // namespace dtsim
