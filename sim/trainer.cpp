#include "sim/trainer.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/data/batch_sampler.hpp"
#include "engine/data/idx_reader.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/errors.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/rng.hpp"
#include "engine/schedule.hpp"
#include "sim/collectives.hpp"
#include "sim/cost_model.hpp"
#include "sim/simulation.hpp"

namespace dtsim {
namespace {

constexpr int kEvalBatch = 500;
constexpr std::size_t kSyntheticTrain = 4000;
constexpr std::size_t kSyntheticTest = 1000;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Collective tags: one range per global step.
std::uint64_t step_tag(std::uint64_t step) { return (step + 1) << 24; }

// The scenario's topology, with [[cluster.group]] link overrides.
Topology cluster_topology(const Scenario& s, int nodes) {
  Topology topo(s.network, nodes);
  for (const NodeGroup& g : s.cluster.groups) {
    if (!g.latency && !g.bandwidth) continue;
    const LinkSpec base =
        s.network.topology == TopologyKind::kHierarchical ? s.network.intra : s.network.link;
    const LinkSpec spec{g.bandwidth.value_or(base.bandwidth), g.latency.value_or(base.latency)};
    for (int n = g.first; n <= g.last && n < nodes; ++n) topo.set_node_links(n, spec);
  }
  return topo;
}

class TrainingRun {
 public:
  TrainingRun(const Scenario& s, const DatasetPair& data, int threads);
  RunResult run();
  void add_observer(SimObserver* o) { sim_.add_observer(o); }

 private:
  struct Worker {
    int node = 0;
    std::vector<float> params;
    std::vector<float> grads;
    std::unique_ptr<Optimizer> optimizer;  // allreduce only: each replica updates itself
    std::unique_ptr<Workspace> ws;
    std::unique_ptr<BatchSampler> sampler;
    std::vector<std::uint32_t> rows;
    std::uint64_t steps = 0;  // gradients computed
    double loss_sum = 0;      // training losses since the last evaluation
    std::uint64_t loss_count = 0;
  };
  struct Server {
    int node = 0;
    std::uint64_t begin = 0;  // this shard's range of the parameter vector
    std::uint64_t end = 0;
    std::vector<float> params;
    std::vector<float> buffer;  // sums gradients, then carries the updated parameters back
    std::unique_ptr<Optimizer> optimizer;
  };

  Task<> allreduce_worker(int w);
  Task<> ps_worker(int w);
  Task<> ps_server(int s);
  Task<> gradient(int w);
  // Virtual time of a job of `flops` on `node` over `samples` samples: its speed, straggler
  // slowdown and seeded lognormal jitter, plus the per-sample loading cost.
  SimTime job_time(int node, double flops, int samples = 0);
  // Whether some worker's loss at `step` (0-based) or earlier was not finite. Every program
  // checks this after finishing the step, when every worker's loss of that step is known, so
  // all of them stop together.
  bool diverged_at(std::uint64_t step) const { return first_bad_step_ <= step; }
  void step_done(std::uint64_t step);  // worker 0, after step `step` (1-based count)
  void evaluate(std::uint64_t step);
  EvalResult evaluate_global();

  const Scenario& s_;
  const DatasetPair& data_;
  const bool numerics_;
  const int p_;
  const int k_;
  Model model_;
  NodeSpeed speed_;                  // the scenario's default node
  std::vector<double> flops_per_s_;  // each node's speed ([[cluster.group]])
  std::vector<double> slowdown_;     // each node's straggler multiplier
  std::vector<std::uint64_t> jobs_;  // jobs charged so far per node (keys the jitter)
  std::uint64_t total_steps_ = 0;
  std::vector<Worker> workers_;
  std::vector<Server> servers_;
  std::vector<int> worker_nodes_;
  std::vector<int> server_nodes_;
  std::vector<std::unique_ptr<Workspace>> eval_ws_;  // one per job thread
  RunResult result_;
  std::uint64_t steps_done_ = 0;
  std::uint64_t first_bad_step_ = std::numeric_limits<std::uint64_t>::max();
  double first_bad_loss_ = 0;
  // Last, so it is destroyed first: its node programs and jobs use everything above.
  Simulation sim_;
};

Shape input_shape(const Dataset& d) { return {d.channels, d.height, d.width}; }

SimTime TrainingRun::job_time(int node, double flops, int samples) {
  const auto n = static_cast<std::size_t>(node);
  double factor = slowdown_[n];
  if (s_.cluster.stragglers.jitter > 0) {
    CounterRng rng({s_.seed, RngPurpose::kJitter, static_cast<std::uint32_t>(node + 1), jobs_[n]});
    factor *= std::exp(s_.cluster.stragglers.jitter * rng.normal());
  }
  ++jobs_[n];
  return SimTime::from_seconds(flops / flops_per_s_[n] * factor) + s_.data.load_cost * samples;
}

TrainingRun::TrainingRun(const Scenario& s, const DatasetPair& data, int threads)
    : s_(s),
      data_(data),
      numerics_(!s.strategy.time_only),
      p_(s.cluster.workers),
      k_(s.strategy.architecture == Architecture::kParameterServer ? s.cluster.servers : 0),
      model_(s.model, input_shape(data.train), data.train.task, data.train.outputs),
      speed_{s.cluster.compute_flops_per_s, s.data.load_cost},
      sim_(cluster_topology(s, p_ + k_), threads) {
  flops_per_s_.assign(static_cast<std::size_t>(p_ + k_), s.cluster.compute_flops_per_s);
  slowdown_.assign(static_cast<std::size_t>(p_ + k_), 1.0);
  jobs_.assign(static_cast<std::size_t>(p_ + k_), 0);
  for (const NodeGroup& g : s.cluster.groups) {
    for (int n = g.first; n <= g.last && n < p_ + k_; ++n) {
      if (g.compute_flops_per_s) flops_per_s_[static_cast<std::size_t>(n)] = *g.compute_flops_per_s;
    }
  }
  // The stragglers: the first round(fraction * workers) of a seeded permutation of the workers.
  std::vector<int> order(static_cast<std::size_t>(p_));
  std::iota(order.begin(), order.end(), 0);
  CounterRng pick({s.seed, RngPurpose::kJitter, 0, 0});
  pick.shuffle(std::span<int>(order));
  const auto stragglers =
      static_cast<std::size_t>(std::llround(s.cluster.stragglers.fraction * p_));
  for (std::size_t i = 0; i < stragglers; ++i) {
    slowdown_[static_cast<std::size_t>(order[i])] = s.cluster.stragglers.slowdown;
  }
  if (static_cast<std::size_t>(k_) > model_.num_params()) {
    throw InputError({}, "cluster.servers",
                     fmt::format("{} server shards for a model of {} parameters: every shard "
                                 "needs at least one; use at most {}",
                                 k_, model_.num_params(), model_.num_params()));
  }
  const std::size_t n = data.train.samples();
  const auto global_batch =
      static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(s.train.batch_size);
  const std::uint64_t steps_per_epoch = (n + global_batch - 1) / global_batch;
  total_steps_ = s.train.steps > 0 ? s.train.steps
                                   : static_cast<std::uint64_t>(s.train.epochs) * steps_per_epoch;

  const std::vector<Shard> shards = partition(data.train, p_, s.data.partition, s.seed);
  const std::vector<float> init = numerics_ ? model_.init_params(s.seed) : std::vector<float>{};
  for (int w = 0; w < p_; ++w) {
    Worker wk;
    wk.node = w;
    worker_nodes_.push_back(w);
    wk.sampler =
        std::make_unique<BatchSampler>(shards[static_cast<std::size_t>(w)].rows, s.train.batch_size,
                                       s.seed, static_cast<std::uint32_t>(w));
    if (numerics_) {
      wk.params = init;
      wk.grads.assign(model_.num_params(), 0.0f);
      wk.ws = std::make_unique<Workspace>(model_, s.train.batch_size);
      if (k_ == 0)
        wk.optimizer = std::make_unique<Optimizer>(s.train.optimizer, model_.num_params());
    }
    workers_.push_back(std::move(wk));
  }
  for (int sv = 0; sv < k_; ++sv) {
    Server server;
    server.node = p_ + sv;
    server_nodes_.push_back(server.node);
    const auto [b, e] = part_range(model_.num_params(), k_, sv);
    server.begin = b;
    server.end = e;
    if (numerics_) {
      server.params.assign(init.begin() + static_cast<std::ptrdiff_t>(b),
                           init.begin() + static_cast<std::ptrdiff_t>(e));
      server.buffer.assign(e - b, 0.0f);
      server.optimizer = std::make_unique<Optimizer>(s.train.optimizer, e - b);
    }
    servers_.push_back(std::move(server));
  }
  if (numerics_) {
    for (int t = 0; t < sim_.jobs().threads(); ++t) {
      eval_ws_.push_back(std::make_unique<Workspace>(model_, kEvalBatch));
    }
  }
  result_.model_summary = model_.summary();
}

Task<> TrainingRun::gradient(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  wk.sampler->next(wk.rows);
  const int b = s_.train.batch_size;
  const double clip_flops =
      s_.train.clip_norm > 0 ? 3.0 * static_cast<double>(model_.num_params()) : 0.0;
  const SimTime cost =
      job_time(wk.node, model_.forward_flops(b) + model_.backward_flops(b) + clip_flops, b);
  if (!numerics_) {
    co_await sim_.compute(wk.node, cost, {}, "gradient");
    ++wk.steps;
    co_return;
  }
  double loss = 0;
  co_await sim_.compute(
      wk.node, cost,
      [this, &wk, &loss] {
        const Batch batch = gather_batch(data_.train, wk.rows, *wk.ws);
        loss = model_.gradient(wk.params, batch, wk.grads, *wk.ws);
        if (s_.train.clip_norm > 0) clip_global_norm(wk.grads, s_.train.clip_norm);
      },
      "gradient");
  wk.loss_sum += loss;
  ++wk.loss_count;
  if (!std::isfinite(loss) && wk.steps < first_bad_step_) {
    first_bad_step_ = wk.steps;
    first_bad_loss_ = loss;
  }
  ++wk.steps;
}

Task<> TrainingRun::allreduce_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  // The update: averaging the summed gradient (p > 1) and the optimizer step; clipping was
  // charged with the gradient. The same charge with or without numerics.
  const double update_flops =
      optimizer_step_flops(s_.train.optimizer.kind, n) + (p_ > 1 ? static_cast<double>(n) : 0.0);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    co_await gradient(w);
    const CollBuf buf = numerics_ ? CollBuf::real(wk.grads) : CollBuf::sized(n);
    co_await allreduce(CollContext{&sim_, worker_nodes_, w, step_tag(step),
                                   flops_per_s_[static_cast<std::size_t>(w)]},
                       buf, s_.strategy.collective, s_.network.nodes_per_machine);
    if (diverged_at(step)) {
      if (w == 0) step_done(step + 1);
      co_return;
    }
    const double lr = learning_rate(s_.train.schedule, step, total_steps_);
    // (Built as a named local: GCC 12 destroys a temporary std::function built in a
    // conditional inside a co_await expression twice.)
    std::function<void()> work;
    if (numerics_) {
      work = [this, &wk, lr] {
        if (p_ > 1) {
          const float inv = 1.0f / static_cast<float>(p_);
          for (float& g : wk.grads) g *= inv;
        }
        wk.optimizer->step(wk.params, wk.grads, lr);
      };
    }
    co_await sim_.compute(wk.node, job_time(wk.node, update_flops), std::move(work), "update");
    if (w == 0) step_done(step + 1);
  }
}

Task<> TrainingRun::ps_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    co_await gradient(w);
    // The pull overwrites the gradient buffer with the servers' new parameters.
    const CollBuf buf = numerics_ ? CollBuf::real(wk.grads) : CollBuf::sized(n);
    co_await ps_push_pull(CollContext{&sim_, worker_nodes_, w, step_tag(step),
                                      flops_per_s_[static_cast<std::size_t>(w)]},
                          buf, server_nodes_);
    if (numerics_) std::swap(wk.params, wk.grads);
    if (w == 0) step_done(step + 1);
    if (diverged_at(step)) co_return;
  }
}

Task<> TrainingRun::ps_server(int sv) {
  Server& server = servers_[static_cast<std::size_t>(sv)];
  const std::uint64_t n = server.end - server.begin;
  const double update_flops =
      optimizer_step_flops(s_.train.optimizer.kind, n) + static_cast<double>(n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    const double lr = learning_rate(s_.train.schedule, step, total_steps_);
    auto update = [this, &server, update_flops, lr]() -> Task<> {
      std::function<void()> work;
      if (numerics_) {
        work = [this, &server, lr] {
          const float inv = 1.0f / static_cast<float>(p_);
          for (float& g : server.buffer) g *= inv;
          server.optimizer->step(server.params, server.buffer, lr);
          std::copy(server.params.begin(), server.params.end(), server.buffer.begin());
        };
      }
      co_await sim_.compute(server.node, job_time(server.node, update_flops), std::move(work),
                            "update");
    };
    const PsServerStep ps{&sim_,
                          server.node,
                          worker_nodes_,
                          sv,
                          k_,
                          model_.num_params(),
                          step_tag(step),
                          flops_per_s_[static_cast<std::size_t>(server.node)],
                          numerics_};
    co_await ps_serve_step(ps, server.buffer, update);
    if (diverged_at(step)) co_return;
  }
}

void TrainingRun::step_done(std::uint64_t step) {
  steps_done_ = step;
  sim_.step_end(step);
  const bool diverged = diverged_at(step - 1);
  if (diverged) {
    result_.diverged = true;
    result_.diverged_reason = fmt::format(
        "the training loss became {} at step {} (lr {}); lower train.lr or set train.clip_norm",
        std::isnan(first_bad_loss_) ? "NaN" : (first_bad_loss_ > 0 ? "+inf" : "-inf"),
        first_bad_step_ + 1, learning_rate(s_.train.schedule, first_bad_step_, total_steps_));
  }
  if (diverged || step % s_.train.eval_every == 0 || step == total_steps_) evaluate(step);
}

void TrainingRun::evaluate(std::uint64_t step) {
  EvalPoint p;
  p.step = step;
  p.samples =
      step * static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(s_.train.batch_size);
  p.epoch = static_cast<double>(p.samples) / static_cast<double>(data_.train.samples());
  p.virtual_time_s = sim_.now().seconds();
  double sum = 0;
  std::uint64_t count = 0;
  for (Worker& w : workers_) {
    sum += w.loss_sum;
    count += w.loss_count;
    w.loss_sum = 0;
    w.loss_count = 0;
  }
  p.train_loss = count > 0 && numerics_ ? sum / static_cast<double>(count) : kNaN;
  if (numerics_) {
    const auto wall_start = std::chrono::steady_clock::now();
    const EvalResult test = evaluate_global();
    result_.eval_wall_s +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    p.test_loss = test.loss;
    p.test_accuracy = test.accuracy;
  } else {
    p.test_loss = kNaN;
    p.test_accuracy = kNaN;
  }
  for (int node = 0; node < sim_.nodes(); ++node) p.bytes_sent += sim_.account(node).bytes_sent;
  if (s_.train.target_accuracy && !result_.time_to_target_s &&
      p.test_accuracy >= *s_.train.target_accuracy) {
    result_.time_to_target_s = p.virtual_time_s;
  }
  result_.evals.push_back(p);
  sim_.evaluated(p);
}

EvalResult TrainingRun::evaluate_global() {
  // Chunks in parallel, sums added in chunk order: the result is evaluate()'s, for any
  // number of threads.
  const Dataset& test = data_.test;
  const std::size_t n = test.samples();
  const std::size_t chunks = (n + kEvalBatch - 1) / kEvalBatch;
  std::vector<std::pair<double, std::size_t>> sums(chunks);
  const std::span<const float> params = workers_[0].params;
  std::vector<std::function<void()>> work;
  const std::size_t lanes = eval_ws_.size();
  for (std::size_t lane = 0; lane < lanes; ++lane) {
    // Lane `lane` evaluates chunks lane, lane + lanes, ... with its own workspace.
    work.emplace_back([&, lane] {
      for (std::size_t i = lane; i < chunks; i += lanes) {
        const std::size_t begin = i * kEvalBatch;
        sums[i] = model_.evaluate_chunk(params, test, begin, std::min(n, begin + kEvalBatch),
                                        *eval_ws_[lane]);
      }
    });
  }
  sim_.jobs().run_all(std::move(work));
  EvalResult r;
  double loss = 0;
  std::size_t correct = 0;
  for (const auto& [l, c] : sums) {
    loss += l;
    correct += c;
  }
  r.samples = n;
  r.loss = n > 0 ? loss / static_cast<double>(n) : 0.0;
  r.accuracy = test.task == LearningTask::kClassification && n > 0
                   ? static_cast<double>(correct) / static_cast<double>(n)
                   : kNaN;
  return r;
}

RunResult TrainingRun::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  sim_.run_starts(total_steps_);
  evaluate(0);
  for (int w = 0; w < p_; ++w) {
    sim_.spawn(k_ > 0 ? ps_worker(w) : allreduce_worker(w));
  }
  for (int sv = 0; sv < k_; ++sv) sim_.spawn(ps_server(sv));
  sim_.run();

  result_.steps = steps_done_;
  result_.samples = steps_done_ * static_cast<std::uint64_t>(p_) *
                    static_cast<std::uint64_t>(s_.train.batch_size);
  result_.virtual_time_s = sim_.now().seconds();
  for (int node = 0; node < sim_.nodes(); ++node) {
    const NodeAccount& a = sim_.account(node);
    NodeStats st;
    st.node = node;
    st.role = node < p_ ? "worker" : "server";
    st.compute_flops_per_s =
        flops_per_s_[static_cast<std::size_t>(node)] / slowdown_[static_cast<std::size_t>(node)];
    st.compute_s = a.compute.seconds();
    st.comm_s = a.comm.seconds();
    st.idle_s = std::max(0.0, (sim_.now() - a.compute - a.comm).seconds());
    st.bytes_sent = a.bytes_sent;
    st.bytes_received = a.bytes_received;
    st.steps = node < p_ ? workers_[static_cast<std::size_t>(node)].steps : steps_done_;
    result_.nodes.push_back(st);
  }
  result_.threads = sim_.jobs().threads();
  result_.jobs_wall_s = sim_.jobs().job_seconds();
  result_.simulate_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return result_;
}

}  // namespace

DatasetPair load_data(const Scenario& s) {
  const DataConfig& d = s.data;
  if (d.dataset == "fashion-mnist") {
    DatasetPair pair = load_fashion_mnist(d.path);
    const auto too_many = [](const char* key, std::size_t asked, std::size_t have) {
      return InputError({}, key,
                        fmt::format("asks for {} samples, but the dataset has {}", asked, have));
    };
    if (d.train_samples > pair.train.samples()) {
      throw too_many("data.train_samples", d.train_samples, pair.train.samples());
    }
    if (d.test_samples > pair.test.samples()) {
      throw too_many("data.test_samples", d.test_samples, pair.test.samples());
    }
    shuffle_and_take(pair.train, d.train_samples, s.seed, 0);
    shuffle_and_take(pair.test, d.test_samples, s.seed, 1);
    return pair;
  }
  const std::size_t train = d.train_samples > 0 ? d.train_samples : kSyntheticTrain;
  const std::size_t test = d.test_samples > 0 ? d.test_samples : kSyntheticTest;
  if (d.dataset == "blobs") {
    BlobsConfig c = d.blobs;
    c.train_samples = train;
    c.test_samples = test;
    return make_blobs(c, s.seed);
  }
  LinregConfig c = d.linreg;
  c.train_samples = train;
  c.test_samples = test;
  return make_linreg(c, s.seed).data;
}

class Training::Run : public TrainingRun {
 public:
  using TrainingRun::TrainingRun;
};

Training::Training(const Scenario& scenario, const DatasetPair& data, int threads)
    : run_(std::make_unique<Run>(scenario, data, threads)) {}

Training::~Training() = default;

RunResult Training::run(const std::vector<SimObserver*>& observers) {
  for (SimObserver* o : observers) run_->add_observer(o);
  return run_->run();
}

RunResult run_training(const Scenario& scenario, const DatasetPair& data, int threads,
                       const std::vector<SimObserver*>& observers) {
  return Training(scenario, data, threads).run(observers);
}

}  // namespace dtsim
