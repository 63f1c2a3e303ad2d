// Parameter-server architectures.
//
// bsp: lock-step rounds with ps_push_pull / ps_serve_step (sim/collectives.hpp).
//
// asp, ssp, delayed, and bsp with backup workers: each shard handles every worker request as
// it arrives. A request carries the worker's gradient part (n/k floats), or only a header
// (8 bytes) for the first pull and the last message; the shard answers a pull with its part
// of the parameters. The worker waits for every shard's answer before its next gradient.
// What a shard does with a gradient, and when it may answer a pull:
//
//   asp      apply it now (one optimizer step per gradient); answer at once.
//   ssp(s)   a worker's c-th gradient (from 0) belongs to clock c. Clock c is applied as one
//            step, the average of its gradients (summed in worker order), once every worker
//            has sent its gradient of clock c or has finished; so the version is the number of
//            complete clocks, and a worker at clock c sees every update of clocks < version.
//            A worker about to compute clock c is answered once c <= version + s: nobody gets
//            more than s clocks ahead of the slowest, and staleness never exceeds s. With
//            s = 0 this is exactly bsp; with a large s nobody waits (asp's timing), but
//            updates still apply clock by clock, as fast as the slowest worker completes them.
//   delayed  gradient number u (the run's u-th, in the order workers asked for their
//            parameters) is computed on version max(0, u - tau) and applied as update u:
//            staleness is exactly tau (the delayed-SGD model of the theory papers).
//   backup   (bsp, b backup workers; TensorFlow's SyncReplicasOptimizer) a gradient computed
//            on the current version is kept, an older one dropped; when p - b are kept they are
//            averaged (in worker order) and applied; a worker is answered once the version it
//            computed on is over. Dropped gradients are wasted work (nodes.csv `dropped`).
//
// The run's length: asp, ssp and delayed hand out the bsp run's number of gradients
// (steps * p) to whichever worker asks next; backup workers run bsp's number of steps.
// Staleness (version at apply minus the version the gradient was computed on) is recorded at
// shard 0. The global model (for evaluation) is the shards' parameters when the last of them
// reaches a version; in asp and in ssp with s > 0 the others may be ahead by then. staleness_lr
// divides each gradient's lr by max(1, staleness); delay_compensation (lambda) adds lambda * g * g
// * (w - w_read) to it (DC-ASGD, Zheng et al. 2017, with the parameters the worker read, as in the
// paper).
#include <algorithm>

#include "sim/net/collectives.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim::detail {
namespace {

constexpr std::uint64_t kRequestTag = 1;
constexpr std::uint64_t kAnswerTag = 2;

}  // namespace

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
    if (w == 0) bsp_step_done(step, p_);
    if (diverged_at(step)) co_return;
  }
}

Task<> TrainingRun::ps_server(int sv) {
  Server& server = servers_[static_cast<std::size_t>(sv)];
  const std::uint64_t n = server.end - server.begin;
  const double update_flops =
      optimizer_step_flops(s_.train.optimizer.kind, n) + static_cast<double>(n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    const double lr = lr_at(step);
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
    server.version = step + 1;
    if (diverged_at(step)) co_return;
  }
}

bool TrainingRun::take_ticket(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  if (stop_) return false;
  if (st_.sync == SyncMode::kBsp) return !wk.done;  // backup workers: until the servers say
  const std::uint64_t budget = total_steps_ * static_cast<std::uint64_t>(p_);
  if (tickets_ >= budget) return false;
  wk.slot = tickets_++;
  return true;
}

Task<> TrainingRun::async_ps_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  bool more = take_ticket(w);
  bool first = true;
  while (true) {
    wk.req_gradient = !first;
    wk.req_pull = more;
    for (int sv = 0; sv < k_; ++sv) {
      const Server& server = servers_[static_cast<std::size_t>(sv)];
      const std::uint64_t part = server.end - server.begin;
      std::shared_ptr<const std::vector<float>> data;
      if (wk.req_gradient && numerics_) {
        data = std::make_shared<const std::vector<float>>(
            wk.grads.begin() + static_cast<std::ptrdiff_t>(server.begin),
            wk.grads.begin() + static_cast<std::ptrdiff_t>(server.end));
      }
      sim_.send(wk.node, server.node, kRequestTag,
                wk.req_gradient ? part * kFloatBytes : kHeaderBytes, std::move(data));
    }
    if (!more) co_return;
    for (int sv = 0; sv < k_; ++sv) {
      const Server& server = servers_[static_cast<std::size_t>(sv)];
      const Message m = co_await sim_.recv(wk.node, server.node, kAnswerTag);
      if (m.data) {
        std::copy(m.data->begin(), m.data->end(),
                  wk.params.begin() + static_cast<std::ptrdiff_t>(server.begin));
      }
    }
    first = false;
    if (st_.sync == SyncMode::kBsp) {
      // Backup workers: the run is over once every shard has finished its last step.
      wk.done = *std::min_element(wk.read_version.begin(), wk.read_version.end()) >= total_steps_;
      if (wk.done) {
        wk.req_gradient = false;
        wk.req_pull = false;
        for (const int node : server_nodes_) sim_.send(wk.node, node, kRequestTag, kHeaderBytes);
        co_return;
      }
    }
    co_await gradient(w);
    wk.grad_slot = wk.slot;
    more = take_ticket(w);
  }
}

Task<> TrainingRun::async_ps_server(int s) {
  Server& sv = servers_[static_cast<std::size_t>(s)];
  int finished = 0;
  while (finished < p_) {
    const Message m = co_await sim_.recv(sv.node, kAnySource, kRequestTag);
    const int w = m.src;
    Worker& wk = workers_[static_cast<std::size_t>(w)];
    if (wk.req_gradient) {
      Pending g;
      g.worker = w;
      g.clock = sv.clocks[static_cast<std::size_t>(w)]++;
      g.slot = wk.grad_slot;
      g.read_version = wk.read_version[static_cast<std::size_t>(s)];
      if (m.data) g.grad = *m.data;
      if (m.data && st_.delay_compensation > 0) {
        g.read_params.assign(wk.params.begin() + static_cast<std::ptrdiff_t>(sv.begin),
                             wk.params.begin() + static_cast<std::ptrdiff_t>(sv.end));
      }
      sv.pending.push_back(std::move(g));
    }
    if (wk.req_pull) {
      sv.pulls.push_back(w);
    } else {
      sv.finished[static_cast<std::size_t>(w)] = true;
      ++finished;
    }
    co_await ps_absorb(sv, s);
    co_await ps_answer_pulls(sv, s);
  }
}

Task<> TrainingRun::ps_absorb(Server& sv, int s) {
  const std::uint64_t p = static_cast<std::uint64_t>(p_);
  while (true) {
    std::vector<Pending> group;
    double lr = 0;
    if (st_.sync == SyncMode::kAsp) {
      if (sv.pending.empty()) co_return;
      group.push_back(std::move(sv.pending.front()));
      sv.pending.erase(sv.pending.begin());
      lr = lr_at(sv.version / p);
    } else if (st_.sync == SyncMode::kDelayed) {
      const auto next = std::find_if(sv.pending.begin(), sv.pending.end(),
                                     [&](const Pending& g) { return g.slot == sv.version; });
      if (next == sv.pending.end()) co_return;
      group.push_back(std::move(*next));
      sv.pending.erase(next);
      lr = lr_at(sv.version / p);
    } else if (st_.sync == SyncMode::kSsp) {
      // Clock `version` is complete when every worker has sent its gradient of that clock
      // or will send no more.
      const auto of_clock = [&](const Pending& g) { return g.clock == sv.version; };
      for (int v = 0; v < p_; ++v) {
        if (!sv.finished[static_cast<std::size_t>(v)] &&
            sv.clocks[static_cast<std::size_t>(v)] <= sv.version)
          co_return;
      }
      const auto split = std::stable_partition(sv.pending.begin(), sv.pending.end(), of_clock);
      if (split == sv.pending.begin()) co_return;
      group.assign(std::make_move_iterator(sv.pending.begin()), std::make_move_iterator(split));
      sv.pending.erase(sv.pending.begin(), split);
      lr = lr_at(sv.version);
    } else {  // bsp with backup workers
      // Drop what was computed on an old version, or arrives after the last step.
      for (auto g = sv.pending.begin(); g != sv.pending.end();) {
        if (g->read_version != sv.version || sv.version >= total_steps_) {
          if (s == 0) ++workers_[static_cast<std::size_t>(g->worker)].dropped;
          g = sv.pending.erase(g);
        } else {
          ++g;
        }
      }
      if (sv.pending.size() < static_cast<std::size_t>(p_ - st_.backup_workers)) co_return;
      group = std::move(sv.pending);
      sv.pending.clear();
      lr = lr_at(sv.version);
    }
    co_await ps_apply(sv, s, std::move(group), lr);
  }
}

Task<> TrainingRun::ps_apply(Server& sv, int s, std::vector<Pending> group, double lr) {
  std::sort(group.begin(), group.end(), [](const Pending& a, const Pending& b) {
    return std::pair(a.worker, a.clock) < std::pair(b.worker, b.clock);
  });
  const std::uint64_t n = sv.end - sv.begin;
  const double size = static_cast<double>(group.size());
  const bool dc = st_.delay_compensation > 0;
  // Summing (more than one), delay compensation (4 flops per element each), averaging, the
  // optimizer step.
  const double flops = (size > 1 ? size + 1 : 0) * static_cast<double>(n) +
                       (dc ? 4 * size * static_cast<double>(n) : 0) +
                       optimizer_step_flops(s_.train.optimizer.kind, n);
  std::vector<double> scale;
  for (const Pending& g : group) {
    const std::uint64_t staleness = sv.version - std::min(sv.version, g.read_version);
    if (s == 0) record_staleness(staleness);
    scale.push_back(
        st_.staleness_lr ? 1.0 / static_cast<double>(std::max<std::uint64_t>(1, staleness)) : 1.0);
  }
  std::function<void()> work;
  if (numerics_) {
    work = [this, &sv, &group, &scale, lr, dc] {
      std::fill(sv.buffer.begin(), sv.buffer.end(), 0.0f);
      const auto lambda = static_cast<float>(st_.delay_compensation);
      for (std::size_t i = 0; i < group.size(); ++i) {
        const Pending& g = group[i];
        const auto f = static_cast<float>(scale[i]);
        for (std::size_t j = 0; j < g.grad.size(); ++j) {
          float d = g.grad[j];
          if (dc) d += lambda * d * d * (sv.params[j] - g.read_params[j]);
          sv.buffer[j] += scale[i] == 1.0 ? d : f * d;
        }
      }
      if (group.size() > 1) {
        const float inv = 1.0f / static_cast<float>(group.size());
        for (float& v : sv.buffer) v *= inv;
      }
      sv.optimizer->step(sv.params, sv.buffer, lr);
    };
  }
  co_await sim_.compute(sv.node, job_time(sv.node, flops), std::move(work), "update");
  ++sv.version;
  if (numerics_ && st_.sync == SyncMode::kDelayed) {
    sv.history.push_back(sv.params);
    const auto keep = static_cast<std::size_t>(*st_.staleness) + 1;
    if (sv.history.size() > keep) sv.history.erase(sv.history.begin());
  }
  if (numerics_ && k_ > 1) sv.published = sv.params;
  sv.applied += group.size();
  // The global model reaches a version when its last shard does: in the lock-step modes
  // every shard is then at exactly that version.
  if (++shards_at_[sv.version] == k_) {
    shards_at_.erase(sv.version);
    progress(sv.version, sv.applied * static_cast<std::uint64_t>(batch_));
  }
}

bool TrainingRun::ps_may_answer(const Server& sv, int s, int w) const {
  const Worker& wk = workers_[static_cast<std::size_t>(w)];
  if (stop_) return true;  // diverged: let everyone finish
  switch (st_.sync) {
    case SyncMode::kSsp:  // its next gradient is of clock clocks[w]; version clocks are done
      return sv.clocks[static_cast<std::size_t>(w)] <=
             sv.version + static_cast<std::uint64_t>(*st_.staleness);
    case SyncMode::kDelayed: {
      const auto tau = static_cast<std::uint64_t>(*st_.staleness);
      return sv.version >= (wk.slot >= tau ? wk.slot - tau : 0);
    }
    case SyncMode::kBsp:  // backup workers
      return !wk.req_gradient || sv.version >= total_steps_ ||
             sv.version > wk.read_version[static_cast<std::size_t>(s)];
    default:
      return true;
  }
}

Task<> TrainingRun::ps_answer_pulls(Server& sv, int s) {
  const std::uint64_t n = sv.end - sv.begin;
  for (auto it = sv.pulls.begin(); it != sv.pulls.end();) {
    const int w = *it;
    if (!ps_may_answer(sv, s, w)) {
      ++it;
      continue;
    }
    Worker& wk = workers_[static_cast<std::size_t>(w)];
    std::uint64_t served = sv.version;
    std::shared_ptr<const std::vector<float>> data;
    if (st_.sync == SyncMode::kDelayed && !stop_) {
      const auto tau = static_cast<std::uint64_t>(*st_.staleness);
      served = wk.slot >= tau ? wk.slot - tau : 0;
    }
    if (numerics_) {
      const std::vector<float>& params =
          st_.sync == SyncMode::kDelayed
              ? sv.history[sv.history.size() - 1 - static_cast<std::size_t>(sv.version - served)]
              : sv.params;
      data = std::make_shared<const std::vector<float>>(params);
    }
    wk.read_version[static_cast<std::size_t>(s)] = served;
    sim_.send(sv.node, wk.node, kAnswerTag, n * kFloatBytes, std::move(data));
    it = sv.pulls.erase(it);
  }
  co_return;
}

}  // namespace dtsim::detail
