#include "sim/scenario/scenario.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/data/idx_reader.hpp"
#include "sim/train/summary.hpp"
#include "sim/des/units.hpp"

namespace dtsim {
namespace {

std::string join_errors(const std::vector<InputError>& errors) {
  std::string text;
  for (const auto& e : errors) {
    if (!text.empty()) text += '\n';
    text += e.what();
  }
  return text;
}

std::string toml_quote(const std::string& text) {
  std::string quoted = "\"";
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      quoted += '\\';
      quoted += ch;
    } else if (u < 0x20 || u == 0x7f) {
      quoted += fmt::format("\\u{:04X}", u);  // control characters, escaped as TOML wants
    } else {
      quoted += ch;
    }
  }
  return quoted + "\"";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Reads typed values out of a toml table, recording every problem instead of stopping at
// the first.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  std::vector<InputError>& errors() { return errors_; }

  SourcePlace place(const toml::node* node) const {
    if (node == nullptr) return {file_, 0, 0};
    const auto& src = node->source();
    // A value given with --set is placed on the command line, not in the file.
    if (src.path && *src.path != file_) return {*src.path, 0, 0};
    return {file_, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column)};
  }

  void error(const toml::node* node, std::string key, std::string message) {
    errors_.emplace_back(place(node), std::move(key), std::move(message));
  }

  void error_at_key(const toml::key& where, std::string key, std::string message,
                    const toml::node* value = nullptr) {
    if (!where.source().path || *where.source().path != file_) {
      // A key given with --set has no place in the file: its value knows which --set it was.
      errors_.emplace_back(value != nullptr ? place(value) : SourcePlace{"--set", 0, 0},
                           std::move(key), std::move(message));
      return;
    }
    const auto& begin = where.source().begin;
    errors_.emplace_back(
        SourcePlace{file_, static_cast<int>(begin.line), static_cast<int>(begin.column)},
        std::move(key), std::move(message));
  }

  // Errors in file order (tables iterate in key order, not in the order they were written).
  std::vector<InputError> sorted_errors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const InputError& a, const InputError& b) {
      return std::pair(a.place().line, a.place().column) <
             std::pair(b.place().line, b.place().column);
    });
    return std::move(errors_);
  }

  void check_keys(const toml::table& table, const std::string& prefix,
                  std::initializer_list<std::string_view> allowed) {
    for (auto&& [key, value] : table) {
      const std::string_view k = key.str();
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      const std::string path = prefix.empty() ? std::string(k) : prefix + "." + std::string(k);
      std::string_view best;
      std::size_t best_distance = 3;
      for (std::string_view candidate : allowed) {
        const std::size_t d = edit_distance(k, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = candidate;
        }
      }
      std::string message = "unknown key";
      if (!best.empty()) message += fmt::format(" (did you mean '{}'?)", best);
      message += fmt::format("; expected one of: {}", fmt::join(allowed, ", "));
      error_at_key(key, path, message, &value);
    }
  }

  const toml::table* table(const toml::table& parent, const std::string& prefix,
                           std::string_view key) {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (const auto* t = node->as_table()) return t;
    error(node, join(prefix, key),
          fmt::format("expected a table [{}], found {}", key, type_of(*node)));
    return nullptr;
  }

  void get_string(const toml::table& t, const std::string& prefix, std::string_view key,
                  std::string& out) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    if (const auto* v = node->as_string()) {
      out = v->get();
    } else {
      error(node, join(prefix, key), fmt::format("expected a string, found {}", type_of(*node)));
    }
  }

  template <typename Enum>
  void get_choice(const toml::table& t, const std::string& prefix, std::string_view key,
                  std::initializer_list<std::pair<std::string_view, Enum>> choices, Enum& out) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    std::string names;
    for (const auto& c : choices) names += (names.empty() ? "" : " | ") + std::string(c.first);
    const auto* v = node->as_string();
    if (v == nullptr) {
      error(node, join(prefix, key),
            fmt::format("expected one of the strings {}, found {}", names, type_of(*node)));
      return;
    }
    for (const auto& c : choices) {
      if (v->get() == c.first) {
        out = c.second;
        return;
      }
    }
    error(node, join(prefix, key), fmt::format("expected {}, found \"{}\"", names, v->get()));
  }

  template <typename Int>
  void get_int(const toml::table& t, const std::string& prefix, std::string_view key, Int& out,
               std::int64_t min, std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    const auto* v = node->as_integer();
    if (v == nullptr) {
      error(node, join(prefix, key), fmt::format("expected an integer, found {}", type_of(*node)));
      return;
    }
    if (v->get() < min || v->get() > max) {
      error(node, join(prefix, key), range_message(v->get(), min, max));
      return;
    }
    out = static_cast<Int>(v->get());
  }

  void get_double(const toml::table& t, const std::string& prefix, std::string_view key,
                  double& out, double min, double max = std::numeric_limits<double>::infinity()) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    double value = 0;
    if (const auto* f = node->as_floating_point()) {
      value = f->get();
    } else if (const auto* i = node->as_integer()) {
      value = static_cast<double>(i->get());
    } else {
      error(node, join(prefix, key), fmt::format("expected a number, found {}", type_of(*node)));
      return;
    }
    if (!std::isfinite(value)) {
      error(node, join(prefix, key), fmt::format("expected a finite number, found {}", value));
      return;
    }
    if (!(value >= min && value <= max)) {
      error(node, join(prefix, key), range_message(value, min, max));
      return;
    }
    out = value;
  }

  void get_int_list(const toml::table& t, const std::string& prefix, std::string_view key,
                    std::vector<int>& out, bool allow_empty) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    const auto* arr = node->as_array();
    if (arr == nullptr) {
      error(node, join(prefix, key),
            fmt::format("expected a list of positive integers such as [256, 128], found {}",
                        type_of(*node)));
      return;
    }
    std::vector<int> values;
    for (const auto& item : *arr) {
      const auto* v = item.as_integer();
      if (v == nullptr || v->get() < 1 || v->get() > 1'000'000) {
        error(&item, join(prefix, key),
              "expected a list of positive integers (at most 1000000) such as [256, 128]");
        return;
      }
      values.push_back(static_cast<int>(v->get()));
    }
    if (values.empty() && !allow_empty) {
      error(node, join(prefix, key), "expected at least one value");
      return;
    }
    out = std::move(values);
  }

  template <typename Value, typename Parse>
  void get_unit(const toml::table& t, const std::string& prefix, std::string_view key, Value& out,
                Parse parse) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    const auto* v = node->as_string();
    if (v == nullptr) {
      try {
        parse("");
      } catch (const UnitError& e) {
        std::string units = e.what();
        units = units.substr(units.find("one of:") + 8);
        units.pop_back();
        error(node, join(prefix, key),
              fmt::format("expected a string with a unit (one of: {}), found {}", units,
                          type_of(*node)));
      }
      return;
    }
    try {
      out = parse(v->get());
    } catch (const UnitError& e) {
      error(node, join(prefix, key), e.what());
    }
  }

  static std::string join(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }

 private:
  static std::string type_of(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a number";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "a list";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date or time";
    }
  }

  template <typename T>
  static std::string range_message(T value, T min, T max) {
    if (max == std::numeric_limits<T>::max() || max == std::numeric_limits<T>::infinity()) {
      return fmt::format("expected a value >= {}, found {}", min, value);
    }
    return fmt::format("expected a value in [{}, {}], found {}", min, max, value);
  }

  std::string file_;
  std::vector<InputError> errors_;
};

void read_model(Reader& r, const toml::table& t, ModelConfig& m) {
  r.check_keys(t, "model", {"kind", "hidden", "activation", "channels", "kernel"});
  r.get_choice<ModelKind>(
      t, "model", "kind",
      {{"mlp", ModelKind::kMlp}, {"cnn", ModelKind::kCnn}, {"softmax", ModelKind::kSoftmax}},
      m.kind);
  r.get_int_list(t, "model", "hidden", m.hidden, true);
  r.get_choice<Activation>(t, "model", "activation",
                           {{"relu", Activation::kRelu}, {"tanh", Activation::kTanh}},
                           m.activation);
  r.get_int_list(t, "model", "channels", m.channels, false);
  r.get_int(t, "model", "kernel", m.kernel, 1, 15);
  if (const auto* k = t.get("kernel"); k != nullptr && m.kernel % 2 == 0) {
    r.error(k, "model.kernel", fmt::format("expected an odd kernel size, found {}", m.kernel));
  }
}

void read_data(Reader& r, const toml::table& t, DataConfig& d) {
  r.check_keys(t, "data",
               {"dataset", "path", "train_samples", "test_samples", "partition", "split", "alpha",
                "load_cost", "features", "classes", "spread", "separation", "outputs", "noise"});
  r.get_string(t, "data", "dataset", d.dataset);
  if (d.dataset != "fashion-mnist" && d.dataset != "blobs" && d.dataset != "linreg") {
    r.error(t.get("dataset"), "data.dataset",
            fmt::format("expected fashion-mnist | blobs | linreg, found \"{}\"", d.dataset));
  }
  r.get_string(t, "data", "path", d.path);
  r.get_int(t, "data", "train_samples", d.train_samples, 1);
  r.get_int(t, "data", "test_samples", d.test_samples, 1);
  r.get_choice<PartitionKind>(t, "data", "partition",
                              {{"rows", PartitionKind::kRows},
                               {"columns", PartitionKind::kColumns},
                               {"blocks", PartitionKind::kBlocks}},
                              d.partition.kind);
  r.get_choice<SplitKind>(t, "data", "split",
                          {{"iid", SplitKind::kIid},
                           {"dirichlet", SplitKind::kDirichlet},
                           {"by-label", SplitKind::kByLabel}},
                          d.partition.split);
  r.get_double(t, "data", "alpha", d.partition.alpha, 1e-6);
  r.get_unit(t, "data", "load_cost", d.load_cost, parse_duration);
  const bool synthetic = d.dataset != "fashion-mnist";
  for (const char* key : {"features", "classes", "spread", "separation", "outputs", "noise"}) {
    if (!synthetic && t.get(key) != nullptr) {
      r.error(t.get(key), fmt::format("data.{}", key),
              "only synthetic datasets (blobs, linreg) take this key");
    }
  }
  if (d.dataset == "blobs") {
    for (const char* key : {"outputs", "noise"}) {
      if (t.get(key) != nullptr) r.error(t.get(key), fmt::format("data.{}", key), "linreg only");
    }
    r.get_int(t, "data", "features", d.blobs.features, 1, 100000);
    r.get_int(t, "data", "classes", d.blobs.classes, 2, 10000);
    r.get_double(t, "data", "spread", d.blobs.spread, 0.0);
    r.get_double(t, "data", "separation", d.blobs.separation, 0.0);
  } else if (d.dataset == "linreg") {
    for (const char* key : {"classes", "spread", "separation"}) {
      if (t.get(key) != nullptr) r.error(t.get(key), fmt::format("data.{}", key), "blobs only");
    }
    r.get_int(t, "data", "features", d.linreg.features, 1, 100000);
    r.get_int(t, "data", "outputs", d.linreg.outputs, 1, 10000);
    r.get_double(t, "data", "noise", d.linreg.noise, 0.0);
  }
}

void read_train(Reader& r, const toml::table& t, TrainConfig& c) {
  r.check_keys(t, "train",
               {"optimizer", "lr", "momentum", "weight_decay", "beta1", "beta2", "epsilon",
                "batch_size", "epochs", "steps", "schedule", "warmup_steps", "decay_every",
                "decay_factor", "final_lr_fraction", "clip_norm", "eval_every", "target_accuracy"});
  r.get_choice<OptimizerKind>(t, "train", "optimizer",
                              {{"sgd", OptimizerKind::kSgd},
                               {"momentum", OptimizerKind::kMomentum},
                               {"nesterov", OptimizerKind::kNesterov},
                               {"adam", OptimizerKind::kAdam}},
                              c.optimizer.kind);
  r.get_double(t, "train", "lr", c.schedule.lr, 0.0);
  r.get_double(t, "train", "momentum", c.optimizer.momentum, 0.0, 1.0);
  r.get_double(t, "train", "weight_decay", c.optimizer.weight_decay, 0.0);
  r.get_double(t, "train", "beta1", c.optimizer.beta1, 0.0, 0.999999);
  r.get_double(t, "train", "beta2", c.optimizer.beta2, 0.0, 0.999999999);
  r.get_double(t, "train", "epsilon", c.optimizer.epsilon, 0.0);
  r.get_int(t, "train", "batch_size", c.batch_size, 1, 1 << 20);
  r.get_int(t, "train", "epochs", c.epochs, 1, 1'000'000);
  r.get_int(t, "train", "steps", c.steps, 1);
  if (t.get("epochs") != nullptr && t.get("steps") != nullptr) {
    r.error(t.get("steps"), "train.steps", "give either train.epochs or train.steps, not both");
  }
  r.get_choice<ScheduleKind>(t, "train", "schedule",
                             {{"constant", ScheduleKind::kConstant},
                              {"step", ScheduleKind::kStep},
                              {"cosine", ScheduleKind::kCosine}},
                             c.schedule.kind);
  r.get_int(t, "train", "warmup_steps", c.schedule.warmup_steps, 0);
  r.get_int(t, "train", "decay_every", c.schedule.decay_every, 1);
  r.get_double(t, "train", "decay_factor", c.schedule.decay_factor, 0.0, 1.0);
  r.get_double(t, "train", "final_lr_fraction", c.schedule.final_lr_fraction, 0.0, 1.0);
  r.get_double(t, "train", "clip_norm", c.clip_norm, 0.0);
  r.get_int(t, "train", "eval_every", c.eval_every, 1);
  if (t.get("target_accuracy") != nullptr) {
    double target = 0;
    r.get_double(t, "train", "target_accuracy", target, 0.0, 1.0);
    c.target_accuracy = target;
  }
}

void read_cluster(Reader& r, const toml::table& t, ClusterConfig& c) {
  r.check_keys(t, "cluster", {"workers", "compute", "servers", "group", "stragglers"});
  r.get_int(t, "cluster", "workers", c.workers, 1, 1 << 20);
  r.get_int(t, "cluster", "servers", c.servers, 0, 1 << 20);
  r.get_unit(t, "cluster", "compute", c.compute_flops_per_s, parse_flops);
  if (const toml::node* groups = t.get("group")) {
    const toml::array* arr = groups->as_array();
    if (arr == nullptr) {
      r.error(groups, "cluster.group", "expected [[cluster.group]] tables");
    } else {
      for (const toml::node& item : *arr) {
        const toml::table* g = item.as_table();
        if (g == nullptr) {
          r.error(&item, "cluster.group", "expected [[cluster.group]] tables");
          continue;
        }
        r.check_keys(*g, "cluster.group", {"nodes", "compute", "latency", "bandwidth"});
        NodeGroup group;
        group.place = r.place(&item);
        const toml::node* nodes = g->get("nodes");
        std::string range;
        if (nodes == nullptr) {
          r.error(&item, "cluster.group.nodes",
                  "missing: which nodes, e.g. nodes = \"6-7\" or nodes = 3");
          continue;
        }
        if (const auto* i = nodes->as_integer()) {
          group.first = group.last = static_cast<int>(i->get());
        } else if (const auto* str = nodes->as_string()) {
          range = str->get();
          const auto dash = range.find('-');
          try {
            std::size_t used = 0;
            group.first = std::stoi(range.substr(0, dash), &used);
            if (used != (dash == std::string::npos ? range.size() : dash))
              throw std::invalid_argument("");
            group.last = group.first;
            if (dash != std::string::npos) {
              group.last = std::stoi(range.substr(dash + 1), &used);
              if (used != range.size() - dash - 1) throw std::invalid_argument("");
            }
          } catch (const std::exception&) {
            r.error(nodes, "cluster.group.nodes",
                    fmt::format("expected a node or a range such as \"6-7\", found \"{}\"", range));
            continue;
          }
        } else {
          r.error(nodes, "cluster.group.nodes",
                  "expected a node number or a range such as \"6-7\"");
          continue;
        }
        if (group.first < 0 || group.last < group.first) {
          r.error(nodes, "cluster.group.nodes", "expected first <= last, both >= 0");
          continue;
        }
        if (g->get("compute") != nullptr) {
          double v = 0;
          r.get_unit(*g, "cluster.group", "compute", v, parse_flops);
          group.compute_flops_per_s = v;
        }
        if (g->get("latency") != nullptr) {
          SimTime v;
          r.get_unit(*g, "cluster.group", "latency", v, parse_duration);
          group.latency = v;
        }
        if (g->get("bandwidth") != nullptr) {
          double v = 0;
          r.get_unit(*g, "cluster.group", "bandwidth", v, parse_bandwidth);
          group.bandwidth = v;
        }
        c.groups.push_back(group);
      }
    }
  }
  if (const toml::table* st = r.table(t, "cluster", "stragglers")) {
    r.check_keys(*st, "cluster.stragglers", {"fraction", "slowdown", "jitter"});
    r.get_double(*st, "cluster.stragglers", "fraction", c.stragglers.fraction, 0.0, 1.0);
    r.get_double(*st, "cluster.stragglers", "slowdown", c.stragglers.slowdown, 1.0, 1e6);
    r.get_double(*st, "cluster.stragglers", "jitter", c.stragglers.jitter, 0.0, 5.0);
  }
}

void read_network(Reader& r, const toml::table& t, NetworkConfig& n) {
  r.check_keys(t, "network",
               {"topology", "latency", "bandwidth", "nodes_per_machine", "intra_latency",
                "intra_bandwidth"});
  r.get_choice<TopologyKind>(t, "network", "topology",
                             {{"star", TopologyKind::kStar},
                              {"ring", TopologyKind::kRing},
                              {"full", TopologyKind::kFull},
                              {"hierarchical", TopologyKind::kHierarchical}},
                             n.topology);
  r.get_unit(t, "network", "latency", n.link.latency, parse_duration);
  r.get_unit(t, "network", "bandwidth", n.link.bandwidth, parse_bandwidth);
  r.get_int(t, "network", "nodes_per_machine", n.nodes_per_machine, 1, 1'000'000);
  r.get_unit(t, "network", "intra_latency", n.intra.latency, parse_duration);
  r.get_unit(t, "network", "intra_bandwidth", n.intra.bandwidth, parse_bandwidth);
  for (const char* key : {"bandwidth", "intra_bandwidth"}) {
    const double value =
        std::string_view(key) == "bandwidth" ? n.link.bandwidth : n.intra.bandwidth;
    if (const auto* node = t.get(key); node != nullptr && !(value > 0)) {
      r.error(node, fmt::format("network.{}", key), "expected a bandwidth above zero");
    }
  }
}

void read_strategy(Reader& r, const toml::table& t, StrategyConfig& s) {
  r.check_keys(t, "strategy",
               {"architecture", "sync", "collective", "time_only", "staleness", "local_steps",
                "backup_workers", "staleness_lr", "delay_compensation", "aggregation", "trim",
                "krum_m", "stages", "micro_batches"});
  r.get_choice<AggregationKind>(t, "strategy", "aggregation",
                                {{"mean", AggregationKind::kMean},
                                 {"weighted-mean", AggregationKind::kWeightedMean},
                                 {"max", AggregationKind::kMax},
                                 {"median", AggregationKind::kMedian},
                                 {"trimmed-mean", AggregationKind::kTrimmedMean},
                                 {"krum", AggregationKind::kKrum},
                                 {"multi-krum", AggregationKind::kMultiKrum}},
                                s.aggregation.kind);
  r.get_int(t, "strategy", "trim", s.aggregation.f, 0, 1'000'000);
  r.get_int(t, "strategy", "krum_m", s.aggregation.m, 1, 1'000'000);
  for (const char* key : {"stages", "micro_batches"}) {
    if (const auto* node = t.get(key)) {
      r.error(node, fmt::format("strategy.{}", key),
              "not implemented yet in this version of dtsim");
    }
  }
  if (const auto* node = t.get("architecture")) {
    const auto* v = node->as_string();
    if (v != nullptr && v->get() == "pipeline") {
      r.error(node, "strategy.architecture",
              "\"pipeline\" is not implemented yet; this version has allreduce | ps | gossip");
    } else {
      r.get_choice<Architecture>(t, "strategy", "architecture",
                                 {{"allreduce", Architecture::kAllreduce},
                                  {"ps", Architecture::kParameterServer},
                                  {"gossip", Architecture::kGossip}},
                                 s.architecture);
    }
  }
  if (const auto* node = t.get("sync")) {
    const auto* v = node->as_string();
    if (v != nullptr && (v->get() == "gpipe" || v->get() == "1f1b")) {
      r.error(node, "strategy.sync",
              fmt::format("\"{}\" (pipeline parallelism) is not implemented yet", v->get()));
    } else {
      r.get_choice<SyncMode>(t, "strategy", "sync",
                             {{"bsp", SyncMode::kBsp},
                              {"asp", SyncMode::kAsp},
                              {"ssp", SyncMode::kSsp},
                              {"delayed", SyncMode::kDelayed},
                              {"local-sgd", SyncMode::kLocalSgd},
                              {"d-psgd", SyncMode::kDPsgd},
                              {"ad-psgd", SyncMode::kAdPsgd}},
                             s.sync);
    }
  }
  int staleness = -1;
  r.get_int(t, "strategy", "staleness", staleness, 0, 1'000'000);
  if (staleness >= 0) s.staleness = staleness;
  int local_steps = 0;
  r.get_int(t, "strategy", "local_steps", local_steps, 1, 1'000'000);
  if (local_steps > 0) s.local_steps = local_steps;
  r.get_int(t, "strategy", "backup_workers", s.backup_workers, 0, 1'000'000);
  r.get_double(t, "strategy", "delay_compensation", s.delay_compensation, 0.0, 1e6);
  if (const auto* node = t.get("staleness_lr")) {
    if (const auto* b = node->as_boolean()) {
      s.staleness_lr = b->get();
    } else {
      r.error(node, "strategy.staleness_lr", "expected true or false");
    }
  }
  r.get_choice<AllreduceAlgo>(t, "strategy", "collective",
                              {{"ring", AllreduceAlgo::kRing},
                               {"tree", AllreduceAlgo::kTree},
                               {"halving-doubling", AllreduceAlgo::kHalvingDoubling},
                               {"hierarchical", AllreduceAlgo::kHierarchical}},
                              s.collective);
  if (const auto* node = t.get("time_only")) {
    if (const auto* b = node->as_boolean()) {
      s.time_only = b->get();
    } else {
      r.error(node, "strategy.time_only", "expected true or false");
    }
  }
}

void read_bool(Reader& r, const toml::table& t, const char* prefix, const char* key, bool& out) {
  if (const auto* node = t.get(key)) {
    if (const auto* b = node->as_boolean()) {
      out = b->get();
    } else {
      r.error(node, fmt::format("{}.{}", prefix, key), "expected true or false");
    }
  }
}

void read_compression(Reader& r, const toml::table& t, CodecConfig& c) {
  r.check_keys(
      t, "compression",
      {"codec", "ratio", "levels", "bucket", "rank", "error_feedback", "momentum_correction",
       "momentum", "warmup_steps", "encode_flops_per_element", "decode_flops_per_element"});
  r.get_choice<CodecKind>(t, "compression", "codec",
                          {{"none", CodecKind::kNone},
                           {"fp16", CodecKind::kFp16},
                           {"bf16", CodecKind::kBf16},
                           {"int8", CodecKind::kInt8},
                           {"qsgd", CodecKind::kQsgd},
                           {"terngrad", CodecKind::kTernGrad},
                           {"onebit", CodecKind::kOneBit},
                           {"sign", CodecKind::kSign},
                           {"ef-sign", CodecKind::kEfSign},
                           {"topk", CodecKind::kTopK},
                           {"randomk", CodecKind::kRandomK},
                           {"powersgd", CodecKind::kPowerSgd}},
                          c.kind);
  r.get_double(t, "compression", "ratio", c.ratio, 1e-9, 1.0);
  r.get_int(t, "compression", "levels", c.levels, 1, 32767);
  r.get_int(t, "compression", "bucket", c.bucket, 1, 1 << 30);
  r.get_int(t, "compression", "rank", c.rank, 1, 1024);
  if (t.get("error_feedback") != nullptr) {
    bool ef = false;
    read_bool(r, t, "compression", "error_feedback", ef);
    c.error_feedback = ef;
  }
  read_bool(r, t, "compression", "momentum_correction", c.momentum_correction);
  r.get_double(t, "compression", "momentum", c.momentum, 0.0, 1.0);
  r.get_int(t, "compression", "warmup_steps", c.warmup_steps, 0);
  double flops = -1;
  r.get_double(t, "compression", "encode_flops_per_element", flops, 0.0, 1e9);
  if (flops >= 0) c.encode_flops = flops;
  flops = -1;
  r.get_double(t, "compression", "decode_flops_per_element", flops, 0.0, 1e9);
  if (flops >= 0) c.decode_flops = flops;
}

void read_faults(Reader& r, const toml::node& node, std::vector<FaultConfig>& out) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    r.error(&node, "faults", "expected [[faults]] tables");
    return;
  }
  for (const auto& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      r.error(&item, "faults", "expected [[faults]] tables");
      continue;
    }
    r.check_keys(*t, "faults", {"at", "node", "kind", "duration", "factor", "mode"});
    FaultConfig f;
    f.place = r.place(&item);
    if (const auto* kind = t->get("kind")) {
      const auto* v = kind->as_string();
      if (v == nullptr) {
        r.error(kind, "faults.kind", "expected a string: byzantine");
        continue;
      }
      if (v->get() != "byzantine") {
        const std::string_view k = v->get();
        if (k == "crash" || k == "restart" || k == "slow" || k == "link-down") {
          r.error(kind, "faults.kind",
                  fmt::format("\"{}\" is not implemented yet; this version has byzantine", k));
        } else {
          r.error(kind, "faults.kind",
                  "expected one of: byzantine (crash, restart, slow, link-down come later)");
        }
        continue;
      }
    } else {
      r.error(&item, "faults.kind", "missing: kind = \"byzantine\"");
      continue;
    }
    if (t->get("node") == nullptr) r.error(&item, "faults.node", "missing: the worker it hits");
    r.get_int(*t, "faults", "node", f.node, 0, 1'000'000);
    r.get_unit(*t, "faults", "at", f.at, parse_duration);
    if (t->get("duration") != nullptr) {
      SimTime d;
      r.get_unit(*t, "faults", "duration", d, parse_duration);
      f.duration = d;
    }
    if (t->get("mode") == nullptr) {
      r.error(&item, "faults.mode", "missing: sign-flip | noise | scale");
    }
    r.get_choice<ByzantineMode>(*t, "faults", "mode",
                                {{"sign-flip", ByzantineMode::kSignFlip},
                                 {"noise", ByzantineMode::kNoise},
                                 {"scale", ByzantineMode::kScale}},
                                f.mode);
    if (f.mode != ByzantineMode::kSignFlip && t->get("factor") == nullptr) {
      r.error(&item, "faults.factor",
              fmt::format("missing: mode = \"{}\" needs a factor (scale: g * factor; noise: "
                          "standard deviation)",
                          to_string(f.mode)));
    }
    r.get_double(*t, "faults", "factor", f.factor, -1e12, 1e12);
    out.push_back(f);
  }
}

void read_expect(Reader& r, const toml::table& t, std::vector<Expectation>& out) {
  std::vector<std::string_view> keys = summary_keys();
  for (auto&& [key, value] : t) {
    const std::string path = "expect." + std::string(key.str());
    if (std::find(keys.begin(), keys.end(), key.str()) == keys.end()) {
      std::string_view best;
      std::size_t best_distance = 4;
      for (std::string_view k : keys) {
        const std::size_t d = edit_distance(key.str(), k);
        if (d < best_distance) {
          best_distance = d;
          best = k;
        }
      }
      r.error_at_key(key, path,
                     fmt::format("not a summary value{}; expected one of: {}",
                                 best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best),
                                 fmt::join(keys, ", ")));
      continue;
    }
    Expectation e;
    e.key = std::string(key.str());
    e.place = r.place(&value);
    const char* expected =
        "expected a check such as \">= 0.84\", \"<= 30\", \"> 0\", \"< 1\", \"== 5\", "
        "\"0.8..0.9\" (inclusive), or a number (==)";
    if (const auto* i = value.as_integer()) {
      e.a = static_cast<double>(i->get());
      e.text = fmt::format("== {}", i->get());
    } else if (const auto* f = value.as_floating_point()) {
      if (!std::isfinite(f->get())) {
        r.error(&value, path, "expected a finite number");
        continue;
      }
      e.a = f->get();
      e.text = fmt::format("== {}", f->get());
    } else if (const auto* str = value.as_string()) {
      std::string text = str->get();
      e.text = text;
      std::string_view v = text;
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      const auto number = [](std::string_view n, double& x) {
        while (!n.empty() && n.front() == ' ') n.remove_prefix(1);
        while (!n.empty() && n.back() == ' ') n.remove_suffix(1);
        const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), x);
        return ec == std::errc() && end == n.data() + n.size() && std::isfinite(x);
      };
      bool ok = false;
      static constexpr std::pair<std::string_view, Expectation::Op> ops[] = {
          {">=", Expectation::Op::kGe},
          {"<=", Expectation::Op::kLe},
          {"==", Expectation::Op::kEq},
          {">", Expectation::Op::kGt},
          {"<", Expectation::Op::kLt}};
      for (const auto& [sym, op] : ops) {
        if (v.substr(0, sym.size()) == sym) {
          e.op = op;
          ok = number(v.substr(sym.size()), e.a);
          break;
        }
      }
      if (!ok && v.find("..") != std::string_view::npos) {
        const auto dots = v.find("..");
        e.op = Expectation::Op::kRange;
        ok = number(v.substr(0, dots), e.a) && number(v.substr(dots + 2), e.b) && e.a <= e.b;
      }
      if (!ok) {
        r.error(&value, path, fmt::format("{}, found \"{}\"", expected, text));
        continue;
      }
    } else {
      r.error(&value, path, expected);
      continue;
    }
    out.push_back(std::move(e));
  }
}

// Reads [sweep]; each value must itself make a valid scenario, which parse_scenario checks.
void read_sweep(Reader& r, const toml::table& t, std::vector<SweepAxis>& out) {
  for (auto&& [key, value] : t) {
    SweepAxis axis;
    axis.key = std::string(key.str());
    axis.place = r.place(&value);
    const std::string path = "sweep." + axis.key;
    const auto* arr = value.as_array();
    if (arr == nullptr || arr->empty()) {
      r.error(&value, path,
              "expected a non-empty list of values, such as [\"bsp\", \"asp\"] or [4, 8]");
      continue;
    }
    const std::string leaf = axis.key.substr(axis.key.rfind('.') + 1);
    // A scalar as TOML text and as a label; false if it is not a scalar.
    const auto scalar = [](const toml::node& item, std::string& text, std::string& label) {
      if (const auto* str = item.as_string()) {
        text = toml_quote(str->get());
        label = str->get();
      } else if (const auto* i = item.as_integer()) {
        text = label = fmt::format("{}", i->get());
      } else if (const auto* f = item.as_floating_point()) {
        text = label = fmt::format("{}", f->get());
      } else if (const auto* b = item.as_boolean()) {
        text = label = b->get() ? "true" : "false";
      } else {
        return false;
      }
      return true;
    };
    for (const auto& item : *arr) {
      std::string text;
      std::string label;
      if (scalar(item, text, label)) {
        axis.overrides.push_back({axis.key + "=" + text});
        axis.labels.push_back(leaf + "=" + label);
        continue;
      }
      // A table sets several keys of the section together: one point, not a grid.
      const auto* table = item.as_table();
      if (table == nullptr || table->empty()) {
        r.error(&item, path,
                "expected strings, numbers, booleans, or tables of them ({ sync = \"bsp\", "
                "backup_workers = 1 } under \"strategy\")");
        continue;
      }
      std::vector<std::string> overrides;
      std::vector<std::string> labels;
      // In the order written (a table iterates in key order).
      std::vector<std::pair<const toml::key*, const toml::node*>> entries;
      for (auto&& [k, v] : *table) entries.emplace_back(&k, &v);
      std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto& pa = a.first->source().begin;
        const auto& pb = b.first->source().begin;
        return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
      });
      for (const auto& [kp, vp] : entries) {
        const toml::key& k = *kp;
        const toml::node& v = *vp;
        if (!scalar(v, text, label)) {
          r.error(&v, path + "." + std::string(k.str()), "expected a string, number or boolean");
          continue;
        }
        overrides.push_back(axis.key + "." + std::string(k.str()) + "=" + text);
        labels.push_back(std::string(k.str()) + "=" + label);
      }
      axis.overrides.push_back(std::move(overrides));
      axis.labels.push_back(fmt::format("{}", fmt::join(labels, ",")));
    }
    out.push_back(std::move(axis));
  }
  // Tables iterate in key order; the grid follows the order the axes are written in.
  std::stable_sort(out.begin(), out.end(), [](const SweepAxis& a, const SweepAxis& b) {
    return std::pair(a.place.line, a.place.column) < std::pair(b.place.line, b.place.column);
  });
}

// Applies --set overrides to the parsed document, recording bad ones as errors.
void apply_overrides(Reader& r, toml::table& root, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    const std::string key = eq == std::string::npos ? o : o.substr(0, eq);
    bool valid_key = !key.empty() && key.front() != '.' && key.back() != '.' &&
                     key.find("..") == std::string::npos;
    for (char ch : key)
      valid_key = valid_key && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                                ch == '-' || ch == '.');
    if (eq == std::string::npos || !valid_key) {
      r.errors().emplace_back(SourcePlace{"--set " + o, 0, 0}, "--set",
                              "expected key.path=value, such as train.lr=0.1 or strategy.sync=bsp");
      continue;
    }
    const std::string value = o.substr(eq + 1);
    const std::string source = "--set " + o;
    if (value.find_first_of("\n\r") != std::string::npos) {
      r.errors().emplace_back(SourcePlace{source, 0, 0}, key, "expected a value on one line");
      continue;
    }
    toml::table parsed;
    try {
      parsed = toml::parse("v = " + value, source);
    } catch (const toml::parse_error&) {
      // Not a TOML value: take it as a string, so strategy.sync=bsp needs no quotes.
      try {
        parsed = toml::parse("v = " + toml_quote(value), source);
      } catch (const toml::parse_error& e) {
        r.errors().emplace_back(SourcePlace{source, 0, 0}, key,
                                fmt::format("not a value: {}", e.description()));
        continue;
      }
    }
    toml::table* target = &root;
    std::string_view rest = key;
    bool ok = true;
    for (auto dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
      const std::string part(rest.substr(0, dot));
      rest.remove_prefix(dot + 1);
      toml::node* next = target->get(part);
      if (next == nullptr) {
        target->insert(part, toml::table{});
        next = target->get(part);
      }
      target = next->as_table();
      if (target == nullptr) {
        r.errors().emplace_back(SourcePlace{source, 0, 0}, key,
                                fmt::format("'{}' is a value, not a section", part));
        ok = false;
        break;
      }
    }
    if (ok) target->insert_or_assign(std::string(rest), std::move(*parsed.get("v")));
  }
}

// Which sync modes each architecture runs, and the keys each mode needs.
void check_strategy(Reader& r, const toml::table& root, const Scenario& s) {
  const StrategyConfig& st = s.strategy;
  const toml::node* sync_node = root["strategy"]["sync"].node();
  const toml::node* arch_node = root["strategy"]["architecture"].node();
  const toml::node* where = sync_node != nullptr ? sync_node : arch_node;
  struct Allowed {
    Architecture arch;
    std::vector<SyncMode> modes;
    const char* names;
  };
  static const Allowed allowed[] = {
      {Architecture::kAllreduce, {SyncMode::kBsp, SyncMode::kLocalSgd}, "bsp | local-sgd"},
      {Architecture::kParameterServer,
       {SyncMode::kBsp, SyncMode::kAsp, SyncMode::kSsp, SyncMode::kDelayed},
       "bsp | asp | ssp | delayed"},
      {Architecture::kGossip, {SyncMode::kDPsgd, SyncMode::kAdPsgd}, "d-psgd | ad-psgd"},
  };
  for (const Allowed& a : allowed) {
    if (a.arch != st.architecture) continue;
    if (std::find(a.modes.begin(), a.modes.end(), st.sync) == a.modes.end()) {
      const char* home = st.async_ps()                                                 ? "ps"
                         : st.sync == SyncMode::kLocalSgd                              ? "allreduce"
                         : st.sync == SyncMode::kDPsgd || st.sync == SyncMode::kAdPsgd ? "gossip"
                                                                                       : nullptr;
      r.error(where, "strategy.sync",
              fmt::format("architecture = \"{}\" runs sync = {}; \"{}\" {}", to_string(a.arch),
                          a.names, to_string(st.sync),
                          home != nullptr ? fmt::format("needs architecture = \"{}\"", home)
                                          : std::string("needs another architecture")));
    }
  }
  const auto need = [&](bool missing, const char* key, const char* what) {
    if (missing) {
      r.error(where, fmt::format("strategy.{}", key),
              fmt::format("missing: sync = \"{}\" needs {}", to_string(st.sync), what));
    }
  };
  need(st.sync == SyncMode::kSsp && !st.staleness, "staleness",
       "the bound s (staleness = 2: no worker gets more than 2 clocks ahead of the slowest)");
  need(st.sync == SyncMode::kDelayed && !st.staleness, "staleness",
       "the delay tau (staleness = 4: every gradient is computed on parameters 4 updates old)");
  need(st.sync == SyncMode::kLocalSgd && !st.local_steps, "local_steps",
       "the period H (local_steps = 8: average the replicas every 8 steps)");
  if (st.backup_workers > 0) {
    const toml::node* node = root["strategy"]["backup_workers"].node();
    if (st.sync != SyncMode::kBsp) {
      r.error(node, "strategy.backup_workers",
              fmt::format("backup workers go with sync = \"bsp\", not \"{}\"; set it to 0",
                          to_string(st.sync)));
    } else if (st.backup_workers >= s.cluster.workers) {
      r.error(node, "strategy.backup_workers",
              fmt::format("{} backup workers of {}: at least one gradient must count; use at "
                          "most {}",
                          st.backup_workers, s.cluster.workers, s.cluster.workers - 1));
    }
  }
  // Compression and aggregation rules meet the contributions of a bsp step.
  const CodecConfig& c = s.compression;
  const toml::node* codec_node = root["compression"]["codec"].node();
  const toml::node* agg_node = root["strategy"]["aggregation"].node();
  const bool coded = c.kind != CodecKind::kNone;
  const bool robust = st.aggregation.kind != AggregationKind::kMean;
  if ((coded || robust) && (st.sync != SyncMode::kBsp || st.backup_workers > 0)) {
    r.error(coded ? codec_node : agg_node, coded ? "compression.codec" : "strategy.aggregation",
            fmt::format("{} works with sync = \"bsp\" (without backup workers) in this version",
                        coded ? "compression" : "an aggregation rule other than mean"));
  }
  if (c.momentum_correction && s.train.optimizer.kind != OptimizerKind::kSgd) {
    r.error(root["compression"]["momentum_correction"].node(), "compression.momentum_correction",
            "DGC's momentum correction replaces the optimizer's momentum: set train.optimizer = "
            "\"sgd\" (the correction's momentum is compression.momentum)");
  }
  if (c.momentum_correction && c.kind != CodecKind::kTopK) {
    r.error(root["compression"]["momentum_correction"].node(), "compression.momentum_correction",
            "momentum correction is a top-k option (DGC): set codec = \"topk\"");
  }
  if (coded && st.architecture == Architecture::kParameterServer && s.cluster.servers > 4096) {
    r.error(root["cluster"]["servers"].node(), "cluster.servers",
            "compression to a parameter server supports at most 4096 shards");
  }
  if (c.kind == CodecKind::kPowerSgd && st.architecture != Architecture::kAllreduce) {
    r.error(codec_node, "compression.codec",
            "powersgd rides an allreduce (two rounds per step): use architecture = \"allreduce\"");
  }
  if (c.kind == CodecKind::kSign && robust) {
    r.error(agg_node, "strategy.aggregation",
            "codec = \"sign\" aggregates by majority vote; leave aggregation at mean");
  }
  if (c.kind == CodecKind::kPowerSgd && robust) {
    r.error(agg_node, "strategy.aggregation",
            "powersgd sums low-rank factors; it cannot feed a robust aggregation rule");
  }
  if (robust && s.cluster.workers < min_contributions(st.aggregation)) {
    r.error(agg_node, "strategy.aggregation",
            fmt::format("{} with trim = {} needs at least {} workers, the cluster has {}",
                        to_string(st.aggregation.kind), st.aggregation.f,
                        min_contributions(st.aggregation), s.cluster.workers));
  }
  if (st.aggregation.kind == AggregationKind::kMultiKrum && st.aggregation.m > 0 &&
      st.aggregation.m > s.cluster.workers - st.aggregation.f - 2) {
    r.error(root["strategy"]["krum_m"].node(), "strategy.krum_m",
            fmt::format("multi-krum averages at most workers - trim - 2 = {} contributions",
                        s.cluster.workers - st.aggregation.f - 2));
  }
  for (const FaultConfig& f : s.faults) {
    if (f.node >= s.cluster.workers) {
      r.errors().emplace_back(f.place, "faults.node",
                              fmt::format("node {} is not a worker: the workers are 0-{}", f.node,
                                          s.cluster.workers - 1));
    }
  }
}

}  // namespace

ScenarioError::ScenarioError(std::vector<InputError> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

static Scenario parse_impl(const std::string& text, const std::string& file,
                           const std::vector<std::string>& overrides, bool check_sweep) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw ScenarioError(
        {InputError({file, static_cast<int>(begin.line), static_cast<int>(begin.column)}, "",
                    fmt::format("not valid TOML: {}", e.description()))});
  }
  Reader r(file);
  apply_overrides(r, root, overrides);
  Scenario s;
  s.file = file;
  r.check_keys(root, "",
               {"name", "description", "seed", "model", "data", "train", "cluster", "network",
                "strategy", "compression", "faults", "expect", "sweep"});
  if (root.get("name") == nullptr) {
    r.error(nullptr, "name", "missing: every scenario needs a name (name = \"...\")");
  }
  r.get_string(root, "", "name", s.name);
  r.get_string(root, "", "description", s.description);
  r.get_int(root, "", "seed", s.seed, 0);
  if (const auto* t = r.table(root, "", "model")) read_model(r, *t, s.model);
  if (const auto* t = r.table(root, "", "data")) read_data(r, *t, s.data);
  if (const auto* t = r.table(root, "", "train")) read_train(r, *t, s.train);
  if (const auto* t = r.table(root, "", "cluster")) read_cluster(r, *t, s.cluster);
  if (const auto* t = r.table(root, "", "network")) read_network(r, *t, s.network);
  if (const auto* t = r.table(root, "", "strategy")) read_strategy(r, *t, s.strategy);
  if (const auto* t = r.table(root, "", "compression")) read_compression(r, *t, s.compression);
  if (const toml::node* f = root.get("faults")) read_faults(r, *f, s.faults);
  if (const auto* t = r.table(root, "", "expect")) read_expect(r, *t, s.expect);
  if (const auto* t = r.table(root, "", "sweep")) read_sweep(r, *t, s.sweep);

  // Combinations that cannot work are errors now, not surprises mid-run.
  for (const NodeGroup& g : s.cluster.groups) {
    const int nodes =
        s.cluster.workers +
        (s.strategy.architecture == Architecture::kParameterServer ? s.cluster.servers : 0);
    if (g.last >= nodes) {
      r.errors().emplace_back(g.place, "cluster.group.nodes",
                              fmt::format("nodes {}-{} do not exist: the cluster has nodes 0-{}",
                                          g.first, g.last, nodes - 1));
    }
  }
  const toml::node* servers_node = root["cluster"]["servers"].node();
  const toml::node* arch_node = root["strategy"]["architecture"].node();
  if (s.strategy.architecture == Architecture::kParameterServer && s.cluster.servers < 1) {
    r.error(servers_node != nullptr ? servers_node : arch_node, "cluster.servers",
            "architecture = \"ps\" needs at least one server shard (cluster.servers >= 1)");
  }
  if (s.strategy.architecture != Architecture::kParameterServer && s.cluster.servers > 0) {
    r.error(servers_node, "cluster.servers",
            "server shards are used only with strategy.architecture = \"ps\"");
  }
  check_strategy(r, root, s);
  if (s.strategy.architecture == Architecture::kAllreduce &&
      s.strategy.collective == AllreduceAlgo::kHierarchical && s.cluster.workers > 1 &&
      s.cluster.workers % s.network.nodes_per_machine != 0) {
    r.error(root["strategy"]["collective"].node(), "strategy.collective",
            fmt::format("the hierarchical allreduce needs whole machines: {} workers are not a "
                        "multiple of network.nodes_per_machine = {}",
                        s.cluster.workers, s.network.nodes_per_machine));
  }
  if (s.data.partition.kind != PartitionKind::kRows && s.cluster.workers > 1) {
    r.error(root["data"]["partition"].node(), "data.partition",
            "data-parallel strategies split samples: use partition = \"rows\" (columns and "
            "blocks come with the tensor-split strategy)");
  }
  if (s.network.topology == TopologyKind::kFull && s.cluster.workers + s.cluster.servers > 1024) {
    r.error(root["network"]["topology"].node(), "network.topology",
            "a full mesh is limited to 1024 nodes; use a star or hierarchical topology");
  }

  if (s.data.path.empty()) s.data.path = kFashionMnistDefaultPath;
  if (s.data.partition.split != SplitKind::kDirichlet && root["data"]["alpha"].node() != nullptr) {
    r.error(root["data"]["alpha"].node(), "data.alpha",
            "alpha is the concentration of split = \"dirichlet\"; remove it or set that split");
  }
  if (s.strategy.time_only && s.train.target_accuracy) {
    r.error(root["train"]["target_accuracy"].node(), "train.target_accuracy",
            "a time-only run computes no accuracy; remove this key or strategy.time_only");
  }
  if (s.data.dataset != "fashion-mnist" &&
      s.data.train_samples + s.data.test_samples > 10'000'000) {
    r.error(root["data"]["train_samples"].node(), "data.train_samples",
            "synthetic datasets are limited to 10,000,000 samples in all (train + test)");
  }
  if (s.data.dataset == "linreg" && s.train.target_accuracy) {
    r.error(root["train"]["target_accuracy"].node(), "train.target_accuracy",
            "linreg is a regression task and has no accuracy; remove this key");
  }
  if (s.model.kind == ModelKind::kCnn && s.data.dataset != "fashion-mnist") {
    r.error(root["model"]["kind"].node(), "model.kind",
            fmt::format("a cnn needs image data (fashion-mnist); {} samples are plain vectors",
                        s.data.dataset));
  }
  if (s.train.epochs == 0 && s.train.steps == 0) s.train.epochs = 1;
  if (check_sweep && r.errors().empty() && !s.sweep.empty()) {
    // Every point of the grid must make a valid scenario: try each one now, so a typo in the
    // grid is reported before any point runs.
    const bool one_axis = s.sweep.size() == 1;
    const std::string key = one_axis ? "sweep." + s.sweep[0].key : "sweep";
    const SourcePlace place = s.sweep[0].place;
    std::size_t failed = 0;
    const std::vector<SweepPoint> points = expand_sweep(s);
    for (const SweepPoint& point : points) {
      std::vector<std::string> with = overrides;
      with.insert(with.end(), point.overrides.begin(), point.overrides.end());
      try {
        parse_impl(text, file, with, /*check_sweep=*/false);
      } catch (const ScenarioError& e) {
        if (++failed > 10) continue;
        for (const InputError& err : e.errors()) {
          r.errors().emplace_back(
              place, key,
              fmt::format("the {} {} does not work: {}", one_axis ? "value" : "point", point.label,
                          err.message()));
        }
      }
    }
    if (failed > 10) {
      r.errors().emplace_back(
          place, key,
          fmt::format("and {} more points of {} do not work", failed - 10, points.size()));
    }
  }
  if (!r.errors().empty()) throw ScenarioError(r.sorted_errors());
  return s;
}

Scenario parse_scenario(const std::string& text, const std::string& file,
                        const std::vector<std::string>& overrides, bool check_sweep) {
  return parse_impl(text, file, overrides, check_sweep);
}

std::vector<SweepPoint> expand_sweep(const Scenario& s) {
  std::vector<SweepPoint> points(1);
  for (const SweepAxis& axis : s.sweep) {
    std::vector<SweepPoint> next;
    for (const SweepPoint& p : points) {
      for (std::size_t i = 0; i < axis.overrides.size(); ++i) {
        SweepPoint q = p;
        q.overrides.insert(q.overrides.end(), axis.overrides[i].begin(), axis.overrides[i].end());
        q.label += (q.label.empty() ? "" : ",") + axis.labels[i];
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  return s.sweep.empty() ? std::vector<SweepPoint>{} : points;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides,
                       bool check_sweep) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError({path, 0, 0}, "",
                     std::filesystem::exists(path, ec)
                         ? "not a file: expected a scenario (.toml) file"
                         : "no such file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError({path, 0, 0}, "", "cannot open the scenario file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_scenario(buffer.str(), path, overrides, check_sweep);
}

const char* to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kMomentum:
      return "momentum";
    case OptimizerKind::kNesterov:
      return "nesterov";
    case OptimizerKind::kAdam:
      return "adam";
  }
  return "?";
}

std::vector<std::pair<std::string, std::string>> resolved_settings(const Scenario& s) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto add = [&](const char* key, std::string value) {
    out.emplace_back(key, std::move(value));
  };
  const auto list = [](const std::vector<int>& v) {
    return fmt::format("[{}]", fmt::join(v, ", "));
  };
  const auto secs = [](SimTime t) { return fmt::format("{} s", t.seconds()); };
  add("seed", fmt::format("{}", s.seed));
  add("model.kind", to_string(s.model.kind));
  if (s.model.kind != ModelKind::kSoftmax) add("model.hidden", list(s.model.hidden));
  if (s.model.kind != ModelKind::kSoftmax) {
    add("model.activation", s.model.activation == Activation::kRelu ? "relu" : "tanh");
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
  const char* split = s.data.partition.split == SplitKind::kIid         ? "iid"
                      : s.data.partition.split == SplitKind::kDirichlet ? "dirichlet"
                                                                        : "by-label";
  add("data.split", split);
  if (s.data.partition.split == SplitKind::kDirichlet)
    add("data.alpha", fmt::format("{}", s.data.partition.alpha));
  add("data.load_cost", secs(s.data.load_cost));
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
  add("cluster.workers", fmt::format("{}", s.cluster.workers));
  if (s.strategy.architecture == Architecture::kParameterServer) {
    add("cluster.servers", fmt::format("{}", s.cluster.servers));
  }
  add("cluster.compute", fmt::format("{} FLOP/s", s.cluster.compute_flops_per_s));
  add("network.topology", to_string(s.network.topology));
  add("network.latency", secs(s.network.link.latency));
  add("network.bandwidth", fmt::format("{} B/s ({} Gbps)", s.network.link.bandwidth,
                                       s.network.link.bandwidth * 8 / 1e9));
  if (s.network.topology == TopologyKind::kHierarchical) {
    add("network.nodes_per_machine", fmt::format("{}", s.network.nodes_per_machine));
    add("network.intra_latency", secs(s.network.intra.latency));
    add("network.intra_bandwidth", fmt::format("{} B/s", s.network.intra.bandwidth));
  }
  const StrategyConfig& st = s.strategy;
  add("strategy.architecture", to_string(st.architecture));
  add("strategy.sync", to_string(st.sync));
  if (st.architecture == Architecture::kAllreduce) {
    add("strategy.collective", to_string(st.collective));
  }
  // Only the keys the mode uses.
  if ((st.sync == SyncMode::kSsp || st.sync == SyncMode::kDelayed) && st.staleness) {
    add("strategy.staleness", fmt::format("{}", *st.staleness));
  }
  if (st.sync == SyncMode::kLocalSgd && st.local_steps) {
    add("strategy.local_steps", fmt::format("{}", *st.local_steps));
  }
  if (st.sync == SyncMode::kBsp && st.backup_workers > 0) {
    add("strategy.backup_workers", fmt::format("{}", st.backup_workers));
  }
  if (st.async_ps()) {
    add("strategy.staleness_lr", st.staleness_lr ? "true" : "false");
    add("strategy.delay_compensation", fmt::format("{}", st.delay_compensation));
  }
  if (st.sync == SyncMode::kBsp && st.backup_workers == 0) {
    add("strategy.aggregation", to_string(st.aggregation.kind));
    if (st.aggregation.kind == AggregationKind::kTrimmedMean ||
        st.aggregation.kind == AggregationKind::kKrum ||
        st.aggregation.kind == AggregationKind::kMultiKrum) {
      add("strategy.trim", fmt::format("{}", st.aggregation.f));
    }
    if (st.aggregation.kind == AggregationKind::kMultiKrum) {
      add("strategy.krum_m", st.aggregation.m > 0 ? fmt::format("{}", st.aggregation.m)
                                                  : std::string("workers - trim - 2"));
    }
  }
  add("strategy.time_only", st.time_only ? "true" : "false");
  const CodecConfig& c = s.compression;
  if (c.kind != CodecKind::kNone) {
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
  for (const FaultConfig& f : s.faults) {
    out.emplace_back(
        fmt::format("faults (node {})", f.node),
        fmt::format("byzantine {} x {} from {} s{}", to_string(f.mode), f.factor, f.at.seconds(),
                    f.duration ? fmt::format(" for {} s", f.duration->seconds()) : ""));
  }
  for (const Expectation& e : s.expect) {
    out.emplace_back("expect." + e.key, e.text);
  }
  return out;
}

SourcePlace locate_key(const std::string& path, const std::string& key) {
  try {
    const toml::table root = toml::parse_file(path);
    std::string prefix = key;
    while (!prefix.empty()) {
      if (const toml::node* node = root.at_path(prefix).node()) {
        const auto& begin = node->source().begin;
        return {path, static_cast<int>(begin.line), static_cast<int>(begin.column)};
      }
      const auto dot = prefix.rfind('.');
      prefix = dot == std::string::npos ? std::string() : prefix.substr(0, dot);
    }
  } catch (const std::exception&) {
    // An unreadable file: the place is just the file.
  }
  return {path, 0, 0};
}

const char* to_string(Architecture kind) {
  switch (kind) {
    case Architecture::kAllreduce:
      return "allreduce";
    case Architecture::kParameterServer:
      return "ps";
    case Architecture::kGossip:
      return "gossip";
  }
  return "?";
}

const char* to_string(ByzantineMode mode) {
  switch (mode) {
    case ByzantineMode::kSignFlip:
      return "sign-flip";
    case ByzantineMode::kNoise:
      return "noise";
    case ByzantineMode::kScale:
      return "scale";
  }
  return "?";
}

const char* to_string(SyncMode mode) {
  switch (mode) {
    case SyncMode::kBsp:
      return "bsp";
    case SyncMode::kAsp:
      return "asp";
    case SyncMode::kSsp:
      return "ssp";
    case SyncMode::kDelayed:
      return "delayed";
    case SyncMode::kLocalSgd:
      return "local-sgd";
    case SyncMode::kDPsgd:
      return "d-psgd";
    case SyncMode::kAdPsgd:
      return "ad-psgd";
  }
  return "?";
}

const char* to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kConstant:
      return "constant";
    case ScheduleKind::kStep:
      return "step";
    case ScheduleKind::kCosine:
      return "cosine";
  }
  return "?";
}

}  // namespace dtsim
