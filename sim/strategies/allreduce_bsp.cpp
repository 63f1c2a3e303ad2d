// allreduce, bsp: gradient -> allreduce (the scenario's collective) -> every replica takes the
// same step. With a codec or an aggregation rule other than mean, the exchange is the coded
// one (coded_exchange.hpp).
//
// With b backup workers, the workers meet at the start of every step (they are at most one
// message apart after the allreduce) and the step counts only the first p - b gradients to
// finish (ties go to the lower rank). The others stop computing when the last counted one is
// done, their gradient thrown away (`dropped`, wasted work), and join the allreduce with
// zeros; the sum is divided by p - b. This is the arrangement of Chen et al. (2016) on an
// allreduce: nobody waits for the slowest b.
//
// With crash or restart faults, each step's exchange is formed over the workers that take part
// in it (membership.hpp): a crashed worker's data is dropped, and the mean is over the
// survivors' gradients.
//
// Without them, and without a codec or a rule, the replicas are one: every worker ends the
// allreduce with the same summed gradient, bit for bit (each part is reduced once and then
// copied), so their identical updates would give identical models. The workers share one
// replica, updated once per step by the first worker to get there (on the event loop, where
// no gradient job of the next step can have started yet), and every worker is still charged
// its update. A thousand workers then hold one model and one optimizer state, not a thousand.
// Over a ring, the allreduce then travels as sizes only (the same messages and times) and the
// sum is formed directly, part by part in the order the ring adds them (sum_lane): the same
// floats added in the same order, each gradient read once, front to back, instead of passed
// around 2(p - 1) times in parts. It runs as jobs from the moment the step's last gradient is
// in, while the event loop moves the allreduce's messages.
#include <fmt/format.h>

#include <algorithm>
#include <coroutine>
#include <functional>
#include <numeric>

#include "engine/aggregate.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/strategies/coded_exchange.hpp"
#include "sim/strategies/membership.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/strategies/replica.hpp"
#include "sim/strategies/strategy.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

// Releases every program that waits on it once `count` have arrived, at the last arrival's
// time. Reusable: the next `count` arrivals make the next round.
class Barrier {
 public:
  Barrier(Simulation& sim, int count) : sim_(sim), count_(count) {}
  struct Awaiter {
    Barrier& b;
    bool await_ready() { return b.count_ <= 1; }
    bool await_suspend(std::coroutine_handle<> h) {
      b.waiting_.push_back(h);
      if (static_cast<int>(b.waiting_.size()) < b.count_) return true;
      if (b.on_release_) b.on_release_();
      for (std::coroutine_handle<> w : b.waiting_) b.sim_.schedule_resume(b.sim_.now(), w);
      b.waiting_.clear();
      return true;
    }
    void await_resume() const noexcept {}
  };
  // Arrives; `on_release` (may be empty) runs once per round, when the last one arrives and
  // before anyone resumes.
  Awaiter arrive() { return {*this}; }
  void on_release(std::function<void()> fn) { on_release_ = std::move(fn); }

 private:
  Simulation& sim_;
  int count_;
  std::vector<std::coroutine_handle<>> waiting_;
  std::function<void()> on_release_;
};

class AllreduceBsp : public Strategy {
 public:
  explicit AllreduceBsp(RunCore& core)
      : Strategy(core), barrier_(core.sim(), core.workers()), members_(core) {
    const int p = core.workers();
    if (uses_coded_exchange(core.scenario())) coded_ = std::make_unique<CodedAllreduce>(core);
    shared_ = !members_.active() && !coded_;
    ring_sum_ =
        shared_ && core.numerics() && p > 1 && core.config().collective == AllreduceAlgo::kRing;
    // (Then nothing writes a worker's gradient between its job and its next one: the sum's jobs
    // measure their norms too.)
    if (ring_sum_) core.defer_norms();
    for (int w = 0; w < (shared_ ? 1 : p); ++w) replicas_.push_back(Replica::initial(core, true));
    backup_cost_.assign(static_cast<std::size_t>(p), SimTime());
    backup_counts_.assign(static_cast<std::size_t>(p), true);
    rejoin_step_.assign(static_cast<std::size_t>(p), 0);
  }

  void start() override {
    for (int w = 0; w < core().workers(); ++w) core().sim().spawn(worker(w));
  }

  std::span<const float> global_params(double& /*consensus*/) override {
    return replica(members_.leader()).params;
  }
  void worker_lost(int w) override { members_.lost(w); }

 private:
  Task<> worker(int w);
  // Worker w was hit by its restart fault: it waits until it is back and the others have
  // noticed it left, then for the model from a step's leader. Returns false if the run ended
  // first; otherwise its replica is the leader's and its next step is rejoin_step_[w].
  Task<bool> rejoin(int w);
  // The leader of step `step`, after its update: sends the model to the workers waiting to
  // rejoin, or, after the last step, tells them the run is over.
  void welcome(int leader, std::uint64_t step);
  // Backup workers: every worker's gradient time for this step, and which of them count.
  void choose_counted(int counted);

  Replica& replica(int w) { return replicas_[shared_ ? 0 : static_cast<std::size_t>(w)]; }

  std::vector<Replica> replicas_;  // by worker, or one shared by all (shared_)
  bool shared_ = false;
  std::uint64_t shared_updates_ = 0;  // shared_: the steps whose update was applied
  // Over a ring: the allreduce's sum of the workers' gradients, formed in the ring's order.
  // ring_sum_: once the step's last gradient is in, the sum, formed part by part in the
  // ring's order, and the gradients' pending norms, as jobs that run while the event loop moves
  // the allreduce's messages (sizes only); the first worker out of the allreduce joins them.
  void start_sum();
  void finish_sum();
  // Lane `lane` of `lanes` of the sum: a run of whole parts.
  void sum_lane(int lane, int lanes);
  bool ring_sum_ = false;
  std::vector<float> sum_;
  int sum_arrivals_ = 0;  // this step's gradients in so far
  std::vector<std::shared_ptr<JobRunner::Job>> sum_jobs_;
  std::unique_ptr<CodedAllreduce> coded_;
  Barrier barrier_;
  std::vector<SimTime> backup_cost_;  // this step's gradient cost per worker
  std::vector<bool> backup_counts_;   // whether its gradient is among the first p - b
  SimTime backup_cutoff_;
  Membership members_;
  std::vector<std::uint64_t> rejoin_step_;  // by worker: the step it rejoins at
  std::uint64_t samples_ = 0;               // with crashes: samples in the steps so far
};

void AllreduceBsp::welcome(int leader, std::uint64_t step) {
  RunCore& c = core();
  const bool last = step + 1 >= c.total_steps();
  if (last) members_.close();
  const Replica& model = replica(leader);
  const int state_slots = c.scenario().train.optimizer.kind == OptimizerKind::kAdam  ? 2
                          : c.scenario().train.optimizer.kind == OptimizerKind::kSgd ? 0
                                                                                     : 1;
  for (int r : members_.take_rejoining()) {
    rejoin_step_[static_cast<std::size_t>(r)] = step + 1;
    const std::uint64_t bytes = last ? wire::kHeaderBytes
                                     : static_cast<std::uint64_t>(c.num_params()) *
                                           wire::kFloatBytes *
                                           static_cast<std::uint64_t>(1 + state_slots);
    std::shared_ptr<const std::vector<float>> data;
    if (!last && c.numerics()) data = std::make_shared<const std::vector<float>>(model.params);
    c.sim().send(c.worker(leader).node, c.worker(r).node, tags::kRejoin, bytes, std::move(data));
  }
}

Task<bool> AllreduceBsp::rejoin(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  const SimTime back = c.faults()->back_at(w);
  if (back > sim.now()) co_await sim.delay(back - sim.now());
  co_await members_.noticed(w);  // (the others must know it left before it can rejoin)
  if (members_.closed()) co_return false;
  members_.want_rejoin(w);
  const Message m = co_await sim.recv(c.worker(w).node, kAnySource, tags::kRejoin);
  if (members_.closed() && !m.data && m.bytes == wire::kHeaderBytes) co_return false;
  Replica& rep = replica(w);
  if (m.data) {
    rep.params = *m.data;
    // (The leader's optimizer is not stepped again before this worker takes part.)
    *rep.optimizer = *replica(m.src).optimizer;
  }
  c.faults()->rejoined(w, sim.now());
  co_return true;
}

void AllreduceBsp::choose_counted(int counted) {
  RunCore& c = core();
  const int p = c.workers();
  std::vector<int> order(static_cast<std::size_t>(p));
  std::iota(order.begin(), order.end(), 0);
  for (int v = 0; v < p; ++v) backup_cost_[static_cast<std::size_t>(v)] = c.gradient_cost(v);
  std::stable_sort(order.begin(), order.end(), [this](int x, int y) {
    return backup_cost_[static_cast<std::size_t>(x)] < backup_cost_[static_cast<std::size_t>(y)];
  });
  backup_counts_.assign(static_cast<std::size_t>(p), false);
  for (int i = 0; i < counted; ++i) backup_counts_[static_cast<std::size_t>(order[i])] = true;
  backup_cutoff_ = backup_cost_[static_cast<std::size_t>(order[counted - 1])];
}

Task<> AllreduceBsp::worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Replica& rep = replica(w);
  const std::size_t n = c.num_params();
  const int p = c.workers();
  const int b = c.config().backup_workers;
  const int counted = p - b;
  const bool numerics = c.numerics();
  // The update: averaging the summed gradient (p > 1) and the optimizer step; clipping was
  // charged with the gradient. The same charge with or without numerics.
  const double update_flops = optimizer_step_flops(c.scenario().train.optimizer.kind, n) +
                              (p > 1 ? static_cast<double>(n) : 0.0);
  if (b > 0 && w == 0) barrier_.on_release([this, counted] { choose_counted(counted); });
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    const SimTime gradient_start = sim.now();
    if (b > 0) {
      co_await barrier_.arrive();
      if (backup_counts_[static_cast<std::size_t>(w)]) {
        co_await c.gradient(w, rep.params, backup_cost_[static_cast<std::size_t>(w)]);
      } else {
        // Its batch is used up, its gradient never finished: cut at the last counted one.
        wk.sampler->next(wk.rows);
        co_await sim.compute(wk.node, backup_cutoff_, {}, "dropped gradient");
        c.settle_norms(w);  // (its last gradient's, before the buffer is cleared)
        if (numerics) std::fill(wk.grads.begin(), wk.grads.end(), 0.0f);
        ++wk.steps;
        ++wk.dropped;
      }
    } else {
      co_await c.gradient(w, rep.params);
    }
    if (ring_sum_ && ++sum_arrivals_ == p) start_sum();
    int group = counted;  // the gradients this step's mean is over
    if (members_.active()) {
      if (members_.hit(w)) {  // down: this gradient is lost
        c.faults()->lost_gradient(w, sim.now() - gradient_start);
        if (c.faults()->stop_of(w)->kind == FaultKind::kCrash) co_return;
        const bool back = co_await rejoin(w);
        if (!back) co_return;
        step = rejoin_step_[static_cast<std::size_t>(w)] - 1;  // (the loop adds one)
        continue;
      }
      co_await members_.arrive(w);
      group = members_.size();
    }
    if (coded_) {
      co_await coded_->exchange(w, step);  // leaves the aggregated mean in wk.grads
    } else {
      const CollBuf buf = numerics && !ring_sum_ ? CollBuf::real(wk.grads) : CollBuf::sized(n);
      co_await allreduce(CollContext{&sim, members_.group_nodes(), members_.rank_of(w),
                                     tags::step_tag(step), c.flops_per_s(wk.node)},
                         buf, c.config().collective, c.scenario().network.nodes_per_machine);
    }
    if (!sum_jobs_.empty()) finish_sum();
    const int leader = members_.leader();
    if (w == leader && members_.active()) {
      samples_ += static_cast<std::uint64_t>(group) * static_cast<std::uint64_t>(c.batch());
    }
    if (c.diverged_at(step)) {
      if (w == leader) {
        c.progress(step + 1, members_.active() ? samples_
                                               : (step + 1) * static_cast<std::uint64_t>(group) *
                                                     static_cast<std::uint64_t>(c.batch()));
      }
      co_return;
    }
    const double lr = c.lr_at(step);
    // (Built as a named local: GCC 12 destroys a temporary std::function built in a
    // conditional inside a co_await expression twice.)
    std::function<void()> work;
    if (numerics && shared_ && shared_updates_ <= step) {
      shared_updates_ = step + 1;
      work = [this, &wk, &rep, lr, group, p] {
        const std::span<float> sum = ring_sum_ ? std::span<float>(sum_) : wk.grads;
        if (p > 1) {
          const float inv = 1.0f / static_cast<float>(group);
          for (float& g : sum) g *= inv;
        }
        rep.optimizer->step(rep.params, sum, lr);
      };
      work();  // (now, on the event loop; the job below only charges the time)
      work = {};
    } else if (numerics && !shared_) {
      const bool average = p > 1 && !coded_;
      work = [&wk, &rep, lr, group, average] {
        if (average) {
          const float inv = 1.0f / static_cast<float>(group);
          for (float& g : wk.grads) g *= inv;
        }
        rep.optimizer->step(rep.params, wk.grads, lr);
      };
    }
    co_await sim.compute(wk.node, c.job_time(wk.node, update_flops), std::move(work), "update");
    if (w == leader && members_.active()) {
      c.bsp_step_done(step, group, samples_);
      welcome(leader, step);
    } else if (w == leader) {
      c.bsp_step_done(step, group);
    }
  }
}

void AllreduceBsp::start_sum() {
  RunCore& c = core();
  sum_arrivals_ = 0;
  sum_.resize(c.num_params());
  // (The event loop's thread is busy with the messages meanwhile: a lane for each helper.)
  const int lanes = std::max(1, c.sim().jobs().threads() - 1);
  for (int lane = 0; lane < lanes; ++lane) {
    sum_jobs_.push_back(c.sim().jobs().start([this, lane, lanes] {
      core().measure_pending_lane(static_cast<std::size_t>(lane), static_cast<std::size_t>(lanes));
      sum_lane(lane, lanes);
    }));
  }
}

void AllreduceBsp::finish_sum() {
  for (const auto& job : sum_jobs_) core().sim().jobs().join(*job);
  sum_jobs_.clear();
  core().add_pending_norms();
}

void AllreduceBsp::sum_lane(int lane, int lanes) {
  RunCore& c = core();
  const int p = c.workers();
  const std::size_t n = c.num_params();
  // Part q of a ring reduce-scatter starts as rank q's own and goes round: each next rank r adds
  // what arrives to its own part, own + arrived (collectives.cpp); rank w is worker w here. So
  // part q adds the gradients of workers q+1, ..., p-1, then 0, ..., q-1: this lane's parts
  // [q0, q1) take them in two passes over the workers, reading each worker's gradient once,
  // front to back (its parts up to its own in the first, the rest in the second).
  const int q0 = static_cast<int>(static_cast<long>(p) * lane / lanes);
  const int q1 = static_cast<int>(static_cast<long>(p) * (lane + 1) / lanes);
  if (q0 == q1) return;
  float* acc = sum_.data();
  auto add = [acc](const float* own, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) acc[i] = own[i] + acc[i];
  };
  const std::size_t lane_end = part_range(n, p, q1 - 1).second;
  for (int r = q0; r < p; ++r) {
    const float* own = c.worker(r).grads.data();
    const auto [begin, end] = part_range(n, p, std::min(r, q1 - 1));
    const std::size_t from = part_range(n, p, q0).first;
    if (r < q1) {
      add(own, from, begin);                           // parts q0 .. r-1
      std::copy(own + begin, own + end, acc + begin);  // part r starts as worker r's own
    } else {
      add(own, from, end);  // every part of the lane
    }
  }
  for (int r = 0; r < q1 - 1; ++r) {
    const float* own = c.worker(r).grads.data();
    add(own, part_range(n, p, std::max(r + 1, q0)).first, lane_end);  // parts max(r+1, q0) ..
  }
}

}  // namespace

void predict_allreduce_bsp(const PredictionBasis& basis, StepPrediction& out) {
  predict_allreduce(basis, out);
  out.lock_step = basis.scenario.strategy.backup_workers == 0;
  const AggregationConfig& rule = basis.scenario.strategy.aggregation;
  if (rule.kind != AggregationKind::kMean && basis.workers > 1) {
    // A robust rule needs every gradient: a ring allgather of them (coded_exchange.cpp), then
    // each worker aggregates the p gradients with the rule.
    const double p = basis.workers;
    out.communicate_s = (p - 1) * (basis.alpha + basis.bytes * basis.beta);
    out.update_s = (basis.optimizer_flops +
                    aggregate_flops(rule, basis.workers, static_cast<std::size_t>(basis.params))) /
                   basis.flops_per_s;
    out.how =
        fmt::format("{}: ring allgather of every gradient, (p-1)(a + n b)", to_string(rule.kind));
  }
}

std::unique_ptr<Strategy> make_allreduce_bsp(RunCore& core) {
  return std::make_unique<AllreduceBsp>(core);
}

}  // namespace dtsim
