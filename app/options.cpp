#include "app/options.hpp"

#include <fmt/format.h>

#include <thread>

namespace dtsim::app {

void add_scenario_options(CLI::App* cmd, ScenarioOptions& opt, unsigned flags,
                          const std::string& out_help) {
  cmd->add_option("scenario", opt.scenario, "Scenario file (TOML)")->required();
  if ((flags & kOut) != 0) cmd->add_option("-o,--out", opt.out_dir, out_help);
  if ((flags & kThreads) != 0) {
    cmd->add_option("--threads", opt.threads, "Worker threads for jobs (default: all cores)")
        ->check(CLI::Range(1, 1024));
  }
  if ((flags & kQuiet) != 0) cmd->add_flag("-q,--quiet", opt.quiet, "No progress lines on stderr");
  if ((flags & kNoTrace) != 0) {
    cmd->add_flag("--no-trace", opt.no_trace,
                  "Do not write trace.json (as --set output.trace=false)");
  }
  cmd->add_option("--set", opt.overrides,
                  "Override a scenario key: --set train.lr=0.1 --set strategy.collective=tree "
                  "(repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

std::vector<std::string> overrides_of(const ScenarioOptions& opt) {
  std::vector<std::string> out = opt.overrides;
  if (opt.no_trace) out.push_back("output.trace=false");
  return out;
}

int threads_or_cores(int threads) {
  return threads > 0 ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::filesystem::path output_dir(const ScenarioOptions& opt, const std::string& suffix) {
  if (!opt.out_dir.empty()) return opt.out_dir;
  return std::filesystem::path("runs") /
         (std::filesystem::path(opt.scenario).stem().string() + suffix);
}

void create_output_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw InputError({dir.string(), 0, 0}, "-o",
                     fmt::format("cannot create the output folder: {}", ec.message()));
  }
}

}  // namespace dtsim::app
