// Cross-checks: every combination of keys that cannot work, in one place. The sync modes'
// own checks are their rows' (sim/strategies/registry.hpp).
#include "sim/scenario/checks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "engine/data/idx_reader.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/topology.hpp"
#include "sim/scenario/sections.hpp"
#include "sim/strategies/registry.hpp"

namespace dtsim {

void ScenarioChecks::need(bool missing, std::string_view key, std::string_view what) {
  if (!missing) return;
  error(fmt::format("strategy.{}", key),
        fmt::format("missing: sync = \"{}\" needs {}", to_string(scenario().strategy.sync), what),
        {"strategy.sync", "strategy.architecture"});
}

namespace {

class TomlChecks : public ScenarioChecks {
 public:
  TomlChecks(TomlReader& r, const toml::table& root, const Scenario& s)
      : r_(r), root_(root), s_(s) {}
  void error(const std::string& key, const std::string& message,
             std::initializer_list<std::string_view> at) override {
    const toml::node* node = nullptr;
    if (at.size() == 0) node = root_.at_path(key).node();
    for (std::string_view k : at) {
      if (node == nullptr) node = root_.at_path(k).node();
    }
    r_.error(node, key, message);
  }
  void error_at(const SourcePlace& place, const std::string& key,
                const std::string& message) override {
    r_.errors().emplace_back(place, key, message);
  }

 protected:
  const Scenario& scenario() const override { return s_; }

 private:
  TomlReader& r_;
  const toml::table& root_;
  const Scenario& s_;
};

std::string quoted_modes_reading(std::string_view key) {
  std::vector<std::string> names;
  for (const std::string& n : modes_reading(key)) names.push_back(fmt::format("\"{}\"", n));
  return fmt::format("{}", fmt::join(names, " | "));
}

// The row of the scenario's sync mode: its architecture's, or, when that architecture does
// not run it, the first that does (so that its own needs are still reported).
const StrategyEntry& mode_of(const StrategyConfig& st) {
  if (const StrategyEntry* e = find_strategy(st.architecture, st.sync)) return *e;
  for (const StrategyEntry& e : strategy_table()) {
    if (e.sync == st.sync) return e;
  }
  return strategy_table().front();
}

// Which sync modes each architecture runs, and what the scenario's mode needs.
void check_sync_mode(ScenarioChecks& c, const Scenario& s) {
  const StrategyConfig& st = s.strategy;
  if (find_strategy(st.architecture, st.sync) == nullptr) {
    std::vector<std::string> runs;
    std::vector<std::string> homes;
    for (const StrategyEntry& e : strategy_table()) {
      if (e.architecture == st.architecture) runs.emplace_back(e.name);
      if (e.sync == st.sync) homes.emplace_back(to_string(e.architecture));
    }
    c.error("strategy.sync",
            fmt::format("architecture = \"{}\" runs sync = {}; \"{}\" {}",
                        to_string(st.architecture), fmt::join(runs, " | "), to_string(st.sync),
                        homes.size() == 1 ? fmt::format("needs architecture = \"{}\"", homes[0])
                                          : std::string("needs another architecture")),
            {"strategy.sync", "strategy.architecture"});
  }
  const StrategyEntry& mode = mode_of(st);
  if (mode.check != nullptr) mode.check(s, c);
  if (st.backup_workers > 0) {
    if (!mode.reads("backup_workers")) {
      c.error("strategy.backup_workers",
              fmt::format("backup workers go with sync = {}, not \"{}\"; set it to 0",
                          quoted_modes_reading("backup_workers"), to_string(st.sync)));
    } else if (st.backup_workers >= s.cluster.workers) {
      c.error("strategy.backup_workers",
              fmt::format("{} backup workers of {}: at least one gradient must count; use at "
                          "most {}",
                          st.backup_workers, s.cluster.workers, s.cluster.workers - 1));
    }
  }
}

// Compression and aggregation rules meet the contributions of a step.
void check_compression(ScenarioChecks& c, const Scenario& s) {
  const StrategyConfig& st = s.strategy;
  const CodecConfig& codec = s.compression;
  const bool coded = codec.kind != CodecKind::kNone;
  const bool robust = st.aggregation.kind != AggregationKind::kMean;
  const StrategyEntry& mode = mode_of(st);
  if (coded && (!mode.takes_compression || st.backup_workers > 0)) {
    std::vector<std::string> where;
    for (const StrategyEntry& e : strategy_table()) {
      if (e.takes_compression)
        where.push_back(fmt::format("{} {}", to_string(e.architecture), e.name));
    }
    c.error("compression.codec",
            fmt::format("compression works with {} (without backup workers) in this version, "
                        "not {} {}",
                        fmt::join(where, ", "), to_string(st.architecture), to_string(st.sync)));
  }
  // (Over an allreduce, backup workers join with zeros, which a robust rule would count.)
  const bool allreduce_backup =
      st.backup_workers > 0 && st.architecture == Architecture::kAllreduce;
  if (robust && (!mode.reads("aggregation") || allreduce_backup)) {
    c.error("strategy.aggregation",
            fmt::format("an aggregation rule other than mean needs several gradients together: "
                        "sync = {} (over an allreduce: without backup workers), not \"{}\"",
                        quoted_modes_reading("aggregation"), to_string(st.sync)));
  }
  // (The asynchronous servers decode each payload as it arrives: no vote.)
  if (codec.kind == CodecKind::kSign && coded && mode.takes_compression &&
      st.sync != SyncMode::kBsp) {
    c.error("compression.codec",
            fmt::format("codec = \"sign\" is a majority vote over a step's gradients; \"{}\" "
                        "decodes them one at a time: use ef-sign or onebit",
                        to_string(st.sync)));
  }
  if (codec.momentum_correction && s.train.optimizer.kind != OptimizerKind::kSgd) {
    c.error("compression.momentum_correction",
            "DGC's momentum correction replaces the optimizer's momentum: set train.optimizer = "
            "\"sgd\" (the correction's momentum is compression.momentum)");
  }
  if (codec.momentum_correction && codec.kind != CodecKind::kTopK) {
    c.error("compression.momentum_correction",
            "momentum correction is a top-k option (DGC): set codec = \"topk\"");
  }
  if (coded && st.architecture == Architecture::kParameterServer && s.cluster.servers > 4096) {
    c.error("cluster.servers", "compression to a parameter server supports at most 4096 shards");
  }
  if (codec.kind == CodecKind::kPowerSgd && st.architecture != Architecture::kAllreduce) {
    c.error("compression.codec",
            "powersgd rides an allreduce (two rounds per step): use architecture = \"allreduce\"");
  }
  // Gossip sends CHOCO-SGD's compressed differences to the public copies (gossip.cpp).
  if (coded && st.sync == SyncMode::kDPsgd) {
    if (codec.kind == CodecKind::kSign) {
      c.error("compression.codec",
              "codec = \"sign\" is a majority vote over a step's gradients; d-psgd sends its "
              "replica's differences to each neighbour: use ef-sign or onebit");
    }
    if (codec.error_feedback.value_or(false)) {
      c.error("compression.error_feedback",
              "d-psgd compresses CHOCO-SGD's differences to the public copies, which already "
              "keep what compression dropped: leave error_feedback out");
    }
    if (codec.momentum_correction) {
      c.error("compression.momentum_correction",
              "DGC's momentum correction is for gradients; d-psgd compresses its replica's "
              "differences");
    }
  }
  if (codec.kind == CodecKind::kSign && robust) {
    c.error("strategy.aggregation",
            "codec = \"sign\" aggregates by majority vote; leave aggregation at mean");
  }
  if (codec.kind == CodecKind::kPowerSgd && robust) {
    c.error("strategy.aggregation",
            "powersgd sums low-rank factors; it cannot feed a robust aggregation rule");
  }
  // The gradients that meet: every worker's, or with backup workers the first p - b.
  const int together = s.cluster.workers - st.backup_workers;
  if (robust && together < min_contributions(st.aggregation)) {
    c.error("strategy.aggregation",
            st.backup_workers > 0
                ? fmt::format("{} with trim = {} needs at least {} gradients together; with "
                              "backup_workers = {} a step counts {}",
                              to_string(st.aggregation.kind), st.aggregation.f,
                              min_contributions(st.aggregation), st.backup_workers, together)
                : fmt::format("{} with trim = {} needs at least {} workers, the cluster has {}",
                              to_string(st.aggregation.kind), st.aggregation.f,
                              min_contributions(st.aggregation), s.cluster.workers));
  }
  if (st.aggregation.kind == AggregationKind::kMultiKrum && st.aggregation.m > 0 &&
      st.aggregation.m > together - st.aggregation.f - 2) {
    c.error("strategy.krum_m",
            fmt::format("multi-krum averages at most {} - trim - 2 = {} contributions",
                        st.backup_workers > 0 ? "workers - backup_workers" : "workers",
                        together - st.aggregation.f - 2));
  }
}

// Nodes, servers and topologies.
void check_cluster(ScenarioChecks& c, const Scenario& s) {
  const int nodes = s.cluster.workers + server_count(s);
  for (const NodeGroup& g : s.cluster.groups) {
    if (g.last >= nodes) {
      c.error_at(g.place, "cluster.group.nodes",
                 fmt::format("nodes {}-{} do not exist: the cluster has nodes 0-{}", g.first,
                             g.last, nodes - 1));
    }
  }
  if (s.strategy.architecture == Architecture::kParameterServer && s.cluster.servers < 1) {
    c.error("cluster.servers",
            "architecture = \"ps\" needs at least one server shard (cluster.servers >= 1)",
            {"cluster.servers", "strategy.architecture"});
  }
  if (s.strategy.architecture != Architecture::kParameterServer && s.cluster.servers > 0) {
    c.error("cluster.servers", "server shards are used only with strategy.architecture = \"ps\"");
  }
  if (s.strategy.architecture != Architecture::kParameterServer &&
      s.strategy.checkpoint_every > 0) {
    c.error("strategy.checkpoint_every",
            "checkpoints are the parameter-server shards' (architecture = \"ps\"): the other "
            "strategies keep every worker's replica, and a restarted worker rejoins from them");
  }
}

void check_network(ScenarioChecks& c, const Scenario& s) {
  if (s.strategy.architecture == Architecture::kAllreduce) {
    const std::string problem =
        allreduce_problem(s.strategy.collective, s.cluster.workers, s.network.nodes_per_machine,
                          "workers", "network.nodes_per_machine =");
    if (!problem.empty()) c.error("strategy.collective", problem);
  }
  // (A bandwidth of zero is the section reader's error, placed at its value.)
  const auto problem = network_problem(s.network, s.cluster.workers + server_count(s));
  if (problem && problem->key != "network.bandwidth" && problem->key != "network.intra_bandwidth") {
    c.error(problem->key, problem->message);
  }
}

void check_data(ScenarioChecks& c, const Scenario& s, bool alpha_given) {
  const PartitionKind partition = s.data.partition.kind;
  if (partition != PartitionKind::kRows && s.strategy.architecture != Architecture::kTensor &&
      s.cluster.workers > 1) {
    c.error("data.partition",
            "data-parallel strategies split samples: use partition = \"rows\" (columns and "
            "blocks split the features: architecture = \"tensor\")");
  }
  if (s.data.partition.split != SplitKind::kDirichlet && alpha_given) {
    c.error("data.alpha",
            "alpha is the concentration of split = \"dirichlet\"; remove it or set that split");
  }
  if (s.strategy.time_only && s.train.target_accuracy) {
    c.error("train.target_accuracy",
            "a time-only run computes no accuracy; remove this key or strategy.time_only");
  }
  if (s.data.dataset != "fashion-mnist" &&
      s.data.train_samples + s.data.test_samples > 10'000'000) {
    c.error("data.train_samples",
            "synthetic datasets are limited to 10,000,000 samples in all (train + test)");
  }
  if (s.data.dataset == "linreg" && s.train.target_accuracy) {
    c.error("train.target_accuracy",
            "linreg is a regression task and has no accuracy; remove this key");
  }
  if (s.model.kind == ModelKind::kCnn && s.data.dataset != "fashion-mnist") {
    c.error("model.kind",
            fmt::format("a cnn needs image data (fashion-mnist); {} samples are plain vectors",
                        s.data.dataset));
  }
}

// Nodes of a split model: cluster.workers is stages (or shards) x data_parallel.
void check_model_parallel(ScenarioChecks& c, const Scenario& s) {
  const StrategyConfig& st = s.strategy;
  if (!model_parallel(st)) return;
  const int nodes = replica_nodes(st) * st.data_parallel;
  if (s.cluster.workers != nodes) {
    c.error("cluster.workers",
            fmt::format("architecture = \"{}\" runs {} x {} (data_parallel) = {} nodes, but "
                        "cluster.workers = {}: set it to {} or leave it out",
                        to_string(st.architecture), replica_nodes(st), st.data_parallel, nodes,
                        s.cluster.workers, nodes));
  }
  if (s.train.clip_norm > 0) {
    c.error("train.clip_norm",
            "gradient clipping needs the whole gradient's norm, which a split model does not "
            "compute in this version: remove train.clip_norm");
  }
  for (const FaultConfig& f : s.faults) {
    if (f.kind != FaultKind::kByzantine) continue;
    c.error_at(f.place, "faults",
               "Byzantine faults corrupt a data-parallel worker's gradient: a split model has "
               "none to corrupt in this version");
    break;
  }
}

// The strategies a worker may crash or restart under, for messages: "ps asp, ...".
std::string crash_survivors() {
  std::vector<std::string> names;
  for (const StrategyEntry& e : strategy_table()) {
    if (e.survives_crash) names.push_back(fmt::format("{} {}", to_string(e.architecture), e.name));
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

void check_crash(ScenarioChecks& c, const Scenario& s, const FaultConfig& f) {
  const StrategyConfig& st = s.strategy;
  const StrategyEntry* entry = find_strategy(st.architecture, st.sync);
  if (entry != nullptr && !entry->survives_crash) {
    c.error_at(f.place, "faults.kind",
               fmt::format("kind = \"{}\": {} {} cannot go on without a worker in this "
                           "version; these can: {}",
                           to_string(f.kind), to_string(st.architecture), to_string(st.sync),
                           crash_survivors()));
    return;
  }
  if (f.kind == FaultKind::kRestart && st.architecture == Architecture::kGossip) {
    c.error_at(f.place, "faults.kind",
               "kind = \"restart\": d-psgd goes on without a crashed worker, but a restarted "
               "one cannot rejoin its neighbours in this version; use kind = \"crash\"");
    return;
  }
  if (st.backup_workers > 0) {
    c.error_at(f.place, "faults.kind",
               fmt::format("kind = \"{}\" with strategy.backup_workers: backup workers already "
                           "leave the slowest out; use one or the other",
                           to_string(f.kind)));
  }
  if (st.sync == SyncMode::kBsp &&
      (s.compression.kind != CodecKind::kNone || st.aggregation.kind != AggregationKind::kMean)) {
    c.error_at(f.place, "faults.kind",
               fmt::format("kind = \"{}\" in bsp with [compression] or a robust aggregation: "
                           "their exchange cannot re-form without a worker in this version "
                           "(asp and ssp servers take compressed gradients and go on)",
                           to_string(f.kind)));
  }
}

// A crash or restart on a parameter-server shard: it resumes from its last checkpoint.
void check_shard_crash(ScenarioChecks& c, const Scenario& s, const FaultConfig& f) {
  const StrategyConfig& st = s.strategy;
  if (st.checkpoint_every == 0) {
    c.error_at(f.place, "faults.node",
               fmt::format("node {} is a parameter-server shard: a shard that {}s loses the "
                           "part of the model it holds unless it has a checkpoint to resume "
                           "from; set strategy.checkpoint_every (updates between checkpoints)",
                           f.node, to_string(f.kind)));
    return;
  }
  if (st.sync == SyncMode::kBsp && st.backup_workers == 0 &&
      (s.compression.kind != CodecKind::kNone || st.aggregation.kind != AggregationKind::kMean)) {
    c.error_at(f.place, "faults.kind",
               fmt::format("kind = \"{}\" on a shard in bsp with [compression] or a robust "
                           "aggregation: that exchange cannot wait for a shard in this version",
                           to_string(f.kind)));
  }
}

void check_faults(ScenarioChecks& c, const Scenario& s) {
  const int nodes = s.cluster.workers + server_count(s);
  std::vector<int> stopped;  // nodes that crash or restart
  int crashed = 0;
  for (const FaultConfig& f : s.faults) {
    if (f.kind == FaultKind::kByzantine && f.node >= s.cluster.workers) {
      c.error_at(f.place, "faults.node",
                 fmt::format("node {} is not a worker: the workers are 0-{}", f.node,
                             s.cluster.workers - 1));
      continue;
    }
    if (f.node >= nodes) {
      c.error_at(f.place, "faults.node",
                 fmt::format("node {} does not exist: the nodes are 0-{}", f.node, nodes - 1));
      continue;
    }
    if (f.kind != FaultKind::kCrash && f.kind != FaultKind::kRestart) continue;
    if (f.node >= s.cluster.workers) {
      check_shard_crash(c, s, f);
    } else {
      check_crash(c, s, f);
    }
    if (std::find(stopped.begin(), stopped.end(), f.node) != stopped.end()) {
      c.error_at(f.place, "faults.node",
                 fmt::format("node {} already crashes or restarts in an earlier [[faults]] "
                             "entry: one of them per node",
                             f.node));
    }
    stopped.push_back(f.node);
    if (f.kind == FaultKind::kCrash && f.node < s.cluster.workers &&
        ++crashed == s.cluster.workers) {
      c.error_at(f.place, "faults",
                 "every worker crashes: at least one must survive for the run to end");
    }
  }
}

}  // namespace

void check_scenario(TomlReader& r, const toml::table& root, Scenario& s) {
  // A split model's node count follows from its split unless it is given.
  if (model_parallel(s.strategy) && root["cluster"]["workers"].node() == nullptr) {
    s.cluster.workers = replica_nodes(s.strategy) * s.strategy.data_parallel;
  }
  TomlChecks c(r, root, s);
  check_cluster(c, s);
  check_model_parallel(c, s);
  check_sync_mode(c, s);
  check_compression(c, s);
  check_faults(c, s);
  check_network(c, s);
  check_data(c, s, root["data"]["alpha"].node() != nullptr);
  if (s.data.path.empty()) s.data.path = kFashionMnistDefaultPath;
  if (s.train.epochs == 0 && s.train.steps == 0) s.train.epochs = 1;
}

}  // namespace dtsim
