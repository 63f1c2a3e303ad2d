// A scenario made ready to run: its data and a checked training set-up, everything that can
// fail on bad input done before any output is written. Set-up errors name their key's place in
// the scenario file (or the --set it came from).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/options.hpp"
#include "engine/data/dataset.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/trainer.hpp"

namespace dtsim::app {

struct SetUp {
  std::unique_ptr<DatasetPair> data;
  std::unique_ptr<Training> training;
};

SetUp set_up(const Scenario& scenario, const ScenarioOptions& opt, int threads);

// Prints the scenario's stability warnings (sim/train/health.hpp) to stderr, each prefixed
// with `prefix`, except those in `skip`; returns them.
std::vector<std::string> print_stability_warnings(const Scenario& scenario,
                                                  const std::string& prefix,
                                                  const std::vector<std::string>& skip = {});

}  // namespace dtsim::app
