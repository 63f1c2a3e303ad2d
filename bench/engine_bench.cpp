#include "bench/engine_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/optimizer.hpp"
#include "engine/rng.hpp"
#include "sim/des/job_runner.hpp"

namespace dtsim {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One replica: its own parameters, optimizer and workspace; trains `steps` steps.
struct Replica {
  Replica(const Model& net, int batch, int pool, std::uint64_t seed)
      : params(net.init_params(seed)),
        grads(net.num_params()),
        optimizer(OptimizerConfig{}, net.num_params()),
        ws(net, batch),
        x(static_cast<std::size_t>(pool) * net.input_shape().size()),
        labels(static_cast<std::size_t>(pool)) {
    CounterRng rng({seed, RngPurpose::kTest, 0, 0});
    for (float& v : x) v = static_cast<float>(rng.uniform());
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.uniform_int(net.outputs()));
  }

  void train(const Model& net, int batch, int pool, std::uint64_t steps) {
    const auto features = static_cast<std::size_t>(net.input_shape().size());
    for (std::uint64_t s = 0; s < steps; ++s) {
      const auto start = static_cast<std::size_t>((s * batch) % (pool - batch + 1));
      const Batch b{x.data() + start * features, labels.data() + start, nullptr, batch};
      net.gradient(params, b, grads, ws);
      optimizer.step(params, grads, 0.01);
    }
  }

  std::vector<float> params;
  std::vector<float> grads;
  Optimizer optimizer;
  Workspace ws;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
};

}  // namespace

double measure_sgemm_gflops(int n, int repeats) {
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f);
  std::vector<float> b(a.size(), 0.25f);
  std::vector<float> c(a.size());
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / seconds_since(start) / 1e9);
  }
  return best;
}

EngineBenchResult run_engine_bench(const EngineBenchConfig& config) {
  use_single_threaded_blas();
  const Model net(config.model, config.input, LearningTask::kClassification, config.classes);
  const int pool = config.batch * 16;
  EngineBenchResult result;
  result.model = net.summary();
  result.batch = config.batch;
  result.threads = config.threads;
  result.flops_per_sample =
      (net.forward_flops(config.batch) + net.backward_flops(config.batch)) / config.batch +
      Optimizer(OptimizerConfig{}, 0).step_flops(net.num_params()) / config.batch;
  result.blas_gflops = measure_sgemm_gflops(1024, 5);

  std::vector<std::unique_ptr<Replica>> replicas;
  for (int t = 0; t < config.threads; ++t) {
    replicas.push_back(std::make_unique<Replica>(net, config.batch, pool, 1 + t));
  }
  // The replicas run as jobs, the way the simulator runs its workers' jobs.
  JobRunner jobs(config.threads);
  auto run_all = [&](std::uint64_t steps) {
    std::vector<std::function<void()>> work;
    for (auto& r : replicas) {
      work.emplace_back([&, rp = r.get(), steps] { rp->train(net, config.batch, pool, steps); });
    }
    jobs.run_all(std::move(work));
  };
  run_all(5);  // warm-up: page in buffers, settle clocks
  // Calibrate a step count that takes about min_seconds, then time it.
  std::uint64_t steps = 10;
  for (;;) {
    const auto start = Clock::now();
    run_all(steps);
    const double elapsed = seconds_since(start);
    if (elapsed >= config.min_seconds * 0.5) {
      const std::uint64_t more = static_cast<std::uint64_t>(
          std::max(1.0, static_cast<double>(steps) * config.min_seconds / elapsed));
      const auto timed = Clock::now();
      run_all(more);
      result.wall_s = seconds_since(timed);
      result.samples_per_s =
          static_cast<double>(more) * config.batch * config.threads / result.wall_s;
      break;
    }
    steps *= 2;
  }
  result.gflops = result.samples_per_s * result.flops_per_sample / 1e9;
  return result;
}

}  // namespace dtsim
