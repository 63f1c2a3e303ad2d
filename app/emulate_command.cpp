// dtsim emulate: runs a scenario's workers (and server shards) as MPI ranks, one each, with the
// simulation's training core and exchange (sim/emulate/emulation.hpp), then simulates the
// same scenario on rank 0 and compares: time per step, compute and communication shares,
// final accuracy and the final parameters.
//
// Outputs (rank 0): the measured run in DIR (metrics.csv, nodes.csv, layers.csv, summary.json
// with its "emulation" comparison, report.html with a section on it; measured wall time where
// a run has virtual time), and the simulated run in DIR/simulated/ (as `dtsim run` writes it).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/mpi_pool.hpp"
#include "app/mpi_transport.hpp"
#include "app/setup.hpp"
#include "reports/html_report.hpp"
#include "reports/run_writer.hpp"
#include "reports/trace_writer.hpp"
#include "sim/emulate/emulation.hpp"
#include "sim/train/health.hpp"

namespace dtsim::app {
namespace {

struct EmulateOptionsCli {
  ScenarioOptions scenario;
  bool mpi_allreduce = false;
};

#ifdef DTSIM_HAVE_MPI
// Writes a run's files into `dir` (no trace: a measured run has no events to show).
void write_run(const std::filesystem::path& dir, const Scenario& s, const RunResult& r,
               const std::vector<TimelineSpan>& timeline = {}) {
  MetricsCsvWriter metrics(dir);
  for (const EvalPoint& p : r.evals) metrics.append(p);
  metrics.commit();
  write_nodes_csv(dir, r);
  write_layers_csv(dir, r);
  write_summary_json(dir, s, r);
  write_report_html(dir, s, r, timeline);
}

std::string milliseconds(double s) { return fmt::format("{:.3g} ms", s * 1e3); }
#endif

int emulate_run(const EmulateOptionsCli& cli) {
#ifndef DTSIM_HAVE_MPI
  (void)cli;
  throw InputError({}, "emulate",
                   "this dtsim was built without MPI: install libopenmpi-dev and openmpi-bin "
                   "(scripts/setup does) and build again");
#else
  const auto wall_start = std::chrono::steady_clock::now();
  const ScenarioOptions& opt = cli.scenario;
  MpiSession mpi;
  MpiTransport transport;
  const bool lead = mpi.rank() == 0;
  EmulateOptions options;
  options.library_allreduce = cli.mpi_allreduce;
  // Every rank reads the scenario and its data, and they agree on whether all could: rank 0
  // says what went wrong (or a rank whose error rank 0 did not have), then all exit 2
  // together (mpirun would cut rank 0 short if another rank exited first).
  std::optional<Scenario> scenario;
  SetUp ready;
  std::filesystem::path dir;
  std::string error;
  try {
    scenario.emplace(load_scenario(opt.scenario, overrides_of(opt)));
    const std::string problem = emulation_problem(*scenario, mpi.size(), options);
    if (!problem.empty()) throw InputError({opt.scenario}, "emulate", problem);
    ready = set_up(*scenario, opt, threads_or_cores(opt.threads));
    dir = output_dir(opt, "-emulated");
    if (lead) create_output_dir(dir);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (some_rank_failed(transport, error)) return kExitBadInput;
  if (lead && !opt.quiet) {
    fmt::print(stderr, "dtsim: emulating {} on {} MPI ranks ({}), {} train samples of {}\n",
               scenario->name, mpi.size(), emulation_exchange(*scenario, options),
               ready.data->train.samples(), scenario->data.dataset);
  }
  Emulated emulated;
  try {
    emulated = emulate(*scenario, *ready.data, transport, options);
  } catch (const std::exception& e) {
    // The other ranks would wait for this one's messages for ever: end them all.
    fmt::print(stderr, "dtsim: emulate: rank {}: {}\n", mpi.rank(), e.what());
    mpi.abort(kExitInternal);
  }
  if (!lead) return kExitOk;

  // The same scenario, simulated, for the comparison.
  if (!opt.quiet) fmt::print(stderr, "dtsim: simulating it for the comparison\n");
  const std::filesystem::path sim_dir = dir / "simulated";
  create_output_dir(sim_dir);
  TimelineRecorder timeline;
  RunResult simulated = ready.training->run({&timeline});
  simulated.threads = threads_or_cores(opt.threads);
  const std::vector<float> simulated_params = ready.training->global_params();
  write_run(sim_dir, *scenario, simulated, timeline.spans());

  RunResult& measured = emulated.run;
  EmulationStats stats =
      compare_runs(measured, simulated, emulated.per_round, emulated.params, simulated_params);
  stats.exchange = emulation_exchange(*scenario, options);
  measured.emulation = stats;
  measured.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  write_run(dir, *scenario, measured);

  fmt::print("{} (emulated on {} ranks): test accuracy {:.4f} (simulated {:.4f})\n", scenario->name,
             stats.ranks, stats.measured_accuracy, stats.simulated_accuracy);
  fmt::print("time per step: measured {}, simulated {} (simulated / measured = {:.2f})\n",
             milliseconds(stats.measured_step_s), milliseconds(stats.simulated_step_s),
             stats.simulated_step_s / stats.measured_step_s);
  std::string verdict = "identical to the simulation's, bit for bit";
  if (!stats.params_identical) {
    verdict = std::isfinite(stats.relative_diff)
                  ? fmt::format("differ from the simulation's (relative {:.3g}, largest {:.3g})",
                                stats.relative_diff, stats.max_abs_diff)
                  : std::string("differ from the simulation's (values that are not finite)");
  }
  fmt::print("final parameters: {}\n", verdict);
  fmt::print("report: {}\n", (dir / "report.html").string());
  fmt::print("outputs: {}/ (measured), {}/ (simulated)\n", dir.string(), sim_dir.string());
  if (measured.health != Health::kOk) {  // (as dtsim run: exit 1)
    fmt::print(stderr, "dtsim: the emulated run's health is {}: {}. {}\n",
               to_string(measured.health), measured.health_reason, health_advice(measured.health));
    return kExitRunFailed;
  }
  return kExitOk;
#endif
}

}  // namespace

Command add_emulate_command(CLI::App& app) {
  auto opt = std::make_shared<EmulateOptionsCli>();
  CLI::App* cmd = app.add_subcommand(
      "emulate",
      "Run the scenario's workers (and server shards) as real MPI processes, one per rank "
      "(mpirun -np N dtsim emulate FILE), then simulate it and compare: time per step, "
      "compute and communication, accuracy, final parameters");
  add_scenario_options(cmd, opt->scenario, kOut | kThreads | kQuiet,
                       "Output folder (default: runs/<scenario file name>-emulated)");
  cmd->add_flag("--mpi-allreduce", opt->mpi_allreduce,
                "Exchange with MPI_Allreduce instead of the scenario's collective over "
                "point-to-point messages (the library's summation order: the parameters then "
                "differ from the simulation's by rounding)");
  return {cmd, [opt] { return emulate_run(*opt); }};
}

}  // namespace dtsim::app
