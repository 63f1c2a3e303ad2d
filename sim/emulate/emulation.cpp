#include "sim/emulate/emulation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "engine/data/batch_sampler.hpp"
#include "engine/data/partition.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/schedule.hpp"
#include "sim/net/collectives.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/health.hpp"

namespace dtsim {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The evaluation's chunk (as the simulation's), so that the test loss is summed the same way.
constexpr int kEvalBatch = 500;

// Message tags. Requests to an asp shard start with their kind.
enum Tag : int {
  kRing = 1,
  kTree = 2,
  kPush = 3,
  kPull = 4,
  kRequest = 5,
  kAnswer = 6,
  kModel = 7
};
constexpr float kPullRequest = 0.0f;
constexpr float kGradientRequest = 1.0f;
constexpr float kLastRequest = 2.0f;

Shape input_shape(const Dataset& d) { return {d.channels, d.height, d.width}; }

// One step of a rank, as logged: its end (seconds from the common start), the bytes the rank
// had sent by then, and for a worker the gradient's loss and norms; for shard 0 of an
// asynchronous server, the update's staleness.
struct Mark {
  double t = 0;
  double bytes_sent = 0;
  double loss = kNaN;
  double norm = kNaN;
  double staleness = kNaN;
  double source = -1;  // shard 0 of asp: the worker whose gradient the update applied
  std::vector<double> layer_norms;
};

// What a rank sends to rank 0 at the end, flattened into doubles for one gather.
struct RankLog {
  double compute_s = 0;
  double comm_s = 0;
  double total_s = 0;
  double bytes_sent = 0;
  double bytes_received = 0;
  double steps = 0;
  std::vector<Mark> marks;

  std::vector<double> flatten(std::size_t layers) const {
    std::vector<double> v = {compute_s,
                             comm_s,
                             total_s,
                             bytes_sent,
                             bytes_received,
                             steps,
                             static_cast<double>(marks.size())};
    for (const Mark& m : marks) {
      v.insert(v.end(), {m.t, m.bytes_sent, m.loss, m.norm, m.staleness, m.source});
      for (std::size_t i = 0; i < layers; ++i) {
        v.push_back(i < m.layer_norms.size() ? m.layer_norms[i] : kNaN);
      }
    }
    return v;
  }
  static RankLog unflatten(const std::vector<double>& v, std::size_t layers) {
    RankLog log;
    log.compute_s = v[0];
    log.comm_s = v[1];
    log.total_s = v[2];
    log.bytes_sent = v[3];
    log.bytes_received = v[4];
    log.steps = v[5];
    const auto count = static_cast<std::size_t>(v[6]);
    std::size_t at = 7;
    for (std::size_t i = 0; i < count; ++i) {
      Mark m{v[at], v[at + 1], v[at + 2], v[at + 3], v[at + 4], v[at + 5], {}};
      at += 6;
      m.layer_norms.assign(v.begin() + static_cast<std::ptrdiff_t>(at),
                           v.begin() + static_cast<std::ptrdiff_t>(at + layers));
      at += layers;
      log.marks.push_back(std::move(m));
    }
    return log;
  }
};

// The updates after which the simulation evaluates the global model: 0, then whenever another
// `every` samples have gone by (an update being `per_update` samples), and the last.
std::vector<std::uint64_t> evaluation_points(std::uint64_t updates, std::uint64_t per_update,
                                             std::uint64_t every) {
  std::vector<std::uint64_t> points = {0};
  std::uint64_t next = every;
  for (std::uint64_t u = 1; u <= updates; ++u) {
    const std::uint64_t samples = u * per_update;
    if (samples < next && u < updates) continue;
    points.push_back(u);
    while (next <= samples) next += every;
  }
  return points;
}

bool parameter_server(const Scenario& s) {
  return s.strategy.architecture == Architecture::kParameterServer;
}

class RankRun {
 public:
  RankRun(const Scenario& s, const DatasetPair& data, Transport& t, const EmulateOptions& o)
      : s_(s),
        data_(data),
        t_(t),
        options_(o),
        model_(s.model, input_shape(data.train), data.train.task, data.train.outputs),
        n_(model_.num_params()),
        p_(s.cluster.workers),
        k_(server_count(s)),
        me_(t.rank()),
        batch_(s.train.batch_size),
        asp_(s.strategy.sync == SyncMode::kAsp) {
    const std::uint64_t samples = data.train.samples();
    const auto global_batch = static_cast<std::uint64_t>(p_) * static_cast<std::uint64_t>(batch_);
    const std::uint64_t per_epoch = (samples + global_batch - 1) / global_batch;
    steps_ =
        s.train.steps > 0 ? s.train.steps : static_cast<std::uint64_t>(s.train.epochs) * per_epoch;
    updates_ = asp_ ? steps_ * static_cast<std::uint64_t>(p_) : steps_;
    per_update_ = asp_ ? static_cast<std::uint64_t>(batch_) : global_batch;
    points_ = evaluation_points(updates_, per_update_,
                                static_cast<std::uint64_t>(s.train.eval_every) * global_batch);
    for (const TensorSlot& slot : model_.layout().tensors()) layer_names_.push_back(slot.name);
    params_ = model_.init_params(s.seed);
    if (worker()) {
      const std::vector<Shard> shards = partition(data.train, p_, s.data.partition, s.seed);
      sampler_ = std::make_unique<BatchSampler>(shards[static_cast<std::size_t>(me_)].rows, batch_,
                                                s.seed, static_cast<std::uint32_t>(me_));
      ws_ = std::make_unique<Workspace>(model_, batch_);
      grads_.assign(n_, 0.0f);
      if (!parameter_server(s)) optimizer_ = std::make_unique<Optimizer>(s.train.optimizer, n_);
    } else {
      std::tie(begin_, end_) = part_range(n_, k_, me_ - p_);
      shard_.assign(params_.begin() + static_cast<std::ptrdiff_t>(begin_),
                    params_.begin() + static_cast<std::ptrdiff_t>(end_));
      optimizer_ = std::make_unique<Optimizer>(s.train.optimizer, end_ - begin_);
    }
  }

  Emulated run() {
    if (worker()) warm_up();
    t_.barrier();
    start_ = t_.now();
    if (!parameter_server(s_)) {
      allreduce_worker();
    } else if (!asp_) {
      worker() ? ps_bsp_worker() : ps_bsp_server();
    } else {
      worker() ? ps_asp_worker() : ps_asp_server();
    }
    log_.total_s = elapsed();
    return finish();
  }

 private:
  bool worker() const { return me_ < p_; }
  double elapsed() const { return t_.now() - start_; }
  double lr_at(std::uint64_t step) const { return learning_rate(s_.train.schedule, step, steps_); }
  bool due(std::uint64_t update) const {
    return std::binary_search(points_.begin(), points_.end(), update);
  }

  // ---- messages, counted ----
  void send(int to, int tag, std::span<const float> data) {
    t_.send(to, tag, data);
    log_.bytes_sent += static_cast<double>(data.size_bytes());
  }
  void recv(int from, int tag, std::span<float> out) {
    t_.recv(from, tag, out);
    log_.bytes_received += static_cast<double>(out.size_bytes());
  }
  void send_recv(int to, std::span<const float> data, int from, std::span<float> out, int tag) {
    t_.send_recv(to, data, from, out, tag);
    log_.bytes_sent += static_cast<double>(data.size_bytes());
    log_.bytes_received += static_cast<double>(out.size_bytes());
  }

  // Gradients into a scratch buffer for a while, untimed, before the run starts: a cold
  // process runs its first steps several times slower (caches, page faults, the CPU's clock),
  // which would be measured as the run's and not the machine's speed. Draws nothing from the
  // sampler and changes no parameter.
  void warm_up() {
    constexpr double kSeconds = 0.3;
    constexpr int kAtLeast = 5;
    std::vector<float> scratch(n_);
    std::vector<std::uint32_t> rows(static_cast<std::size_t>(batch_));
    const double start = t_.now();
    for (int i = 0; i < kAtLeast || t_.now() - start < kSeconds; ++i) {
      for (std::size_t j = 0; j < rows.size(); ++j) {
        rows[j] = static_cast<std::uint32_t>((static_cast<std::size_t>(i) * rows.size() + j) %
                                             data_.train.samples());
      }
      model_.gradient(params_, gather_batch(data_.train, rows, *ws_), scratch, *ws_);
    }
  }

  // ---- a worker's gradient and step ----
  void gradient() {
    const double t0 = t_.now();
    sampler_->next(rows_);
    const Batch b = gather_batch(data_.train, rows_, *ws_);
    mark_.loss = model_.gradient(params_, b, grads_, *ws_);
    measure_gradient();
    if (s_.train.clip_norm > 0) clip_global_norm(grads_, s_.train.clip_norm);
    log_.compute_s += t_.now() - t0;
  }
  // The gradient's norms for the metrics (before clipping), on the clock: in 8 partial sums,
  // which the compiler vectorises (a few percent of a step; the simulation's single sum is
  // several times slower and differs from this one in the last bits only).
  void measure_gradient() {
    const auto& tensors = model_.layout().tensors();
    mark_.layer_norms.assign(tensors.size(), 0.0);
    double total = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const std::span<const float> g =
          ParamLayout::view(std::span<const float>(grads_), tensors[i]);
      std::array<double, 8> lanes{};
      std::size_t j = 0;
      for (; j + 8 <= g.size(); j += 8) {
        for (std::size_t l = 0; l < 8; ++l) lanes[l] += static_cast<double>(g[j + l]) * g[j + l];
      }
      double sq = 0;
      for (; j < g.size(); ++j) sq += static_cast<double>(g[j]) * g[j];
      for (double l : lanes) sq += l;
      mark_.layer_norms[i] = std::sqrt(sq);
      total += sq;
    }
    mark_.norm = std::sqrt(total);
  }
  // Ends a step: logs it, and keeps a copy of the global model if it is evaluated there.
  void end_step(std::uint64_t update, std::span<const float> global) {
    mark_.t = elapsed();
    mark_.bytes_sent = log_.bytes_sent;
    log_.marks.push_back(mark_);
    mark_ = Mark{};
    ++log_.steps;
    if (!global.empty() && due(update)) snapshots_.emplace_back(global.begin(), global.end());
  }

  // ---- allreduce, bsp ----
  void allreduce_worker() {
    const float inv = 1.0f / static_cast<float>(p_);
    for (std::uint64_t step = 0; step < steps_; ++step) {
      gradient();
      if (p_ > 1) {
        const double t1 = t_.now();
        exchange(grads_);
        log_.comm_s += t_.now() - t1;
      }
      const double t2 = t_.now();
      if (p_ > 1) {
        for (float& g : grads_) g *= inv;
      }
      optimizer_->step(params_, grads_, lr_at(step));
      log_.compute_s += t_.now() - t2;
      end_step(step + 1, me_ == 0 ? std::span<const float>(params_) : std::span<const float>());
    }
  }

  void exchange(std::span<float> g) {
    if (options_.library_allreduce) {
      t_.allreduce_sum(g);
      // (Not seen: what a ring would send and receive.)
      const double ring = 2.0 * static_cast<double>(g.size_bytes()) * (p_ - 1) / p_;
      log_.bytes_sent += ring;
      log_.bytes_received += ring;
      return;
    }
    if (s_.strategy.collective == AllreduceAlgo::kTree) {
      tree_allreduce(g);
    } else {
      ring_allreduce(g);
    }
  }

  // The simulation's ring (sim/net/collectives.cpp): a reduce-scatter in which rank r first
  // sends part r, then an allgather in which it first sends part r + 1; each step sends to
  // the next rank and receives from the previous one, and a received part is added to the
  // rank's own (so part i's sum is accumulated from rank i onwards, as in the simulation).
  void ring_allreduce(std::span<float> g) {
    const int next = (me_ + 1) % p_;
    const int prev = (me_ + p_ - 1) % p_;
    auto range = [&](int part) {
      const auto [b, e] = part_range(g.size(), p_, part);
      return g.subspan(b, e - b);
    };
    int send_part = me_;
    for (int k = 0; k < p_ - 1; ++k) {
      const int recv_part = send_part == 0 ? p_ - 1 : send_part - 1;
      const std::span<float> own = range(recv_part);
      scratch_.resize(own.size());
      send_recv(next, range(send_part), prev, scratch_, kRing);
      for (std::size_t i = 0; i < own.size(); ++i) own[i] = own[i] + scratch_[i];
      send_part = recv_part;
    }
    send_part = (me_ + 1) % p_;
    for (int k = 0; k < p_ - 1; ++k) {
      const int recv_part = send_part == 0 ? p_ - 1 : send_part - 1;
      send_recv(next, range(send_part), prev, range(recv_part), kRing);
      send_part = recv_part;
    }
  }

  // The simulation's tree: a binomial reduce to rank 0, then a binomial broadcast from it.
  void tree_allreduce(std::span<float> g) {
    scratch_.resize(g.size());
    for (int mask = 1; mask < p_; mask <<= 1) {
      if (me_ & mask) {
        send(me_ - mask, kTree, g);
        break;
      }
      if (me_ + mask < p_) {
        recv(me_ + mask, kTree, scratch_);
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] + scratch_[i];
      }
    }
    int mask = 1;
    while (mask < p_) {
      if (me_ & mask) {
        recv(me_ - mask, kTree, g);
        break;
      }
      mask <<= 1;
    }
    for (mask >>= 1; mask > 0; mask >>= 1) {
      if (me_ + mask < p_) send(me_ + mask, kTree, g);
    }
  }

  // ---- ps, bsp ----
  std::pair<std::uint64_t, std::uint64_t> shard_range(int s) const { return part_range(n_, k_, s); }

  void ps_bsp_worker() {
    for (std::uint64_t step = 0; step < steps_; ++step) {
      gradient();
      const double t1 = t_.now();
      for (int s = 0; s < k_; ++s) {
        const auto [b, e] = shard_range(s);
        send(p_ + s, kPush, std::span<const float>(grads_).subspan(b, e - b));
      }
      for (int s = 0; s < k_; ++s) {
        const auto [b, e] = shard_range(s);
        recv(p_ + s, kPull, std::span<float>(params_).subspan(b, e - b));
      }
      log_.comm_s += t_.now() - t1;
      end_step(step + 1, me_ == 0 ? std::span<const float>(params_) : std::span<const float>());
    }
  }

  // As ps_serve_step: the parts summed in worker order, averaged, the optimizer's step.
  void ps_bsp_server() {
    const std::size_t m = shard_.size();
    std::vector<float> sum(m);
    scratch_.resize(m);
    const float inv = 1.0f / static_cast<float>(p_);
    for (std::uint64_t step = 0; step < steps_; ++step) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int w = 0; w < p_; ++w) {
        const double t0 = t_.now();
        recv(w, kPush, scratch_);
        const double t1 = t_.now();
        for (std::size_t i = 0; i < m; ++i) sum[i] += scratch_[i];
        log_.comm_s += t1 - t0;
        log_.compute_s += t_.now() - t1;
      }
      const double t2 = t_.now();
      for (float& v : sum) v *= inv;
      optimizer_->step(shard_, sum, lr_at(step));
      const double t3 = t_.now();
      log_.compute_s += t3 - t2;
      for (int w = 0; w < p_; ++w) send(w, kPull, shard_);
      log_.comm_s += t_.now() - t3;
      end_step(step + 1, {});
    }
  }

  // ---- ps, asp ----
  // A worker asks every shard, then takes their answers: its next parameters, and from shard 0
  // whether it may compute another gradient.
  bool ps_asp_round(float kind) {
    const double t0 = t_.now();
    for (int s = 0; s < k_; ++s) {
      const auto [b, e] = shard_range(s);
      message_.assign(1, kind);
      if (kind == kGradientRequest)
        message_.insert(message_.end(), grads_.begin() + b, grads_.begin() + e);
      send(p_ + s, kRequest, message_);
    }
    bool ticket = false;
    for (int s = 0; s < k_; ++s) {
      const auto [b, e] = shard_range(s);
      message_.resize(e - b + 1);
      recv(p_ + s, kAnswer, message_);
      std::copy(message_.begin(), message_.begin() + static_cast<std::ptrdiff_t>(e - b),
                params_.begin() + static_cast<std::ptrdiff_t>(b));
      if (s == 0) ticket = message_.back() != 0.0f;
    }
    log_.comm_s += t_.now() - t0;
    return ticket;
  }

  void ps_asp_worker() {
    bool ticket = ps_asp_round(kPullRequest);
    while (ticket) {
      gradient();
      ticket = ps_asp_round(kGradientRequest);
      end_step(0, {});
    }
    const double t0 = t_.now();
    message_.assign(1, kLastRequest);
    for (int s = 0; s < k_; ++s) send(p_ + s, kRequest, message_);
    log_.comm_s += t_.now() - t0;
  }

  // As the simulation's asp shard: each gradient applied on arrival at lr(u / p) for the u-th
  // update (divided by its staleness with strategy.staleness_lr), then the pull answered.
  void ps_asp_server() {
    const std::size_t m = shard_.size();
    const bool first = me_ == p_;
    std::uint64_t tickets = updates_;
    std::uint64_t version = 0;
    std::vector<std::uint64_t> read(static_cast<std::size_t>(p_), 0);
    std::vector<float> buffer(m);
    std::vector<float> answer(m + 1);
    message_.resize(m + 1);
    int finished = 0;
    while (finished < p_) {
      const double t0 = t_.now();
      std::size_t count = 0;
      const int w = t_.recv_any(kRequest, message_, count);
      log_.bytes_received += static_cast<double>(count * sizeof(float));
      const double t1 = t_.now();
      log_.comm_s += t1 - t0;
      if (message_[0] == kLastRequest) {
        ++finished;
        continue;
      }
      if (message_[0] == kGradientRequest) {
        const std::uint64_t staleness =
            version - std::min(version, read[static_cast<std::size_t>(w)]);
        const double scale = s_.strategy.staleness_lr
                                 ? 1.0 / static_cast<double>(std::max<std::uint64_t>(1, staleness))
                                 : 1.0;
        const auto f = static_cast<float>(scale);
        std::fill(buffer.begin(), buffer.end(), 0.0f);
        for (std::size_t j = 0; j < m; ++j)
          buffer[j] += scale == 1.0 ? message_[j + 1] : f * message_[j + 1];
        optimizer_->step(shard_, buffer, lr_at(version / static_cast<std::uint64_t>(p_)));
        ++version;
        log_.compute_s += t_.now() - t1;
        if (first) {
          mark_.staleness = static_cast<double>(staleness);
          mark_.source = w;
        }
        end_step(version, shard_);
      }
      const double t2 = t_.now();
      std::copy(shard_.begin(), shard_.end(), answer.begin());
      answer[m] = 0.0f;
      if (first && tickets > 0) {
        --tickets;
        answer[m] = 1.0f;
      }
      read[static_cast<std::size_t>(w)] = version;
      send(w, kAnswer, answer);
      log_.comm_s += t_.now() - t2;
    }
  }

  // ---- after the run ----
  // Gathers every rank's log (and an asp run's model copies) at rank 0, which evaluates the
  // copies and builds the measured run.
  Emulated finish() {
    const std::size_t layers = layer_names_.size();
    const std::vector<std::vector<double>> logs = gather_logs(layers);
    std::vector<std::vector<float>> models = gather_models();
    Emulated out;
    if (me_ != 0) return out;
    std::vector<RankLog> ranks;
    for (const std::vector<double>& v : logs) ranks.push_back(RankLog::unflatten(v, layers));
    build_run(ranks, models, out.run);
    out.params = std::move(models.back());
    out.per_round = asp_ ? static_cast<std::uint64_t>(p_) : 1;
    return out;
  }

  std::vector<std::vector<double>> gather_logs(std::size_t layers) {
    return t_.gather(log_.flatten(layers), 0);
  }

  // Rank 0's copies of the global model at the evaluation points, the final model last. An
  // asp run's are at the shards: each sends its part of every copy, and its final part.
  std::vector<std::vector<float>> gather_models() {
    if (!asp_) {
      if (me_ != 0) return {};
      std::vector<std::vector<float>> models;
      models.emplace_back(model_.init_params(s_.seed));
      for (std::vector<float>& m : snapshots_) models.push_back(std::move(m));
      models.push_back(params_);
      return models;
    }
    if (!worker()) {
      for (const std::vector<float>& m : snapshots_) t_.send(0, kModel, m);
      t_.send(0, kModel, shard_);
      return {};
    }
    if (me_ != 0) return {};
    std::vector<std::vector<float>> models;
    models.emplace_back(model_.init_params(s_.seed));
    const std::size_t copies = points_.size() - 1;
    for (std::size_t i = 0; i <= copies; ++i) models.emplace_back(n_);
    for (int s = 0; s < k_; ++s) {
      const auto [b, e] = shard_range(s);
      for (std::size_t i = 0; i <= copies; ++i) {
        t_.recv(p_ + s, kModel, std::span<float>(models[i + 1]).subspan(b, e - b));
      }
    }
    return models;
  }

  void build_run(const std::vector<RankLog>& ranks, const std::vector<std::vector<float>>& models,
                 RunResult& r) {
    r.layer_names = layer_names_;
    r.model_summary = model_.summary();
    const int classes = data_.train.task == LearningTask::kClassification ? data_.train.classes : 0;
    HealthMonitor health;
    health.start(classes, updates_);
    Workspace ws(model_, kEvalBatch);
    // When each point's update happened: bsp, at worker 0's step; asp, when the last shard
    // applied it.
    auto time_of = [&](std::uint64_t u) {
      if (u == 0) return 0.0;
      if (!asp_) return ranks[0].marks[u - 1].t;
      double t = 0;
      for (int s = 0; s < k_; ++s)
        t = std::max(t, ranks[static_cast<std::size_t>(p_ + s)].marks[u - 1].t);
      return t;
    };
    // asp: update j at shard 0 applied the next gradient of the worker that sent it (a pair's
    // messages arrive in order), so each gradient belongs to the window of its update.
    std::vector<std::pair<int, std::size_t>> gradient_of;  // by update: (worker, its gradient)
    if (asp_) {
      std::vector<std::size_t> next(static_cast<std::size_t>(p_), 0);
      for (const Mark& m : ranks[static_cast<std::size_t>(p_)].marks) {
        const auto w = static_cast<std::size_t>(m.source);
        gradient_of.emplace_back(static_cast<int>(w), next[w]++);
      }
    }
    std::map<std::uint64_t, std::uint64_t> staleness;
    std::uint64_t previous_u = 0;
    for (std::size_t i = 0; i < points_.size(); ++i) {
      const std::uint64_t u = points_[i];
      EvalPoint p;
      p.step = u;
      p.samples = u * per_update_;
      p.epoch = static_cast<double>(p.samples) / static_cast<double>(data_.train.samples());
      p.virtual_time_s = time_of(u);
      // The window since the last point: the workers' gradients of its steps (bsp) or of its
      // updates (asp).
      double loss = 0, norm = 0;
      std::uint64_t count = 0;
      std::vector<double> layer(layer_names_.size(), 0.0);
      const auto add = [&](const Mark& m) {
        loss += m.loss;
        norm += m.norm;
        for (std::size_t l = 0; l < layer.size(); ++l) layer[l] += m.layer_norms[l];
        ++count;
      };
      for (std::uint64_t j = previous_u; j < u; ++j) {
        if (asp_) {
          const auto [w, g] = gradient_of[j];
          add(ranks[static_cast<std::size_t>(w)].marks[g]);
          continue;
        }
        for (int w = 0; w < p_; ++w) add(ranks[static_cast<std::size_t>(w)].marks[j]);
      }
      p.train_loss = count > 0 ? loss / static_cast<double>(count) : kNaN;
      if (count > 0) {
        p.grad_norm = norm / static_cast<double>(count);
        for (double& l : layer) l /= static_cast<double>(count);
        p.layer_grad_norms = layer;
      }
      // Staleness: 0 for every bsp gradient; asp's at shard 0's updates in the window.
      p.mean_staleness = 0;
      if (asp_ && i > 0) {
        double sum = 0;
        for (std::uint64_t j = previous_u; j < u; ++j) {
          const auto st =
              static_cast<std::uint64_t>(ranks[static_cast<std::size_t>(p_)].marks[j].staleness);
          sum += static_cast<double>(st);
          p.max_staleness = std::max(p.max_staleness, st);
          ++staleness[st];
        }
        p.mean_staleness = u > previous_u ? sum / static_cast<double>(u - previous_u) : 0.0;
      } else if (i > 0) {
        staleness[0] += (u - previous_u) * static_cast<std::uint64_t>(p_);
      }
      for (const RankLog& rank : ranks) {
        // (The last point is after the run, as the simulation's: everything sent.)
        const bool last = i + 1 == points_.size();
        p.bytes_sent += static_cast<std::uint64_t>(last ? rank.bytes_sent
                                                        : bytes_at(rank, u, p.virtual_time_s));
      }
      const EvalResult test = model_.evaluate(models[i], data_.test, ws);
      p.test_loss = test.loss;
      p.test_accuracy = test.accuracy;
      std::string reason;
      if (!std::isfinite(p.test_loss) || (count > 0 && !std::isfinite(p.train_loss))) {
        // (The ranks do not stop at a non-finite loss, as the simulation does: they would have
        // to agree on it first. Every step runs.)
        p.health = Health::kNonFinite;
        reason = fmt::format(
            "the {} loss was not finite by step {} (every step of the emulation ran); lower "
            "train.lr or set train.clip_norm",
            count > 0 && !std::isfinite(p.train_loss) ? "training" : "test", u);
        if (!r.diverged) {
          r.diverged = true;
          r.diverged_reason = reason;
        }
      } else {
        p.health = health.classify(p, lr_at(asp_ ? u / static_cast<std::uint64_t>(p_) : u), reason);
      }
      if (p.health != Health::kOk && r.health == Health::kOk) {
        r.health = p.health;
        r.health_reason = reason;
        r.health_step = p.step;
        r.health_time_s = p.virtual_time_s;
      }
      if (s_.train.target_accuracy && !r.time_to_target_s &&
          p.test_accuracy >= *s_.train.target_accuracy) {
        r.time_to_target_s = p.virtual_time_s;
      }
      r.evals.push_back(std::move(p));
      previous_u = u;
    }
    r.staleness_histogram.assign(staleness.begin(), staleness.end());
    for (const RankLog& rank : ranks) r.virtual_time_s = std::max(r.virtual_time_s, rank.total_s);
    r.steps = updates_;
    r.samples = updates_ * per_update_;
    const double gradient_flops = model_.forward_flops(batch_) + model_.backward_flops(batch_);
    for (int node = 0; node < t_.size(); ++node) {
      const RankLog& rank = ranks[static_cast<std::size_t>(node)];
      NodeStats st;
      st.node = node;
      st.role = node < p_ ? "worker" : "server";
      st.compute_s = rank.compute_s;
      st.comm_s = rank.comm_s;
      st.idle_s = std::max(0.0, r.virtual_time_s - rank.compute_s - rank.comm_s);
      st.bytes_sent = static_cast<std::uint64_t>(rank.bytes_sent);
      st.bytes_received = static_cast<std::uint64_t>(rank.bytes_received);
      st.steps = static_cast<std::uint64_t>(rank.steps);
      // The speed the worker's gradients ran at (what calibration measures).
      if (node < p_ && rank.compute_s > 0) {
        st.compute_flops_per_s = gradient_flops * rank.steps / rank.compute_s;
      }
      r.nodes.push_back(st);
    }
  }

  // The bytes a rank had sent at update u (bsp: its u-th step) or at time t (asp).
  double bytes_at(const RankLog& rank, std::uint64_t u, double t) const {
    if (u == 0) return 0;
    if (!asp_) {
      return u <= rank.marks.size() ? rank.marks[u - 1].bytes_sent : rank.bytes_sent;
    }
    double bytes = 0;
    for (const Mark& m : rank.marks) {
      if (m.t > t) break;
      bytes = m.bytes_sent;
    }
    return bytes;
  }

  const Scenario& s_;
  const DatasetPair& data_;
  Transport& t_;
  const EmulateOptions options_;
  Model model_;
  const std::size_t n_;
  const int p_;
  const int k_;
  const int me_;
  const int batch_;
  const bool asp_;
  std::uint64_t steps_ = 0;
  std::uint64_t updates_ = 0;
  std::uint64_t per_update_ = 0;
  std::vector<std::uint64_t> points_;
  std::vector<std::string> layer_names_;
  double start_ = 0;
  std::vector<float> params_;  // a worker's model (a shard: the initial model)
  std::vector<float> grads_;
  std::vector<float> scratch_;
  std::vector<float> message_;
  std::unique_ptr<BatchSampler> sampler_;
  std::unique_ptr<Workspace> ws_;
  std::vector<std::uint32_t> rows_;
  std::unique_ptr<Optimizer> optimizer_;  // a worker's (allreduce) or a shard's
  std::uint64_t begin_ = 0;               // a shard's range, and its parameters
  std::uint64_t end_ = 0;
  std::vector<float> shard_;
  std::vector<std::vector<float>> snapshots_;
  RankLog log_;
  Mark mark_;
};

}  // namespace

int emulation_ranks(const Scenario& s) { return s.cluster.workers + server_count(s); }

std::string emulation_exchange(const Scenario& s, const EmulateOptions& options) {
  if (parameter_server(s)) {
    return fmt::format("{} parameter-server shard(s) as ranks, point-to-point messages",
                       server_count(s));
  }
  if (options.library_allreduce) return "MPI_Allreduce";
  return fmt::format("{} allreduce over point-to-point messages", to_string(s.strategy.collective));
}

std::string emulation_problem(const Scenario& s, int ranks, const EmulateOptions& options) {
  const StrategyConfig& st = s.strategy;
  if (st.time_only) return std::string("strategy.time_only = true: an emulation computes for real");
  if (model_parallel(st)) {
    return fmt::format(
        "strategy.architecture = \"{}\": emulation runs data-parallel strategies "
        "only (allreduce + bsp, ps + bsp or asp)",
        to_string(st.architecture));
  }
  const bool ps = st.architecture == Architecture::kParameterServer;
  const bool ok_sync =
      ps ? (st.sync == SyncMode::kBsp || st.sync == SyncMode::kAsp)
         : (st.architecture == Architecture::kAllreduce && st.sync == SyncMode::kBsp);
  if (!ok_sync) {
    return std::string(
        fmt::format("strategy.architecture = \"{}\" with strategy.sync = \"{}\" cannot "
                    "be emulated: use allreduce + bsp, or ps + bsp or asp",
                    to_string(st.architecture), to_string(st.sync)));
  }
  if (s.compression.kind != CodecKind::kNone) {
    return std::string("[compression] codec: emulation exchanges uncompressed gradients");
  }
  if (st.aggregation.kind != AggregationKind::kMean) {
    return std::string("strategy.aggregation: emulation averages (\"mean\") only");
  }
  if (st.backup_workers > 0) {
    return std::string("strategy.backup_workers: not emulated (leave it out, or set it to 0)");
  }
  if (st.delay_compensation > 0) {
    return std::string("strategy.delay_compensation: not emulated (leave it out, or set it to 0)");
  }
  if (!s.faults.empty()) {
    return std::string("[[faults]]: emulation runs without faults (leave the [[faults]] out)");
  }
  if (s.strategy.checkpoint_every > 0) {
    return std::string("strategy.checkpoint_every: emulation takes no checkpoints (leave it out)");
  }
  if (!ps && !options.library_allreduce && st.collective != AllreduceAlgo::kRing &&
      st.collective != AllreduceAlgo::kTree) {
    return std::string(
        fmt::format("strategy.collective = \"{}\": emulation runs \"ring\" or \"tree\" "
                    "over point-to-point messages (or MPI_Allreduce with --mpi-allreduce)",
                    to_string(st.collective)));
  }
  if (ps && options.library_allreduce) {
    return std::string("--mpi-allreduce: the scenario uses parameter servers, not an allreduce");
  }
  const int need = emulation_ranks(s);
  if (ranks != need) {
    return fmt::format(
        "the scenario has {} worker(s){}: run it on {} rank(s) (mpirun -np {}), "
        "not {}",
        s.cluster.workers,
        server_count(s) > 0 ? fmt::format(" and {} server shard(s)", server_count(s))
                            : std::string(),
        need, need, ranks);
  }
  return {};
}

Emulated emulate(const Scenario& s, const DatasetPair& data, Transport& transport,
                 const EmulateOptions& options) {
  RankRun run(s, data, transport, options);
  return run.run();
}

EmulationStats compare_runs(const RunResult& measured, const RunResult& simulated,
                            std::uint64_t per_round, std::span<const float> measured_params,
                            std::span<const float> simulated_params) {
  EmulationStats st;
  st.ranks = static_cast<int>(measured.nodes.size());
  st.steps = measured.steps / std::max<std::uint64_t>(1, per_round);
  // Each over the rounds it ran (a simulation stops at a non-finite loss).
  const auto per_step = [per_round](const RunResult& r) {
    const std::uint64_t rounds = r.steps / std::max<std::uint64_t>(1, per_round);
    return r.virtual_time_s / static_cast<double>(std::max<std::uint64_t>(1, rounds));
  };
  st.measured_step_s = per_step(measured);
  st.simulated_step_s = per_step(simulated);
  // The workers' mean compute and communication time, as shares of the run.
  auto shares = [](const RunResult& r, double& compute, double& comm) {
    double c = 0, m = 0;
    int workers = 0;
    for (const NodeStats& n : r.nodes) {
      if (n.role != "worker") continue;
      c += n.compute_s;
      m += n.comm_s;
      ++workers;
    }
    const double total = r.virtual_time_s * std::max(1, workers);
    compute = total > 0 ? c / total : 0.0;
    comm = total > 0 ? m / total : 0.0;
  };
  shares(measured, st.measured_compute_share, st.measured_comm_share);
  shares(simulated, st.simulated_compute_share, st.simulated_comm_share);
  if (!measured.evals.empty()) st.measured_accuracy = measured.evals.back().test_accuracy;
  if (!simulated.evals.empty()) st.simulated_accuracy = simulated.evals.back().test_accuracy;
  st.params_identical =
      measured_params.size() == simulated_params.size() &&
      std::equal(measured_params.begin(), measured_params.end(), simulated_params.begin(),
                 [](float a, float b) {
                   return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
                 });
  if (measured_params.size() != simulated_params.size()) {
    st.max_abs_diff = kNaN;
    st.relative_diff = kNaN;
    return st;
  }
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < measured_params.size(); ++i) {
    const double a = measured_params[i];
    const double b = simulated_params[i];
    st.max_abs_diff = std::max(st.max_abs_diff, std::abs(a - b));
    diff += (a - b) * (a - b);
    norm += b * b;
  }
  st.relative_diff = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  return st;
}

}  // namespace dtsim
