// The readers of each section of a scenario file.
#include "sim/scenario/sections.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "sim/des/units.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/summary.hpp"

namespace dtsim {

void read_model(TomlReader& r, const toml::table& t, ModelConfig& m) {
  r.check_keys(t, "model", {"kind", "hidden", "activation", "channels", "kernel"});
  r.get_choice(t, "model", "kind", model_names(), m.kind);
  r.get_int_list(t, "model", "hidden", m.hidden, true);
  r.get_choice(t, "model", "activation", activation_names(), m.activation);
  r.get_int_list(t, "model", "channels", m.channels, false);
  r.get_int(t, "model", "kernel", m.kernel, 1, 15);
  if (const auto* k = t.get("kernel"); k != nullptr && m.kernel % 2 == 0) {
    r.error(k, "model.kernel", fmt::format("expected an odd kernel size, found {}", m.kernel));
  }
}

void read_data(TomlReader& r, const toml::table& t, DataConfig& d) {
  r.check_keys(t, "data",
               {"dataset", "path", "train_samples", "test_samples", "partition", "split", "alpha",
                "load_cost", "features", "classes", "spread", "separation", "outputs", "noise"});
  r.get_string(t, "data", "dataset", d.dataset);
  if (std::none_of(std::begin(kDatasetNames), std::end(kDatasetNames),
                   [&](const char* name) { return d.dataset == name; })) {
    r.error(t.get("dataset"), "data.dataset",
            fmt::format("expected {}, found \"{}\"", fmt::join(kDatasetNames, " | "), d.dataset));
  }
  r.get_string(t, "data", "path", d.path);
  r.get_int(t, "data", "train_samples", d.train_samples, 1);
  r.get_int(t, "data", "test_samples", d.test_samples, 1);
  r.get_choice(t, "data", "partition", partition_names(), d.partition.kind);
  r.get_choice(t, "data", "split", split_names(), d.partition.split);
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

void read_train(TomlReader& r, const toml::table& t, TrainConfig& c) {
  r.check_keys(t, "train",
               {"optimizer", "lr", "momentum", "weight_decay", "beta1", "beta2", "epsilon",
                "batch_size", "epochs", "steps", "schedule", "warmup_steps", "decay_every",
                "decay_factor", "final_lr_fraction", "clip_norm", "eval_every", "target_accuracy"});
  r.get_choice(t, "train", "optimizer", optimizer_names(), c.optimizer.kind);
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
  r.get_choice(t, "train", "schedule", schedule_names(), c.schedule.kind);
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

namespace {

// nodes = 3 or nodes = "6-7": false (and an error) when it is neither.
bool read_node_range(TomlReader& r, const toml::node& item, const toml::node* nodes,
                     NodeGroup& group) {
  if (nodes == nullptr) {
    r.error(&item, "cluster.group.nodes",
            "missing: which nodes, e.g. nodes = \"6-7\" or nodes = 3");
    return false;
  }
  if (const auto* i = nodes->as_integer()) {
    group.first = group.last = static_cast<int>(i->get());
  } else if (const auto* str = nodes->as_string()) {
    const std::string& range = str->get();
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
      return false;
    }
  } else {
    r.error(nodes, "cluster.group.nodes", "expected a node number or a range such as \"6-7\"");
    return false;
  }
  if (group.first < 0 || group.last < group.first) {
    r.error(nodes, "cluster.group.nodes", "expected first <= last, both >= 0");
    return false;
  }
  return true;
}

// An optional key with a unit into an optional value.
template <typename Value, typename Parse>
void get_optional_unit(TomlReader& r, const toml::table& t, const std::string& prefix,
                       std::string_view key, std::optional<Value>& out, Parse parse) {
  if (t.get(key) == nullptr) return;
  Value v{};
  r.get_unit(t, prefix, key, v, parse);
  out = v;
}

void read_groups(TomlReader& r, const toml::node& groups, std::vector<NodeGroup>& out) {
  const toml::array* arr = groups.as_array();
  if (arr == nullptr) {
    r.error(&groups, "cluster.group", "expected [[cluster.group]] tables");
    return;
  }
  for (const toml::node& item : *arr) {
    const toml::table* g = item.as_table();
    if (g == nullptr) {
      r.error(&item, "cluster.group", "expected [[cluster.group]] tables");
      continue;
    }
    r.check_keys(*g, "cluster.group", {"nodes", "compute", "latency", "bandwidth"});
    NodeGroup group;
    group.place = r.place(&item);
    if (!read_node_range(r, item, g->get("nodes"), group)) continue;
    get_optional_unit(r, *g, "cluster.group", "compute", group.compute_flops_per_s, parse_flops);
    get_optional_unit(r, *g, "cluster.group", "latency", group.latency, parse_duration);
    get_optional_unit(r, *g, "cluster.group", "bandwidth", group.bandwidth, parse_bandwidth);
    out.push_back(group);
  }
}

}  // namespace

void read_cluster(TomlReader& r, const toml::table& t, ClusterConfig& c) {
  r.check_keys(t, "cluster", {"workers", "compute", "servers", "group", "stragglers"});
  r.get_int(t, "cluster", "workers", c.workers, 1, 1 << 20);
  r.get_int(t, "cluster", "servers", c.servers, 0, 1 << 20);
  r.get_unit(t, "cluster", "compute", c.compute_flops_per_s, parse_flops);
  if (const toml::node* groups = t.get("group")) read_groups(r, *groups, c.groups);
  if (const toml::table* st = r.table(t, "cluster", "stragglers")) {
    r.check_keys(*st, "cluster.stragglers", {"fraction", "slowdown", "jitter"});
    r.get_double(*st, "cluster.stragglers", "fraction", c.stragglers.fraction, 0.0, 1.0);
    r.get_double(*st, "cluster.stragglers", "slowdown", c.stragglers.slowdown, 1.0, 1e6);
    r.get_double(*st, "cluster.stragglers", "jitter", c.stragglers.jitter, 0.0, 5.0);
  }
}

void read_network(TomlReader& r, const toml::table& t, NetworkConfig& n) {
  r.check_keys(t, "network",
               {"topology", "latency", "bandwidth", "nodes_per_machine", "intra_latency",
                "intra_bandwidth"});
  r.get_choice(t, "network", "topology", topology_names(), n.topology);
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

void read_strategy(TomlReader& r, const toml::table& t, StrategyConfig& s) {
  r.check_keys(t, "strategy",
               {"architecture",
                "sync",
                "collective",
                "time_only",
                "staleness",
                "local_steps",
                "backup_workers",
                "staleness_lr",
                "delay_compensation",
                "aggregation",
                "trim",
                "krum_m",
                "stages",
                "micro_batches",
                "stage_layers",
                "tensor_parallel",
                "data_parallel",
                "failure_timeout",
                "consensus_step",
                "checkpoint_every"});
  r.get_choice(t, "strategy", "aggregation", aggregation_names(), s.aggregation.kind);
  r.get_int(t, "strategy", "trim", s.aggregation.f, 0, 1'000'000);
  r.get_int(t, "strategy", "krum_m", s.aggregation.m, 1, 1'000'000);
  r.get_choice(t, "strategy", "architecture", architecture_names(), s.architecture);
  r.get_choice(t, "strategy", "sync", sync_mode_names(), s.sync);
  r.get_int(t, "strategy", "stages", s.stages, 1, 4096);
  r.get_int(t, "strategy", "micro_batches", s.micro_batches, 1, 1 << 20);
  r.get_int_list(t, "strategy", "stage_layers", s.stage_layers, false);
  r.get_int(t, "strategy", "tensor_parallel", s.tensor_parallel, 1, 4096);
  r.get_int(t, "strategy", "data_parallel", s.data_parallel, 1, 1 << 20);
  int staleness = -1;
  r.get_int(t, "strategy", "staleness", staleness, 0, 1'000'000);
  if (staleness >= 0) s.staleness = staleness;
  int local_steps = 0;
  r.get_int(t, "strategy", "local_steps", local_steps, 1, 1'000'000);
  if (local_steps > 0) s.local_steps = local_steps;
  r.get_int(t, "strategy", "backup_workers", s.backup_workers, 0, 1'000'000);
  r.get_double(t, "strategy", "delay_compensation", s.delay_compensation, 0.0, 1e6);
  r.get_double(t, "strategy", "consensus_step", s.consensus_step, 1e-6, 1.0);
  r.get_bool(t, "strategy", "staleness_lr", s.staleness_lr);
  r.get_choice(t, "strategy", "collective", allreduce_algo_names(), s.collective);
  r.get_bool(t, "strategy", "time_only", s.time_only);
  r.get_unit(t, "strategy", "failure_timeout", s.failure_timeout, parse_duration);
  r.get_int(t, "strategy", "checkpoint_every", s.checkpoint_every, 1, 1'000'000'000);
}

void read_compression(TomlReader& r, const toml::table& t, CodecConfig& c) {
  r.check_keys(
      t, "compression",
      {"codec", "ratio", "levels", "bucket", "rank", "error_feedback", "momentum_correction",
       "momentum", "warmup_steps", "encode_flops_per_element", "decode_flops_per_element"});
  r.get_choice(t, "compression", "codec", codec_names(), c.kind);
  r.get_double(t, "compression", "ratio", c.ratio, 1e-9, 1.0);
  r.get_int(t, "compression", "levels", c.levels, 1, 32767);
  r.get_int(t, "compression", "bucket", c.bucket, 1, 1 << 30);
  r.get_int(t, "compression", "rank", c.rank, 1, 1024);
  if (t.get("error_feedback") != nullptr) {
    bool ef = false;
    r.get_bool(t, "compression", "error_feedback", ef);
    c.error_feedback = ef;
  }
  r.get_bool(t, "compression", "momentum_correction", c.momentum_correction);
  r.get_double(t, "compression", "momentum", c.momentum, 0.0, 1.0);
  r.get_int(t, "compression", "warmup_steps", c.warmup_steps, 0);
  double flops = -1;
  r.get_double(t, "compression", "encode_flops_per_element", flops, 0.0, 1e9);
  if (flops >= 0) c.encode_flops = flops;
  flops = -1;
  r.get_double(t, "compression", "decode_flops_per_element", flops, 0.0, 1e9);
  if (flops >= 0) c.decode_flops = flops;
}

namespace {

// The keys each kind of fault reads, besides kind, node and at.
std::vector<std::string_view> fault_keys(FaultKind kind) {
  switch (kind) {
    case FaultKind::kByzantine:
      return {"duration", "mode", "factor"};
    case FaultKind::kCrash:
      return {};
    case FaultKind::kRestart:
      return {"duration"};
    case FaultKind::kSlow:
      return {"duration", "factor"};
    case FaultKind::kLinkDown:
      return {"duration", "link"};
    case FaultKind::kLoss:
      return {"duration", "link", "probability", "timeout"};
  }
  return {};
}

void read_byzantine(TomlReader& r, const toml::node& item, const toml::table& t, FaultConfig& f) {
  if (t.get("mode") == nullptr) {
    r.error(&item, "faults.mode",
            fmt::format("missing: {}", joined_names(byzantine_mode_names(), " | ")));
  }
  r.get_choice(t, "faults", "mode", byzantine_mode_names(), f.mode);
  if (f.mode != ByzantineMode::kSignFlip && t.get("factor") == nullptr) {
    r.error(&item, "faults.factor",
            fmt::format("missing: mode = \"{}\" needs a factor (scale: g * factor; noise: "
                        "standard deviation)",
                        to_string(f.mode)));
  }
  r.get_double(t, "faults", "factor", f.factor, -1e12, 1e12);
}

// The keys a kind needs: an error for each one missing.
void require(TomlReader& r, const toml::node& item, const toml::table& t, const FaultConfig& f,
             std::string_view key, std::string_view what) {
  if (t.get(key) != nullptr) return;
  r.error(&item, fmt::format("faults.{}", key),
          fmt::format("missing: kind = \"{}\" needs {} = {}", to_string(f.kind), key, what));
}

}  // namespace

void read_faults(TomlReader& r, const toml::node& node, std::vector<FaultConfig>& out) {
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
    r.check_keys(
        *t, "faults",
        {"at", "node", "kind", "duration", "factor", "mode", "link", "probability", "timeout"});
    FaultConfig f;
    f.place = r.place(&item);
    if (t->get("kind") == nullptr) {
      r.error(&item, "faults.kind",
              fmt::format("missing: kind = {}", joined_names(fault_kind_names(), " | ")));
      continue;
    }
    const std::size_t errors = r.errors().size();
    r.get_choice(*t, "faults", "kind", fault_kind_names(), f.kind);
    if (r.errors().size() != errors) continue;
    // Keys that belong to other kinds are mistakes, not settings to ignore.
    const std::vector<std::string_view> own = fault_keys(f.kind);
    for (const auto& [key, value] : *t) {
      const std::string_view k = key.str();
      if (k == "kind" || k == "node" || k == "at") continue;
      if (std::find(own.begin(), own.end(), k) != own.end()) continue;
      if (k != "duration" && k != "factor" && k != "mode" && k != "link" && k != "probability" &&
          k != "timeout") {
        continue;  // (reported by check_keys)
      }
      r.error(&value, fmt::format("faults.{}", k),
              fmt::format("kind = \"{}\" does not read {}; it reads {}", to_string(f.kind), k,
                          own.empty() ? std::string("only node and at")
                                      : fmt::format("{}", fmt::join(own, ", "))));
    }
    if (t->get("node") == nullptr) r.error(&item, "faults.node", "missing: the node it hits");
    r.get_int(*t, "faults", "node", f.node, 0, 1'000'000);
    r.get_unit(*t, "faults", "at", f.at, parse_duration);
    get_optional_unit(r, *t, "faults", "duration", f.duration, parse_duration);
    switch (f.kind) {
      case FaultKind::kByzantine:
        read_byzantine(r, item, *t, f);
        break;
      case FaultKind::kCrash:
        break;
      case FaultKind::kRestart:
        require(r, item, *t, f, "duration", "how long it is down, e.g. \"2s\"");
        break;
      case FaultKind::kSlow:
        require(r, item, *t, f, "factor", "its compute-time multiplier, e.g. 4.0");
        r.get_double(*t, "faults", "factor", f.factor, 1.0, 1e6);
        break;
      case FaultKind::kLinkDown:
        require(r, item, *t, f, "duration", "how long its links are down, e.g. \"0.5s\"");
        r.get_choice(*t, "faults", "link", fault_link_names(), f.links);
        break;
      case FaultKind::kLoss:
        require(r, item, *t, f, "probability", "the chance a transfer is lost, e.g. 0.01");
        r.get_double(*t, "faults", "probability", f.probability, 0.0, 0.99);
        r.get_choice(*t, "faults", "link", fault_link_names(), f.links);
        r.get_unit(*t, "faults", "timeout", f.timeout, parse_duration);
        break;
    }
    out.push_back(f);
  }
}

namespace {

// An [expect] check written as a string: ">= 0.84", "0.8..0.9"; false if it is not one.
bool parse_check(std::string_view v, Expectation& e) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  const auto number = [](std::string_view n, double& x) {
    while (!n.empty() && n.front() == ' ') n.remove_prefix(1);
    while (!n.empty() && n.back() == ' ') n.remove_suffix(1);
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), x);
    return ec == std::errc() && end == n.data() + n.size() && std::isfinite(x);
  };
  static constexpr std::pair<std::string_view, Expectation::Op> ops[] = {
      {">=", Expectation::Op::kGe},
      {"<=", Expectation::Op::kLe},
      {"==", Expectation::Op::kEq},
      {">", Expectation::Op::kGt},
      {"<", Expectation::Op::kLt}};
  for (const auto& [sym, op] : ops) {
    if (v.substr(0, sym.size()) == sym) {
      e.op = op;
      return number(v.substr(sym.size()), e.a);
    }
  }
  const auto dots = v.find("..");
  if (dots == std::string_view::npos) return false;
  e.op = Expectation::Op::kRange;
  return number(v.substr(0, dots), e.a) && number(v.substr(dots + 2), e.b) && e.a <= e.b;
}

}  // namespace

void read_expect(TomlReader& r, const toml::table& t, std::vector<Expectation>& out) {
  const std::vector<std::string_view> keys = summary_keys();
  for (auto&& [key, value] : t) {
    const std::string path = "expect." + std::string(key.str());
    if (std::find(keys.begin(), keys.end(), key.str()) == keys.end()) {
      const std::string_view best = nearest(key.str(), keys, 4);
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
      e.text = str->get();
      if (!parse_check(e.text, e)) {
        r.error(&value, path, fmt::format("{}, found \"{}\"", expected, e.text));
        continue;
      }
    } else {
      r.error(&value, path, expected);
      continue;
    }
    out.push_back(std::move(e));
  }
}

}  // namespace dtsim
