#include "sim/strategies/coded_exchange.hpp"

#include <algorithm>

#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"

namespace dtsim {

bool uses_coded_exchange(const Scenario& s) {
  return s.compression.kind != CodecKind::kNone ||
         s.strategy.aggregation.kind != AggregationKind::kMean;
}

AggregationConfig aggregation_rule(const Scenario& s) {
  AggregationConfig a = s.strategy.aggregation;
  if (s.compression.kind == CodecKind::kSign) a.kind = AggregationKind::kSignVote;
  return a;
}

CodedAllreduce::CodedAllreduce(RunCore& core) : core_(core) {
  for (int w = 0; w < core.workers(); ++w) {
    codecs_.push_back(std::make_unique<Compressor>(core.scenario().compression, core.num_params(),
                                                   core.scenario().seed, w, &core.model().layout(),
                                                   0));
  }
}

std::pair<double, double> CodedAllreduce::coding_flops() const {
  const CodecConfig& cfg = core_.scenario().compression;
  const auto n = static_cast<double>(core_.num_params());
  return {encode_flops_per_element(cfg) * n, decode_flops_per_element(cfg) * n};
}

Task<> CodedAllreduce::exchange(int w, std::uint64_t step) {
  const Compressor& codec = *codecs_[static_cast<std::size_t>(w)];
  if (aggregation_rule(core_.scenario()).kind == AggregationKind::kMean && codec.rounds() > 0) {
    co_await summed(w, step);
  } else {
    co_await gathered(w, step);
  }
}

// The codec rides the allreduce: per round an encoding job and an allreduce of each of its
// parts (summed in place), then a decoding job that leaves the mean in the gradient.
Task<> CodedAllreduce::summed(int w, std::uint64_t step) {
  RunCore& c = core_;
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Compressor& codec = *codecs_[static_cast<std::size_t>(w)];
  const int p = c.workers();
  const bool numerics = c.numerics();
  const auto [enc, dec] = coding_flops();
  std::uint64_t collective = 0;  // the step's collectives, in order
  for (int r = 0; r < codec.rounds(); ++r) {
    std::function<void()> work;
    if (numerics) work = [&, r] { codec.encode_round(r, wk.grads, step, p); };
    co_await sim.compute(wk.node, c.job_time(wk.node, enc * codec.round_share(r)), std::move(work),
                         "encode");
    for (const SumPart& part : codec.parts(r, step)) {
      const CollBuf buf = numerics ? CollBuf::real(part.values, part.element_bytes)
                                   : CollBuf::sized(part.elements, part.element_bytes);
      co_await allreduce(
          CollContext{&sim, c.worker_nodes(), w, tags::collective_tag(step, collective++),
                      c.flops_per_s(wk.node)},
          buf, c.config().collective, c.scenario().network.nodes_per_machine);
    }
  }
  std::function<void()> work;
  if (numerics) work = [&] { codec.finish(step, p, wk.grads); };
  co_await sim.compute(wk.node, c.job_time(wk.node, dec), std::move(work), "decode");
}

// Every worker encodes, the payloads (each its real size) go round a ring allgather, and every
// worker decodes all p and aggregates them with the scenario's rule.
Task<> CodedAllreduce::gathered(int w, std::uint64_t step) {
  RunCore& c = core_;
  Simulation& sim = c.sim();
  GradientWorker& wk = c.worker(w);
  Compressor& codec = *codecs_[static_cast<std::size_t>(w)];
  const std::size_t n = c.num_params();
  const int p = c.workers();
  const int node = wk.node;
  const bool numerics = c.numerics();
  const AggregationConfig rule = aggregation_rule(c.scenario());
  const auto [enc, dec] = coding_flops();
  std::shared_ptr<Payload> mine;
  std::function<void()> work;
  if (numerics) {
    mine = std::make_shared<Payload>();
    work = [&] { codec.encode(wk.grads, step, *mine); };
  }
  co_await sim.compute(node, c.job_time(node, enc), std::move(work), "encode");
  const std::uint64_t bytes = numerics ? mine->size() : codec.payload_size(step);
  Gathered all;
  co_await allgather_payloads(
      CollContext{&sim, c.worker_nodes(), w, tags::collective_tag(step, 0), c.flops_per_s(wk.node)},
      mine, bytes, all);
  std::unique_ptr<SharedAggregate>& shared = shared_[step];
  if (!shared) shared = std::make_unique<SharedAggregate>();
  SharedAggregate* result = shared.get();
  if (numerics) {
    work = [&, result] {
      std::call_once(result->once, [&] {
        if (decoded_.empty()) decoded_.assign(static_cast<std::size_t>(p), std::vector<float>(n));
        for (int v = 0; v < p; ++v) {
          codec.decode(*all.payloads[static_cast<std::size_t>(v)],
                       decoded_[static_cast<std::size_t>(v)], step);
        }
        const std::vector<std::span<const float>> in(decoded_.begin(), decoded_.end());
        const std::vector<double> weights(static_cast<std::size_t>(p),
                                          static_cast<double>(c.batch()));
        result->result.resize(n);
        aggregate(rule, in, weights, result->result);
      });
      std::copy(result->result.begin(), result->result.end(), wk.grads.begin());
    };
  }
  co_await sim.compute(node, c.job_time(node, dec * p + aggregate_flops(rule, p, n)),
                       std::move(work), "decode");
  if (++result->taken == p) shared_.erase(step);
}

CodedPs::CodedPs(RunCore& core) : core_(core) {
  const CodecConfig& cfg = core.scenario().compression;
  const std::uint64_t seed = core.scenario().seed;
  const int k = core.servers();
  for (int w = 0; w < core.workers(); ++w) {
    std::vector<std::unique_ptr<Compressor>> mine;
    for (int s = 0; s < k; ++s) {
      const auto [b, e] = part_range(core.num_params(), k, s);
      mine.push_back(std::make_unique<Compressor>(cfg, e - b, seed, w, nullptr, s));
    }
    codecs_.push_back(std::move(mine));
  }
  for (int s = 0; s < k; ++s) {
    const auto [b, e] = part_range(core.num_params(), k, s);
    decoders_.push_back(std::make_unique<Compressor>(cfg, e - b, seed, -1, nullptr, s));
  }
  decoded_.resize(static_cast<std::size_t>(k));
}

Task<> CodedPs::push(int w, std::uint64_t step) {
  RunCore& c = core_;
  GradientWorker& wk = c.worker(w);
  const int k = c.servers();
  auto& codecs = codecs_[static_cast<std::size_t>(w)];
  const double enc =
      encode_flops_per_element(c.scenario().compression) * static_cast<double>(c.num_params());
  std::vector<std::shared_ptr<Payload>> payloads(static_cast<std::size_t>(k));
  std::function<void()> work;
  if (c.numerics()) {
    for (auto& payload : payloads) payload = std::make_shared<Payload>();
    work = [&] {
      for (int s = 0; s < k; ++s) {
        const auto [b, e] = part_range(c.num_params(), k, s);
        const std::span<const float> part(wk.grads.data() + b, e - b);
        codecs[static_cast<std::size_t>(s)]->encode(part, step,
                                                    *payloads[static_cast<std::size_t>(s)]);
      }
    };
  }
  co_await c.sim().compute(wk.node, c.job_time(wk.node, enc), std::move(work), "encode");
  for (int s = 0; s < k; ++s) {
    Message m{wk.node,
              c.server_nodes()[static_cast<std::size_t>(s)],
              tags::step_tag(step),
              c.numerics() ? payloads[static_cast<std::size_t>(s)]->size()
                           : codecs[static_cast<std::size_t>(s)]->payload_size(step),
              nullptr,
              nullptr};
    m.payload = payloads[static_cast<std::size_t>(s)];
    c.sim().send(std::move(m));
  }
}

Task<> CodedPs::serve(int s, std::uint64_t step, std::vector<float>& params,
                      std::vector<float>& buffer, Optimizer* optimizer) {
  RunCore& c = core_;
  const int p = c.workers();
  const int node = c.server_nodes()[static_cast<std::size_t>(s)];
  const auto [begin, end] = part_range(c.num_params(), c.servers(), s);
  const std::uint64_t n = end - begin;
  const AggregationConfig rule = aggregation_rule(c.scenario());
  const double flops =
      decode_flops_per_element(c.scenario().compression) * static_cast<double>(n) * p +
      aggregate_flops(rule, p, n) + optimizer_step_flops(c.scenario().train.optimizer.kind, n);
  std::vector<std::shared_ptr<const Payload>> payloads;
  for (int w = 0; w < p; ++w) {
    Message m = co_await c.sim().recv(node, c.worker(w).node, tags::step_tag(step));
    payloads.push_back(std::move(m.payload));
  }
  const double lr = c.lr_at(step);
  Compressor& decoder = *decoders_[static_cast<std::size_t>(s)];
  std::function<void()> work;
  if (c.numerics()) {
    work = [&] {
      std::vector<std::vector<float>>& decoded = decoded_[static_cast<std::size_t>(s)];
      if (decoded.empty()) decoded.assign(static_cast<std::size_t>(p), std::vector<float>(n));
      for (int w = 0; w < p; ++w) {
        decoder.decode(*payloads[static_cast<std::size_t>(w)], decoded[static_cast<std::size_t>(w)],
                       step);
      }
      const std::vector<std::span<const float>> in(decoded.begin(), decoded.end());
      const std::vector<double> weights(static_cast<std::size_t>(p),
                                        static_cast<double>(c.batch()));
      aggregate(rule, in, weights, buffer);
      optimizer->step(params, buffer, lr);
    };
  }
  co_await c.sim().compute(node, c.job_time(node, flops), std::move(work), "update");
}

}  // namespace dtsim
