// A scenario: everything one run needs, as plain structs with units resolved and defaults
// filled. Loaded and validated once from a TOML file (see docs/scenarios.md for every key).
//
// load_scenario() checks every key it reads: an unknown key (with the nearest valid key
// suggested), a value of the wrong type or out of range, and a section this version does not
// implement yet are errors that name the file, line, column and key path. All errors found
// are reported together in one ScenarioError.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/aggregate.hpp"
#include "engine/compress.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/errors.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/schedule.hpp"
#include "sim/des/sim_time.hpp"
#include "sim/net/network_config.hpp"
#include "sim/scenario/strategy_config.hpp"

namespace dtsim {

struct DataConfig {
  std::string dataset = "fashion-mnist";  // fashion-mnist | blobs | linreg
  std::string path;                       // fashion-mnist directory; default: Debian's path
  std::size_t train_samples = 0;          // 0: all (fashion-mnist) or 4000 (synthetic)
  std::size_t test_samples = 0;           // 0: all (fashion-mnist) or 1000 (synthetic)
  PartitionConfig partition;
  SimTime load_cost;    // per sample, per node
  BlobsConfig blobs;    // dataset = "blobs"
  LinregConfig linreg;  // dataset = "linreg"
};

struct TrainConfig {
  OptimizerConfig optimizer;
  ScheduleConfig schedule;  // schedule.lr is the base learning rate
  int batch_size = 64;      // per worker
  int epochs = 0;           // one of epochs / steps; neither given: 1 epoch
  std::uint64_t steps = 0;
  double clip_norm = 0.0;
  std::uint64_t eval_every = 200;
  std::optional<double> target_accuracy;  // for time_to_target_s; unset: never reached
};

// [[cluster.group]]: overrides for a range of nodes (workers first, then servers).
struct NodeGroup {
  int first = 0;  // inclusive
  int last = 0;   // inclusive
  std::optional<double> compute_flops_per_s;
  std::optional<SimTime> latency;   // of these nodes' links
  std::optional<double> bandwidth;  // of these nodes' links, bytes/s
  SourcePlace place;
};

// [cluster.stragglers]: a seeded share of the workers is slower, and every job varies.
struct StragglerConfig {
  double fraction = 0;  // share of workers that straggle (chosen with the seed)
  double slowdown = 1;  // their compute-time multiplier
  double jitter = 0;    // lognormal sigma multiplying every job's compute time (median 1)
};

struct ClusterConfig {
  int workers = 1;
  int servers = 0;  // parameter-server shards (architecture = "ps")
  double compute_flops_per_s = 5e12;
  std::vector<NodeGroup> groups;
  StragglerConfig stragglers;
};

// [[faults]]: what goes wrong, where and when (docs/faults.md).
//   byzantine  a worker corrupts the gradients it sends (mode, factor)
//   crash      the node stops for good at `at`
//   restart    the node is down from `at` for `duration`, then rejoins
//   slow       jobs the node starts in [at, at + duration) take `factor` times longer
//   link-down  the node's links carry nothing in [at, at + duration): transfers pause
//   loss       each transfer over the node's links in the window is lost with `probability`;
//              the sender sends it again `timeout` after its transfer ended
enum class FaultKind { kByzantine, kCrash, kRestart, kSlow, kLinkDown, kLoss };
enum class ByzantineMode { kSignFlip, kNoise, kScale };
// Which of a node's links a link-down or loss fault hits: what it sends, receives, or both.
enum class FaultLinks { kBoth, kUp, kDown };
struct FaultConfig {
  FaultKind kind = FaultKind::kByzantine;
  int node = 0;
  SimTime at;                       // from this virtual time on
  std::optional<SimTime> duration;  // for this long (default: to the end; restart needs it)
  ByzantineMode mode = ByzantineMode::kSignFlip;
  // byzantine sign-flip: sends -factor * g; scale: factor * g; noise: N(0, factor^2) per
  // element. slow: the compute-time multiplier.
  double factor = 1;
  double probability = 0;                           // loss
  FaultLinks links = FaultLinks::kBoth;             // link-down, loss
  SimTime timeout = SimTime::from_ns(200'000'000);  // loss: the retransmission timeout
  SourcePlace place;
};

// One [expect] check on a summary value: "key = \">= 0.84\"".
struct Expectation {
  enum class Op { kGe, kLe, kGt, kLt, kEq, kRange };
  std::string key;  // a summary key (sim/train/summary.hpp)
  Op op = Op::kEq;
  double a = 0;      // the bound, or the range's low end
  double b = 0;      // the range's high end
  std::string text;  // as written, e.g. ">= 0.84"
  SourcePlace place;
  bool holds(double v) const {
    switch (op) {
      case Op::kGe:
        return v >= a;
      case Op::kLe:
        return v <= a;
      case Op::kGt:
        return v > a;
      case Op::kLt:
        return v < a;
      case Op::kEq:
        return v == a;
      case Op::kRange:
        return v >= a && v <= b;
    }
    return false;
  }
};

// One axis of a [sweep]: a key path and the values it takes, each as a --set override.
struct SweepAxis {
  std::string key;  // e.g. "strategy.collective"
  // Per value, the --set overrides that make it: one (strategy.collective="tree"), or one
  // per key of a table value ({ sync = "bsp", backup_workers = 1 } under "strategy").
  std::vector<std::vector<std::string>> overrides;
  std::vector<std::string> labels;  // e.g. "tree"
  SourcePlace place;
};

// One point of a sweep: the overrides that make it, and a short label
// ("collective=tree,workers=4").
struct SweepPoint {
  std::vector<std::string> overrides;
  std::string label;
};

// [output]: what a run writes besides its always-written files.
struct OutputConfig {
  bool trace = true;  // trace.json (16 to 24 MB for a teaching run)
};

// [teaching]: a demo's place in docs/tutorial.md, for `dtsim demo` and the report's narrative.
struct TeachingConfig {
  int lesson = 0;                    // 0: not a demo
  std::vector<std::string> look_at;  // what to look at in its outputs
  std::vector<std::string> questions;
};

struct Scenario {
  std::string file;  // where it was loaded from
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  ClusterConfig cluster;
  NetworkConfig network;
  StrategyConfig strategy;
  CodecConfig compression;  // [compression]; kind none when absent
  std::vector<FaultConfig> faults;
  std::vector<Expectation> expect;
  OutputConfig output;
  TeachingConfig teaching;
  std::vector<SweepAxis> sweep;  // empty: no [sweep]
};

// Parameter-server shards (extra nodes after the workers): cluster.servers with
// architecture = "ps", else none.
inline int server_count(const Scenario& s) {
  return s.strategy.architecture == Architecture::kParameterServer ? s.cluster.servers : 0;
}

// Data-parallel replicas of the model: the workers, or strategy.data_parallel when the model is
// split (pipeline, tensor); the training set is partitioned among them.
inline int data_replicas(const Scenario& s) {
  return model_parallel(s.strategy) ? s.strategy.data_parallel : s.cluster.workers;
}

// The cartesian product of the sweep's axes, the first axis varying slowest (file order).
std::vector<SweepPoint> expand_sweep(const Scenario& scenario);

// All problems found in one scenario file.
class ScenarioError : public std::runtime_error {
 public:
  explicit ScenarioError(std::vector<InputError> errors);
  const std::vector<InputError>& errors() const { return errors_; }

 private:
  std::vector<InputError> errors_;
};

// Reads and validates `path`, after applying `overrides` ("key.path=value", as given to
// --set: the value is TOML, or else taken as a string, so strategy.sync=asp and
// train.lr=0.1 both work). Throws ScenarioError (bad content) or InputError (unreadable).
// `check_sweep`: also check that every [sweep] value makes a valid scenario (for `dtsim sweep`
// and `dtsim validate`; a sweep's points load without it, so one bad point cannot stop others).
Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides = {},
                       bool check_sweep = false);
// The same from text already in memory; `file` is used in messages.
Scenario parse_scenario(const std::string& text, const std::string& file,
                        const std::vector<std::string>& overrides = {}, bool check_sweep = false);

// The scenario file at `path` with `overrides` applied and its [sweep] left out, as TOML text:
// a sweep point as a file of its own (dtsim sweep --emit slurm). Throws ScenarioError.
std::string scenario_point_text(const std::string& path, const std::vector<std::string>& overrides);

// Where `key` (a dotted path such as "cluster.workers") is written in the scenario file: its
// value's line and column, or its section's when the key is absent, or just the file.
SourcePlace locate_key(const std::string& path, const std::string& key);

// Every resolved setting of `s` as (key path, value) pairs, units written out, for reports and
// `dtsim validate`.
std::vector<std::pair<std::string, std::string>> resolved_settings(const Scenario& s);
// One fault in words: "restart at 3 s for 2 s", "loss p=0.01 on up links from 1 s".
std::string describe_fault(const FaultConfig& f);

inline NameTable<FaultKind> fault_kind_names() {
  static constexpr Named<FaultKind> kNames[] = {
      {"byzantine", FaultKind::kByzantine}, {"crash", FaultKind::kCrash},
      {"restart", FaultKind::kRestart},     {"slow", FaultKind::kSlow},
      {"link-down", FaultKind::kLinkDown},  {"loss", FaultKind::kLoss}};
  return kNames;
}
inline const char* to_string(FaultKind kind) { return name_of(fault_kind_names(), kind); }
inline NameTable<FaultLinks> fault_link_names() {
  static constexpr Named<FaultLinks> kNames[] = {
      {"both", FaultLinks::kBoth}, {"up", FaultLinks::kUp}, {"down", FaultLinks::kDown}};
  return kNames;
}
inline const char* to_string(FaultLinks links) { return name_of(fault_link_names(), links); }

inline NameTable<ByzantineMode> byzantine_mode_names() {
  static constexpr Named<ByzantineMode> kNames[] = {{"sign-flip", ByzantineMode::kSignFlip},
                                                    {"noise", ByzantineMode::kNoise},
                                                    {"scale", ByzantineMode::kScale}};
  return kNames;
}
inline const char* to_string(ByzantineMode mode) { return name_of(byzantine_mode_names(), mode); }

// The datasets a scenario can name (data.dataset).
inline constexpr const char* kDatasetNames[] = {"fashion-mnist", "blobs", "linreg"};

}  // namespace dtsim
