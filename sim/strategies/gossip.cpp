// Gossip: no server, no global collective; each worker keeps its own replica and mixes it with
// its neighbours'. The graph: the ring and full topologies' own links; a star or hierarchical
// network has no node-to-node links, so its workers gossip on the ring of ranks (the usual
// choice, Lian et al. 2017).
//
// d-psgd (Lian et al. 2017), in lock-step with the neighbours:
//     x_i <- sum_j W_ij x_j - lr * g_i(x_i)      (W: Metropolis-Hastings weights, doubly
//                                                  stochastic; then the worker's optimizer)
//   Each step a worker sends its replica to every neighbour before computing its gradient, so
//   the exchange overlaps the computation, then mixes what it received and steps. It runs on
//   to its last step after a divergence: a worker knows only its neighbours.
//
// d-psgd with [compression] is CHOCO-SGD (Koloskova et al. 2019): every worker keeps public
// copies x^_j of its neighbours' replicas and of its own (all equal to the initial model at
// the start: everyone knows it), and each step
//     x_i <- the optimizer's step on g_i(x_i)
//     q_i  = decode(encode(x_i - x^_i))            sent to every neighbour
//     x^_j <- x^_j + q_j  for j = i and its neighbours
//     x_i <- x_i + gamma * sum_j W_ij (x^_j - x^_i)  (gamma: strategy.consensus_step)
//   The copies keep what compression dropped (so there is no error-feedback memory). The
//   gradient comes first, so the exchange does not overlap it. Encoding is charged per
//   element as for the other strategies, decoding for each of the deg + 1 payloads.
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
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <optional>

#include "engine/compress.hpp"
#include "engine/rng.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/strategies/replica_set.hpp"
#include "sim/strategies/strategy.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

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

// What both gossip modes share: the replicas and the graph.
class Gossip : public Strategy {
 public:
  explicit Gossip(RunCore& core) : Strategy(core), replicas_(core) {
    for (int w = 0; w < core.workers(); ++w) {
      neighbours_.push_back(gossip_neighbours(core.scenario().network.topology, core.workers(), w));
    }
  }
  bool versioned() const override { return false; }

 protected:
  const std::vector<int>& neighbours(int w) const {
    return neighbours_[static_cast<std::size_t>(w)];
  }
  ReplicaSet replicas_;

 private:
  std::vector<std::vector<int>> neighbours_;
};

class DPsgd : public Gossip {
 public:
  explicit DPsgd(RunCore& core) : Gossip(core) {
    // Metropolis-Hastings weights W_ij = 1 / (1 + max(deg_i, deg_j)) for neighbours and
    // W_ii = 1 - sum_j W_ij: symmetric and doubly stochastic (1/3 each on a ring, 1/p each
    // on a full mesh). mixing_[w]: each neighbour's weight, then the self weight.
    for (int w = 0; w < core.workers(); ++w) {
      std::vector<float> mixing;
      double self = 1.0;
      for (const int v : neighbours(w)) {
        const std::size_t deg = std::max(neighbours(w).size(), neighbours(v).size());
        const double weight = 1.0 / (1.0 + static_cast<double>(deg));
        mixing.push_back(static_cast<float>(weight));
        self -= weight;
      }
      mixing.push_back(static_cast<float>(self));
      mixing_.push_back(std::move(mixing));
    }
    coded_ = core.scenario().compression.kind != CodecKind::kNone;
    if (coded_) set_up_choco();
    const auto p = static_cast<std::size_t>(core.workers());
    gone_.assign(p, false);
    waiting_on_.assign(p, -1);
    waiting_tag_.assign(p, 0);
    waiting_since_.assign(p, SimTime());
  }
  void start() override {
    for (int w = 0; w < core().workers(); ++w) {
      core().sim().spawn(coded_ ? choco_worker(w) : worker(w));
    }
  }
  std::span<const float> global_params(double& consensus) override {
    return replicas_.average(consensus, !core().running());
  }
  void worker_lost(int v) override;

 private:
  Task<> worker(int w);
  Task<> choco_worker(int w);
  // Worker w's crash has come (its neighbours find out failure_timeout after it): it stops,
  // and the replicas' average goes on without it. `gradient_start`: its lost gradient's.
  bool stopped_by_crash(int w, std::optional<SimTime> gradient_start);
  // Neighbour v's message of this step (tag) to worker w, or nothing when v is gone: known
  // before, or noticed while w waits (worker_lost sends w a notice in its place).
  Task<std::optional<Message>> from_neighbour(int w, int v, std::uint64_t tag);
  // CHOCO-SGD: the worker's encoder (no error feedback) and decoder, and its public copies:
  // its neighbours' (in neighbours(w)'s order), then its own.
  struct Choco {
    std::unique_ptr<Compressor> encoder;
    std::unique_ptr<Compressor> decoder;
    std::vector<std::vector<float>> copies;
    std::vector<float> q;  // a decoded difference
  };
  void set_up_choco();

  std::vector<std::vector<float>> mixing_;
  bool coded_ = false;
  std::vector<Choco> choco_;
  // Crashes: the workers their neighbours know are gone, and whom each worker waits for.
  std::vector<bool> gone_;
  std::vector<int> waiting_on_;  // -1: nobody
  std::vector<std::uint64_t> waiting_tag_;
  std::vector<SimTime> waiting_since_;
};

bool DPsgd::stopped_by_crash(int w, std::optional<SimTime> gradient_start) {
  RunCore& c = core();
  if (!c.down(w)) return false;
  if (gradient_start) c.faults()->lost_gradient(w, c.sim().now() - *gradient_start);
  replicas_.drop(w);
  return true;
}

Task<std::optional<Message>> DPsgd::from_neighbour(int w, int v, std::uint64_t tag) {
  if (gone_[static_cast<std::size_t>(v)]) co_return std::nullopt;
  RunCore& c = core();
  waiting_on_[static_cast<std::size_t>(w)] = v;
  waiting_tag_[static_cast<std::size_t>(w)] = tag;
  waiting_since_[static_cast<std::size_t>(w)] = c.sim().now();
  Message m = co_await c.sim().recv(c.worker(w).node, c.worker(v).node, tag);
  waiting_on_[static_cast<std::size_t>(w)] = -1;
  if (m.bytes == 0 && !m.data && !m.payload) co_return std::nullopt;  // the notice
  co_return m;
}

void DPsgd::worker_lost(int v) {
  RunCore& c = core();
  gone_[static_cast<std::size_t>(v)] = true;
  // Those waiting for it get a notice instead; the time they waited is the crash's cost.
  for (const int u : std::vector<int>(neighbours(v))) {
    if (waiting_on_[static_cast<std::size_t>(u)] != v) continue;
    c.faults()->stalled(v, c.sim().now() - waiting_since_[static_cast<std::size_t>(u)]);
    c.sim().notify(Message{c.worker(v).node, c.worker(u).node,
                           waiting_tag_[static_cast<std::size_t>(u)], 0, nullptr, nullptr});
  }
}

void DPsgd::set_up_choco() {
  RunCore& c = core();
  CodecConfig codec = c.scenario().compression;
  codec.error_feedback = false;
  const std::size_t n = c.num_params();
  for (int w = 0; w < c.workers(); ++w) {
    Choco ch;
    ch.encoder = std::make_unique<Compressor>(codec, n, c.scenario().seed, w);
    ch.decoder = std::make_unique<Compressor>(codec, n, c.scenario().seed, -1);
    if (c.numerics()) {
      ch.copies.assign(neighbours(w).size() + 1, c.initial_params());
      ch.q.assign(n, 0.0f);
    }
    choco_.push_back(std::move(ch));
  }
}

Task<> DPsgd::choco_worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Replica& rep = replicas_[w];
  Choco& ch = choco_[static_cast<std::size_t>(w)];
  const std::vector<float>& mixing = mixing_[static_cast<std::size_t>(w)];
  const std::vector<int>& peers = neighbours(w);
  const std::size_t n = c.num_params();
  const double gamma = c.config().consensus_step;
  const CodecConfig& codec = c.scenario().compression;
  // The step, the difference and its encoding; then decoding every payload, the copies'
  // updates and the consensus step (2 flops per element and neighbour).
  const double encode_flops = optimizer_step_flops(c.scenario().train.optimizer.kind, n) +
                              (1.0 + encode_flops_per_element(codec)) * static_cast<double>(n);
  const double mix_flops = static_cast<double>(peers.size() + 1) *
                               (decode_flops_per_element(codec) + 1.0) * static_cast<double>(n) +
                           2.0 * static_cast<double>(peers.size()) * static_cast<double>(n);
  std::vector<float> diff(c.numerics() ? n : 0);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    const std::uint64_t tag = tags::step_tag(step);
    const SimTime gradient_start = sim.now();
    co_await c.gradient(w, rep.params);
    if (stopped_by_crash(w, gradient_start)) co_return;
    const double lr = c.lr_at(step);
    auto payload = std::make_shared<Payload>();
    std::function<void()> encode;
    if (c.numerics()) {
      encode = [&wk, &rep, &ch, &diff, &payload, lr, step] {
        rep.optimizer->step(rep.params, wk.grads, lr);
        const std::vector<float>& own = ch.copies.back();
        for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = rep.params[i] - own[i];
        ch.encoder->encode(diff, step, *payload);
      };
    }
    co_await sim.compute(wk.node, c.job_time(wk.node, encode_flops), std::move(encode), "encode");
    const std::uint64_t bytes = c.numerics() ? payload->size() : ch.encoder->payload_size(step);
    for (const int v : peers) {
      if (gone_[static_cast<std::size_t>(v)]) continue;
      Message m{wk.node, v, tag, bytes, nullptr, nullptr};
      m.payload = payload;
      sim.send(std::move(m));
    }
    // (A neighbour that is gone has no payload: its copy stays, and drops out of the mix.)
    std::vector<std::optional<Message>> theirs;
    for (const int v : peers) theirs.push_back(co_await from_neighbour(w, v, tag));
    std::function<void()> mix;
    if (c.numerics()) {
      mix = [&rep, &ch, &theirs, &mixing, &payload, gamma, step] {
        // Every copy moves by its decoded difference (its owner's payload).
        for (std::size_t j = 0; j <= theirs.size(); ++j) {
          if (j < theirs.size() && !theirs[j]) continue;
          const Payload& p = j < theirs.size() ? *theirs[j]->payload : *payload;
          ch.decoder->decode(p, ch.q, step);
          std::vector<float>& copy = ch.copies[j];
          for (std::size_t i = 0; i < copy.size(); ++i) copy[i] += ch.q[i];
        }
        const std::vector<float>& own = ch.copies.back();
        for (std::size_t j = 0; j < theirs.size(); ++j) {
          if (!theirs[j]) continue;
          const auto weight = static_cast<float>(gamma * mixing[j]);
          const std::vector<float>& copy = ch.copies[j];
          for (std::size_t i = 0; i < copy.size(); ++i) {
            rep.params[i] += weight * (copy[i] - own[i]);
          }
        }
      };
    }
    co_await sim.compute(wk.node, c.job_time(wk.node, mix_flops), std::move(mix), "mix");
    replicas_.step_done(w, step + 1, step + 1 == c.total_steps());
  }
}

Task<> DPsgd::worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Replica& rep = replicas_[w];
  const std::vector<float>& mixing = mixing_[static_cast<std::size_t>(w)];
  const std::size_t n = c.num_params();
  const double mix_flops =
      2.0 * static_cast<double>(neighbours(w).size() + 1) * static_cast<double>(n);
  const double update_flops =
      mix_flops + optimizer_step_flops(c.scenario().train.optimizer.kind, n);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    if (stopped_by_crash(w, std::nullopt)) co_return;
    const std::uint64_t tag = tags::step_tag(step);
    std::shared_ptr<const std::vector<float>> mine;
    if (c.numerics()) mine = std::make_shared<const std::vector<float>>(rep.params);
    for (const int v : neighbours(w)) {
      if (!gone_[static_cast<std::size_t>(v)]) {
        sim.send(wk.node, v, tag, n * wire::kFloatBytes, mine);
      }
    }
    const SimTime gradient_start = sim.now();
    co_await c.gradient(w, rep.params);
    if (stopped_by_crash(w, gradient_start)) co_return;
    // A neighbour that is gone drops out of the mix: its weight goes to the worker's own.
    std::vector<std::optional<Message>> theirs;
    for (const int v : neighbours(w)) theirs.push_back(co_await from_neighbour(w, v, tag));
    const double lr = c.lr_at(step);
    std::function<void()> work;
    if (c.numerics()) {
      work = [&wk, &rep, &theirs, &mixing, lr] {
        float self = mixing.back();
        for (std::size_t j = 0; j < theirs.size(); ++j) {
          if (!theirs[j]) self += mixing[j];
        }
        for (float& x : rep.params) x *= self;
        for (std::size_t j = 0; j < theirs.size(); ++j) {
          if (!theirs[j]) continue;
          const float weight = mixing[j];
          const std::vector<float>& x = *theirs[j]->data;
          for (std::size_t i = 0; i < x.size(); ++i) rep.params[i] += weight * x[i];
        }
        rep.optimizer->step(rep.params, wk.grads, lr);
      };
    }
    co_await sim.compute(wk.node, c.job_time(wk.node, update_flops), std::move(work), "update");
    replicas_.step_done(w, step + 1, step + 1 == c.total_steps());
  }
}

class AdPsgd : public Gossip {
 public:
  explicit AdPsgd(RunCore& core) : Gossip(core) {
    if (core.numerics()) {
      for (int w = 0; w < core.workers(); ++w) copies_.push_back(core.initial_params());
    }
    done_.assign(static_cast<std::size_t>(core.workers()), false);
  }
  void start() override {
    for (int w = 0; w < core().workers(); ++w) {
      core().sim().spawn(worker(w));
      core().sim().spawn(listener(w));
    }
  }
  // The replicas as they are (they change only on the event loop's thread).
  std::span<const float> global_params(double& consensus) override {
    return replicas_.average(consensus, true);
  }
  std::uint64_t total_updates() const override {
    return core().total_steps() * static_cast<std::uint64_t>(core().workers());
  }
  bool lock_step() const override { return false; }

 private:
  Task<> worker(int w);
  Task<> listener(int w);

  // The parameters a gradient is computed on: a copy, since neighbours average into the
  // replica while the gradient job runs.
  std::vector<std::vector<float>> copies_;
  // A worker that took its last gradient (its next message to a neighbour is a goodbye).
  std::vector<bool> done_;
  std::uint64_t tickets_ = 0;    // gradients handed out
  std::uint64_t gradients_ = 0;  // gradients applied by all workers
};

Task<> AdPsgd::worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Replica& rep = replicas_[w];
  const std::size_t n = c.num_params();
  const bool numerics = c.numerics();
  const double update_flops =
      2.0 * static_cast<double>(n) + optimizer_step_flops(c.scenario().train.optimizer.kind, n);
  const std::uint64_t budget = total_updates();
  static const std::vector<float> kNone;
  const std::vector<float>& copy = numerics ? copies_[static_cast<std::size_t>(w)] : kNone;
  while (!c.stopped() && tickets_ < budget) {
    ++tickets_;
    // 1: the copy, which also goes to a random neighbour at once, so the averaging's
    // messages travel while the gradient is computed.
    if (numerics) copies_[static_cast<std::size_t>(w)] = rep.params;
    int v = -1;
    std::shared_ptr<const std::vector<float>> sent;
    if (!neighbours(w).empty()) {
      CounterRng pick(
          {c.scenario().seed, RngPurpose::kGossip, static_cast<std::uint32_t>(w + 1), wk.steps});
      v = neighbours(w)[pick.next_u64() % neighbours(w).size()];
      if (numerics) sent = std::make_shared<const std::vector<float>>(copy);
      sim.send(wk.node, v, tags::kRequest, n * wire::kFloatBytes, sent);
    }
    // 2: the gradient on the copy (the listener may average into the replica meanwhile).
    co_await c.gradient(w, copy);
    // 3: the neighbour's answer completes the averaging.
    if (v >= 0) {
      const Message answer = co_await sim.recv(wk.node, v, tags::kAnswer);
      if (numerics) {
        const std::vector<float>& theirs = *answer.data;
        for (std::size_t i = 0; i < n; ++i) rep.params[i] += 0.5f * (theirs[i] - (*sent)[i]);
      }
    }
    // 4: the update, charged as a job, applied here on the event loop's thread (the
    // listener changes the replica on this thread too).
    co_await sim.compute(wk.node, c.job_time(wk.node, update_flops), {}, "update");
    if (numerics) {
      rep.optimizer->step(rep.params, wk.grads,
                          c.lr_at(gradients_ / static_cast<std::uint64_t>(c.workers())));
    }
    ++gradients_;
    c.progress(gradients_, gradients_ * static_cast<std::uint64_t>(c.batch()));
  }
  done_[static_cast<std::size_t>(w)] = true;
  for (const int v : neighbours(w)) sim.send(wk.node, v, tags::kRequest, wire::kHeaderBytes);
}

Task<> AdPsgd::listener(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  Replica& rep = replicas_[w];
  const int node = c.worker(w).node;
  const std::size_t n = c.num_params();
  std::size_t goodbyes = 0;
  while (goodbyes < neighbours(w).size()) {
    const Message m = co_await sim.listen(node, kAnySource, tags::kRequest);
    // A neighbour that is done sends nothing after its goodbye (it waited for every answer).
    if (done_[static_cast<std::size_t>(m.src)]) {
      ++goodbyes;
      continue;
    }
    std::shared_ptr<const std::vector<float>> mine;
    if (c.numerics()) mine = std::make_shared<const std::vector<float>>(rep.params);
    sim.send(node, m.src, tags::kAnswer, n * wire::kFloatBytes, mine);
    if (c.numerics()) {
      const std::vector<float>& theirs = *m.data;
      for (std::size_t i = 0; i < n; ++i) rep.params[i] = 0.5f * (rep.params[i] + theirs[i]);
    }
  }
}

void predict_gossip(const PredictionBasis& basis, StepPrediction& out) {
  const int p = basis.workers;
  if (p <= 1) {
    out.how = "one worker: no communication";
    out.update_s = basis.optimizer_flops / basis.flops_per_s;
    return;
  }
  // The replica goes to every neighbour while the gradient is computed; on a ring or full
  // mesh each neighbour has its own link, on a star they share the node's.
  const TopologyKind topology = basis.scenario.network.topology;
  const int degree = topology == TopologyKind::kFull ? p - 1 : (p > 2 ? 2 : 1);
  const bool shared = topology != TopologyKind::kRing && topology != TopologyKind::kFull;
  const double exchange = basis.topology.path_latency(0, 1).seconds() +
                          (shared ? degree : 1) * basis.bytes * basis.beta;
  out.communicate_s = std::max(0.0, exchange - basis.gradient_s);
  out.update_s = (2.0 * (degree + 1) * basis.params + basis.optimizer_flops) / basis.flops_per_s;
  out.how = fmt::format("gossip: replica to {} neighbour(s), {} (overlaps the gradient)", degree,
                        format_seconds(exchange));
}

}  // namespace

void predict_dpsgd(const PredictionBasis& basis, StepPrediction& out) {
  predict_gossip(basis, out);
}

void predict_adpsgd(const PredictionBasis& basis, StepPrediction& out) {
  predict_gossip(basis, out);
  out.lock_step = false;
}

std::unique_ptr<Strategy> make_dpsgd(RunCore& core) { return std::make_unique<DPsgd>(core); }
std::unique_ptr<Strategy> make_adpsgd(RunCore& core) { return std::make_unique<AdPsgd>(core); }

}  // namespace dtsim
