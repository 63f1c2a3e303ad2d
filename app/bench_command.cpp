// dtsim bench engine: the training core's throughput against the machine's sgemm peak.
#include <fmt/format.h>

#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "bench/engine_bench.hpp"
#include "engine/blas_setup.hpp"

namespace dtsim::app {
namespace {

struct BenchOptions {
  std::string model = "mlp";
  int batch = 64;
  int threads = 1;
  double seconds = 2.0;
  bool json = false;
};

int bench_engine(const BenchOptions& opt) {
  EngineBenchConfig config;
  config.model.kind = *value_named(model_names(), opt.model);
  if (config.model.kind == ModelKind::kCnn) config.model.hidden = {128};
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
    return kExitOk;
  }
  fmt::print("model        {}\nbatch        {}\nthreads      {}\n", r.model, r.batch, r.threads);
  fmt::print("throughput   {:.0f} samples/s (forward + backward + momentum update)\n",
             r.samples_per_s);
  fmt::print("achieved     {:.1f} GFLOP/s ({:.3f} MFLOP per sample)\n", r.gflops,
             r.flops_per_sample / 1e6);
  fmt::print("sgemm peak   {:.1f} GFLOP/s (one thread, 1024^3, OpenBLAS {} kernels)\n",
             r.blas_gflops, blas_core_name());
  return kExitOk;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  CLI::App* cmd = bench->add_subcommand(
      "engine", "Training-core throughput (samples/s, GFLOP/s) against the sgemm peak");
  add_choice(cmd, "--model", opt->model, model_names(),
             "Model (mlp: 784-256-128-10 ReLU; cnn; softmax)");
  cmd->add_option("--batch", opt->batch, "Batch size")->check(CLI::Range(1, 65536));
  cmd->add_option("--threads", opt->threads, "Independent replicas trained side by side")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--seconds", opt->seconds, "Minimum timed duration")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  return {cmd, [opt] { return bench_engine(*opt); }};
}

}  // namespace dtsim::app
