#include "sim/strategies/ps_async.hpp"

#include <algorithm>

#include "engine/aggregate.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"

namespace dtsim {
AsyncPs::AsyncPs(RunCore& core, std::unique_ptr<ServerRule> rule)
    : Strategy(core), rule_(std::move(rule)) {
  const int p = core.workers();
  const int k = core.servers();
  const std::size_t n = core.num_params();
  const CodecConfig& codec = core.scenario().compression;
  const bool coded = codec.kind != CodecKind::kNone;
  for (int w = 0; w < p; ++w) {
    PsWorker wk;
    wk.params = core.initial_params();
    wk.read_version.assign(static_cast<std::size_t>(k), 0);
    for (int s = 0; coded && s < k; ++s) {
      const auto [b, e] = part_range(n, k, s);
      wk.codecs.push_back(
          std::make_unique<Compressor>(codec, e - b, core.scenario().seed, w, nullptr, s));
      wk.payloads.push_back(std::make_shared<Payload>());
    }
    workers_.push_back(std::move(wk));
  }
  for (int s = 0; coded && s < k; ++s) {
    const auto [b, e] = part_range(n, k, s);
    decoders_.push_back(
        std::make_unique<Compressor>(codec, e - b, core.scenario().seed, -1, nullptr, s));
  }
  const std::vector<float>& init = core.initial_params();
  for (int s = 0; s < k; ++s) {
    ServerShard sv;
    sv.node = core.server_nodes()[static_cast<std::size_t>(s)];
    std::tie(sv.begin, sv.end) = part_range(n, k, s);
    if (core.numerics()) {
      sv.params.assign(init.begin() + static_cast<std::ptrdiff_t>(sv.begin),
                       init.begin() + static_cast<std::ptrdiff_t>(sv.end));
      sv.buffer.assign(sv.end - sv.begin, 0.0f);
      sv.optimizer =
          std::make_unique<Optimizer>(core.scenario().train.optimizer, sv.end - sv.begin);
      sv.published = sv.params;
    }
    if (core.config().checkpoint_every > 0)
      sv.checkpoints = std::make_unique<ShardCheckpoints>(core, sv.node, sv.begin, sv.end);
    sv.clocks.assign(static_cast<std::size_t>(p), 0);
    sv.finished.assign(static_cast<std::size_t>(p), false);
    servers_.push_back(std::move(sv));
    rule_->ready(servers_.back(), s);
  }
}

void AsyncPs::start() {
  for (int w = 0; w < core().workers(); ++w) core().sim().spawn(worker(w));
  for (int s = 0; s < core().servers(); ++s) core().sim().spawn(server(s));
}

std::uint64_t AsyncPs::total_updates() const {
  const std::uint64_t steps = core().total_steps();
  return rule_->update_per_gradient() ? steps * static_cast<std::uint64_t>(core().workers())
                                      : steps;
}

std::span<const float> AsyncPs::global_params(double& /*consensus*/) {
  // The shards side by side. Servers may be in the middle of an update: with several
  // shards, read what each published with its last update.
  global_.resize(core().num_params());
  const bool published = core().servers() > 1;
  for (const ServerShard& sv : servers_) {
    const std::vector<float>& part = published ? sv.published : sv.params;
    std::copy(part.begin(), part.end(), global_.begin() + static_cast<std::ptrdiff_t>(sv.begin));
  }
  return global_;
}

bool AsyncPs::take_ticket(int w) {
  PsWorker& wk = workers_[static_cast<std::size_t>(w)];
  if (core().stopped()) return false;
  if (rule_->rounds()) return !wk.done;  // until the servers say
  if (!returned_.empty()) {
    wk.slot = returned_.back();
    returned_.pop_back();
    return true;
  }
  const std::uint64_t budget = core().total_steps() * static_cast<std::uint64_t>(core().workers());
  if (tickets_ >= budget) return false;
  wk.slot = tickets_++;
  return true;
}

Task<> AsyncPs::worker(int w) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  PsWorker& wk = workers_[static_cast<std::size_t>(w)];
  const int node = c.worker(w).node;
  bool more = take_ticket(w);
  bool first = true;
  while (true) {
    wk.req_gradient = !first;
    wk.req_pull = more;
    if (wk.req_gradient && !wk.codecs.empty()) {
      co_await encode(w);
      for (std::size_t s = 0; s < servers_.size(); ++s) {
        const ServerShard& sv = servers_[s];
        Message m{node, sv.node, tags::kRequest, 0, nullptr, nullptr};
        m.bytes = c.numerics() ? wk.payloads[s]->size() : wk.codecs[s]->payload_size(wk.pushed);
        if (c.numerics()) m.payload = wk.payloads[s];
        sim.send(std::move(m));
      }
      ++wk.pushed;
    }
    for (const ServerShard& sv : servers_) {
      if (wk.req_gradient && !wk.codecs.empty()) break;  // sent above
      const std::uint64_t part = sv.end - sv.begin;
      std::shared_ptr<const std::vector<float>> data;
      if (wk.req_gradient && c.numerics()) {
        const std::span<const float> g = c.worker(w).grads;
        data = std::make_shared<const std::vector<float>>(
            g.begin() + static_cast<std::ptrdiff_t>(sv.begin),
            g.begin() + static_cast<std::ptrdiff_t>(sv.end));
      }
      sim.send(node, sv.node, tags::kRequest,
               wk.req_gradient ? part * wire::kFloatBytes : wire::kHeaderBytes, std::move(data));
    }
    if (!more) {
      wk.left = true;
      co_return;
    }
    for (const ServerShard& sv : servers_) {
      const Message m = co_await sim.recv(node, sv.node, tags::kAnswer);
      if (m.data) {
        std::copy(m.data->begin(), m.data->end(),
                  wk.params.begin() + static_cast<std::ptrdiff_t>(sv.begin));
      }
    }
    first = false;
    if (rule_->rounds()) {
      // The run is over once every shard has finished its last step.
      wk.done =
          *std::min_element(wk.read_version.begin(), wk.read_version.end()) >= c.total_steps();
      if (wk.done) {
        wk.req_gradient = false;
        wk.req_pull = false;
        for (const int server : c.server_nodes())
          sim.send(node, server, tags::kRequest, wire::kHeaderBytes);
        co_return;
      }
    }
    const SimTime gradient_start = sim.now();
    co_await c.gradient(w, wk.params);
    const FaultConfig* stop = c.faults() != nullptr ? c.faults()->stop_of(w) : nullptr;
    if (stop != nullptr && !wk.hit && sim.now() >= stop->at) {  // down: this gradient is lost
      wk.hit = true;
      c.faults()->lost_gradient(w, sim.now() - gradient_start);
      returned_.push_back(wk.slot);
      if (stop->kind == FaultKind::kCrash) co_return;  // (the shards hear of it: worker_lost)
      const SimTime back = c.faults()->back_at(w);
      if (back > sim.now()) co_await sim.delay(back - sim.now());
      c.faults()->rejoined(w, sim.now());
      first = true;  // a pull only: its next request carries no gradient
      more = take_ticket(w);
      continue;
    }
    wk.grad_slot = wk.slot;
    more = take_ticket(w);
  }
}

void AsyncPs::worker_lost(int w) {
  PsWorker& wk = workers_[static_cast<std::size_t>(w)];
  if (wk.left || core().faults()->stop_of(w)->kind != FaultKind::kCrash) return;
  // The notice of its leaving reaches each shard as its last request would.
  wk.left = true;
  wk.req_gradient = false;
  wk.req_pull = false;
  const int node = core().worker(w).node;
  for (const ServerShard& sv : servers_) {
    core().sim().send(Message{node, sv.node, tags::kRequest, 0, nullptr, nullptr});
  }
}

Task<> AsyncPs::server(int s) {
  ServerShard& sv = servers_[static_cast<std::size_t>(s)];
  const bool compensate = core().config().delay_compensation > 0;
  int finished = 0;
  while (finished < core().workers()) {
    const Message m = co_await core().sim().recv(sv.node, kAnySource, tags::kRequest);
    const int w = m.src;
    const PsWorker& wk = workers_[static_cast<std::size_t>(w)];
    const std::size_t arriving = wk.req_gradient ? 1 : 0;
    if (sv.checkpoints) co_await recover(sv, s, arriving);
    if (wk.req_gradient) {
      Pending g;
      g.worker = w;
      g.clock = sv.clocks[static_cast<std::size_t>(w)]++;
      g.slot = wk.grad_slot;
      g.read_version = wk.read_version[static_cast<std::size_t>(s)];
      if (m.data) g.grad = *m.data;
      if (!decoders_.empty()) co_await decode(s, m.payload.get(), g);
      if ((m.data || m.payload) && compensate) {
        g.read_params.assign(wk.params.begin() + static_cast<std::ptrdiff_t>(sv.begin),
                             wk.params.begin() + static_cast<std::ptrdiff_t>(sv.end));
      }
      sv.pending.push_back(std::move(g));
    }
    if (wk.req_pull) {
      sv.pulls.push_back(w);
    } else if (!sv.finished[static_cast<std::size_t>(w)]) {
      sv.finished[static_cast<std::size_t>(w)] = true;
      ++finished;
    }
    co_await absorb(sv, s);
    answer_pulls(sv, s);
    if (sv.checkpoints)
      co_await sv.checkpoints->after_update(sv.version, total_updates(), sv.params,
                                            sv.optimizer.get());
  }
}

Task<> AsyncPs::encode(int w) {
  RunCore& c = core();
  PsWorker& wk = workers_[static_cast<std::size_t>(w)];
  const GradientWorker& gw = c.worker(w);
  const double flops =
      encode_flops_per_element(c.scenario().compression) * static_cast<double>(c.num_params());
  std::function<void()> work;
  if (c.numerics()) {
    work = [this, &wk, &gw] {
      for (std::size_t s = 0; s < servers_.size(); ++s) {
        const ServerShard& sv = servers_[s];
        const std::span<const float> part(gw.grads.data() + sv.begin, sv.end - sv.begin);
        // A fresh payload: the last one may still be on its way or waiting at the server.
        wk.payloads[s] = std::make_shared<Payload>();
        wk.codecs[s]->encode(part, wk.pushed, *wk.payloads[s]);
      }
    };
  }
  co_await c.sim().compute(gw.node, c.job_time(gw.node, flops), std::move(work), "encode");
}

Task<> AsyncPs::decode(int s, const Payload* payload, Pending& g) {
  RunCore& c = core();
  const ServerShard& sv = servers_[static_cast<std::size_t>(s)];
  const std::uint64_t n = sv.end - sv.begin;
  const double flops = decode_flops_per_element(c.scenario().compression) * static_cast<double>(n);
  std::function<void()> work;
  if (c.numerics()) {
    work = [this, s, payload, &g, n] {
      g.grad.resize(n);
      decoders_[static_cast<std::size_t>(s)]->decode(*payload, g.grad, g.clock);
    };
  }
  co_await c.sim().compute(sv.node, c.job_time(sv.node, flops), std::move(work), "decode");
}

Task<> AsyncPs::absorb(ServerShard& sv, int s) {
  while (true) {
    double lr = 0;
    std::vector<Pending> group = rule_->next_update(sv, s, lr);
    if (group.empty()) co_return;
    co_await apply(sv, s, std::move(group), lr);
  }
}

Task<> AsyncPs::apply(ServerShard& sv, int s, std::vector<Pending> group, double lr) {
  RunCore& c = core();
  std::sort(group.begin(), group.end(), [](const Pending& a, const Pending& b) {
    return std::pair(a.worker, a.clock) < std::pair(b.worker, b.clock);
  });
  const std::uint64_t n = sv.end - sv.begin;
  if (sv.checkpoints) co_await recover(sv, s, group.size());
  const double size = static_cast<double>(group.size());
  const double lambda = c.config().delay_compensation;
  const bool dc = lambda > 0;
  // A robust rule (ssp's clocks, backup workers' steps) over the group's gradients, when it
  // has as many as the rule needs (a clock that lost workers to crashes may not: averaged).
  const AggregationConfig& rule = c.config().aggregation;
  const bool robust = rule.kind != AggregationKind::kMean && group.size() > 1 &&
                      static_cast<int>(group.size()) >= min_contributions(rule);
  // Summing (more than one) and averaging, or the rule; delay compensation (4 flops per
  // element each); the optimizer step.
  const double combine = robust ? aggregate_flops(rule, static_cast<int>(group.size()), n)
                                : (size > 1 ? size + 1 : 0) * static_cast<double>(n);
  const double flops = combine + (dc ? 4 * size * static_cast<double>(n) : 0) +
                       optimizer_step_flops(c.scenario().train.optimizer.kind, n);
  std::vector<double> scale;
  for (const Pending& g : group) {
    const std::uint64_t staleness = sv.version - std::min(sv.version, g.read_version);
    if (s == 0) c.record_staleness(staleness);
    scale.push_back(c.config().staleness_lr
                        ? 1.0 / static_cast<double>(std::max<std::uint64_t>(1, staleness))
                        : 1.0);
  }
  std::function<void()> work;
  if (c.numerics()) {
    work = [&sv, &group, &scale, &rule, lr, dc, lambda, robust] {
      const auto l = static_cast<float>(lambda);
      if (robust) {
        // Each gradient as the mean would take it (scaled, compensated), then the rule.
        std::vector<std::vector<float>> inputs(group.size());
        std::vector<std::span<const float>> spans;
        for (std::size_t i = 0; i < group.size(); ++i) {
          const Pending& g = group[i];
          const auto f = static_cast<float>(scale[i]);
          inputs[i].resize(g.grad.size());
          for (std::size_t j = 0; j < g.grad.size(); ++j) {
            float d = g.grad[j];
            if (dc) d += l * d * d * (sv.params[j] - g.read_params[j]);
            inputs[i][j] = scale[i] == 1.0 ? d : f * d;
          }
          spans.emplace_back(inputs[i]);
        }
        aggregate(rule, spans, {}, sv.buffer);
        sv.optimizer->step(sv.params, sv.buffer, lr);
        return;
      }
      std::fill(sv.buffer.begin(), sv.buffer.end(), 0.0f);
      for (std::size_t i = 0; i < group.size(); ++i) {
        const Pending& g = group[i];
        const auto f = static_cast<float>(scale[i]);
        for (std::size_t j = 0; j < g.grad.size(); ++j) {
          float d = g.grad[j];
          if (dc) d += l * d * d * (sv.params[j] - g.read_params[j]);
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
  co_await c.sim().compute(sv.node, c.job_time(sv.node, flops), std::move(work), "update");
  ++sv.version;
  rule_->updated(sv, s);
  if (c.numerics() && c.servers() > 1) sv.published = sv.params;
  sv.applied += group.size();
  // The global model reaches a version when its last shard does: in the lock-step modes
  // every shard is then at exactly that version.
  if (++shards_at_[sv.version] == c.servers()) {
    shards_at_.erase(sv.version);
    c.progress(sv.version, sv.applied * static_cast<std::uint64_t>(c.batch()));
  }
}

Task<> AsyncPs::recover(ServerShard& sv, int s, std::size_t arriving) {
  // The gradients it held (waiting, and `arriving`) are sent again.
  const std::uint64_t resent = (sv.pending.size() + arriving) * (sv.end - sv.begin);
  const bool restored = co_await sv.checkpoints->recover(sv.version, sv.params, sv.optimizer,
                                                         resent * wire::kFloatBytes);
  if (!restored) co_return;
  rule_->restored(sv, s);
  if (core().numerics() && core().servers() > 1) sv.published = sv.params;
}

void AsyncPs::answer_pulls(ServerShard& sv, int s) {
  RunCore& c = core();
  const std::uint64_t n = sv.end - sv.begin;
  for (auto it = sv.pulls.begin(); it != sv.pulls.end();) {
    const int w = *it;
    PsWorker& wk = workers_[static_cast<std::size_t>(w)];
    // After a divergence everyone is answered, so that every program finishes.
    if (!c.stopped() && !rule_->may_answer(sv, s, w, wk)) {
      ++it;
      continue;
    }
    const std::uint64_t served = c.stopped() ? sv.version : rule_->served_version(sv, wk);
    std::shared_ptr<const std::vector<float>> data;
    if (c.numerics()) {
      data = std::make_shared<const std::vector<float>>(rule_->params_of(sv, s, served));
    }
    wk.read_version[static_cast<std::size_t>(s)] = served;
    c.sim().send(sv.node, c.worker(w).node, tags::kAnswer, n * wire::kFloatBytes, std::move(data));
    it = sv.pulls.erase(it);
  }
}

}  // namespace dtsim
