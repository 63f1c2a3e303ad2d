// dtsim sweep: every point of the scenario's [sweep] grid into its own folder, as separate
// `dtsim run` processes (several at a time where cores allow: a point's files do not depend
// on its thread count), then compare.html.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <thread>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/process_pool.hpp"
#include "reports/compare_report.hpp"
#include "sim/scenario/scenario.hpp"

namespace dtsim::app {
namespace {

struct SweepOptions {
  ScenarioOptions scenario;
  int jobs = 0;
};

std::string folder_safe(const std::string& label) {
  std::string out;
  for (char c : label)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '=' || c == '-') ? c : '_';
  return out;
}

// A fresh folder per point: nothing from an earlier sweep may sit beside this run's files.
std::filesystem::path fresh_point_dir(const std::filesystem::path& out, std::size_t i,
                                      const SweepPoint& point) {
  const std::filesystem::path dir =
      out / fmt::format("{:02}-{}", i + 1, folder_safe(point.label).substr(0, 200));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw InputError({dir.string()}, "-o",
                     fmt::format("cannot create the folder: {}", ec.message()));
  return dir;
}

// The point's line in compare.html: its run, or why it failed.
FinishedRun finished_point(const std::filesystem::path& dir, int code, const SweepPoint& point) {
  FinishedRun run;
  if (code == kExitBadInput || code == kExitInternal) {
    run.failed = fmt::format("failed (exit {}; see {}/run.log)", code, dir.filename().string());
  } else {
    run = read_finished_run(dir);
  }
  run.label = point.label;
  return run;
}

int sweep(const SweepOptions& opt, const char* self) {
  const ScenarioOptions& so = opt.scenario;
  const Scenario scenario = load_scenario(so.scenario, overrides_of(so), /*check_sweep=*/true);
  const std::vector<SweepPoint> points = expand_sweep(scenario);
  if (points.empty()) {
    throw InputError({so.scenario}, "sweep",
                     "this scenario has no [sweep] section: add one, e.g. [sweep] "
                     "\"strategy.collective\" = [\"ring\", \"tree\"]");
  }
  const std::filesystem::path out = output_dir(so, "-sweep");
  const int cores = threads_or_cores(0);
  const int parallel =
      std::max(1, std::min<int>(opt.jobs > 0 ? opt.jobs : cores, static_cast<int>(points.size())));
  const int threads = so.threads > 0 ? so.threads : std::max(1, cores / parallel);
  fmt::print("sweep: {} points, {} at a time, {} thread(s) each, into {}/\n", points.size(),
             parallel, threads, out.string());
  std::fflush(stdout);
  std::vector<Job> jobs;
  std::vector<std::filesystem::path> dirs;
  for (std::size_t i = 0; i < points.size(); ++i) {
    dirs.push_back(fresh_point_dir(out, i, points[i]));
    Job job{"/proc/self/exe",
            {self, "run", so.scenario, "-o", dirs[i].string(), "--threads", std::to_string(threads),
             "-q"},
            (dirs[i] / "run.log").string()};
    for (const auto& o : overrides_of(so)) job.argv.insert(job.argv.end(), {"--set", o});
    for (const auto& o : points[i].overrides) job.argv.insert(job.argv.end(), {"--set", o});
    jobs.push_back(std::move(job));
  }
  std::vector<int> codes(points.size(), kExitInternal);
  run_jobs(jobs, parallel, [&](std::size_t i, JobEnd end) {
    codes[i] = end.signaled ? kExitInternal : end.code;
    std::string how = "done";
    if (end.signaled) {
      how = fmt::format("killed by signal {}", end.code);
    } else if (end.code != kExitOk) {
      how = fmt::format("exit {} (see {})", end.code, jobs[i].log);
    }
    if (!so.quiet || end.code != kExitOk || end.signaled) {
      fmt::print("point {}/{} {}: {}\n", i + 1, points.size(), points[i].label, how);
      std::fflush(stdout);
    }
  });
  std::vector<FinishedRun> runs;
  for (std::size_t i = 0; i < points.size(); ++i) {
    runs.push_back(finished_point(dirs[i], codes[i], points[i]));
  }
  write_compare_html(out / "compare.html", runs, scenario.name);
  fmt::print("comparison: {}\n", (out / "compare.html").string());
  return *std::max_element(codes.begin(), codes.end());
}

}  // namespace

Command add_sweep_command(CLI::App& app, const char* self) {
  auto opt = std::make_shared<SweepOptions>();
  CLI::App* cmd = app.add_subcommand("sweep",
                                     "Run every point of the scenario's [sweep] grid into its "
                                     "own folder, then write compare.html");
  add_scenario_options(cmd, opt->scenario, kOut | kThreads | kQuiet | kNoTrace,
                       "Output folder (default: runs/<scenario file name>-sweep)");
  cmd->get_option("--threads")->description("Threads per point (default: cores / --jobs)");
  cmd->get_option("--quiet")->description("Print only the points that fail, and the comparison");
  cmd->add_option("-j,--jobs", opt->jobs, "Points run at once (default: one per core)")
      ->check(CLI::Range(1, 256));
  return {cmd, [opt, self] { return sweep(*opt, self); }};
}

}  // namespace dtsim::app
