// dtsim run: runs a scenario and writes its outputs.
#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>

#include <chrono>
#include <memory>
#include <optional>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/progress.hpp"
#include "app/setup.hpp"
#include "reports/html_report.hpp"
#include "reports/run_writer.hpp"
#include "reports/trace_writer.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/health.hpp"
#include "sim/train/summary.hpp"

namespace dtsim::app {
namespace {

// "8 worker(s), allreduce (ring), bsp" or "4 worker(s), ps (2 server shards), asp, time-only".
std::string strategy_line(const Scenario& s) {
  const StrategyConfig& st = s.strategy;
  std::string where = to_string(st.architecture);
  if (st.architecture == Architecture::kAllreduce) {
    where += fmt::format(" ({})", to_string(st.collective));
  } else if (server_count(s) > 0) {
    where += fmt::format(" ({} server shards)", server_count(s));
  }
  return fmt::format("{} worker(s), {}, {}{}", s.cluster.workers, where, to_string(st.sync),
                     st.time_only ? ", time-only" : "");
}

// The exit code of a finished run: its divergence and its [expect] checks, said on stderr.
int outcome(const Scenario& scenario, const RunResult& result, bool quiet) {
  int code = kExitOk;
  if (result.health != Health::kOk) {
    fmt::print(stderr, "dtsim: the run's health is {}: {}. {}\n", to_string(result.health),
               result.health_reason, health_advice(result.health));
    code = kExitRunFailed;
  }
  const std::vector<std::string> failures = failed_expectations(scenario, result);
  for (const std::string& f : failures) fmt::print(stderr, "dtsim: {}\n", f);
  if (!failures.empty()) code = kExitRunFailed;
  if (!scenario.expect.empty() && failures.empty() && !quiet) {
    fmt::print(stderr, "dtsim: all {} [expect] checks passed\n", scenario.expect.size());
  }
  return code;
}

int run(const ScenarioOptions& opt) {
  const auto wall_start = std::chrono::steady_clock::now();
  const Scenario scenario = load_scenario(opt.scenario, overrides_of(opt));
  const int threads = threads_or_cores(opt.threads);
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                  static_cast<std::size_t>(threads));
  const std::filesystem::path dir = output_dir(opt);
  const SetUp ready = set_up(scenario, opt, threads);
  const double load_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  create_output_dir(dir);
  if (!scenario.sweep.empty() && !opt.quiet) {  // (sweep points run with -q)
    fmt::print(stderr,
               "dtsim: note: {} has a [sweep] of {} points; `dtsim run` runs its base point "
               "only, `dtsim sweep` runs them all\n",
               opt.scenario, expand_sweep(scenario).size());
  }
  if (!opt.quiet) {
    fmt::print(stderr, "dtsim: {} — {} train / {} test samples of {}; {}\n", scenario.name,
               ready.data->train.samples(), ready.data->test.samples(), scenario.data.dataset,
               strategy_line(scenario));
  }
  MetricsCsvWriter metrics(dir);
  std::optional<TraceWriter> trace;
  if (scenario.output.trace) {
    trace.emplace(dir, scenario.cluster.workers + server_count(scenario), scenario.cluster.workers);
  }
  ProgressPrinter progress;
  TimelineRecorder timeline;
  std::vector<SimObserver*> observers = {&metrics, &timeline};
  if (trace) observers.push_back(&*trace);
  if (!opt.quiet) observers.push_back(&progress);
  RunResult result = ready.training->run(observers);
  metrics.commit();
  if (trace) trace->commit();
  result.threads = threads;
  result.load_wall_s = load_wall_s;
  result.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  write_nodes_csv(dir, result);
  write_layers_csv(dir, result);
  write_summary_json(dir, scenario, result);
  write_report_html(dir, scenario, result, timeline.spans());
  const EvalPoint& last = result.evals.back();
  fmt::print("{}: test accuracy {}, test loss {}, virtual time {:.6g} s\n", scenario.name,
             shown(last.test_accuracy, 0, 4), shown(last.test_loss, 0, 4), result.virtual_time_s);
  if (!opt.quiet) {
    fmt::print(stderr,
               "wall {:.2f} s: data {:.2f} s, simulation {:.2f} s (evaluation {:.2f} s; jobs "
               "{:.2f} s of compute on {} thread(s))\n",
               result.wall_time_s, result.load_wall_s, result.simulate_wall_s, result.eval_wall_s,
               result.jobs_wall_s, threads);
  }
  fmt::print("report: {}\n", (dir / "report.html").string());
  fmt::print("outputs: {}/ (metrics.csv, nodes.csv, layers.csv, summary.json, {}report.html)\n",
             dir.string(), trace ? "trace.json, " : "");
  if (trace && trace->truncated() && !opt.quiet) {
    fmt::print(stderr, "dtsim: trace.json holds the first {} events (see its metadata)\n",
               trace->events());
  }
  return outcome(scenario, result, opt.quiet);
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto opt = std::make_shared<ScenarioOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run a scenario and write its outputs");
  add_scenario_options(cmd, *opt, kOut | kThreads | kQuiet | kNoTrace,
                       "Output folder (default: runs/<scenario file name>)");
  return {cmd, [opt] { return run(*opt); }};
}

}  // namespace dtsim::app
