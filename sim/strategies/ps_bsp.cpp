// ps, bsp: lock-step rounds. Each worker pushes its gradient's k parts to the server shards
// and pulls the updated parameters; each shard sums the p parts in worker order, averages and
// applies the optimizer to its part (ps_push_pull / ps_serve_step, sim/net/collectives.hpp).
//
// With a codec or an aggregation rule other than mean, each worker encodes each shard's part
// with its own compressor (and memory) and pushes the payload; the shard decodes the p
// payloads, aggregates with the scenario's rule, steps, and sends the new parameters back
// uncompressed. With backup workers the servers handle requests as they arrive
// (ps_backup.cpp).
//
// With crash or restart faults (uncoded only), each step's push and pull are among the
// workers at its gate (membership.hpp); the shards wait for the gate and serve its group, and
// average over it. A restarted worker rejoins with the parameters the step's leader pulled.
// A shard's checkpoints, crash and restart are checkpoint.hpp's (uncoded only).
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <span>

#include "engine/memory.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/strategies/checkpoint.hpp"
#include "sim/strategies/coded_exchange.hpp"
#include "sim/strategies/membership.hpp"
#include "sim/strategies/ps_async.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

struct Shard {
  int node = 0;
  std::uint64_t begin = 0;  // its range of the parameter vector
  std::uint64_t end = 0;
  std::vector<float> params;
  std::vector<float> buffer;  // sums the gradients, then carries the updated parameters back
  std::unique_ptr<Optimizer> optimizer;
  std::uint64_t version = 0;
  std::unique_ptr<ShardCheckpoints> checkpoints;  // strategy.checkpoint_every (null: none)
};

class PsBsp : public Strategy {
 public:
  explicit PsBsp(RunCore& core) : Strategy(core), members_(core) {
    const std::size_t n = core.num_params();
    const int k = core.servers();
    const std::vector<float>& init = core.initial_params();
    resize_large(param_store_, static_cast<std::size_t>(core.workers()) * init.size());
    for (int w = 0; w < core.workers(); ++w) {
      params_.push_back(std::span<float>(param_store_)
                            .subspan(static_cast<std::size_t>(w) * init.size(), init.size()));
      std::copy(init.begin(), init.end(), params_.back().begin());
    }
    for (int s = 0; s < k; ++s) {
      Shard sh;
      sh.node = core.server_nodes()[static_cast<std::size_t>(s)];
      std::tie(sh.begin, sh.end) = part_range(n, k, s);
      if (core.numerics()) {
        sh.params.assign(init.begin() + static_cast<std::ptrdiff_t>(sh.begin),
                         init.begin() + static_cast<std::ptrdiff_t>(sh.end));
        sh.buffer.assign(sh.end - sh.begin, 0.0f);
        sh.optimizer =
            std::make_unique<Optimizer>(core.scenario().train.optimizer, sh.end - sh.begin);
      }
      if (core.config().checkpoint_every > 0)
        sh.checkpoints = std::make_unique<ShardCheckpoints>(core, sh.node, sh.begin, sh.end);
      shards_.push_back(std::move(sh));
    }
    if (uses_coded_exchange(core.scenario())) coded_ = std::make_unique<CodedPs>(core);
    rejoin_step_.assign(static_cast<std::size_t>(core.workers()), 0);
  }

  void worker_lost(int w) override { members_.lost(w); }

  void start() override {
    for (int w = 0; w < core().workers(); ++w) {
      core().sim().spawn(coded_ ? coded_worker(w) : worker(w));
    }
    for (int s = 0; s < core().servers(); ++s) {
      core().sim().spawn(coded_ ? coded_server(s) : server(s));
    }
  }

  // The servers' shards, side by side (the same as every worker's pulled copy).
  std::span<const float> global_params(double& /*consensus*/) override {
    global_.resize(core().num_params());
    for (const Shard& sh : shards_) {
      std::copy(sh.params.begin(), sh.params.end(),
                global_.begin() + static_cast<std::ptrdiff_t>(sh.begin));
    }
    return global_;
  }

 private:
  Task<> worker(int w);
  Task<> server(int s);
  Task<> coded_worker(int w);
  Task<> coded_server(int s);
  // Worker w was hit by its restart fault: back, noticed, then the parameters from a step's
  // leader; false if the run ended first.
  Task<bool> rejoin(int w);
  // The leader of step `step`, after its pull: the parameters to those waiting to rejoin.
  void welcome(int leader, std::uint64_t step);

  // Each worker's pulled copy, a slice of param_store_ (after a pull, it and the worker's
  // gradient buffer trade places).
  std::vector<std::span<float>> params_;
  std::vector<float> param_store_;
  std::vector<Shard> shards_;
  std::unique_ptr<CodedPs> coded_;
  std::vector<float> global_;
  Membership members_;
  std::vector<std::uint64_t> rejoin_step_;  // by worker: the step it rejoins at
  std::uint64_t samples_ = 0;               // with crashes: samples in the steps so far
};

void PsBsp::welcome(int leader, std::uint64_t step) {
  RunCore& c = core();
  const bool last = step + 1 >= c.total_steps();
  if (last) members_.close();
  for (int r : members_.take_rejoining()) {
    rejoin_step_[static_cast<std::size_t>(r)] = step + 1;
    const std::uint64_t bytes =
        last ? wire::kHeaderBytes : static_cast<std::uint64_t>(c.num_params()) * wire::kFloatBytes;
    std::shared_ptr<const std::vector<float>> data;
    if (!last && c.numerics()) {
      const std::span<const float> model = params_[static_cast<std::size_t>(leader)];
      data = std::make_shared<const std::vector<float>>(model.begin(), model.end());
    }
    c.sim().send(c.worker(leader).node, c.worker(r).node, tags::kRejoin, bytes, std::move(data));
  }
}

Task<bool> PsBsp::rejoin(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  const SimTime back = c.faults()->back_at(w);
  if (back > sim.now()) co_await sim.delay(back - sim.now());
  co_await members_.noticed(w);
  if (members_.closed()) co_return false;
  members_.want_rejoin(w);
  const Message m = co_await sim.recv(c.worker(w).node, kAnySource, tags::kRejoin);
  if (members_.closed() && !m.data && m.bytes == wire::kHeaderBytes) co_return false;
  if (m.data)
    std::copy(m.data->begin(), m.data->end(), params_[static_cast<std::size_t>(w)].begin());
  c.faults()->rejoined(w, sim.now());
  co_return true;
}

Task<> PsBsp::worker(int w) {
  RunCore& c = core();
  GradientWorker& wk = c.worker(w);
  std::span<float>& params = params_[static_cast<std::size_t>(w)];
  const std::size_t n = c.num_params();
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    const SimTime gradient_start = c.sim().now();
    co_await c.gradient(w, params);
    int group = c.workers();
    if (members_.active()) {
      if (members_.hit(w)) {  // down: this gradient is lost
        c.faults()->lost_gradient(w, c.sim().now() - gradient_start);
        if (c.faults()->stop_of(w)->kind == FaultKind::kCrash) co_return;
        const bool back = co_await rejoin(w);
        if (!back) co_return;
        step = rejoin_step_[static_cast<std::size_t>(w)] - 1;  // (the loop adds one)
        continue;
      }
      co_await members_.arrive(w);
      group = members_.size();
    }
    const int leader = members_.leader();
    // The pull overwrites the gradient buffer with the servers' new parameters.
    const CollBuf buf = c.numerics() ? CollBuf::real(wk.grads) : CollBuf::sized(n);
    co_await ps_push_pull(CollContext{&c.sim(), members_.group_nodes(), members_.rank_of(w),
                                      tags::step_tag(step), c.flops_per_s(wk.node)},
                          buf, c.server_nodes());
    if (c.numerics()) std::swap(params, wk.grads);
    if (w == leader && members_.active()) {
      samples_ += static_cast<std::uint64_t>(group) * static_cast<std::uint64_t>(c.batch());
      c.bsp_step_done(step, group, samples_);
      welcome(leader, step);
    } else if (w == leader) {
      c.bsp_step_done(step, group);
    }
    if (c.diverged_at(step)) co_return;
  }
}

Task<> PsBsp::server(int s) {
  RunCore& c = core();
  Shard& sh = shards_[static_cast<std::size_t>(s)];
  const std::uint64_t n = sh.end - sh.begin;
  const double update_flops =
      optimizer_step_flops(c.scenario().train.optimizer.kind, n) + static_cast<double>(n);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    const double lr = c.lr_at(step);
    // The step's workers: all of them, or those at its gate when workers crash.
    std::vector<int> group;
    std::span<const int> workers = c.worker_nodes();
    if (members_.active()) {
      co_await members_.opened(step);
      group = members_.group_nodes_of(step);
      workers = group;
    }
    const int p = static_cast<int>(workers.size());
    auto update = [&c, &sh, update_flops, lr, p, n]() -> Task<> {
      if (sh.checkpoints) {  // (its crash or restart takes effect here)
        co_await sh.checkpoints->recover(sh.version, sh.params, sh.optimizer,
                                         static_cast<std::uint64_t>(p) * n * wire::kFloatBytes);
      }
      std::function<void()> work;
      if (c.numerics()) {
        work = [&sh, lr, p] {
          const float inv = 1.0f / static_cast<float>(p);
          for (float& g : sh.buffer) g *= inv;
          sh.optimizer->step(sh.params, sh.buffer, lr);
          std::copy(sh.params.begin(), sh.params.end(), sh.buffer.begin());
        };
      }
      co_await c.sim().compute(sh.node, c.job_time(sh.node, update_flops), std::move(work),
                               "update");
    };
    const PsServerStep ps{&c.sim(),
                          sh.node,
                          workers,
                          s,
                          c.servers(),
                          c.num_params(),
                          tags::step_tag(step),
                          c.flops_per_s(sh.node),
                          c.numerics()};
    co_await ps_serve_step(ps, sh.buffer, update);
    sh.version = step + 1;
    if (sh.checkpoints)
      co_await sh.checkpoints->after_update(sh.version, c.total_steps(), sh.params,
                                            sh.optimizer.get());
    if (c.diverged_at(step)) co_return;
  }
}

Task<> PsBsp::coded_worker(int w) {
  RunCore& c = core();
  std::span<float>& params = params_[static_cast<std::size_t>(w)];
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    co_await c.gradient(w, params);
    co_await coded_->push(w, step);
    for (const Shard& sh : shards_) {
      const Message m =
          co_await c.sim().recv(c.worker(w).node, sh.node, tags::answer_to(tags::step_tag(step)));
      if (m.data) {
        std::copy(m.data->begin(), m.data->end(),
                  params.begin() + static_cast<std::ptrdiff_t>(sh.begin));
      }
    }
    if (w == 0) c.bsp_step_done(step, c.workers());
    if (c.diverged_at(step)) co_return;
  }
}

Task<> PsBsp::coded_server(int s) {
  RunCore& c = core();
  Shard& sh = shards_[static_cast<std::size_t>(s)];
  const std::uint64_t n = sh.end - sh.begin;
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    co_await coded_->serve(s, step, sh.params, sh.buffer, sh.optimizer.get());
    sh.version = step + 1;
    for (int w = 0; w < c.workers(); ++w) {
      std::shared_ptr<const std::vector<float>> data;
      if (c.numerics()) data = std::make_shared<const std::vector<float>>(sh.params);
      c.sim().send(sh.node, c.worker(w).node, tags::answer_to(tags::step_tag(step)),
                   n * wire::kFloatBytes, std::move(data));
    }
    if (sh.checkpoints)
      co_await sh.checkpoints->after_update(sh.version, c.total_steps(), sh.params,
                                            sh.optimizer.get());
    if (c.diverged_at(step)) co_return;
  }
}

}  // namespace

std::unique_ptr<Strategy> make_ps_bsp(RunCore& core) {
  if (core.config().backup_workers > 0) return make_ps_backup(core);
  return std::make_unique<PsBsp>(core);
}

void predict_ps_bsp(const PredictionBasis& basis, StepPrediction& out) {
  predict_parameter_server(basis, out);
  out.lock_step = basis.scenario.strategy.backup_workers == 0;
}

}  // namespace dtsim
