// ps, bsp: lock-step rounds. Each worker pushes its gradient's k parts to the server shards
// and pulls the updated parameters; each shard sums the p parts in worker order, averages and
// applies the optimizer to its part (ps_push_pull / ps_serve_step, sim/net/collectives.hpp).
//
// With a codec or an aggregation rule other than mean, each worker encodes each shard's part
// with its own compressor (and memory) and pushes the payload; the shard decodes the p
// payloads, aggregates with the scenario's rule, steps, and sends the new parameters back
// uncompressed. With backup workers the servers handle requests as they arrive
// (ps_backup.cpp).
#include <fmt/format.h>

#include <functional>

#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/strategies/coded_exchange.hpp"
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
};

class PsBsp : public Strategy {
 public:
  explicit PsBsp(RunCore& core) : Strategy(core) {
    const std::size_t n = core.num_params();
    const int k = core.servers();
    for (int w = 0; w < core.workers(); ++w) params_.push_back(core.initial_params());
    for (int s = 0; s < k; ++s) {
      Shard sh;
      sh.node = core.server_nodes()[static_cast<std::size_t>(s)];
      std::tie(sh.begin, sh.end) = part_range(n, k, s);
      if (core.numerics()) {
        const std::vector<float>& init = core.initial_params();
        sh.params.assign(init.begin() + static_cast<std::ptrdiff_t>(sh.begin),
                         init.begin() + static_cast<std::ptrdiff_t>(sh.end));
        sh.buffer.assign(sh.end - sh.begin, 0.0f);
        sh.optimizer =
            std::make_unique<Optimizer>(core.scenario().train.optimizer, sh.end - sh.begin);
      }
      shards_.push_back(std::move(sh));
    }
    if (uses_coded_exchange(core.scenario())) coded_ = std::make_unique<CodedPs>(core);
  }

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

  std::vector<std::vector<float>> params_;  // each worker's pulled copy
  std::vector<Shard> shards_;
  std::unique_ptr<CodedPs> coded_;
  std::vector<float> global_;
};

Task<> PsBsp::worker(int w) {
  RunCore& c = core();
  GradientWorker& wk = c.worker(w);
  std::vector<float>& params = params_[static_cast<std::size_t>(w)];
  const std::size_t n = c.num_params();
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    co_await c.gradient(w, params);
    // The pull overwrites the gradient buffer with the servers' new parameters.
    const CollBuf buf = c.numerics() ? CollBuf::real(wk.grads) : CollBuf::sized(n);
    co_await ps_push_pull(
        CollContext{&c.sim(), c.worker_nodes(), w, tags::step_tag(step), c.flops_per_s(wk.node)},
        buf, c.server_nodes());
    if (c.numerics()) std::swap(params, wk.grads);
    if (w == 0) c.bsp_step_done(step, c.workers());
    if (c.diverged_at(step)) co_return;
  }
}

Task<> PsBsp::server(int s) {
  RunCore& c = core();
  Shard& sh = shards_[static_cast<std::size_t>(s)];
  const std::uint64_t n = sh.end - sh.begin;
  const int p = c.workers();
  const double update_flops =
      optimizer_step_flops(c.scenario().train.optimizer.kind, n) + static_cast<double>(n);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    const double lr = c.lr_at(step);
    auto update = [&c, &sh, update_flops, lr, p]() -> Task<> {
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
    const PsServerStep ps{&c.sim(),    sh.node,        c.worker_nodes(),     s,
                          c.servers(), c.num_params(), tags::step_tag(step), c.flops_per_s(sh.node),
                          c.numerics()};
    co_await ps_serve_step(ps, sh.buffer, update);
    sh.version = step + 1;
    if (c.diverged_at(step)) co_return;
  }
}

Task<> PsBsp::coded_worker(int w) {
  RunCore& c = core();
  std::vector<float>& params = params_[static_cast<std::size_t>(w)];
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
