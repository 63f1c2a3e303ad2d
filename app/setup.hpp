// A scenario made ready to run: its data and a checked training set-up, everything that can
// fail on bad input done before any output is written. Set-up errors name their key's place in
// the scenario file (or the --set it came from).
#pragma once

#include <memory>

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

}  // namespace dtsim::app
