// Allreduce architectures: bsp (optionally with backup workers) and local-sgd.
#include <algorithm>
#include <numeric>

#include "sim/net/collectives.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim::detail {

// bsp: gradient -> allreduce (the scenario's collective) -> every replica takes the same step.
//
// With b backup workers, the workers meet at the start of every step (they are at most one
// message apart after the allreduce) and the step counts only the first p - b gradients to
// finish (ties go to the lower rank). The others stop computing when the last counted one is
// done, their gradient thrown away (`dropped`, wasted work), and join the allreduce with
// zeros; the sum is divided by p - b. This is the arrangement of Chen et al. (2016) on an
// allreduce: nobody waits for the slowest b.
Task<> TrainingRun::allreduce_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  const int b = st_.backup_workers;
  const int counted = p_ - b;
  // The update: averaging the summed gradient (p > 1) and the optimizer step; clipping was
  // charged with the gradient. The same charge with or without numerics.
  const double update_flops =
      optimizer_step_flops(s_.train.optimizer.kind, n) + (p_ > 1 ? static_cast<double>(n) : 0.0);
  if (b > 0 && w == 0) {
    barrier_->on_release([this, counted] {
      // Every worker's gradient time for this step, and which of them count.
      std::vector<int> order(static_cast<std::size_t>(p_));
      std::iota(order.begin(), order.end(), 0);
      for (int v = 0; v < p_; ++v) backup_cost_[static_cast<std::size_t>(v)] = gradient_cost(v);
      std::stable_sort(order.begin(), order.end(), [this](int x, int y) {
        return backup_cost_[static_cast<std::size_t>(x)] <
               backup_cost_[static_cast<std::size_t>(y)];
      });
      backup_counts_.assign(static_cast<std::size_t>(p_), false);
      for (int i = 0; i < counted; ++i) backup_counts_[static_cast<std::size_t>(order[i])] = true;
      backup_cutoff_ = backup_cost_[static_cast<std::size_t>(order[counted - 1])];
    });
  }
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    bool counts = true;
    if (b > 0) {
      co_await barrier_->arrive();
      counts = backup_counts_[static_cast<std::size_t>(w)];
      if (counts) {
        co_await gradient(w, backup_cost_[static_cast<std::size_t>(w)]);
      } else {
        // Its batch is used up, its gradient never finished: cut at the last counted one.
        wk.sampler->next(wk.rows);
        co_await sim_.compute(wk.node, backup_cutoff_, {}, "dropped gradient");
        if (numerics_) std::fill(wk.grads.begin(), wk.grads.end(), 0.0f);
        ++wk.steps;
        ++wk.dropped;
      }
    } else {
      co_await gradient(w);
    }
    if (coded_) {
      co_await coded_exchange(w, step);  // leaves the aggregated mean in wk.grads
    } else {
      const CollBuf buf = numerics_ ? CollBuf::real(wk.grads) : CollBuf::sized(n);
      co_await allreduce(CollContext{&sim_, worker_nodes_, w, step_tag(step),
                                     flops_per_s_[static_cast<std::size_t>(w)]},
                         buf, st_.collective, s_.network.nodes_per_machine);
    }
    if (diverged_at(step)) {
      if (w == 0)
        progress(step + 1, (step + 1) * static_cast<std::uint64_t>(counted) *
                               static_cast<std::uint64_t>(batch_));
      co_return;
    }
    const double lr = lr_at(step);
    // (Built as a named local: GCC 12 destroys a temporary std::function built in a
    // conditional inside a co_await expression twice.)
    std::function<void()> work;
    if (numerics_) {
      work = [this, &wk, lr, counted] {
        if (p_ > 1 && !coded_) {
          const float inv = 1.0f / static_cast<float>(counted);
          for (float& g : wk.grads) g *= inv;
        }
        wk.optimizer->step(wk.params, wk.grads, lr);
      };
    }
    co_await sim_.compute(wk.node, job_time(wk.node, update_flops), std::move(work), "update");
    if (w == 0) bsp_step_done(step, counted);
  }
}

// local-sgd: every worker steps its own replica (its own optimizer, so momentum buffers stay
// local, as PyTorch's PeriodicModelAverager leaves them), and every H steps the replicas are
// averaged with an allreduce of the parameters (and after the last step, so the run ends with
// one model). H = 1 with plain SGD is bsp up to float rounding.
Task<> TrainingRun::local_sgd_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  const auto period = static_cast<std::uint64_t>(*st_.local_steps);
  const double update_flops = optimizer_step_flops(s_.train.optimizer.kind, n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    co_await gradient(w);
    const double lr = lr_at(step);
    std::function<void()> work;
    if (numerics_) work = [&wk, lr] { wk.optimizer->step(wk.params, wk.grads, lr); };
    co_await sim_.compute(wk.node, job_time(wk.node, update_flops), std::move(work), "update");
    const bool average_now = (step + 1) % period == 0 || step + 1 == total_steps_;
    if (p_ > 1 && average_now) {
      const CollBuf buf = numerics_ ? CollBuf::real(wk.params) : CollBuf::sized(n);
      co_await allreduce(CollContext{&sim_, worker_nodes_, w, step_tag(step),
                                     flops_per_s_[static_cast<std::size_t>(w)]},
                         buf, st_.collective, s_.network.nodes_per_machine);
      std::function<void()> average;
      if (numerics_) {
        average = [this, &wk] {
          const float inv = 1.0f / static_cast<float>(p_);
          for (float& x : wk.params) x *= inv;
        };
      }
      co_await sim_.compute(wk.node, job_time(wk.node, static_cast<double>(n)), std::move(average),
                            "average");
    }
    // After an average every worker knows whether any loss so far was not finite (all of
    // this step's gradients went into it), so all stop together.
    const bool stop = average_now && diverged_at(step);
    replica_step_done(w, step + 1, step + 1 == total_steps_ || stop);
    if (stop) co_return;
  }
}

}  // namespace dtsim::detail
