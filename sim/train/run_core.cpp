#include "sim/train/run_core.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numeric>

#include "engine/data/partition.hpp"
#include "engine/errors.hpp"
#include "engine/memory.hpp"
#include "engine/optimizer.hpp"
#include "engine/rng.hpp"
#include "engine/schedule.hpp"
#include "sim/strategies/strategy.hpp"

namespace dtsim {
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

}  // namespace

RunCore::RunCore(const Scenario& s, const DatasetPair& data, int threads)
    : s_(s),
      data_(data),
      numerics_(!s.strategy.time_only),
      p_(data_replicas(s)),
      k_(server_count(s)),
      nodes_(s.cluster.workers + k_),
      batch_(s.train.batch_size),
      model_(s.model, input_shape(data.train), data.train.task, data.train.outputs),
      gradient_ws_(model_, s.train.batch_size),
      sim_(cluster_topology(s, nodes_), threads) {
  if (static_cast<std::size_t>(k_) > model_.num_params()) {
    throw InputError({}, "cluster.servers",
                     fmt::format("{} server shards for a model of {} parameters: every shard "
                                 "needs at least one; use at most {}",
                                 k_, model_.num_params(), model_.num_params()));
  }
  set_up_nodes();
  const std::size_t n = data.train.samples();
  const auto global_batch =
      static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(s.train.batch_size);
  const std::uint64_t steps_per_epoch = (n + global_batch - 1) / global_batch;
  total_steps_ = s.train.steps > 0 ? s.train.steps
                                   : static_cast<std::uint64_t>(s.train.epochs) * steps_per_epoch;
  next_eval_samples_ = static_cast<std::uint64_t>(s.train.eval_every) * global_batch;
  set_up_workers(data);
  if (numerics_) {
    for (int t = 0; t < sim_.jobs().threads(); ++t) {
      eval_ws_.push_back(std::make_unique<Workspace>(model_, kEvalBatch));
    }
  }
  const bool timed_faults = std::any_of(s.faults.begin(), s.faults.end(), [](const FaultConfig& f) {
    return f.kind != FaultKind::kByzantine;
  });
  if (timed_faults) {
    faults_ = std::make_unique<FaultSchedule>(s, sim_, [this](int w) {
      if (strategy_ != nullptr) strategy_->worker_lost(w);
    });
  }
  result_.model_summary = model_.summary();
  if (numerics_) {
    for (const TensorSlot& t : model_.layout().tensors()) result_.layer_names.push_back(t.name);
  }
}

void RunCore::set_up_nodes() {
  const auto nodes = static_cast<std::size_t>(nodes_);
  flops_per_s_.assign(nodes, s_.cluster.compute_flops_per_s);
  slowdown_.assign(nodes, 1.0);
  jobs_.assign(nodes, 0);
  for (const NodeGroup& g : s_.cluster.groups) {
    for (int n = g.first; n <= g.last && n < nodes_; ++n) {
      if (g.compute_flops_per_s) flops_per_s_[static_cast<std::size_t>(n)] = *g.compute_flops_per_s;
    }
  }
  // The stragglers: the first round(fraction * workers) of a seeded permutation of the workers.
  const int workers = s_.cluster.workers;
  std::vector<int> order(static_cast<std::size_t>(workers));
  std::iota(order.begin(), order.end(), 0);
  CounterRng pick({s_.seed, RngPurpose::kJitter, 0, 0});
  pick.shuffle(std::span<int>(order));
  const auto stragglers =
      static_cast<std::size_t>(std::llround(s_.cluster.stragglers.fraction * workers));
  for (std::size_t i = 0; i < stragglers; ++i) {
    slowdown_[static_cast<std::size_t>(order[i])] = s_.cluster.stragglers.slowdown;
  }
  // A data replica's first node reads its batches (the only one, unless the model is split).
  for (int w = 0; w < p_; ++w) worker_nodes_.push_back(w * replica_nodes(s_.strategy));
  for (int sv = 0; sv < k_; ++sv) server_nodes_.push_back(workers + sv);
}

void RunCore::set_up_workers(const DatasetPair& data) {
  // Samples are split among the data replicas; a split model's feature split (columns,
  // blocks) is its shards' (engine/tensor_shard.hpp).
  PartitionConfig rows = s_.data.partition;
  if (model_parallel(s_.strategy)) rows.kind = PartitionKind::kRows;
  const std::vector<Shard> shards = partition(data.train, p_, rows, s_.seed);
  if (numerics_) {
    init_ = model_.init_params(s_.seed);
    grad_store_ = ZeroedFloats(static_cast<std::size_t>(p_) * model_.num_params());
  }
  for (int w = 0; w < p_; ++w) {
    GradientWorker wk;
    wk.node = worker_nodes_[static_cast<std::size_t>(w)];
    wk.sampler =
        std::make_unique<BatchSampler>(shards[static_cast<std::size_t>(w)].rows,
                                       s_.train.batch_size, s_.seed, static_cast<std::uint32_t>(w));
    if (numerics_) {
      wk.grads =
          std::span<float>(grad_store_.data(), grad_store_.size())
              .subspan(static_cast<std::size_t>(w) * model_.num_params(), model_.num_params());
    }
    workers_.push_back(std::move(wk));
  }
}

std::unique_ptr<Workspace> WorkspacePool::take() {
  {
    const std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      std::unique_ptr<Workspace> ws = std::move(free_.back());
      free_.pop_back();
      return ws;
    }
  }
  return std::make_unique<Workspace>(model_, batch_);
}

void WorkspacePool::give(std::unique_ptr<Workspace> ws) {
  const std::lock_guard lock(mutex_);
  free_.push_back(std::move(ws));
}

void RunCore::add_observer(SimObserver* o) {
  sim_.add_observer(o);
  observers_.push_back(o);
}

SimTime RunCore::job_time(int node, double flops, int samples) {
  const auto n = static_cast<std::size_t>(node);
  double factor = slowdown_[n];
  if (s_.cluster.stragglers.jitter > 0) {
    CounterRng rng({s_.seed, RngPurpose::kJitter, static_cast<std::uint32_t>(node + 1), jobs_[n]});
    factor *= std::exp(s_.cluster.stragglers.jitter * rng.normal());
  }
  ++jobs_[n];
  const SimTime time =
      SimTime::from_seconds(flops / flops_per_s_[n] * factor) + s_.data.load_cost * samples;
  if (faults_ == nullptr) return time;
  const double slow = faults_->slow_factor(node, time);
  return slow == 1.0 ? time : SimTime::from_seconds(time.seconds() * slow);
}

SimTime RunCore::gradient_cost(int w) {
  const double clip_flops =
      s_.train.clip_norm > 0 ? 3.0 * static_cast<double>(model_.num_params()) : 0.0;
  return job_time(worker(w).node,
                  model_.forward_flops(batch_) + model_.backward_flops(batch_) + clip_flops,
                  batch_);
}

Task<> RunCore::gradient(int w, std::span<const float> params, std::optional<SimTime> cost) {
  GradientWorker& wk = worker(w);
  wk.sampler->next(wk.rows);
  const SimTime time = cost ? *cost : gradient_cost(w);
  if (!numerics_) {
    co_await sim_.compute(wk.node, time, {}, "gradient");
    ++wk.steps;
    co_return;
  }
  settle_norms(w);  // (its buffer is about to be overwritten)
  double loss = 0;
  std::string bad_where;  // where a non-finite loss came from
  const FaultConfig* fault = s_.faults.empty() ? nullptr : active_fault(w);
  const bool defer = defer_norms_;
  co_await sim_.compute(
      wk.node, time,
      [this, &wk, &loss, &bad_where, params, fault, w, defer] {
        std::unique_ptr<Workspace> ws = gradient_ws_.take();
        const Batch batch = gather_batch(data_.train, wk.rows, *ws);
        loss = model_.gradient(params, batch, wk.grads, *ws);
        if (!std::isfinite(loss)) bad_where = model_.locate_non_finite(params, *ws, batch_);
        gradient_ws_.give(std::move(ws));
        if (!defer) measure_gradient(wk);
        if (s_.train.clip_norm > 0) clip_global_norm(wk.grads, s_.train.clip_norm);
        // A Byzantine worker corrupts what it sends (after clipping: it does not play along).
        if (fault != nullptr) corrupt(*fault, w, wk.steps, wk.grads);
      },
      "gradient");
  if (!std::isfinite(loss) && !stop_) first_bad_where_ = std::move(bad_where);
  if (defer) {
    wk.norms_pending = true;
  } else {
    add_norms(wk);
  }
  report_loss(w, loss);
  ++wk.steps;
}

void RunCore::measure_gradient(GradientWorker& wk) const {
  GradientWorker* one[] = {&wk};
  measure_gradients(one);
}

void RunCore::measure_gradients(std::span<GradientWorker* const> wks) const {
  constexpr std::size_t kSide = 4;  // sums side by side
  const auto& tensors = model_.layout().tensors();
  for (std::size_t first = 0; first < wks.size(); first += kSide) {
    const std::size_t m = std::min(kSide, wks.size() - first);
    std::array<double, kSide> total{};
    for (std::size_t j = 0; j < m; ++j) wks[first + j]->last_layer_norms.resize(tensors.size());
    for (std::size_t t = 0; t < tensors.size(); ++t) {
      const std::size_t begin = tensors[t].offset;
      const std::size_t end = begin + tensors[t].size;
      std::array<const float*, kSide> g{};
      for (std::size_t j = 0; j < kSide; ++j) g[j] = wks[first + std::min(j, m - 1)]->grads.data();
      std::array<double, kSide> sq{};
      for (std::size_t i = begin; i < end; ++i) {
        // (Each sum adds its own gradient's squares in order: the result of one at a time.)
        sq[0] += static_cast<double>(g[0][i]) * g[0][i];
        sq[1] += static_cast<double>(g[1][i]) * g[1][i];
        sq[2] += static_cast<double>(g[2][i]) * g[2][i];
        sq[3] += static_cast<double>(g[3][i]) * g[3][i];
      }
      for (std::size_t j = 0; j < m; ++j) {
        wks[first + j]->last_layer_norms[t] = std::sqrt(sq[j]);
        total[j] += sq[j];
      }
    }
    for (std::size_t j = 0; j < m; ++j) wks[first + j]->last_norm = std::sqrt(total[j]);
  }
}

void RunCore::add_norms(GradientWorker& wk) {
  wk.layer_norm_sum.resize(wk.last_layer_norms.size(), 0.0);
  for (std::size_t t = 0; t < wk.last_layer_norms.size(); ++t) {
    wk.layer_norm_sum[t] += wk.last_layer_norms[t];
  }
  wk.norm_sum += wk.last_norm;
  ++wk.norm_count;
}

void RunCore::settle_norms(int w) {
  GradientWorker& wk = worker(w);
  if (!wk.norms_pending) return;
  measure_gradient(wk);
  wk.norms_pending = false;
  add_norms(wk);
}

void RunCore::measure_pending() {
  const std::size_t lanes = static_cast<std::size_t>(sim_.jobs().threads());
  std::vector<std::function<void()>> work;
  for (std::size_t lane = 0; lane < lanes; ++lane) {
    work.emplace_back([this, lane, lanes] { measure_pending_lane(lane, lanes); });
  }
  sim_.jobs().run_all(std::move(work));
  add_pending_norms();
}

void RunCore::measure_pending_lane(std::size_t lane, std::size_t lanes) {
  std::vector<GradientWorker*> pending;
  for (GradientWorker& wk : workers_) {
    if (wk.norms_pending) pending.push_back(&wk);
  }
  // In lanes of whole groups of four.
  const std::size_t groups = (pending.size() + 3) / 4;
  const std::size_t begin = std::min(pending.size(), groups * lane / lanes * 4);
  const std::size_t end = std::min(pending.size(), groups * (lane + 1) / lanes * 4);
  if (begin < end) {
    measure_gradients(std::span<GradientWorker* const>(pending).subspan(begin, end - begin));
  }
}

void RunCore::add_pending_norms() {
  for (GradientWorker& wk : workers_) {
    if (!wk.norms_pending) continue;
    wk.norms_pending = false;
    add_norms(wk);
  }
}

void RunCore::report_loss(int w, double loss) {
  GradientWorker& wk = worker(w);
  wk.loss_sum += loss;
  ++wk.loss_count;
  if (!std::isfinite(loss) && !stop_) {
    stop_ = true;
    first_bad_step_ = wk.steps;
    first_bad_loss_ = loss;
    first_bad_worker_ = w;
  }
}

const FaultConfig* RunCore::active_fault(int w) const {
  for (const FaultConfig& f : s_.faults) {
    if (f.kind != FaultKind::kByzantine || f.node != w || sim_.now() < f.at) continue;
    if (f.duration && sim_.now() >= f.at + *f.duration) continue;
    return &f;
  }
  return nullptr;
}

void RunCore::corrupt(const FaultConfig& f, int w, std::uint64_t step, std::span<float> g) const {
  const auto factor = static_cast<float>(f.factor);
  switch (f.mode) {
    case ByzantineMode::kSignFlip:
      for (float& v : g) v = -factor * v;
      break;
    case ByzantineMode::kScale:
      for (float& v : g) v = factor * v;
      break;
    case ByzantineMode::kNoise: {
      CounterRng rng({s_.seed, RngPurpose::kFault, static_cast<std::uint32_t>(w + 1), step});
      for (float& v : g) v = factor * static_cast<float>(rng.normal());
      break;
    }
  }
}

double RunCore::lr_at(std::uint64_t step) const {
  return learning_rate(s_.train.schedule, step, total_steps_);
}

void RunCore::record_staleness(std::uint64_t s) {
  ++staleness_[s];
  window_staleness_sum_ += static_cast<double>(s);
  ++window_staleness_count_;
  window_staleness_max_ = std::max(window_staleness_max_, s);
}

void RunCore::bsp_step_done(std::uint64_t step, int counted, std::optional<std::uint64_t> samples) {
  for (int i = 0; i < counted; ++i) record_staleness(0);
  progress(step + 1, samples ? *samples
                             : (step + 1) * static_cast<std::uint64_t>(counted) *
                                   static_cast<std::uint64_t>(batch_));
}

void RunCore::part_done(std::uint64_t step, int parts, int counted) {
  if (++parts_done_[step] < parts) return;
  parts_done_.erase(step);
  bsp_step_done(step, counted);
}

void RunCore::progress(std::uint64_t updates, std::uint64_t samples, EvalNow when) {
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

std::string RunCore::divergence_reason() const {
  const char* value = std::isnan(first_bad_loss_) ? "NaN" : (first_bad_loss_ > 0 ? "+inf" : "-inf");
  if (strategy_->lock_step()) {
    return fmt::format(
        "the training loss became {} at step {} (lr {}){}; lower train.lr or set "
        "train.clip_norm",
        value, first_bad_step_ + 1, lr_at(first_bad_step_), where());
  }
  return fmt::format(
      "the training loss became {} on worker {} at its gradient {}, after {} updates (lr {}){}; "
      "lower train.lr or set train.clip_norm",
      value, first_bad_worker_, first_bad_step_ + 1, updates_done_, s_.train.schedule.lr, where());
}

std::string RunCore::where() const {
  if (first_bad_where_.empty()) return "";
  return fmt::format(", first in {} (node {})", first_bad_where_,
                     workers_[static_cast<std::size_t>(first_bad_worker_)].node);
}

void RunCore::evaluate(std::uint64_t updates, std::uint64_t samples) {
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
  for (GradientWorker& w : workers_) {
    sum += w.loss_sum;
    count += w.loss_count;
    w.loss_sum = 0;
    w.loss_count = 0;
  }
  p.train_loss = count > 0 && numerics_ ? sum / static_cast<double>(count) : kNaN;
  gather_gradient_norms(p);
  p.mean_staleness = !strategy_->versioned() ? kNaN
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
    const std::span<const float> params = strategy_->global_params(consensus);
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
  judge_health(p);
  result_.evals.push_back(p);
  for (SimObserver* o : observers_) o->on_evaluation(p);
}

void RunCore::gather_gradient_norms(EvalPoint& p) {
  double sum = 0;
  std::uint64_t count = 0;
  std::vector<double> layers(result_.layer_names.size(), 0.0);
  for (int w = 0; w < p_; ++w) settle_norms(w);
  for (GradientWorker& w : workers_) {
    sum += w.norm_sum;
    count += w.norm_count;
    for (std::size_t t = 0; t < w.layer_norm_sum.size(); ++t) layers[t] += w.layer_norm_sum[t];
    w.norm_sum = 0;
    w.norm_count = 0;
    std::fill(w.layer_norm_sum.begin(), w.layer_norm_sum.end(), 0.0);
  }
  if (count == 0) return;
  p.grad_norm = sum / static_cast<double>(count);
  for (double& l : layers) l /= static_cast<double>(count);
  p.layer_grad_norms = std::move(layers);
}

void RunCore::judge_health(EvalPoint& p) {
  if (!numerics_) return;
  std::string reason;
  if (stop_) {
    p.health = Health::kNonFinite;
    reason = divergence_reason();
  } else {
    p.health = health_.classify(p, lr_at(p.step), reason);
  }
  if (p.health == Health::kOk || result_.health != Health::kOk) return;
  result_.health = p.health;
  result_.health_reason = std::move(reason);
  result_.health_step = p.step;
  result_.health_time_s = p.virtual_time_s;
}

EvalResult RunCore::evaluate_params(std::span<const float> params) {
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

RunResult RunCore::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  total_updates_ = strategy_->total_updates();
  health_.start(data_.train.task == LearningTask::kClassification ? data_.train.classes : 0,
                total_updates_);
  for (SimObserver* o : observers_) o->on_run_start(total_updates_);
  evaluate(0, 0);
  strategy_->start();
  if (faults_ != nullptr) faults_->start();
  running_ = true;
  sim_.run();
  running_ = false;
  // Asynchronous runs end when the last request is served; evaluate that final state.
  if (evaluated_at_ != updates_done_) evaluate(updates_done_, samples_done_);

  result_.steps = updates_done_;
  result_.samples = samples_done_;
  result_.virtual_time_s = sim_.now().seconds();
  result_.staleness_histogram.assign(staleness_.begin(), staleness_.end());
  for (int node = 0; node < sim_.nodes(); ++node) result_.nodes.push_back(node_stats(node));
  result_.threads = sim_.jobs().threads();
  result_.jobs_wall_s = sim_.jobs().job_seconds();
  strategy_->finish(result_);
  if (faults_ != nullptr) {
    result_.faults = faults_->records();
    for (SimObserver* o : observers_) o->on_faults(result_.faults);
  }
  result_.simulate_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return result_;
}

NodeStats RunCore::node_stats(int node) const {
  const NodeAccount& a = sim_.account(node);
  NodeStats st;
  st.node = node;
  const bool is_worker = node < s_.cluster.workers;
  st.role = is_worker ? "worker" : "server";
  st.compute_flops_per_s =
      flops_per_s_[static_cast<std::size_t>(node)] / slowdown_[static_cast<std::size_t>(node)];
  st.compute_s = a.compute.seconds();
  st.comm_s = a.comm.seconds();
  st.idle_s = std::max(0.0, (sim_.now() - a.compute - a.comm).seconds());
  st.bytes_sent = a.bytes_sent;
  st.bytes_received = a.bytes_received;
  // A data replica's first node reports its gradients (and those it dropped).
  const auto replica = std::find(worker_nodes_.begin(), worker_nodes_.end(), node);
  if (is_worker && replica != worker_nodes_.end()) {
    const GradientWorker& wk = worker(static_cast<int>(replica - worker_nodes_.begin()));
    st.steps = wk.steps;
    st.dropped = wk.dropped;
  } else {
    st.steps = updates_done_;
  }
  strategy_->describe(node, st);
  return st;
}

}  // namespace dtsim
