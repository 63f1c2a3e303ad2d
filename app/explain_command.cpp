// dtsim explain: what a scenario implies, before running it.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/setup.hpp"
#include "sim/train/explain.hpp"

namespace dtsim::app {
namespace {

struct ExplainOptions {
  ScenarioOptions scenario;
  bool json = false;
};

int explain_scenario(const ExplainOptions& opt) {
  const Scenario scenario = load_scenario(opt.scenario.scenario, opt.scenario.overrides);
  const SetUp ready = set_up(scenario, opt.scenario, 1);  // the same checks as a run
  const Explanation e = explain(scenario, *ready.data);
  print_stability_warnings(scenario, "");
  if (!scenario.sweep.empty()) {
    fmt::print(stderr,
               "dtsim: note: this explains the base point of the scenario's [sweep] of {} "
               "points; add a point's keys with --set to explain it\n",
               expand_sweep(scenario).size());
  }
  if (opt.json) {
    nlohmann::ordered_json j;
    j["name"] = scenario.name;
    j["predicted_step_s"] = e.step_s;
    j["predicted_virtual_time_s"] = e.run_s;
    j["steps"] = e.steps;
    j["compute_s"] = e.compute_s;
    j["communicate_s"] = e.communicate_s;
    j["bottleneck"] = e.bottleneck;
    nlohmann::ordered_json lines = nlohmann::ordered_json::array();
    for (const auto& [what, value] : e.lines) lines.push_back({{"what", what}, {"value", value}});
    j["lines"] = lines;
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  fmt::print("{}\n", scenario.name);
  for (const auto& [what, value] : e.lines) fmt::print("  {:<46} {}\n", what, value);
  return kExitOk;
}

}  // namespace

Command add_explain_command(CLI::App& app) {
  auto opt = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "What a scenario implies before running it: parameters, FLOPs and bytes per step, "
      "compute and (alpha-beta) communication time, the expected bottleneck");
  add_scenario_options(cmd, opt->scenario, 0);
  cmd->add_flag("--json", opt->json,
                "Print one JSON object: predicted_step_s, predicted_virtual_time_s, bottleneck, "
                "compute_s, communicate_s, steps and every line");
  return {cmd, [opt] { return explain_scenario(*opt); }};
}

}  // namespace dtsim::app
