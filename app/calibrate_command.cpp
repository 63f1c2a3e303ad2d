// dtsim calibrate: measures this machine for a scenario and prints the [cluster] and
// [network] settings that make the simulation match it.
//
// Compute: the wall time of a worker's step as the simulation charges it (the gradient of its
// next batch: gather, forward, backward, clipping; then the optimizer's update) over --repeats
// steps after a warm-up of 0.3 s; a lognormal fitted to those times gives compute = the step's
// FLOPs as charged / its median, and the jitter = its sigma.
// Under mpirun with --mpi every rank measures at once, so ranks that share cores are measured
// sharing them (as `dtsim emulate` runs them), and the median over ranks is printed.
//
// Network (--mpi, 2 ranks or more): a ping-pong between ranks 0 and 1 (and at the same time
// between 2 and 3, and so on, as a collective keeps every rank busy) over message sizes from
// 8 B to 8 MiB and at the size of the scenario's own messages (a ring step's part of the
// gradient, a tree's whole gradient, a shard's part); one-way time = round trip / 2 (median
// of the repeats). Fitted as t(m) = alpha + m / B through two points: alpha is the smallest
// message's time, and B makes the line exact at the scenario's message size (the one that
// matters; shared-memory transports are far from one straight line over all sizes). On a star
// a message crosses two links (its sender's up-link and its receiver's down-link), each with
// the scenario's latency, so latency = alpha / 2 and bandwidth = B.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "app/mpi_pool.hpp"
#include "app/mpi_transport.hpp"
#include "engine/data/batch_sampler.hpp"
#include "engine/data/partition.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "sim/train/trainer.hpp"

namespace dtsim::app {
namespace {

struct CalibrateOptions {
  ScenarioOptions scenario;
  bool mpi = false;
  int repeats = 200;
  std::string format = "toml";
};

// What the simulation charges a worker for one step, and how long it takes here: the
// gradient of its next batch (gather, forward, backward, clipping) and the optimizer's
// update, as the worker of `rank` among `ranks` runs them (its partition, its sampler), over
// `repeats` steps after a warm-up.
struct StepCost {
  double flops = 0;
  double seconds = 0;  // the median step (of the fitted lognormal)
  double jitter = 0;   // the standard deviation of the steps' log times
};

StepCost step_cost(const Scenario& s, const DatasetPair& data, int rank, int ranks, int repeats) {
  const Model model(s.model, {data.train.channels, data.train.height, data.train.width},
                    data.train.task, data.train.outputs);
  const std::size_t n = model.num_params();
  std::vector<float> params = model.init_params(s.seed);
  std::vector<float> grads(n);
  Workspace ws(model, s.train.batch_size);
  Optimizer optimizer(s.train.optimizer, n);
  const std::vector<Shard> shards = partition(data.train, ranks, s.data.partition, s.seed);
  BatchSampler sampler(shards[static_cast<std::size_t>(rank)].rows, s.train.batch_size, s.seed,
                       static_cast<std::uint32_t>(rank));
  std::vector<std::uint32_t> rows;
  const double lr = s.train.schedule.lr;
  std::vector<double> times;
  // A warm-up of at least 0.3 s (as emulate's): a cold process's first steps are several times
  // slower than its steady pace.
  const auto begin = std::chrono::steady_clock::now();
  int warm = 0;
  while (warm < 5 || std::chrono::steady_clock::now() - begin < std::chrono::milliseconds(300)) {
    sampler.next(rows);
    model.gradient(params, gather_batch(data.train, rows, ws), grads, ws);
    ++warm;
  }
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    sampler.next(rows);
    const Batch batch = gather_batch(data.train, rows, ws);
    model.gradient(params, batch, grads, ws);
    if (s.train.clip_norm > 0) clip_global_norm(grads, s.train.clip_norm);
    optimizer.step(params, grads, lr);
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    times.push_back(t);
  }
  // A lognormal fitted to the step times (maximum likelihood): its median exp(mu) is the
  // step at the node's speed, its sigma the jitter (the simulation's jobs are lognormal with
  // median 1), so the simulated mean step exp(mu + sigma^2 / 2) is the measured one's.
  StepCost cost;
  double sum = 0, squares = 0;
  for (double t : times) {
    sum += std::log(t);
    squares += std::log(t) * std::log(t);
  }
  const double mu = sum / repeats;
  cost.seconds = std::exp(mu);
  cost.jitter = std::sqrt(std::max(0.0, squares / repeats - mu * mu));
  // As RunCore charges them: the gradient (and clipping), then averaging and the update.
  cost.flops = model.forward_flops(s.train.batch_size) + model.backward_flops(s.train.batch_size) +
               (s.train.clip_norm > 0 ? 3.0 * static_cast<double>(n) : 0.0) +
               optimizer_step_flops(s.train.optimizer.kind, n) + static_cast<double>(n);
  return cost;
}

struct Fit {
  double alpha = 0;      // seconds: the smallest message's one-way time
  double bandwidth = 0;  // bytes per second
};

#ifdef DTSIM_HAVE_MPI
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The bytes of the scenario's typical message: a ring step's part of the gradient, a tree's
// whole gradient, or a server shard's part.
double message_bytes(const Scenario& s, std::size_t params) {
  const double n = static_cast<double>(params) * sizeof(float);
  if (s.strategy.architecture == Architecture::kParameterServer) {
    return n / std::max(1, server_count(s));
  }
  if (s.strategy.architecture == Architecture::kAllreduce &&
      s.strategy.collective == AllreduceAlgo::kTree) {
    return n;
  }
  return n / std::max(1, s.cluster.workers);
}

// One-way seconds of a message of `bytes` between the ranks of each pair (0, 1), (2, 3), ...
// at once, as a collective keeps every rank busy (median of `repeats`; rank 0's pair).
double one_way(MpiTransport& t, std::size_t bytes, int repeats) {
  std::vector<float> buf(std::max<std::size_t>(1, bytes / sizeof(float)));
  std::vector<double> rounds;
  const int me = t.rank();
  const int peer = me ^ 1;
  if (peer >= t.size()) return 0.0;  // (an odd rank out)
  for (int i = -2; i < repeats; ++i) {
    if (me % 2 == 0) {
      const double start = t.now();
      t.send(peer, 1, buf);
      t.recv(peer, 1, buf);
      if (i >= 0) rounds.push_back((t.now() - start) / 2);
    } else {
      t.recv(peer, 1, buf);
      t.send(peer, 1, buf);
    }
  }
  return me == 0 ? median(rounds) : 0.0;
}

// The ping-pong; the fit on rank 0.
Fit ping_pong(MpiTransport& t, int repeats, double scenario_bytes) {
  const bool lead = t.rank() == 0;
  if (lead) {
    fmt::print(stderr, "dtsim: ping-pong between ranks 0 and 1{} (one-way, median of {}):\n",
               t.size() > 3 ? " (the other pairs at once)" : "", repeats);
  }
  Fit fit;
  for (std::size_t bytes = 8; bytes <= (8u << 20); bytes *= 4) {
    const double time = one_way(t, bytes, repeats);
    if (bytes == 8) fit.alpha = time;
    if (lead) fmt::print(stderr, "  {:>10} B  {:>10.2f} us\n", bytes, time * 1e6);
  }
  // The scenario's size three times, between the others, and the median of the three: a burst
  // of preemptions (ranks sharing cores) can hold up one whole series.
  const auto own = static_cast<std::size_t>(scenario_bytes);
  std::vector<double> series;
  for (int i = 0; i < 3; ++i) {
    series.push_back(one_way(t, own, repeats));
    one_way(t, 8, repeats);
  }
  const double time = median(series);
  if (lead) {
    fmt::print(stderr, "  {:>10} B  {:>10.2f} us  (the scenario's messages)\n", own, time * 1e6);
  }
  // (If the scenario's messages are no slower than the smallest, the line is through them.)
  if (time <= fit.alpha) fit.alpha = time / 2;
  fit.bandwidth = static_cast<double>(own) / (time - fit.alpha);
  return fit;
}
#endif

struct Inputs {
  Scenario scenario;
  DatasetPair data;
};

Inputs read_inputs(const CalibrateOptions& opt) {
  Scenario s = load_scenario(opt.scenario.scenario, overrides_of(opt.scenario));
  if (opt.repeats < 1) throw InputError({}, "--repeats", "expected at least 1");
  if (opt.format != "toml" && opt.format != "set") {
    throw InputError({}, "--format", fmt::format("\"{}\": expected toml or set", opt.format));
  }
  DatasetPair data = load_data(s);
  return {std::move(s), std::move(data)};
}

int calibrate(const CalibrateOptions& opt) {
#ifndef DTSIM_HAVE_MPI
  if (opt.mpi) {
    throw InputError({}, "--mpi",
                     "this dtsim was built without MPI: install libopenmpi-dev and openmpi-bin "
                     "(scripts/setup does) and build again");
  }
#else
  std::unique_ptr<MpiSession> mpi;
  std::unique_ptr<MpiTransport> t;
  if (opt.mpi) {
    mpi = std::make_unique<MpiSession>();
    t = std::make_unique<MpiTransport>();
  }
#endif
  std::optional<Inputs> in;
  if (!opt.mpi) {
    in.emplace(read_inputs(opt));
  } else {
#ifdef DTSIM_HAVE_MPI
    // Every rank reads; rank 0 alone says what is wrong.
    std::string error;
    try {
      in.emplace(read_inputs(opt));
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (some_rank_failed(*t, error)) return kExitBadInput;
#endif
  }
  const Scenario& s = in->scenario;
  const DatasetPair& data = in->data;
  int ranks = 1;
  StepCost cost;
  Fit fit;
  bool network = false;
  if (opt.mpi) {
#ifdef DTSIM_HAVE_MPI
    ranks = t->size();
    t->barrier();
    // Every rank at once, as the scenario's first `ranks` workers.
    cost = step_cost(s, data, t->rank() % s.cluster.workers, s.cluster.workers, opt.repeats);
    const std::vector<double> mine = {cost.seconds, cost.jitter};
    const std::vector<std::vector<double> > all = t->gather(mine, 0);
    t->barrier();
    if (ranks >= 2) {
      const std::size_t params =
          Model(s.model, {data.train.channels, data.train.height, data.train.width},
                data.train.task, data.train.outputs)
              .num_params();
      fit = ping_pong(*t, std::max(5, opt.repeats / 3), message_bytes(s, params));
      network = true;
    }
    if (t->rank() != 0) return kExitOk;
    std::vector<double> each;
    std::vector<double> jitters;
    for (const std::vector<double>& v : all) {
      each.push_back(v[0]);
      jitters.push_back(v[1]);
    }
    cost.seconds = median(each);
    cost.jitter = median(jitters);
#endif
  } else {
    cost = step_cost(s, data, 0, s.cluster.workers, opt.repeats);
  }
  const double speed = cost.flops / cost.seconds;
  fmt::print(
      stderr,
      "dtsim: a worker's step (gradient of a batch of {} and update, {:.4g} GFLOP as "
      "charged) takes {:.4g} ms here (lognormal median of {}{})\n",
      s.train.batch_size, cost.flops * 1e-9, cost.seconds * 1e3, opt.repeats,
      ranks > 1 ? fmt::format("; median over {} ranks measuring at once", ranks) : std::string());
  // (No spaces, so that the set format survives a shell's word splitting.)
  const std::string compute = fmt::format("{:.4g}GFLOPS", speed * 1e-9);
  const std::string latency = fmt::format("{:.4g}us", fit.alpha / 2 * 1e6);
  const std::string bandwidth = fmt::format("{:.4g}Gbps", fit.bandwidth * 8e-9);
  if (opt.format == "set") {
    fmt::print("--set cluster.compute={} --set cluster.stragglers.jitter={:.3g}", compute,
               cost.jitter);
    if (network) {
      fmt::print(
          " --set network.topology=star --set network.latency={} --set "
          "network.bandwidth={}",
          latency, bandwidth);
    }
    fmt::print("\n");
    return kExitOk;
  }
  fmt::print("# dtsim calibrate {}: this machine{}\n", opt.scenario.scenario,
             ranks > 1 ? fmt::format(", {} MPI ranks", ranks) : std::string());
  fmt::print(
      "[cluster]\ncompute = \"{}\"  # a step (gradient and update): {:.4g} ms\n"
      "stragglers = {{ jitter = {:.3g} }}  # the spread of the steps' times\n",
      compute, cost.seconds * 1e3, cost.jitter);
  if (network) {
    fmt::print(
        "[network]\ntopology = \"star\"\nlatency = \"{}\"  # per link: a small message's "
        "one-way time {:.3g} us crosses two\nbandwidth = \"{}\"  # per link\n",
        latency, fit.alpha * 1e6, bandwidth);
  } else {
    fmt::print("# [network]: run under mpirun -np 2 (or more) with --mpi to measure it\n");
  }
  if (s.data.load_cost > SimTime()) {
    fmt::print(
        "# data.load_cost: the measured step includes reading the batch; set it to "
        "\"0s\"\n");
  }
  return kExitOk;
}

}  // namespace

Command add_calibrate_command(CLI::App& app) {
  auto opt = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure this machine's speed for the scenario's model and batch (and, under mpirun with "
      "--mpi, latency and bandwidth between ranks) and print the [cluster] and [network] "
      "settings that match it");
  add_scenario_options(cmd, opt->scenario, 0);
  cmd->add_flag("--mpi", opt->mpi,
                "Run under mpirun or srun: every rank measures compute at once, then pairs of "
                "ranks the network (rank 0's pair is printed)");
  cmd->add_option("--repeats", opt->repeats, "Timed steps per rank (default 200)");
  cmd->add_option("--format", opt->format,
                  "toml: a snippet to paste into a scenario (default); set: --set options");
  return {cmd, [opt] { return calibrate(*opt); }};
}

}  // namespace dtsim::app
