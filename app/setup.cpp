#include "app/setup.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "sim/train/health.hpp"

namespace dtsim::app {
namespace {

// Errors found after loading (partitions, model shapes) name a key but no place: find the key
// in the scenario file so the message still says file:line:col.
InputError placed(const InputError& e, const ScenarioOptions& opt) {
  if (!e.place().file.empty()) return e;
  for (auto o = opt.overrides.rbegin(); o != opt.overrides.rend(); ++o) {  // the last one wins
    if (o->rfind(e.key() + "=", 0) == 0) return InputError({"--set " + *o}, e.key(), e.message());
  }
  return InputError(locate_key(opt.scenario, e.key()), e.key(), e.message());
}

}  // namespace

SetUp set_up(const Scenario& scenario, const ScenarioOptions& opt, int threads) {
  SetUp s;
  try {
    s.data = std::make_unique<DatasetPair>(load_data(scenario));
    s.training = std::make_unique<Training>(scenario, *s.data, threads);
  } catch (const DatasetError&) {
    throw;
  } catch (const InputError& e) {
    throw placed(e, opt);
  }
  return s;
}

std::vector<std::string> print_stability_warnings(const Scenario& scenario,
                                                  const std::string& prefix,
                                                  const std::vector<std::string>& skip) {
  std::vector<std::string> warnings = stability_warnings(scenario);
  for (const std::string& w : warnings) {
    if (std::find(skip.begin(), skip.end(), w) == skip.end()) {
      fmt::print(stderr, "dtsim: warning: {}{}\n", prefix, w);
    }
  }
  return warnings;
}

}  // namespace dtsim::app
