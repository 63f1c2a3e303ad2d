// allreduce, local-sgd (Stich 2019): every worker steps its own replica with its own optimizer
// (so momentum buffers stay local, as PyTorch's PeriodicModelAverager leaves them), and every
// H steps, and after the last step, the replicas' parameters are summed with the allreduce and
// divided by p, so the run ends with one model. H = 1 with plain SGD is bsp up to float
// rounding. A loss that is not finite stops the workers at the next average.
#include <fmt/format.h>

#include <functional>

#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/scenario/checks.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/strategies/replica_set.hpp"
#include "sim/strategies/strategy.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

class LocalSgd : public Strategy {
 public:
  explicit LocalSgd(RunCore& core) : Strategy(core), replicas_(core) {}

  void start() override {
    for (int w = 0; w < core().workers(); ++w) core().sim().spawn(worker(w));
  }
  std::span<const float> global_params(double& consensus) override {
    return replicas_.average(consensus, !core().running());
  }
  bool versioned() const override { return false; }

 private:
  Task<> worker(int w);
  ReplicaSet replicas_;
};

Task<> LocalSgd::worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Replica& rep = replicas_[w];
  const std::size_t n = c.num_params();
  const int p = c.workers();
  const bool numerics = c.numerics();
  const auto period = static_cast<std::uint64_t>(*c.config().local_steps);
  const double update_flops = optimizer_step_flops(c.scenario().train.optimizer.kind, n);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    co_await c.gradient(w, rep.params);
    const double lr = c.lr_at(step);
    std::function<void()> work;
    if (numerics) work = [&wk, &rep, lr] { rep.optimizer->step(rep.params, wk.grads, lr); };
    co_await sim.compute(wk.node, c.job_time(wk.node, update_flops), std::move(work), "update");
    const bool average_now = (step + 1) % period == 0 || step + 1 == c.total_steps();
    if (p > 1 && average_now) {
      const CollBuf buf = numerics ? CollBuf::real(rep.params) : CollBuf::sized(n);
      co_await allreduce(
          CollContext{&sim, c.worker_nodes(), w, tags::step_tag(step), c.flops_per_s(wk.node)}, buf,
          c.config().collective, c.scenario().network.nodes_per_machine);
      std::function<void()> average;
      if (numerics) {
        average = [&rep, p] {
          const float inv = 1.0f / static_cast<float>(p);
          for (float& x : rep.params) x *= inv;
        };
      }
      co_await sim.compute(wk.node, c.job_time(wk.node, static_cast<double>(n)), std::move(average),
                           "average");
    }
    // After an average every worker knows whether any loss so far was not finite (all of
    // this step's gradients went into it), so all stop together.
    const bool stop = average_now && c.diverged_at(step);
    replicas_.step_done(w, step + 1, step + 1 == c.total_steps() || stop);
    if (stop) co_return;
  }
}

}  // namespace

void check_local_sgd(const Scenario& s, ScenarioChecks& checks) {
  checks.need(!s.strategy.local_steps, "local_steps",
              "the period H (local_steps = 8: average the replicas every 8 steps)");
}

void predict_local_sgd(const PredictionBasis& basis, StepPrediction& out) {
  predict_allreduce(basis, out);
  if (basis.workers > 1) {
    // The allreduce moves the parameters every H steps, then each replica divides by p.
    const double h = *basis.scenario.strategy.local_steps;
    out.communicate_s = (out.communicate_s + basis.params / basis.flops_per_s) / h;
    out.update_s = basis.optimizer_flops / basis.flops_per_s;
    out.how +=
        fmt::format(", of the parameters, every {} steps", *basis.scenario.strategy.local_steps);
  }
}

std::unique_ptr<Strategy> make_local_sgd(RunCore& core) { return std::make_unique<LocalSgd>(core); }

}  // namespace dtsim
