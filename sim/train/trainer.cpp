#include "sim/train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/data/idx_reader.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/errors.hpp"
#include "engine/rng.hpp"
#include "engine/schedule.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim {
namespace detail {
namespace {

constexpr int kEvalBatch = 500;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

Shape input_shape(const Dataset& d) { return {d.channels, d.height, d.width}; }

// Gossip neighbours: the ring and full topologies' own graphs; a star or hierarchical
// network has no node-to-node links, so its workers gossip on the ring of ranks (the usual
// choice, Lian et al. 2017).
std::vector<int> gossip_neighbours(TopologyKind topology, int p, int w) {
  std::vector<int> out;
  if (topology == TopologyKind::kFull) {
    for (int v = 0; v < p; ++v) {
      if (v != w) out.push_back(v);
    }
    return out;
  }
  for (const int v : {(w + p - 1) % p, (w + 1) % p}) {
    if (v != w && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool Barrier::Awaiter::await_suspend(std::coroutine_handle<> h) {
  b.waiting_.push_back(h);
  if (static_cast<int>(b.waiting_.size()) < b.count_) return true;
  if (b.on_release_) b.on_release_();
  for (std::coroutine_handle<> w : b.waiting_) b.sim_.schedule_resume(b.sim_.now(), w);
  b.waiting_.clear();
  return true;
}

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
      st_(s.strategy),
      data_(data),
      numerics_(!s.strategy.time_only),
      p_(s.cluster.workers),
      k_(s.strategy.architecture == Architecture::kParameterServer ? s.cluster.servers : 0),
      batch_(s.train.batch_size),
      coded_(s.compression.kind != CodecKind::kNone ||
             s.strategy.aggregation.kind != AggregationKind::kMean),
      model_(s.model, input_shape(data.train), data.train.task, data.train.outputs),
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
  // Modes that apply every gradient as its own update run p of them per lock-step round.
  const bool per_gradient =
      st_.sync == SyncMode::kAsp || st_.sync == SyncMode::kDelayed || st_.sync == SyncMode::kAdPsgd;
  total_updates_ = per_gradient ? total_steps_ * static_cast<std::uint64_t>(p_) : total_steps_;
  next_eval_samples_ = static_cast<std::uint64_t>(s.train.eval_every) * global_batch;

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
      if (st_.sync == SyncMode::kAdPsgd) wk.compute_params = init;
    }
    wk.read_version.assign(static_cast<std::size_t>(k_), 0);
    if (coded_) {
      // One compressor for the whole vector (allreduce), or one per shard's part.
      for (int sv = 0; sv < std::max(1, k_); ++sv) {
        const auto [b, e] = k_ > 0
                                ? part_range(model_.num_params(), k_, sv)
                                : std::pair<std::uint64_t, std::uint64_t>(0, model_.num_params());
        wk.codecs.push_back(std::make_unique<Compressor>(s.compression, e - b, s.seed, w,
                                                         k_ > 0 ? nullptr : &model_.layout(), sv));
      }
    }
    if (st_.architecture == Architecture::kGossip) {
      wk.neighbours = gossip_neighbours(s.network.topology, p_, w);
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
      if (st_.sync == SyncMode::kDelayed) server.history.push_back(server.params);
      server.published = server.params;
    }
    if (coded_) {
      server.decoder = std::make_unique<Compressor>(s.compression, e - b, s.seed, -1, nullptr, sv);
      if (server.buffer.empty() && numerics_) server.buffer.assign(e - b, 0.0f);
    }
    server.clocks.assign(static_cast<std::size_t>(p_), 0);
    server.finished.assign(static_cast<std::size_t>(p_), false);
    servers_.push_back(std::move(server));
  }
  // D-PSGD's mixing matrix: Metropolis-Hastings weights on the gossip graph,
  // W_ij = 1 / (1 + max(deg_i, deg_j)) for neighbours and W_ii = 1 - sum_j W_ij: symmetric
  // and doubly stochastic (1/3 each on a ring, 1/p each on a full mesh).
  for (Worker& wk : workers_) {
    double self = 1.0;
    for (const int v : wk.neighbours) {
      const std::size_t deg =
          std::max(wk.neighbours.size(), workers_[static_cast<std::size_t>(v)].neighbours.size());
      const double weight = 1.0 / (1.0 + static_cast<double>(deg));
      wk.mixing.push_back(static_cast<float>(weight));
      self -= weight;
    }
    wk.mixing.push_back(static_cast<float>(self));
  }
  if (st_.backup_workers > 0) {
    barrier_ = std::make_unique<Barrier>(sim_, p_);
    backup_cost_.assign(static_cast<std::size_t>(p_), SimTime());
    backup_counts_.assign(static_cast<std::size_t>(p_), true);
  }
  if (numerics_) {
    for (int t = 0; t < sim_.jobs().threads(); ++t) {
      eval_ws_.push_back(std::make_unique<Workspace>(model_, kEvalBatch));
    }
  }
  result_.model_summary = model_.summary();
}

SimTime TrainingRun::gradient_cost(int w) {
  const double clip_flops =
      s_.train.clip_norm > 0 ? 3.0 * static_cast<double>(model_.num_params()) : 0.0;
  return job_time(workers_[static_cast<std::size_t>(w)].node,
                  model_.forward_flops(batch_) + model_.backward_flops(batch_) + clip_flops,
                  batch_);
}

Task<> TrainingRun::gradient(int w, std::optional<SimTime> cost, std::span<const float> params) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  wk.sampler->next(wk.rows);
  const SimTime time = cost ? *cost : gradient_cost(w);
  if (!numerics_) {
    co_await sim_.compute(wk.node, time, {}, "gradient");
    ++wk.steps;
    co_return;
  }
  if (params.empty()) params = wk.params;
  double loss = 0;
  const FaultConfig* fault = s_.faults.empty() ? nullptr : active_fault(w);
  co_await sim_.compute(
      wk.node, time,
      [this, &wk, &loss, params, fault, w] {
        const Batch batch = gather_batch(data_.train, wk.rows, *wk.ws);
        loss = model_.gradient(params, batch, wk.grads, *wk.ws);
        if (s_.train.clip_norm > 0) clip_global_norm(wk.grads, s_.train.clip_norm);
        // A Byzantine worker corrupts what it sends (after clipping: it does not play along).
        if (fault != nullptr) corrupt(*fault, w, wk.steps, wk.grads);
      },
      "gradient");
  wk.loss_sum += loss;
  ++wk.loss_count;
  if (!std::isfinite(loss) && !stop_) {
    stop_ = true;
    first_bad_step_ = wk.steps;
    first_bad_loss_ = loss;
    first_bad_worker_ = w;
  }
  ++wk.steps;
}

double TrainingRun::lr_at(std::uint64_t step) const {
  return learning_rate(s_.train.schedule, step, total_steps_);
}

void TrainingRun::record_staleness(std::uint64_t s) {
  ++staleness_[s];
  window_staleness_sum_ += static_cast<double>(s);
  ++window_staleness_count_;
  window_staleness_max_ = std::max(window_staleness_max_, s);
}

void TrainingRun::bsp_step_done(std::uint64_t step, int counted) {
  for (int i = 0; i < counted; ++i) record_staleness(0);
  progress(step + 1,
           (step + 1) * static_cast<std::uint64_t>(counted) * static_cast<std::uint64_t>(batch_));
}

void TrainingRun::progress(std::uint64_t updates, std::uint64_t samples, EvalNow when) {
  updates_done_ = updates;
  samples_done_ = samples;
  for (SimObserver* o : observers_) o->on_step_end(updates, sim_.now());
  const bool first_divergence = stop_ && !result_.diverged;
  if (first_divergence) {
    result_.diverged = true;
    result_.diverged_reason = divergence_reason();
  }
  const bool due = first_divergence || samples >= next_eval_samples_ || updates >= total_updates_;
  if (when == EvalNow::kYes || (when == EvalNow::kIfDue && due)) evaluate(updates, samples);
}

std::string TrainingRun::divergence_reason() const {
  const char* value = std::isnan(first_bad_loss_) ? "NaN" : (first_bad_loss_ > 0 ? "+inf" : "-inf");
  if (st_.sync == SyncMode::kBsp || st_.sync == SyncMode::kLocalSgd ||
      st_.sync == SyncMode::kDPsgd) {
    return fmt::format(
        "the training loss became {} at step {} (lr {}); lower train.lr or set train.clip_norm",
        value, first_bad_step_ + 1, lr_at(first_bad_step_));
  }
  return fmt::format(
      "the training loss became {} on worker {} at its gradient {}, after {} updates (lr {}); "
      "lower train.lr or set train.clip_norm",
      value, first_bad_worker_, first_bad_step_ + 1, updates_done_, s_.train.schedule.lr);
}

void TrainingRun::replica_step_done(int w, std::uint64_t step, bool last) {
  ReplicaStep& r = replica_steps_[step];
  const bool snapshot =
      numerics_ && (step % static_cast<std::uint64_t>(s_.train.eval_every) == 0 || last);
  if (snapshot) {
    r.snapshots.resize(static_cast<std::size_t>(p_));
    r.snapshots[static_cast<std::size_t>(w)] = workers_[static_cast<std::size_t>(w)].params;
  }
  if (++r.arrived < p_) return;
  // Every replica finished this step (steps complete in order: a later one needs everyone
  // past this one). Evaluate their average if this is an evaluation step.
  snapshots_ = std::move(r.snapshots);
  replica_steps_.erase(step);
  progress(step, step * static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(batch_),
           numerics_ ? (snapshot ? EvalNow::kYes : EvalNow::kNo) : EvalNow::kIfDue);
}

void TrainingRun::evaluate(std::uint64_t updates, std::uint64_t samples) {
  evaluated_at_ = updates;
  const std::uint64_t every = static_cast<std::uint64_t>(s_.train.eval_every) *
                              static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(batch_);
  while (next_eval_samples_ <= samples) next_eval_samples_ += every;
  EvalPoint p;
  p.step = updates;
  p.samples = samples;
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
  const bool versioned =
      st_.architecture != Architecture::kGossip && st_.sync != SyncMode::kLocalSgd;
  p.mean_staleness = !versioned ? kNaN
                     : window_staleness_count_ == 0
                         ? 0.0
                         : window_staleness_sum_ / static_cast<double>(window_staleness_count_);
  p.max_staleness = window_staleness_max_;
  window_staleness_sum_ = 0;
  window_staleness_count_ = 0;
  window_staleness_max_ = 0;
  if (numerics_) {
    const auto wall_start = std::chrono::steady_clock::now();
    double consensus = kNaN;
    const std::span<const float> params = global_params(consensus);
    const EvalResult test = evaluate_params(params);
    result_.eval_wall_s +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    p.test_loss = test.loss;
    p.test_accuracy = test.accuracy;
    p.consensus_distance = consensus;
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
  for (SimObserver* o : observers_) o->on_evaluation(p);
}

std::span<const float> TrainingRun::global_params(double& consensus) {
  consensus = kNaN;
  if (k_ > 0) {
    // The servers' shards, side by side (for bsp the same as every worker's pulled copy).
    eval_params_.resize(model_.num_params());
    // Asynchronous servers may be in the middle of an update: read what they published.
    const bool published = k_ > 1 && (st_.async_ps() || st_.backup_workers > 0);
    for (const Server& sv : servers_) {
      const std::vector<float>& part = published ? sv.published : sv.params;
      std::copy(part.begin(), part.end(),
                eval_params_.begin() + static_cast<std::ptrdiff_t>(sv.begin));
    }
    return eval_params_;
  }
  const bool replicas = st_.sync == SyncMode::kLocalSgd || st_.sync == SyncMode::kDPsgd ||
                        st_.sync == SyncMode::kAdPsgd;
  if (!replicas) return workers_[0].params;
  // The average of the replicas (snapshots for the lock-step modes; ad-psgd's replicas
  // change only on this thread), summed in worker order, and their spread.
  std::vector<std::span<const float>> reps;
  for (int w = 0; w < p_; ++w) {
    // Before and after the simulation no job runs: the replicas themselves.
    const bool live = st_.sync == SyncMode::kAdPsgd || !running_;
    reps.emplace_back(live ? workers_[static_cast<std::size_t>(w)].params
                           : snapshots_[static_cast<std::size_t>(w)]);
  }
  const std::size_t n = model_.num_params();
  eval_params_.assign(n, 0.0f);
  for (const auto& r : reps) {
    for (std::size_t i = 0; i < n; ++i) eval_params_[i] += r[i];
  }
  const float inv = 1.0f / static_cast<float>(p_);
  for (float& v : eval_params_) v *= inv;
  double spread = 0;
  for (const auto& r : reps) {
    for (std::size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(r[i]) - static_cast<double>(eval_params_[i]);
      spread += d * d;
    }
  }
  consensus = std::sqrt(spread / static_cast<double>(p_));
  return eval_params_;
}

EvalResult TrainingRun::evaluate_params(std::span<const float> params) {
  // Chunks in parallel, sums added in chunk order: the result is evaluate()'s, for any
  // number of threads.
  const Dataset& test = data_.test;
  const std::size_t n = test.samples();
  const std::size_t chunks = (n + kEvalBatch - 1) / kEvalBatch;
  std::vector<std::pair<double, std::size_t>> sums(chunks);
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
  for (SimObserver* o : observers_) o->on_run_start(total_updates_);
  evaluate(0, 0);
  for (int w = 0; w < p_; ++w) {
    switch (st_.sync) {
      case SyncMode::kBsp:
        if (k_ > 0) {
          sim_.spawn(st_.backup_workers > 0 ? async_ps_worker(w)
                     : coded_               ? coded_ps_worker(w)
                                            : ps_worker(w));
        } else {
          sim_.spawn(allreduce_worker(w));
        }
        break;
      case SyncMode::kAsp:
      case SyncMode::kSsp:
      case SyncMode::kDelayed:
        sim_.spawn(async_ps_worker(w));
        break;
      case SyncMode::kLocalSgd:
        sim_.spawn(local_sgd_worker(w));
        break;
      case SyncMode::kDPsgd:
        sim_.spawn(dpsgd_worker(w));
        break;
      case SyncMode::kAdPsgd:
        sim_.spawn(adpsgd_worker(w));
        sim_.spawn(adpsgd_listener(w));
        break;
    }
  }
  for (int sv = 0; sv < k_; ++sv) {
    const bool async = st_.async_ps() || st_.backup_workers > 0;
    sim_.spawn(async ? async_ps_server(sv) : coded_ ? coded_ps_server(sv) : ps_server(sv));
  }
  running_ = true;
  sim_.run();
  running_ = false;
  // Asynchronous runs end when the last request is served; evaluate that final state.
  if (evaluated_at_ != updates_done_) evaluate(updates_done_, samples_done_);

  result_.steps = updates_done_;
  result_.samples = samples_done_;
  result_.virtual_time_s = sim_.now().seconds();
  result_.staleness_histogram.assign(staleness_.begin(), staleness_.end());
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
    if (node < p_) {
      st.steps = workers_[static_cast<std::size_t>(node)].steps;
      st.dropped = workers_[static_cast<std::size_t>(node)].dropped;
    } else {
      st.steps = st_.async_ps() || st_.backup_workers > 0
                     ? servers_[static_cast<std::size_t>(node - p_)].version
                     : updates_done_;
    }
    result_.nodes.push_back(st);
  }
  result_.threads = sim_.jobs().threads();
  result_.jobs_wall_s = sim_.jobs().job_seconds();
  result_.simulate_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return result_;
}

}  // namespace detail

namespace {
constexpr std::size_t kSyntheticTrain = 4000;
constexpr std::size_t kSyntheticTest = 1000;
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

class Training::Run : public detail::TrainingRun {
 public:
  using detail::TrainingRun::TrainingRun;
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
