// dtsim explain: what a scenario implies, before running it.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// One [sweep] point's prediction: a row of the compact table.
struct PointPrediction {
  std::string label;
  Explanation e;
};

std::vector<PointPrediction> explain_points(const Scenario& scenario, const ExplainOptions& opt) {
  std::vector<PointPrediction> out;
  for (const SweepPoint& point : expand_sweep(scenario)) {
    ScenarioOptions o = opt.scenario;
    o.overrides.insert(o.overrides.end(), point.overrides.begin(), point.overrides.end());
    const Scenario s = load_scenario(o.scenario, o.overrides);
    const SetUp ready = set_up(s, o, 1);
    out.push_back({point.label, explain(s, *ready.data)});
  }
  return out;
}

int explain_scenario(const ExplainOptions& opt) {
  const Scenario scenario = load_scenario(opt.scenario.scenario, opt.scenario.overrides);
  const SetUp ready = set_up(scenario, opt.scenario, 1);  // the same checks as a run
  const Explanation e = explain(scenario, *ready.data);
  print_stability_warnings(scenario, "");
  const std::vector<PointPrediction> points = explain_points(scenario, opt);
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
    if (!points.empty()) {
      nlohmann::ordered_json rows = nlohmann::ordered_json::array();
      for (const PointPrediction& p : points) {
        rows.push_back({{"label", p.label},
                        {"predicted_step_s", p.e.step_s},
                        {"predicted_virtual_time_s", p.e.run_s},
                        {"steps", p.e.steps},
                        {"compute_s", p.e.compute_s},
                        {"communicate_s", p.e.communicate_s},
                        {"bottleneck", p.e.bottleneck}});
      }
      j["points"] = rows;
    }
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  fmt::print("{}{}\n", scenario.name, points.empty() ? "" : " (the base point)");
  for (const auto& [what, value] : e.lines) fmt::print("  {:<46} {}\n", what, value);
  if (!points.empty()) {
    // The [sweep]'s points, one line each.
    std::size_t width = 5;
    for (const PointPrediction& p : points) width = std::max(width, p.label.size());
    fmt::print("\n[sweep]: {} points, predicted\n", points.size());
    fmt::print("  {:<{}}  {:>10}  {:>10}  {:>12}  {:>7}  {:>12}  {}\n", "point", width, "step",
               "compute", "communicate", "steps", "run", "bottleneck");
    for (const PointPrediction& p : points) {
      fmt::print("  {:<{}}  {:>10}  {:>10}  {:>12}  {:>7}  {:>12}  {}\n", p.label, width,
                 format_seconds(p.e.step_s), format_seconds(p.e.compute_s),
                 format_seconds(p.e.communicate_s), p.e.steps, format_seconds(p.e.run_s),
                 p.e.bottleneck);
    }
  }
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
