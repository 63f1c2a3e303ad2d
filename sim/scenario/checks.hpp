// Cross-checks of a loaded scenario: combinations of keys that cannot work, each reported
// where the key is written. Strategies add their own through their row of the strategy table
// (sim/strategies/registry.hpp).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "engine/errors.hpp"

namespace dtsim {

struct Scenario;

class ScenarioChecks {
 public:
  virtual ~ScenarioChecks() = default;
  // An error about `key` (a dotted path), placed where the first of `at` that is written in
  // the file (or given with --set) is, or where `key` is when `at` is empty; the file itself
  // when none is written.
  virtual void error(const std::string& key, const std::string& message,
                     std::initializer_list<std::string_view> at = {}) = 0;
  // An error placed at `place` (a [[faults]] or [[cluster.group]] entry).
  virtual void error_at(const SourcePlace& place, const std::string& key,
                        const std::string& message) = 0;
  // The scenario's sync mode needs strategy.`key` and does not have it: "missing: sync = X
  // needs WHAT", placed at the sync mode.
  void need(bool missing, std::string_view key, std::string_view what);

 protected:
  // The scenario being checked.
  virtual const Scenario& scenario() const = 0;
};

}  // namespace dtsim
