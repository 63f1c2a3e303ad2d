// dtsim validate: checks a scenario (file, data, set-up) without running it, and prints the
// resolved settings.
#include <fmt/format.h>

#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/setup.hpp"
#include "sim/strategies/registry.hpp"

namespace dtsim::app {
namespace {

int validate(const ScenarioOptions& opt) {
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides, /*check_sweep=*/true);
  set_up(scenario, opt, 1);
  fmt::print("{}: ok — \"{}\", {} worker(s), {} architecture, {} [expect] check(s)\n", opt.scenario,
             scenario.name, scenario.cluster.workers, to_string(scenario.strategy.architecture),
             scenario.expect.size());
  for (const auto& [key, value] : resolved_settings(scenario))
    fmt::print("  {} = {}\n", key, value);
  const std::vector<SweepPoint> points = expand_sweep(scenario);
  if (!points.empty()) fmt::print("  [sweep]: {} points\n", points.size());
  // Warnings go to stderr and never change the exit code; a sweep point's only when the base
  // does not have them already.
  const std::vector<std::string> base = print_stability_warnings(scenario, "");
  for (const SweepPoint& point : points) {
    std::vector<std::string> overrides = opt.overrides;
    overrides.insert(overrides.end(), point.overrides.begin(), point.overrides.end());
    print_stability_warnings(load_scenario(opt.scenario, overrides),
                             fmt::format("point {}: ", point.label), base);
  }
  return kExitOk;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
  auto opt = std::make_shared<ScenarioOptions>();
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Check a scenario (file, data, set-up) without running it; errors give file:line:col");
  add_scenario_options(cmd, *opt, 0);
  return {cmd, [opt] { return validate(*opt); }};
}

}  // namespace dtsim::app
