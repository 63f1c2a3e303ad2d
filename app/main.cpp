// The dtsim command line: the one place that wires engine, sim and reports together, and the
// only place that chooses exit codes (app/exit_codes.hpp). Each command is in its own file
// (app/commands.hpp).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <vector>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "engine/blas_setup.hpp"
#include "engine/float_env.hpp"
#include "engine/kernels.hpp"
#include "sim/des/sim_time.hpp"
#include "sim/scenario/scenario.hpp"

int main(int argc, char** argv) {
  using namespace dtsim::app;
  dtsim::select_blas_kernels(argv);
  dtsim::use_single_threaded_blas();
  dtsim::flush_denormals_to_zero();
  CLI::App app{
      "dtsim: a simulator of distributed deep-learning training. Nodes really compute (real "
      "loss and accuracy); time is virtual, from a model of compute speed and network.\n"
      "Exit codes: 0 ok, 1 the run was not healthy (exploded, collapsed, non-finite) or an "
      "[expect] check failed, 2 bad input, 3 internal "
      "error."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dtsim " DTSIM_VERSION);
  const std::vector<Command> commands = {
      add_run_command(app),        add_validate_command(app), add_sweep_command(app, argv[0]),
      add_compare_command(app),    add_explain_command(app),  add_list_command(app),
      add_collective_command(app), add_bench_command(app),    add_demo_command(app, argv[0]),
      add_emulate_command(app),    add_calibrate_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitBadInput;
  }
  try {
    for (const Command& c : commands) {
      if (c.cli->parsed()) return c.run();
    }
  } catch (const dtsim::ScenarioError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  } catch (const dtsim::InputError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitBadInput;
  } catch (const dtsim::SimTimeOverflow& e) {
    fmt::print(stderr, "dtsim: {}\n", e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    fmt::print(stderr, "dtsim: internal error: {}\n", e.what());
    return kExitInternal;
  }
  return kExitInternal;
}
