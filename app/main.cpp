// The dtsim command line: the one place that wires engine, sim and reports together.
//
// Exit codes: 0 success; 1 the run diverged or an [expect] check failed;
// 2 bad input (scenario, dataset, command-line value); 3 an unexpected internal error.
#include <fcntl.h>
#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "bench/engine_bench.hpp"
#include "engine/blas_setup.hpp"
#include "engine/errors.hpp"
#include "engine/float_env.hpp"
#include "engine/kernels.hpp"
#include "reports/compare_report.hpp"
#include "reports/html_report.hpp"
#include "reports/run_writer.hpp"
#include "reports/trace_writer.hpp"
#include "sim/net/collective_run.hpp"
#include "sim/train/explain.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/summary.hpp"
#include "sim/train/trainer.hpp"
#include "sim/des/units.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRunFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

struct RunOptions {
  std::string scenario;
  std::string out_dir;
  int threads = 0;
  bool quiet = false;
  std::vector<std::string> overrides;  // --set key.path=value
};

struct CollectiveOptions {
  std::string op = "allreduce";
  std::string algo = "ring";
  int nodes = 0;
  std::string bytes;
  std::string latency = "10us";
  std::string bandwidth = "25Gbps";
  std::string topology = "star";
  int servers = 1;
  int nodes_per_machine = 4;
  std::string intra_latency = "1us";
  std::string intra_bandwidth = "600 GB/s";
  bool json = false;
};

struct BenchOptions {
  std::string model = "mlp";
  int batch = 64;
  int threads = 1;
  double seconds = 2.0;
  bool json = false;
};

// A metric for people: "n/a" where it is not defined (NaN).
std::string shown(double value, int width, int precision) {
  if (std::isnan(value)) return fmt::format("{:>{}}", "n/a", width);
  return fmt::format("{:{}.{}f}", value, width, precision);
}

// Progress on stderr: on a terminal, a bar with an ETA redrawn in place (at most ten times a
// second) and a line per evaluation; elsewhere, plain lines, one per evaluation.
class ProgressPrinter : public dtsim::SimObserver {
 public:
  ProgressPrinter()
      : terminal_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

  void on_run_start(std::uint64_t total_steps) override { total_ = total_steps; }

  void on_step_end(std::uint64_t step, dtsim::SimTime t) override {
    if (!terminal_ || total_ == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double done = static_cast<double>(step) / static_cast<double>(total_);
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = done > 0 ? elapsed * (1 - done) / done : 0;
    const int width = 30;
    const int filled = static_cast<int>(done * width);
    fmt::print(stderr, "\r  [{}{}] {:3.0f}%  step {}/{}  virtual {:.3f} s  ETA {:.0f} s   ",
               std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(width - filled), ' '), done * 100, step, total_,
               t.seconds(), eta);
    bar_shown_ = true;
  }

  void on_evaluation(const dtsim::EvalPoint& p) override {
    if (bar_shown_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr,
               "  step {:>7}  epoch {:6.2f}  virtual {:9.3f} s  train loss {}  test loss {}  "
               "test acc {}\n",
               p.step, p.epoch, p.virtual_time_s, shown(p.train_loss, 8, 4),
               shown(p.test_loss, 8, 4), shown(p.test_accuracy, 6, 4));
    bar_shown_ = false;
  }

 private:
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::uint64_t total_ = 0;
  bool bar_shown_ = false;
};

// Errors found after loading (partitions, model shapes) name a key but no place: find the key
// in the scenario file so the message still says file:line:col.
dtsim::InputError placed(const dtsim::InputError& e, const RunOptions& opt) {
  if (!e.place().file.empty()) return e;
  for (auto o = opt.overrides.rbegin(); o != opt.overrides.rend(); ++o) {  // the last one wins
    if (o->rfind(e.key() + "=", 0) == 0) {
      return dtsim::InputError({"--set " + *o}, e.key(), e.message());
    }
  }
  return dtsim::InputError(dtsim::locate_key(opt.scenario, e.key()), e.key(), e.message());
}

// The data and a checked set-up: everything that can fail on bad input, done before any
// output is written. Set-up errors name their key's place in the file (or its --set).
struct SetUp {
  std::unique_ptr<dtsim::DatasetPair> data;
  std::unique_ptr<dtsim::Training> training;
};
SetUp set_up(const dtsim::Scenario& scenario, const RunOptions& opt, int threads) {
  SetUp s;
  try {
    s.data = std::make_unique<dtsim::DatasetPair>(dtsim::load_data(scenario));
    s.training = std::make_unique<dtsim::Training>(scenario, *s.data, threads);
  } catch (const dtsim::DatasetError&) {
    throw;
  } catch (const dtsim::InputError& e) {
    throw placed(e, opt);
  }
  return s;
}

int run_command(const RunOptions& opt) {
  using namespace dtsim;
  const auto wall_start = std::chrono::steady_clock::now();
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides);
  const int threads = opt.threads > 0
                          ? opt.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                  static_cast<std::size_t>(threads));
  const std::filesystem::path dir =
      opt.out_dir.empty()
          ? std::filesystem::path("runs") / std::filesystem::path(opt.scenario).stem()
          : std::filesystem::path(opt.out_dir);
  const SetUp ready = set_up(scenario, opt, threads);
  const DatasetPair* data = ready.data.get();
  Training* training = ready.training.get();
  const double load_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw InputError({dir.string(), 0, 0}, "-o",
                     fmt::format("cannot create the output folder: {}", ec.message()));
  }
  if (!opt.quiet) {
    fmt::print(stderr, "dtsim: {} — {} train / {} test samples of {}; {} worker(s), {}{} {}\n",
               scenario.name, data->train.samples(), data->test.samples(), scenario.data.dataset,
               scenario.cluster.workers, to_string(scenario.strategy.architecture),
               scenario.strategy.architecture == Architecture::kAllreduce
                   ? fmt::format(" ({})", to_string(scenario.strategy.collective))
                   : fmt::format(" ({} server shards)", scenario.cluster.servers),
               scenario.strategy.time_only ? "time-only" : "bsp");
  }
  MetricsCsvWriter metrics(dir);
  TraceWriter trace(
      dir,
      scenario.cluster.workers + (scenario.strategy.architecture == Architecture::kParameterServer
                                      ? scenario.cluster.servers
                                      : 0),
      scenario.cluster.workers);
  ProgressPrinter progress;
  std::vector<SimObserver*> observers = {&metrics, &trace};
  if (!opt.quiet) observers.push_back(&progress);
  RunResult result = training->run(observers);
  metrics.commit();
  trace.commit();
  result.threads = threads;
  result.load_wall_s = load_wall_s;
  result.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  write_nodes_csv(dir, result);
  write_summary_json(dir, scenario, result);
  write_report_html(dir, scenario, result);
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
  fmt::print("outputs: {}/ (metrics.csv, nodes.csv, summary.json, trace.json, report.html)\n",
             dir.string());
  if (trace.truncated() && !opt.quiet) {
    fmt::print(stderr, "dtsim: trace.json holds the first {} events (see its metadata)\n",
               trace.events());
  }
  int code = kExitOk;
  if (result.diverged) {
    fmt::print(stderr, "dtsim: the run diverged: {}\n", result.diverged_reason);
    code = kExitRunFailed;
  }
  const std::vector<std::string> failures = failed_expectations(scenario, result);
  for (const std::string& f : failures) fmt::print(stderr, "dtsim: {}\n", f);
  if (!failures.empty()) code = kExitRunFailed;
  if (!scenario.expect.empty() && failures.empty() && !opt.quiet) {
    fmt::print(stderr, "dtsim: all {} [expect] checks passed\n", scenario.expect.size());
  }
  return code;
}

// Loads and checks a scenario without running it: the file, the data, the set-up.
int validate_command(const RunOptions& opt) {
  using namespace dtsim;
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides, /*check_sweep=*/true);
  set_up(scenario, opt, 1);
  fmt::print("{}: ok — \"{}\", {} worker(s), {} architecture, {} [expect] check(s)\n", opt.scenario,
             scenario.name, scenario.cluster.workers, to_string(scenario.strategy.architecture),
             scenario.expect.size());
  for (const auto& [key, value] : resolved_settings(scenario))
    fmt::print("  {} = {}\n", key, value);
  const std::vector<SweepPoint> points = expand_sweep(scenario);
  if (!points.empty()) fmt::print("  [sweep]: {} points\n", points.size());
  return kExitOk;
}

// What a scenario implies, before running it.
int explain_command(const RunOptions& opt) {
  using namespace dtsim;
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides);
  const SetUp ready = set_up(scenario, opt, 1);  // the same checks as a run
  const Explanation e = explain(scenario, *ready.data);
  fmt::print("{}\n", scenario.name);
  for (const auto& [what, value] : e.lines) fmt::print("  {:<46} {}\n", what, value);
  return kExitOk;
}

std::string folder_safe(const std::string& label) {
  std::string out;
  for (char c : label)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '=' || c == '-') ? c : '_';
  return out;
}

// Runs every point of the scenario's [sweep] into its own folder, then writes compare.html.
int sweep_command(const RunOptions& opt, int jobs, char* self) {
  using namespace dtsim;
  const Scenario scenario = load_scenario(opt.scenario, opt.overrides, /*check_sweep=*/true);
  const std::vector<SweepPoint> points = expand_sweep(scenario);
  if (points.empty()) {
    throw InputError({opt.scenario}, "sweep",
                     "this scenario has no [sweep] section: add one, e.g. [sweep] "
                     "\"strategy.collective\" = [\"ring\", \"tree\"]");
  }
  const std::filesystem::path out =
      opt.out_dir.empty() ? std::filesystem::path("runs") /
                                (std::filesystem::path(opt.scenario).stem().string() + "-sweep")
                          : std::filesystem::path(opt.out_dir);
  // Points run as separate `dtsim run` processes, several at a time where cores allow. A
  // point's files do not depend on its thread count, so this changes only the wall time.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int parallel =
      std::max(1, std::min<int>(jobs > 0 ? jobs : cores, static_cast<int>(points.size())));
  const int threads = opt.threads > 0 ? opt.threads : std::max(1, cores / parallel);
  fmt::print("sweep: {} points, {} at a time, {} thread(s) each, into {}/\n", points.size(),
             parallel, threads, out.string());
  std::fflush(stdout);

  struct Point {
    std::filesystem::path dir;
    pid_t pid = 0;
    int code = -1;
  };
  std::vector<Point> state(points.size());
  std::size_t next = 0;
  std::size_t running = 0;
  std::size_t finished = 0;
  const auto start_point = [&](std::size_t i) {
    Point& p = state[i];
    p.dir = out / fmt::format("{:02}-{}", i + 1, folder_safe(points[i].label).substr(0, 200));
    // A fresh folder: nothing from an earlier sweep may sit beside this run's files.
    std::error_code ec;
    std::filesystem::remove_all(p.dir, ec);
    std::filesystem::create_directories(p.dir, ec);
    if (ec) {
      throw InputError({p.dir.string()}, "-o",
                       fmt::format("cannot create the folder: {}", ec.message()));
    }
    std::vector<std::string> args = {
        self, "run", opt.scenario, "-o", p.dir.string(), "--threads", std::to_string(threads),
        "-q"};
    for (const auto& o : opt.overrides) args.insert(args.end(), {"--set", o});
    for (const auto& o : points[i].overrides) args.insert(args.end(), {"--set", o});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    const std::string log = (p.dir / "run.log").string();
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    const int rc = posix_spawn(&p.pid, "/proc/self/exe", &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0)
      throw std::runtime_error(fmt::format("cannot start a sweep point: {}", std::strerror(rc)));
    ++running;
  };
  while (finished < points.size()) {
    while (running < static_cast<std::size_t>(parallel) && next < points.size())
      start_point(next++);
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
    for (std::size_t i = 0; i < state.size(); ++i) {
      if (state[i].pid != pid) continue;
      state[i].code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitInternal;
      --running;
      ++finished;
      std::string how = "done";
      if (WIFSIGNALED(status)) {
        how = fmt::format("killed by signal {}", WTERMSIG(status));
      } else if (state[i].code != kExitOk) {
        how = fmt::format("exit {} (see {})", state[i].code, (state[i].dir / "run.log").string());
      }
      fmt::print("point {}/{} {}: {}\n", i + 1, points.size(), points[i].label, how);
      std::fflush(stdout);
    }
  }

  int code = kExitOk;
  std::vector<FinishedRun> runs;
  for (std::size_t i = 0; i < points.size(); ++i) {
    code = std::max(code, state[i].code);
    FinishedRun run;
    if (state[i].code == kExitBadInput || state[i].code == kExitInternal) {
      run.failed = fmt::format("failed (exit {}; see {}/run.log)", state[i].code,
                               state[i].dir.filename().string());
    } else {
      run = read_finished_run(state[i].dir);
    }
    run.label = points[i].label;
    runs.push_back(std::move(run));
  }
  write_compare_html(out / "compare.html", runs, scenario.name);
  fmt::print("comparison: {}\n", (out / "compare.html").string());
  return code;
}

// A comparison report from runs that already finished.
int compare_command(const std::vector<std::string>& dirs, const std::string& out_dir) {
  using namespace dtsim;
  std::vector<FinishedRun> runs;
  for (const std::string& d : dirs) {
    FinishedRun run = read_finished_run(d);
    std::filesystem::path folder = std::filesystem::path(d).lexically_normal();
    if (folder.filename().empty()) folder = folder.parent_path();  // "runs/a/"
    run.label = fmt::format("{} ({})", run.name, folder.filename().string());
    runs.push_back(std::move(run));
  }
  const std::filesystem::path out =
      out_dir.empty() ? std::filesystem::path("runs") / "compare" : std::filesystem::path(out_dir);
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec)
    throw InputError({out.string()}, "-o",
                     fmt::format("cannot create the folder: {}", ec.message()));
  write_compare_html(out / "compare.html", runs, fmt::format("{} runs compared", runs.size()));
  fmt::print("comparison: {}\n", (out / "compare.html").string());
  return kExitOk;
}

int list_command() {
  fmt::print(
      "models         mlp, cnn, softmax\n"
      "activations    relu, tanh\n"
      "optimizers     sgd, momentum, nesterov, adam\n"
      "schedules      constant, step, cosine (with warmup_steps)\n"
      "datasets       fashion-mnist, blobs, linreg\n"
      "partitions     rows (split iid | dirichlet | by-label), columns, blocks\n"
      "topologies     star, ring, full, hierarchical\n"
      "architectures  allreduce, ps, gossip\n"
      "sync modes     allreduce: bsp, local-sgd; ps: bsp, asp, ssp, delayed; gossip: d-psgd, "
      "ad-psgd; bsp also with backup_workers\n"
      "collectives    allreduce: ring, tree, halving-doubling, hierarchical; allgather; "
      "reduce-scatter; broadcast; ps (dtsim collective --op)\n"
      "codecs         none, fp16, bf16, int8, qsgd, terngrad, onebit, sign, ef-sign, topk, "
      "randomk, powersgd\n"
      "aggregations   mean, weighted-mean, max, median, trimmed-mean, krum, multi-krum\n"
      "faults         byzantine (sign-flip, noise, scale)\n"
      "expect keys    ");
  bool first = true;
  for (std::string_view k : dtsim::summary_keys()) {
    fmt::print("{}{}", first ? "" : ", ", k);
    first = false;
  }
  fmt::print("\n");
  return kExitOk;
}

// A command-line quantity with a unit; errors name the option.
template <typename Parse>
auto parse_option(const std::string& option, const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const dtsim::UnitError& e) {
    throw dtsim::InputError({}, option, e.what());
  }
}

int collective_command(const CollectiveOptions& opt) {
  using namespace dtsim;
  CollectiveSpec spec;
  spec.nodes = opt.nodes;
  spec.servers = opt.servers;
  spec.bytes = static_cast<std::uint64_t>(parse_option("--bytes", opt.bytes, parse_bytes));
  spec.network.link.latency = parse_option("--latency", opt.latency, parse_duration);
  spec.network.link.bandwidth = parse_option("--bandwidth", opt.bandwidth, parse_bandwidth);
  spec.network.intra.latency = parse_option("--intra-latency", opt.intra_latency, parse_duration);
  spec.network.intra.bandwidth =
      parse_option("--intra-bandwidth", opt.intra_bandwidth, parse_bandwidth);
  spec.network.nodes_per_machine = opt.nodes_per_machine;
  if (!(spec.network.link.bandwidth > 0) || !(spec.network.intra.bandwidth > 0)) {
    throw InputError({}, "--bandwidth", "expected a bandwidth above zero");
  }
  const std::map<std::string, TopologyKind> topologies = {
      {"star", TopologyKind::kStar},
      {"ring", TopologyKind::kRing},
      {"full", TopologyKind::kFull},
      {"hierarchical", TopologyKind::kHierarchical}};
  spec.network.topology = topologies.at(opt.topology);
  const std::map<std::string, CollectiveOp> ops = {{"allreduce", CollectiveOp::kAllreduce},
                                                   {"allgather", CollectiveOp::kAllgather},
                                                   {"reduce-scatter", CollectiveOp::kReduceScatter},
                                                   {"broadcast", CollectiveOp::kBroadcast},
                                                   {"ps", CollectiveOp::kPs}};
  spec.op = ops.at(opt.op);
  const std::map<std::string, AllreduceAlgo> algos = {
      {"ring", AllreduceAlgo::kRing},
      {"tree", AllreduceAlgo::kTree},
      {"halving-doubling", AllreduceAlgo::kHalvingDoubling},
      {"hierarchical", AllreduceAlgo::kHierarchical}};
  spec.algo = algos.at(opt.algo);
  if (spec.op == CollectiveOp::kAllreduce && spec.algo == AllreduceAlgo::kHierarchical &&
      spec.nodes % spec.network.nodes_per_machine != 0) {
    throw InputError({}, "--nodes",
                     fmt::format("the hierarchical allreduce needs whole machines: {} nodes are "
                                 "not a multiple of --nodes-per-machine {}",
                                 spec.nodes, spec.network.nodes_per_machine));
  }
  if (spec.network.topology == TopologyKind::kFull && spec.nodes + spec.servers > 1024) {
    throw InputError({}, "--topology", "a full mesh is limited to 1024 nodes");
  }
  const CollectiveRun r = run_collective(spec);
  if (opt.json) {
    fmt::print(
        "{{\"op\": \"{}\", \"algo\": \"{}\", \"nodes\": {}, \"bytes\": {}, "
        "\"simulated_time_s\": {}, \"wall_time_s\": {:.6f}, \"bytes_sent_per_node\": {}, "
        "\"messages\": {}, \"events\": {}}}\n",
        opt.op, spec.op == CollectiveOp::kAllreduce ? opt.algo : std::string("-"), spec.nodes,
        spec.bytes, r.simulated_time_s, r.wall_time_s, r.bytes_sent_per_node, r.messages, r.events);
  } else {
    fmt::print("{}{} of {} bytes over {} nodes, {} topology\n", opt.op,
               spec.op == CollectiveOp::kAllreduce ? " (" + opt.algo + ")" : std::string(),
               spec.bytes, spec.nodes, opt.topology);
    fmt::print("simulated time   {:.9f} s\n", r.simulated_time_s);
    fmt::print("wall time        {:.3f} s ({} messages, {} events)\n", r.wall_time_s, r.messages,
               r.events);
    fmt::print("bytes sent/node  {}\n", r.bytes_sent_per_node);
  }
  return kExitOk;
}

int bench_engine_command(const BenchOptions& opt) {
  using namespace dtsim;
  EngineBenchConfig config;
  if (opt.model == "cnn") {
    config.model.kind = ModelKind::kCnn;
    config.model.hidden = {128};
  } else if (opt.model == "softmax") {
    config.model.kind = ModelKind::kSoftmax;
  }
  config.batch = opt.batch;
  config.threads = opt.threads;
  config.min_seconds = opt.seconds;
  const EngineBenchResult r = run_engine_bench(config);
  if (opt.json) {
    fmt::print(
        "{{\"model\": \"{}\", \"batch\": {}, \"threads\": {}, \"samples_per_s\": {:.1f}, "
        "\"gflops\": {:.2f}, \"flops_per_sample\": {:.0f}, \"blas_gflops\": {:.2f}, "
        "\"blas_core\": \"{}\", \"wall_s\": {:.3f}}}\n",
        r.model, r.batch, r.threads, r.samples_per_s, r.gflops, r.flops_per_sample, r.blas_gflops,
        blas_core_name(), r.wall_s);
  } else {
    fmt::print("model        {}\nbatch        {}\nthreads      {}\n", r.model, r.batch, r.threads);
    fmt::print("throughput   {:.0f} samples/s (forward + backward + momentum update)\n",
               r.samples_per_s);
    fmt::print("achieved     {:.1f} GFLOP/s ({:.3f} MFLOP per sample)\n", r.gflops,
               r.flops_per_sample / 1e6);
    fmt::print("sgemm peak   {:.1f} GFLOP/s (one thread, 1024^3, OpenBLAS {} kernels)\n",
               r.blas_gflops, blas_core_name());
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  dtsim::select_blas_kernels(argv);
  dtsim::use_single_threaded_blas();
  dtsim::flush_denormals_to_zero();
  CLI::App app{
      "dtsim: a simulator of distributed deep-learning training. Nodes really compute (real "
      "loss and accuracy); time is virtual, from a model of compute speed and network.\n"
      "Exit codes: 0 ok, 1 the run diverged or an [expect] check failed, 2 bad input, 3 internal "
      "error."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dtsim 0.1.0");

  RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "Run a scenario and write its outputs");
  run_cmd->add_option("scenario", run.scenario, "Scenario file (TOML)")->required();
  run_cmd->add_option("-o,--out", run.out_dir,
                      "Output folder (default: runs/<scenario file name>)");
  run_cmd->add_option("--threads", run.threads, "Worker threads for jobs (default: all cores)")
      ->check(CLI::Range(1, 1024));
  run_cmd->add_flag("-q,--quiet", run.quiet, "No progress lines on stderr");
  run_cmd
      ->add_option("--set", run.overrides,
                   "Override a scenario key: --set train.lr=0.1 --set strategy.collective=tree "
                   "(repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  RunOptions check;
  auto* validate_cmd = app.add_subcommand(
      "validate",
      "Check a scenario (file, data, set-up) without running it; errors give file:line:col");
  validate_cmd->add_option("scenario", check.scenario, "Scenario file (TOML)")->required();
  validate_cmd->add_option("--set", check.overrides, "Override a scenario key (repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  RunOptions sweep;
  auto* sweep_cmd = app.add_subcommand("sweep",
                                       "Run every point of the scenario's [sweep] grid into its "
                                       "own folder, then write compare.html");
  sweep_cmd->add_option("scenario", sweep.scenario, "Scenario file (TOML) with a [sweep] section")
      ->required();
  sweep_cmd->add_option("-o,--out", sweep.out_dir,
                        "Output folder (default: runs/<scenario file name>-sweep)");
  sweep_cmd->add_option("--threads", sweep.threads, "Threads per point (default: cores / --jobs)")
      ->check(CLI::Range(1, 1024));
  sweep_cmd
      ->add_option("--set", sweep.overrides, "Override a scenario key for every point (repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  int sweep_jobs = 0;
  sweep_cmd->add_option("-j,--jobs", sweep_jobs, "Points run at once (default: one per core)")
      ->check(CLI::Range(1, 256));

  std::vector<std::string> compare_dirs;
  std::string compare_out;
  auto* compare_cmd =
      app.add_subcommand("compare", "A comparison report (compare.html) from finished runs");
  compare_cmd->add_option("dirs", compare_dirs, "Run folders written by dtsim run")
      ->required()
      ->check(CLI::ExistingDirectory);
  compare_cmd->add_option("-o,--out", compare_out, "Output folder (default: runs/compare)");

  RunOptions why;
  auto* explain_cmd = app.add_subcommand(
      "explain",
      "What a scenario implies before running it: parameters, FLOPs and bytes per step, "
      "compute and (alpha-beta) communication time, the expected bottleneck");
  explain_cmd->add_option("scenario", why.scenario, "Scenario file (TOML)")->required();
  explain_cmd->add_option("--set", why.overrides, "Override a scenario key (repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  auto* list_cmd = app.add_subcommand("list",
                                      "What a scenario can choose: models, datasets, topologies, "
                                      "strategies, collectives, codecs, aggregation rules, faults");

  CollectiveOptions coll;
  auto* coll_cmd = app.add_subcommand(
      "collective",
      "Simulate one collective in time-only mode and print its simulated and wall time");
  coll_cmd->add_option("--op", coll.op, "allreduce | allgather | reduce-scatter | broadcast | ps")
      ->check(CLI::IsMember({"allreduce", "allgather", "reduce-scatter", "broadcast", "ps"}));
  coll_cmd
      ->add_option("--algo", coll.algo,
                   "allreduce algorithm: ring | tree | halving-doubling | hierarchical")
      ->check(CLI::IsMember({"ring", "tree", "halving-doubling", "hierarchical"}));
  coll_cmd->add_option("--nodes", coll.nodes, "Participants (workers for --op ps)")
      ->required()
      ->check(CLI::Range(1, 1 << 20));
  coll_cmd
      ->add_option("--bytes", coll.bytes,
                   "Vector size per node, with a unit (\"100MB\", \"64 MiB\")")
      ->required();
  coll_cmd->add_option("--latency", coll.latency, "Per-link latency (default 10us)");
  coll_cmd->add_option("--bandwidth", coll.bandwidth,
                       "Per-link bandwidth, each direction (default 25Gbps)");
  coll_cmd->add_option("--topology", coll.topology, "star | ring | full | hierarchical")
      ->check(CLI::IsMember({"star", "ring", "full", "hierarchical"}));
  auto* servers_opt = coll_cmd->add_option("--servers", coll.servers, "Server shards for --op ps")
                          ->check(CLI::Range(1, 1 << 20));
  coll_cmd
      ->add_option("--nodes-per-machine", coll.nodes_per_machine,
                   "Machine size: of the hierarchical topology and of the hierarchical algorithm")
      ->check(CLI::Range(1, 1 << 20));
  coll_cmd->add_option("--intra-latency", coll.intra_latency,
                       "hierarchical: latency inside a machine");
  coll_cmd->add_option("--intra-bandwidth", coll.intra_bandwidth,
                       "hierarchical: bandwidth inside a machine");
  coll_cmd->add_flag("--json", coll.json, "Print one JSON object");

  BenchOptions bench;
  auto* bench_cmd = app.add_subcommand("bench", "Benchmarks");
  bench_cmd->require_subcommand(1);
  auto* engine_cmd = bench_cmd->add_subcommand(
      "engine", "Training-core throughput (samples/s, GFLOP/s) against the sgemm peak");
  engine_cmd->add_option("--model", bench.model, "mlp (784-256-128-10 ReLU) | cnn | softmax")
      ->check(CLI::IsMember({"mlp", "cnn", "softmax"}));
  engine_cmd->add_option("--batch", bench.batch, "Batch size")->check(CLI::Range(1, 65536));
  engine_cmd->add_option("--threads", bench.threads, "Independent replicas trained side by side")
      ->check(CLI::Range(1, 1024));
  engine_cmd->add_option("--seconds", bench.seconds, "Minimum timed duration")
      ->check(CLI::Range(0.1, 3600.0));
  engine_cmd->add_flag("--json", bench.json, "Print one JSON object");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }

  try {
    if (*run_cmd) return run_command(run);
    if (*validate_cmd) return validate_command(check);
    if (*list_cmd) return list_command();
    if (*explain_cmd) return explain_command(why);
    if (*sweep_cmd) return sweep_command(sweep, sweep_jobs, argv[0]);
    if (*compare_cmd) return compare_command(compare_dirs, compare_out);
    if (*engine_cmd) return bench_engine_command(bench);
    if (*coll_cmd) {
      if (servers_opt->count() > 0 && coll.op != "ps") {
        throw dtsim::InputError({}, "--servers", "only --op ps has servers");
      }
      return collective_command(coll);
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
