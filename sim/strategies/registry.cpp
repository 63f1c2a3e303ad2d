#include "sim/strategies/registry.hpp"

#include <algorithm>
#include <stdexcept>

#include "sim/strategies/strategy.hpp"

namespace dtsim {

// Each family's hooks, defined in its own file.
void predict_allreduce_bsp(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_allreduce_bsp(RunCore&);
void check_local_sgd(const Scenario&, ScenarioChecks&);
void predict_local_sgd(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_local_sgd(RunCore&);
void predict_ps_bsp(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_ps_bsp(RunCore&);
void predict_ps_asp(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_ps_asp(RunCore&);
void check_ps_ssp(const Scenario&, ScenarioChecks&);
void predict_ps_ssp(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_ps_ssp(RunCore&);
void check_ps_delayed(const Scenario&, ScenarioChecks&);
void predict_ps_delayed(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_ps_delayed(RunCore&);
void predict_dpsgd(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_dpsgd(RunCore&);
void predict_adpsgd(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_adpsgd(RunCore&);
void check_pipeline(const Scenario&, ScenarioChecks&);
void predict_pipeline(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_gpipe(RunCore&);
std::unique_ptr<Strategy> make_1f1b(RunCore&);
void check_tensor(const Scenario&, ScenarioChecks&);
void predict_tensor(const PredictionBasis&, StepPrediction&);
std::unique_ptr<Strategy> make_tensor(RunCore&);

namespace {

using A = Architecture;
using S = SyncMode;

// The table itself: data, a row per mode, so longer than a function should be.
const std::vector<StrategyEntry>& table() {
  static const std::vector<StrategyEntry> rows = {
      {A::kAllreduce,
       S::kBsp,
       "bsp",
       "gradient -> allreduce -> the same update on every replica; backup_workers: the first "
       "p - b gradients count",
       {"collective", "backup_workers", "aggregation"},
       true,
       true,
       nullptr,
       &predict_allreduce_bsp,
       &make_allreduce_bsp},
      {A::kAllreduce,
       S::kLocalSgd,
       "local-sgd",
       "every worker steps its own replica; the replicas are averaged every local_steps steps",
       {"collective", "local_steps"},
       false,
       false,
       &check_local_sgd,
       &predict_local_sgd,
       &make_local_sgd},
      {A::kParameterServer,
       S::kBsp,
       "bsp",
       "push the gradient's parts to the shards, which average and step; pull the parameters; "
       "backup_workers: the first p - b gradients count",
       {"backup_workers", "aggregation"},
       true,
       true,
       nullptr,
       &predict_ps_bsp,
       &make_ps_bsp},
      {A::kParameterServer,
       S::kAsp,
       "asp",
       "every gradient is applied as it arrives (Downpour)",
       {"staleness_lr", "delay_compensation"},
       true,
       true,
       nullptr,
       &predict_ps_asp,
       &make_ps_asp},
      {A::kParameterServer,
       S::kSsp,
       "ssp",
       "clock by clock, nobody more than `staleness` clocks ahead of the slowest",
       {"staleness", "staleness_lr", "delay_compensation", "aggregation"},
       true,
       true,
       &check_ps_ssp,
       &predict_ps_ssp,
       &make_ps_ssp},
      {A::kParameterServer,
       S::kDelayed,
       "delayed",
       "every gradient computed on parameters exactly `staleness` updates old",
       {"staleness", "staleness_lr", "delay_compensation"},
       true,
       true,
       &check_ps_delayed,
       &predict_ps_delayed,
       &make_ps_delayed},
      {A::kGossip,
       S::kDPsgd,
       "d-psgd",
       "every step, average the replica with the neighbours' (Metropolis-Hastings weights); "
       "with [compression], CHOCO-SGD",
       {"consensus_step"},
       true,
       true,
       nullptr,
       &predict_dpsgd,
       &make_dpsgd},
      {A::kGossip,
       S::kAdPsgd,
       "ad-psgd",
       "asynchronous: average with one random neighbour while computing the gradient",
       {},
       false,
       false,
       nullptr,
       &predict_adpsgd,
       &make_adpsgd},
      {A::kPipeline,
       S::kGPipe,
       "gpipe",
       "the model's layers in stages; all micro-batches forward, then all backward; a flush",
       {"stages", "micro_batches", "stage_layers", "data_parallel", "collective"},
       false,
       false,
       &check_pipeline,
       &predict_pipeline,
       &make_gpipe},
      {A::kPipeline,
       S::k1F1B,
       "1f1b",
       "the model's layers in stages; warm-up, then one forward and one backward in turn, "
       "then a flush (PipeDream-Flush)",
       {"stages", "micro_batches", "stage_layers", "data_parallel", "collective"},
       false,
       false,
       &check_pipeline,
       &predict_pipeline,
       &make_1f1b},
      {A::kTensor,
       S::kBsp,
       "bsp",
       "every layer's weights split among tensor_parallel nodes (Megatron pairs), or the "
       "input's features (data.partition = columns, blocks)",
       {"tensor_parallel", "data_parallel", "collective"},
       false,
       false,
       &check_tensor,
       &predict_tensor,
       &make_tensor},
  };
  return rows;
}

}  // namespace

bool StrategyEntry::reads(std::string_view key) const {
  for (std::string_view k : keys) {
    if (k == key) return true;
  }
  return false;
}

std::span<const StrategyEntry> strategy_table() { return table(); }

std::vector<std::string> modes_reading(std::string_view key) {
  std::vector<std::string> names;
  for (const StrategyEntry& e : table()) {
    if (e.reads(key) && std::find(names.begin(), names.end(), e.name) == names.end()) {
      names.emplace_back(e.name);
    }
  }
  return names;
}

const StrategyEntry* find_strategy(Architecture architecture, SyncMode sync) {
  for (const StrategyEntry& e : table()) {
    if (e.architecture == architecture && e.sync == sync) return &e;
  }
  return nullptr;
}

const StrategyEntry& strategy_of(const StrategyConfig& config) {
  const StrategyEntry* e = find_strategy(config.architecture, config.sync);
  if (e == nullptr) throw std::logic_error("no strategy for this architecture and sync mode");
  return *e;
}

NameTable<Architecture> architecture_names() {
  static constexpr Named<Architecture> kNames[] = {{"allreduce", A::kAllreduce},
                                                   {"ps", A::kParameterServer},
                                                   {"gossip", A::kGossip},
                                                   {"pipeline", A::kPipeline},
                                                   {"tensor", A::kTensor}};
  return kNames;
}

NameTable<SyncMode> sync_mode_names() {
  static const std::vector<Named<SyncMode>> names = [] {
    std::vector<Named<SyncMode>> out;
    for (const StrategyEntry& e : table()) {
      bool seen = false;
      for (const Named<SyncMode>& n : out) seen = seen || n.value == e.sync;
      if (!seen) out.push_back({e.name, e.sync});
    }
    return out;
  }();
  return names;
}

}  // namespace dtsim
