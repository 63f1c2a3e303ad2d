// dtsim explain: what a scenario implies, before running it.
#include <fmt/format.h>

#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/setup.hpp"
#include "sim/train/explain.hpp"

namespace dtsim::app {
namespace {

int explain_scenario(const ScenarioOptions& opt) {
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides);
  const SetUp ready = set_up(scenario, opt, 1);  // the same checks as a run
  const Explanation e = explain(scenario, *ready.data);
  fmt::print("{}\n", scenario.name);
  for (const auto& [what, value] : e.lines) fmt::print("  {:<46} {}\n", what, value);
  return kExitOk;
}

}  // namespace

Command add_explain_command(CLI::App& app) {
  auto opt = std::make_shared<ScenarioOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "What a scenario implies before running it: parameters, FLOPs and bytes per step, "
      "compute and (alpha-beta) communication time, the expected bottleneck");
  add_scenario_options(cmd, *opt, 0);
  return {cmd, [opt] { return explain_scenario(*opt); }};
}

}  // namespace dtsim::app
