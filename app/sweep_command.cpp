// dtsim sweep: every point of the scenario's [sweep] grid into its own folder, as separate
// `dtsim run` processes (several at a time where cores allow: a point's files do not depend
// on its thread count), then compare.html. With --mpi the points are handed out to MPI ranks
// (app/mpi_pool.hpp); with --emit slurm nothing runs: each point becomes a scenario file and a
// Slurm job array runs them.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <thread>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/mpi_pool.hpp"
#include "app/process_pool.hpp"
#include "reports/atomic_file.hpp"
#include "reports/compare_report.hpp"
#include "sim/scenario/scenario.hpp"

namespace dtsim::app {
namespace {

struct SweepOptions {
  ScenarioOptions scenario;
  int jobs = 0;
  bool mpi = false;
  bool gather = false;  // --mpi: the points' files sent to rank 0, not on a shared folder
  std::string emit;     // "slurm", or empty
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

std::filesystem::path point_dir(const std::filesystem::path& out, std::size_t i,
                                const SweepPoint& point) {
  return out / fmt::format("{:02}-{}", i + 1, folder_safe(point.label).substr(0, 200));
}

// The `dtsim run` of each point, into its folder.
std::vector<Job> point_jobs(const ScenarioOptions& so, const std::vector<SweepPoint>& points,
                            const std::filesystem::path& out, int threads, const char* self) {
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::filesystem::path dir = point_dir(out, i, points[i]);
    Job job{
        "/proc/self/exe",
        {self, "run", so.scenario, "-o", dir.string(), "--threads", std::to_string(threads), "-q"},
        (dir / "run.log").string()};
    for (const auto& o : overrides_of(so)) job.argv.insert(job.argv.end(), {"--set", o});
    for (const auto& o : points[i].overrides) job.argv.insert(job.argv.end(), {"--set", o});
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// --emit slurm: each point as a scenario file, and a job array that runs them.
int emit_slurm(const SweepOptions& opt, const Scenario& scenario,
               const std::vector<SweepPoint>& points, const char* self) {
  const ScenarioOptions& so = opt.scenario;
  const std::filesystem::path out = std::filesystem::absolute(output_dir(so, "-sweep"));
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) throw InputError({out.string()}, "-o", fmt::format("cannot create it: {}", ec.message()));
  std::string names;
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::vector<std::string> overrides = overrides_of(so);
    overrides.insert(overrides.end(), points[i].overrides.begin(), points[i].overrides.end());
    const std::string name = point_dir(out, i, points[i]).filename().string();
    write_file_atomically(out / (name + ".toml"), scenario_point_text(so.scenario, overrides));
    names += fmt::format(" \"{}\"", name);
  }
  std::error_code self_ec;
  const std::filesystem::path exe = std::filesystem::canonical("/proc/self/exe", self_ec);
  const std::string script = fmt::format(
      "#!/bin/bash\n"
      "# The points of {} as a Slurm job array: sbatch {}\n"
      "# When they have run: dtsim compare {}/*/ -o {}\n"
      "#SBATCH --job-name=dtsim-sweep\n"
      "#SBATCH --array=1-{}\n"
      "#SBATCH --cpus-per-task={}\n"
      "set -euo pipefail\n"
      "cd \"{}\"\n"
      "points=({})\n"
      "p=\"${{points[$((SLURM_ARRAY_TASK_ID - 1))]}}\"\n"
      "\"${{DTSIM:-{}}}\" run \"$p.toml\" -o \"$p\" --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" -q "
      ">\"$p.log\" 2>&1\n",
      so.scenario, (out / "sweep.slurm").string(), out.string(), out.string(), points.size(),
      so.threads > 0 ? so.threads : 1, out.string(), names,
      self_ec ? std::string(self) : exe.string());
  write_file_atomically(out / "sweep.slurm", script);
  fmt::print("sweep: {} points of \"{}\" as scenario files and a job array in {}/\n", points.size(),
             scenario.name, out.string());
  fmt::print("run them: sbatch {}\nthen: dtsim compare {}/*/ -o {}\n",
             (out / "sweep.slurm").string(), out.string(), out.string());
  return kExitOk;
}

// Runs the points (locally, or over MPI ranks), then writes compare.html; returns the worst
// exit code (on rank 0; the other ranks return 0).
int run_points(const SweepOptions& opt, const Scenario& scenario,
               const std::vector<SweepPoint>& points, const char* self) {
  const ScenarioOptions& so = opt.scenario;
  const std::filesystem::path out = output_dir(so, "-sweep");
  std::unique_ptr<MpiSession> mpi;
  if (opt.mpi) mpi = std::make_unique<MpiSession>();
  const bool lead = mpi == nullptr || mpi->rank() == 0;
  const int cores = threads_or_cores(0);
  const int parallel = mpi ? 1
                           : std::max(1, std::min<int>(opt.jobs > 0 ? opt.jobs : cores,
                                                       static_cast<int>(points.size())));
  const int threads = so.threads > 0 ? so.threads : mpi ? 1 : std::max(1, cores / parallel);
  if (lead) {
    if (mpi) {
      fmt::print(
          "sweep: {} points over {} MPI rank(s) ({} running points), {} thread(s) each, "
          "into {}/\n",
          points.size(), mpi->size(), std::max(1, mpi->size() - 1), threads, out.string());
    } else {
      fmt::print("sweep: {} points, {} at a time, {} thread(s) each, into {}/\n", points.size(),
                 parallel, threads, out.string());
    }
    std::fflush(stdout);
    for (std::size_t i = 0; i < points.size(); ++i) fresh_point_dir(out, i, points[i]);
  }
  if (mpi) mpi->barrier();  // the folders exist before any rank runs a point
  // With --gather a rank runs its points in a folder of its own machine, and sends the files.
  const std::filesystem::path local =
      std::filesystem::temp_directory_path() /
      fmt::format("dtsim-gather-{}-{}", static_cast<long>(::getpid()), mpi ? mpi->rank() : 0);
  const std::vector<Job> jobs =
      point_jobs(so, points, opt.gather && !lead ? local : out, threads, self);
  const Gather gather{[&](std::size_t i) { return point_dir(local, i, points[i]); },
                      [&](std::size_t i) { return point_dir(out, i, points[i]); }};
  std::vector<int> codes(points.size(), kExitInternal);
  const auto done = [&](std::size_t i, JobEnd end) {
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
  };
  if (mpi) {
    mpi_run_jobs(*mpi, jobs, done, opt.gather ? &gather : nullptr);
    if (opt.gather && !lead) {
      std::error_code ec;
      std::filesystem::remove_all(local, ec);
    }
  } else {
    run_jobs(jobs, parallel, done);
  }
  if (!lead) return kExitOk;
  std::vector<FinishedRun> runs;
  for (std::size_t i = 0; i < points.size(); ++i) {
    runs.push_back(finished_point(point_dir(out, i, points[i]), codes[i], points[i]));
  }
  write_compare_html(out / "compare.html", runs, scenario.name);
  fmt::print("comparison: {}\n", (out / "compare.html").string());
  return *std::max_element(codes.begin(), codes.end());
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
  if (!opt.emit.empty()) return emit_slurm(opt, scenario, points, self);
  if (opt.gather && !opt.mpi) {
    throw InputError({}, "--gather", "--gather sends the points' files over MPI: add --mpi");
  }
  return run_points(opt, scenario, points, self);
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
  cmd->add_flag("--mpi", opt->mpi,
                "Hand the points out to MPI ranks (run under mpirun or srun; rank 0 hands out, "
                "the others run; -o must be on a file system every rank sees)");
  cmd->add_flag("--gather", opt->gather,
                "With --mpi: each rank runs its points in a folder of its own machine and sends "
                "their files to rank 0, which writes them into -o (no shared file system needed)");
  cmd->add_option("--emit", opt->emit,
                  "Run nothing: write each point as a scenario file and a Slurm job array "
                  "(sweep.slurm) into -o")
      ->check(CLI::IsMember({"slurm"}));
  return {cmd, [opt, self] { return sweep(*opt, self); }};
}

}  // namespace dtsim::app
