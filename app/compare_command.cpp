// dtsim compare: compare.html from runs that already finished.
#include <fmt/format.h>

#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "reports/compare_report.hpp"

namespace dtsim::app {
namespace {

struct CompareOptions {
  std::vector<std::string> dirs;
  std::string out_dir;
};

int compare(const CompareOptions& opt) {
  std::vector<FinishedRun> runs;
  for (const std::string& d : opt.dirs) {
    FinishedRun run = read_finished_run(d);
    std::filesystem::path folder = std::filesystem::path(d).lexically_normal();
    if (folder.filename().empty()) folder = folder.parent_path();  // "runs/a/"
    run.label = fmt::format("{} ({})", run.name, folder.filename().string());
    runs.push_back(std::move(run));
  }
  const std::filesystem::path out = opt.out_dir.empty() ? std::filesystem::path("runs") / "compare"
                                                        : std::filesystem::path(opt.out_dir);
  create_output_dir(out);
  write_compare_html(out / "compare.html", runs, fmt::format("{} runs compared", runs.size()));
  fmt::print("comparison: {}\n", (out / "compare.html").string());
  return kExitOk;
}

}  // namespace

Command add_compare_command(CLI::App& app) {
  auto opt = std::make_shared<CompareOptions>();
  CLI::App* cmd =
      app.add_subcommand("compare", "A comparison report (compare.html) from finished runs");
  cmd->add_option("dirs", opt->dirs, "Run folders written by dtsim run")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--out", opt->out_dir, "Output folder (default: runs/compare)");
  return {cmd, [opt] { return compare(*opt); }};
}

}  // namespace dtsim::app
