// The strategy table: one row per (architecture, sync mode), with its name, the keys it reads,
// its checks, its prediction for `dtsim explain`, and the factory of its node programs.
//
// Everything that depends on the sync mode reads this table: scenario validation and the
// resolved settings (sim/scenario/), `dtsim list`, `dtsim explain` and the run itself
// (sim/train/). Adding a sync mode means one new file under sim/strategies/ (its Strategy
// class and its hooks), its enum value (sim/scenario/strategy_config.hpp) and its row here
// (registry.cpp); nothing else changes. docs/simulator.md, "Adding a sync mode".
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/names.hpp"
#include "sim/scenario/strategy_config.hpp"

namespace dtsim {

struct Scenario;
class ScenarioChecks;
struct PredictionBasis;
struct StepPrediction;
class RunCore;
class Strategy;

struct StrategyEntry {
  Architecture architecture;
  SyncMode sync;
  const char* name;     // the sync mode as scenarios write it
  const char* summary;  // one line, for `dtsim list`
  // The strategy.* keys it reads besides architecture, sync and time_only, in the order the
  // resolved settings show them.
  std::vector<std::string_view> keys;
  // [compression] applies to it (robust aggregation rules: to the modes that read
  // "aggregation").
  bool takes_compression;
  // A worker may crash or restart ([[faults]] kind = crash, restart): the others detect it
  // after strategy.failure_timeout and go on without it (docs/faults.md).
  bool survives_crash;
  // Errors for settings it cannot run with (keys it needs, limits); may be null.
  void (*check)(const Scenario& scenario, ScenarioChecks& checks);
  // Its communication and update time per step, uncontended (sim/train/explain.hpp).
  void (*predict)(const PredictionBasis& basis, StepPrediction& out);
  // Its state and node programs for one run; may throw InputError.
  std::unique_ptr<Strategy> (*make)(RunCore& core);

  bool reads(std::string_view key) const;
};

// Every row, grouped by architecture.
std::span<const StrategyEntry> strategy_table();
// The row of (architecture, sync), or null when that architecture does not run that mode.
const StrategyEntry* find_strategy(Architecture architecture, SyncMode sync);
// The row of a checked scenario's strategy. Throws std::logic_error when there is none.
const StrategyEntry& strategy_of(const StrategyConfig& config);

// The names of the sync modes that read strategy.`key` ("bsp", once even if several
// architectures run it), in table order.
std::vector<std::string> modes_reading(std::string_view key);

NameTable<Architecture> architecture_names();
// The sync modes' names, from the table (a name run by several architectures appears once).
NameTable<SyncMode> sync_mode_names();
inline const char* to_string(Architecture a) { return name_of(architecture_names(), a); }
inline const char* to_string(SyncMode mode) { return name_of(sync_mode_names(), mode); }

}  // namespace dtsim
