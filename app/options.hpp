// What the commands share: the options of a command that reads a scenario, registered the
// same way on each, and helpers for values with units and for output folders.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/errors.hpp"
#include "engine/names.hpp"
#include "sim/des/units.hpp"

namespace dtsim::app {

// A subcommand, and what it does when chosen (its exit code).
struct Command {
  CLI::App* cli = nullptr;
  std::function<int()> run;
};

struct ScenarioOptions {
  std::string scenario;
  std::string out_dir;                 // -o; empty: the command's default
  int threads = 0;                     // 0: all cores
  bool quiet = false;                  // no progress on stderr
  bool no_trace = false;               // --no-trace: as --set output.trace=false
  std::vector<std::string> overrides;  // --set key.path=value
};

// Which of the common options a command takes, besides the scenario file and --set.
enum Flags : unsigned { kOut = 1, kThreads = 2, kQuiet = 4, kNoTrace = 8 };

// Registers the scenario file argument, --set, and the chosen common flags.
void add_scenario_options(CLI::App* cmd, ScenarioOptions& opt, unsigned flags,
                          const std::string& out_help = "Output folder");

// The --set overrides, with output.trace=false last when --no-trace was given.
std::vector<std::string> overrides_of(const ScenarioOptions& opt);

// --threads, or all cores.
int threads_or_cores(int threads);
// The output folder: -o, or runs/<scenario file name><suffix>.
std::filesystem::path output_dir(const ScenarioOptions& opt, const std::string& suffix = "");
// Creates `dir` (and its parents); throws InputError naming -o.
void create_output_dir(const std::filesystem::path& dir);

// A command-line quantity with a unit ("100MB", "50us"); errors name the option.
template <typename Parse>
auto parse_option(const std::string& option, const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const UnitError& e) {
    throw InputError({}, option, e.what());
  }
}

// A command-line choice checked against an enum's name table.
template <typename Enum>
CLI::Option* add_choice(CLI::App* cmd, const std::string& name, std::string& value,
                        NameTable<Enum> choices, const std::string& help) {
  return cmd->add_option(name, value, help + ": " + joined_names(choices, " | "))
      ->check(CLI::IsMember(names_of(choices)));
}

}  // namespace dtsim::app
