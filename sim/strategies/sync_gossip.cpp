// Gossip architectures: no server, no global collective; each worker keeps its own replica
// and mixes it with its neighbours' (sim/trainer.cpp: gossip_neighbours).
//
// d-psgd (Lian et al. 2017), in lock-step with the neighbours:
//     x_i <- sum_j W_ij x_j - lr * g_i(x_i)      (W: Metropolis-Hastings weights, doubly
//                                                  stochastic; then the worker's optimizer)
//   Each step a worker sends its replica to every neighbour before computing its gradient, so
//   the exchange overlaps the computation, then mixes what it received and steps.
//
// ad-psgd (Lian et al. 2018), asynchronous: each worker loops
//   1. copy its replica x_i, and send the copy to one neighbour chosen at random (seeded),
//   2. compute a gradient on the copy while the messages travel,
//   3. complete the averaging: the neighbour answered with its x_j and set
//      x_j <- (x_j + x_i) / 2; the worker adds (x_j - x_i) / 2 to its own replica,
//   4. apply the gradient to its replica.
//   A listener per worker answers averaging requests at any time and never waits for anything
//   else, so there is no deadlock (the paper needs a bipartite active/passive split because
//   its averaging locks both replicas). Applying the neighbour's change as a difference keeps
//   the sum of the replicas exact even when two averagings overlap. The listener's averaging
//   is not charged compute time (it is n additions, beside a gradient's ~6n per sample).
//   The run hands out the bsp run's number of gradients (steps * p) to whichever worker asks.
#include <algorithm>

#include "engine/rng.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim::detail {
namespace {

constexpr std::uint64_t kAverageTag = 1;
constexpr std::uint64_t kAnswerTag = 2;

}  // namespace

Task<> TrainingRun::dpsgd_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  const double mix_flops =
      2.0 * static_cast<double>(wk.neighbours.size() + 1) * static_cast<double>(n);
  const double update_flops = mix_flops + optimizer_step_flops(s_.train.optimizer.kind, n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    const std::uint64_t tag = step_tag(step);
    std::shared_ptr<const std::vector<float>> mine;
    if (numerics_) mine = std::make_shared<const std::vector<float>>(wk.params);
    for (const int v : wk.neighbours) sim_.send(wk.node, v, tag, n * kFloatBytes, mine);
    co_await gradient(w);
    std::vector<Message> theirs;
    for (const int v : wk.neighbours) theirs.push_back(co_await sim_.recv(wk.node, v, tag));
    const double lr = lr_at(step);
    std::function<void()> work;
    if (numerics_) {
      work = [this, &wk, &theirs, lr] {
        const float self = wk.mixing.back();
        for (float& x : wk.params) x *= self;
        for (std::size_t j = 0; j < theirs.size(); ++j) {
          const float weight = wk.mixing[j];
          const std::vector<float>& x = *theirs[j].data;
          for (std::size_t i = 0; i < x.size(); ++i) wk.params[i] += weight * x[i];
        }
        wk.optimizer->step(wk.params, wk.grads, lr);
      };
    }
    co_await sim_.compute(wk.node, job_time(wk.node, update_flops), std::move(work), "update");
    replica_step_done(w, step + 1, step + 1 == total_steps_);
  }
}

Task<> TrainingRun::adpsgd_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  const double update_flops =
      2.0 * static_cast<double>(n) + optimizer_step_flops(s_.train.optimizer.kind, n);
  const std::uint64_t budget = total_steps_ * static_cast<std::uint64_t>(p_);
  while (!stop_ && tickets_ < budget) {
    ++tickets_;
    // 1: the copy, which also goes to a random neighbour at once, so the averaging's
    // messages travel while the gradient is computed.
    if (numerics_) wk.compute_params = wk.params;
    int v = -1;
    std::shared_ptr<const std::vector<float>> sent;
    if (!wk.neighbours.empty()) {
      CounterRng pick({s_.seed, RngPurpose::kGossip, static_cast<std::uint32_t>(w + 1), wk.steps});
      v = wk.neighbours[pick.next_u64() % wk.neighbours.size()];
      if (numerics_) sent = std::make_shared<const std::vector<float>>(wk.compute_params);
      sim_.send(wk.node, v, kAverageTag, n * kFloatBytes, sent);
    }
    // 2: the gradient on the copy (the listener may average into the replica meanwhile).
    co_await gradient(w, std::nullopt, wk.compute_params);
    // 3: the neighbour's answer completes the averaging.
    if (v >= 0) {
      const Message answer = co_await sim_.recv(wk.node, v, kAnswerTag);
      if (numerics_) {
        const std::vector<float>& theirs = *answer.data;
        for (std::size_t i = 0; i < n; ++i) wk.params[i] += 0.5f * (theirs[i] - (*sent)[i]);
      }
    }
    // 4: the update, charged as a job, applied here on the event loop's thread (the
    // listener changes the replica on this thread too).
    co_await sim_.compute(wk.node, job_time(wk.node, update_flops), {}, "update");
    if (numerics_) {
      wk.optimizer->step(wk.params, wk.grads,
                         lr_at(gossip_gradients_ / static_cast<std::uint64_t>(p_)));
    }
    ++gossip_gradients_;
    progress(gossip_gradients_, gossip_gradients_ * static_cast<std::uint64_t>(batch_));
  }
  wk.done = true;
  for (const int v : wk.neighbours) sim_.send(wk.node, v, kAverageTag, kHeaderBytes);
}

Task<> TrainingRun::adpsgd_listener(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const std::size_t n = model_.num_params();
  std::size_t goodbyes = 0;
  while (goodbyes < wk.neighbours.size()) {
    const Message m = co_await sim_.listen(wk.node, kAnySource, kAverageTag);
    // A neighbour that is done sends nothing after its goodbye (it waited for every answer).
    if (workers_[static_cast<std::size_t>(m.src)].done) {
      ++goodbyes;
      continue;
    }
    std::shared_ptr<const std::vector<float>> mine;
    if (numerics_) mine = std::make_shared<const std::vector<float>>(wk.params);
    sim_.send(wk.node, m.src, kAnswerTag, n * kFloatBytes, mine);
    if (numerics_) {
      const std::vector<float>& theirs = *m.data;
      for (std::size_t i = 0; i < n; ++i) wk.params[i] = 0.5f * (wk.params[i] + theirs[i]);
    }
  }
}

}  // namespace dtsim::detail
