// The commands of `dtsim`, one file each: each registers its subcommand and options on the
// command line and returns what runs when it is chosen.
#pragma once

#include "app/options.hpp"

namespace dtsim::app {

Command add_run_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
Command add_explain_command(CLI::App& app);
// `self`: this program, to start the sweep's points.
Command add_sweep_command(CLI::App& app, const char* self);
Command add_compare_command(CLI::App& app);
Command add_list_command(CLI::App& app);
Command add_collective_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
// `self`: this program, to run the demo's scenario.
Command add_demo_command(CLI::App& app, const char* self);
Command add_emulate_command(CLI::App& app);
Command add_calibrate_command(CLI::App& app);

}  // namespace dtsim::app
