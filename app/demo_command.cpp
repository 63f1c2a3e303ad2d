// dtsim demo: the teaching demos of docs/tutorial.md. `dtsim demo` lists them; `dtsim demo NAME`
// runs one (a run, or a sweep when the file has one) and says where its report is and what to
// look at. A demo is a scenario of scenarios/teaching/ with a [teaching] table.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/process_pool.hpp"
#include "sim/scenario/scenario.hpp"

namespace dtsim::app {
namespace {

namespace fs = std::filesystem;

struct DemoOptions {
  std::string name;
  std::string out_dir;
  int threads = 0;
  bool quiet = false;
  std::vector<std::string> overrides;
};

// Where the demos are: $DTSIM_DEMOS, beside an installed binary (PREFIX/share/dtsim/teaching),
// or this source tree's scenarios/teaching.
fs::path demo_folder() {
  if (const char* env = std::getenv("DTSIM_DEMOS")) return env;
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/dtsim/teaching";
    if (fs::is_directory(installed, ec)) return installed;
  }
  return fs::path(DTSIM_SOURCE_DIR) / "scenarios/teaching";
}

struct Demo {
  std::string name;  // the file's stem
  fs::path file;
  Scenario scenario;
};

// Every scenario of the folder with a [teaching] table, by lesson then name.
std::vector<Demo> demos() {
  const fs::path dir = demo_folder();
  std::vector<Demo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".toml") continue;
    Scenario s = load_scenario(entry.path().string());
    if (s.teaching.lesson == 0) continue;
    out.push_back({entry.path().stem().string(), entry.path(), std::move(s)});
  }
  if (ec) {
    throw InputError({dir.string()}, "demo",
                     fmt::format("cannot read the demos' folder: {} (set DTSIM_DEMOS to "
                                 "scenarios/teaching)",
                                 ec.message()));
  }
  std::sort(out.begin(), out.end(), [](const Demo& a, const Demo& b) {
    return std::pair(a.scenario.teaching.lesson, a.name) <
           std::pair(b.scenario.teaching.lesson, b.name);
  });
  return out;
}

int list_demos() {
  const std::vector<Demo> all = demos();
  fmt::print("demos (dtsim demo NAME [-o DIR]; the lessons are docs/tutorial.md's):\n");
  for (const Demo& d : all) {
    fmt::print(
        "  lesson {:<3} {:<16} {}{}\n", d.scenario.teaching.lesson, d.name, d.scenario.name,
        d.scenario.sweep.empty() ? "" : fmt::format(" ({} runs)", expand_sweep(d.scenario).size()));
  }
  return kExitOk;
}

int run_demo(const DemoOptions& opt, const char* self) {
  const std::vector<Demo> all = demos();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const Demo& d) { return d.name == opt.name; });
  if (it == all.end()) {
    std::string names;
    for (const Demo& d : all) names += (names.empty() ? "" : ", ") + d.name;
    throw InputError({}, "demo", fmt::format("no demo \"{}\"; the demos are: {}", opt.name, names));
  }
  const Demo& d = *it;
  const bool sweep = !d.scenario.sweep.empty();
  const fs::path out = opt.out_dir.empty() ? fs::path("runs") / d.name : fs::path(opt.out_dir);
  Job job{
      "/proc/self/exe", {self, sweep ? "sweep" : "run", d.file.string(), "-o", out.string()}, ""};
  if (opt.threads > 0) job.argv.insert(job.argv.end(), {"--threads", std::to_string(opt.threads)});
  if (opt.quiet) job.argv.push_back("--quiet");
  for (const std::string& o : opt.overrides) job.argv.insert(job.argv.end(), {"--set", o});
  fmt::print("demo {} (lesson {}): {}\n", d.name, d.scenario.teaching.lesson, d.scenario.name);
  std::fflush(stdout);
  int code = kExitInternal;
  run_jobs({job}, 1,
           [&code](std::size_t, JobEnd end) { code = end.signaled ? kExitInternal : end.code; });
  if (code == kExitBadInput || code == kExitInternal) return code;
  fmt::print("\nreport: {}\n", (out / (sweep ? "compare.html" : "report.html")).string());
  fmt::print("what to look at:\n");
  for (const std::string& item : d.scenario.teaching.look_at) fmt::print("  - {}\n", item);
  if (code == kExitRunFailed) {
    fmt::print("(exit {}: some runs are unhealthy, which this demo shows on purpose)\n", code);
  }
  return code;
}

}  // namespace

Command add_demo_command(CLI::App& app, const char* self) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd =
      app.add_subcommand("demo", "The tutorial's demos: list them, or run one (docs/tutorial.md)");
  cmd->add_option("name", opt->name, "The demo to run (none: list them)");
  cmd->add_option("-o,--out", opt->out_dir, "Output folder (default: runs/NAME)");
  cmd->add_option("--threads", opt->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("-q,--quiet", opt->quiet, "No progress output");
  cmd->add_option("--set", opt->overrides, "Override a scenario key: key.path=value (repeatable)");
  return {cmd, [opt, self] { return opt->name.empty() ? list_demos() : run_demo(*opt, self); }};
}

}  // namespace dtsim::app
