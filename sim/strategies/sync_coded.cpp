// bsp with gradient compression and aggregation rules (engine/compress.hpp,
// engine/aggregate.hpp; the rules are in docs/compression.md).
//
// Allreduce architecture, one step of worker w after its gradient (clipped, and corrupted if
// the worker is Byzantine):
//   fp16 / bf16   g + e pre-divided by p and rounded, allreduced at 2 bytes per element
//                 (summed in float), the sum rounded again
//   random-k      the k values at the step's shared indices, allreduced, expanded / p
//   powersgd      allreduce P, orthogonalise, allreduce Q (and the uncompressed tensors)
//   the others    encode, ring-allgather the payloads (each its real size), decode all p,
//                 aggregate with the scenario's rule (sign: majority vote)
// and with no codec but a robust rule, the raw gradients are gathered. Encoding and decoding
// are jobs charged per element (compression.encode_flops_per_element, ..._decode_...).
//
// Parameter server: each worker encodes each shard's part with its own compressor (and
// memory) and pushes the payload; the shard decodes the p payloads, aggregates, steps, and
// sends the new parameters back uncompressed.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "engine/rng.hpp"
#include "sim/net/collectives.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim::detail {
AggregationConfig TrainingRun::aggregation_rule() const {
  AggregationConfig a = st_.aggregation;
  if (s_.compression.kind == CodecKind::kSign) a.kind = AggregationKind::kSignVote;
  return a;
}

const FaultConfig* TrainingRun::active_fault(int w) const {
  for (const FaultConfig& f : s_.faults) {
    if (f.node != w || sim_.now() < f.at) continue;
    if (f.duration && sim_.now() >= f.at + *f.duration) continue;
    return &f;
  }
  return nullptr;
}

void TrainingRun::corrupt(const FaultConfig& f, int w, std::uint64_t step,
                          std::span<float> g) const {
  const auto factor = static_cast<float>(f.factor);
  switch (f.mode) {
    case ByzantineMode::kSignFlip:
      for (float& v : g) v = -factor * v;
      break;
    case ByzantineMode::kScale:
      for (float& v : g) v = factor * v;
      break;
    case ByzantineMode::kNoise: {
      CounterRng rng({s_.seed, RngPurpose::kFault, static_cast<std::uint32_t>(w + 1), step});
      for (float& v : g) v = factor * static_cast<float>(rng.normal());
      break;
    }
  }
}

Task<> TrainingRun::coded_exchange(int w, std::uint64_t step) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  Compressor& c = *wk.codecs[0];
  const CodecConfig& cfg = s_.compression;
  const std::size_t n = model_.num_params();
  const int node = wk.node;
  const double speed = flops_per_s_[static_cast<std::size_t>(w)];
  const auto ctx = [&](std::uint64_t i) {
    return CollContext{&sim_, worker_nodes_, w, step_tag(step) + i * kCollectiveTags, speed};
  };
  const AggregationConfig rule = aggregation_rule();
  const double enc = encode_flops_per_element(cfg) * static_cast<double>(n);
  const double dec = decode_flops_per_element(cfg) * static_cast<double>(n);
  const bool mean = rule.kind == AggregationKind::kMean;
  std::function<void()> work;

  if (mean && (cfg.kind == CodecKind::kFp16 || cfg.kind == CodecKind::kBf16)) {
    std::vector<float> buf;
    if (numerics_) work = [&] { buf = c.cast_for_allreduce(wk.grads, p_); };
    co_await sim_.compute(node, job_time(node, enc), std::move(work), "encode");
    co_await allreduce(ctx(0), numerics_ ? CollBuf::real(buf, 2) : CollBuf::sized(n, 2),
                       st_.collective, s_.network.nodes_per_machine);
    if (numerics_) {
      work = [&] {
        c.finish_cast(buf);
        std::copy(buf.begin(), buf.end(), wk.grads.begin());
      };
    }
    co_await sim_.compute(node, job_time(node, dec), std::move(work), "decode");
    co_return;
  }
  if (mean && cfg.kind == CodecKind::kRandomK) {
    std::vector<float> buf;
    if (numerics_) work = [&] { buf = c.randomk_values(wk.grads, step); };
    co_await sim_.compute(node, job_time(node, enc), std::move(work), "encode");
    co_await allreduce(ctx(0), numerics_ ? CollBuf::real(buf) : CollBuf::sized(c.k_at(step)),
                       st_.collective, s_.network.nodes_per_machine);
    if (numerics_) work = [&] { c.randomk_expand(buf, p_, step, wk.grads); };
    co_await sim_.compute(node, job_time(node, dec), std::move(work), "decode");
    co_return;
  }
  if (cfg.kind == CodecKind::kPowerSgd) {
    const auto [p_size, q_size, rest_size] = c.powersgd_sizes();
    std::vector<float> pm, qm, rest;
    if (numerics_) work = [&] { pm = c.powersgd_p(wk.grads, step); };
    co_await sim_.compute(node, job_time(node, enc / 2), std::move(work), "encode");
    co_await allreduce(ctx(0), numerics_ ? CollBuf::real(pm) : CollBuf::sized(p_size),
                       st_.collective, s_.network.nodes_per_machine);
    if (numerics_) {
      work = [&] {
        qm = c.powersgd_q(pm);
        rest = c.powersgd_rest();
      };
    }
    co_await sim_.compute(node, job_time(node, enc / 2), std::move(work), "encode");
    co_await allreduce(ctx(1), numerics_ ? CollBuf::real(qm) : CollBuf::sized(q_size),
                       st_.collective, s_.network.nodes_per_machine);
    if (rest_size > 0) {
      co_await allreduce(ctx(2), numerics_ ? CollBuf::real(rest) : CollBuf::sized(rest_size),
                         st_.collective, s_.network.nodes_per_machine);
    }
    if (numerics_) work = [&] { c.powersgd_finish(qm, rest, p_, wk.grads); };
    co_await sim_.compute(node, job_time(node, dec), std::move(work), "decode");
    co_return;
  }
  // Gathered: every worker decodes every payload and aggregates.
  std::shared_ptr<const Payload> mine;
  if (numerics_) {
    work = [&] { mine = std::make_shared<const Payload>(c.encode(wk.grads, step)); };
  }
  co_await sim_.compute(node, job_time(node, enc), std::move(work), "encode");
  const std::uint64_t bytes = numerics_ ? mine->size() : c.payload_size(step);
  Gathered all;
  co_await allgather_payloads(ctx(0), mine, bytes, all);
  std::unique_ptr<SharedAggregate>& shared = shared_aggregates_[step];
  if (!shared) shared = std::make_unique<SharedAggregate>();
  SharedAggregate* result = shared.get();
  if (numerics_) {
    work = [&, result] {
      std::call_once(result->once, [&] {
        std::vector<std::vector<float>> decoded(static_cast<std::size_t>(p_),
                                                std::vector<float>(n));
        for (int v = 0; v < p_; ++v) {
          c.decode(*all.payloads[static_cast<std::size_t>(v)], decoded[static_cast<std::size_t>(v)],
                   step);
        }
        const std::vector<std::span<const float>> in(decoded.begin(), decoded.end());
        const std::vector<double> weights(static_cast<std::size_t>(p_),
                                          static_cast<double>(batch_));
        result->result.resize(n);
        aggregate(rule, in, weights, result->result);
      });
      std::copy(result->result.begin(), result->result.end(), wk.grads.begin());
    };
  }
  co_await sim_.compute(node, job_time(node, dec * p_ + aggregate_flops(rule, p_, n)),
                        std::move(work), "decode");
  if (++result->taken == p_) shared_aggregates_.erase(step);
}

Task<> TrainingRun::coded_ps_worker(int w) {
  Worker& wk = workers_[static_cast<std::size_t>(w)];
  const CodecConfig& cfg = s_.compression;
  const std::size_t n = model_.num_params();
  const double enc = encode_flops_per_element(cfg) * static_cast<double>(n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    co_await gradient(w);
    std::vector<std::shared_ptr<const Payload>> payloads(static_cast<std::size_t>(k_));
    std::function<void()> work;
    if (numerics_) {
      work = [&] {
        for (int sv = 0; sv < k_; ++sv) {
          const Server& server = servers_[static_cast<std::size_t>(sv)];
          const std::span<const float> part(wk.grads.data() + server.begin,
                                            server.end - server.begin);
          payloads[static_cast<std::size_t>(sv)] = std::make_shared<const Payload>(
              wk.codecs[static_cast<std::size_t>(sv)]->encode(part, step));
        }
      };
    }
    co_await sim_.compute(wk.node, job_time(wk.node, enc), std::move(work), "encode");
    for (int sv = 0; sv < k_; ++sv) {
      const Server& server = servers_[static_cast<std::size_t>(sv)];
      Message m{wk.node,
                server.node,
                step_tag(step),
                numerics_ ? payloads[static_cast<std::size_t>(sv)]->size()
                          : wk.codecs[static_cast<std::size_t>(sv)]->payload_size(step),
                nullptr,
                nullptr};
      m.payload = payloads[static_cast<std::size_t>(sv)];
      sim_.send(std::move(m));
    }
    for (int sv = 0; sv < k_; ++sv) {
      const Server& server = servers_[static_cast<std::size_t>(sv)];
      const Message m = co_await sim_.recv(wk.node, server.node, step_tag(step) + 1);
      if (m.data) {
        std::copy(m.data->begin(), m.data->end(),
                  wk.params.begin() + static_cast<std::ptrdiff_t>(server.begin));
      }
    }
    if (w == 0) bsp_step_done(step, p_);
    if (diverged_at(step)) co_return;
  }
}

Task<> TrainingRun::coded_ps_server(int s) {
  Server& sv = servers_[static_cast<std::size_t>(s)];
  const CodecConfig& cfg = s_.compression;
  const std::uint64_t n = sv.end - sv.begin;
  const AggregationConfig rule = aggregation_rule();
  const double flops = decode_flops_per_element(cfg) * static_cast<double>(n) * p_ +
                       aggregate_flops(rule, p_, n) +
                       optimizer_step_flops(s_.train.optimizer.kind, n);
  for (std::uint64_t step = 0; step < total_steps_; ++step) {
    std::vector<std::shared_ptr<const Payload>> payloads;
    for (int w = 0; w < p_; ++w) {
      Message m = co_await sim_.recv(sv.node, w, step_tag(step));
      payloads.push_back(std::move(m.payload));
    }
    const double lr = lr_at(step);
    std::function<void()> work;
    if (numerics_) {
      work = [&] {
        std::vector<std::vector<float>> decoded(static_cast<std::size_t>(p_),
                                                std::vector<float>(n));
        for (int w = 0; w < p_; ++w) {
          sv.decoder->decode(*payloads[static_cast<std::size_t>(w)],
                             decoded[static_cast<std::size_t>(w)], step);
        }
        const std::vector<std::span<const float>> in(decoded.begin(), decoded.end());
        const std::vector<double> weights(static_cast<std::size_t>(p_),
                                          static_cast<double>(batch_));
        aggregate(rule, in, weights, sv.buffer);
        sv.optimizer->step(sv.params, sv.buffer, lr);
      };
    }
    co_await sim_.compute(sv.node, job_time(sv.node, flops), std::move(work), "update");
    sv.version = step + 1;
    for (int w = 0; w < p_; ++w) {
      std::shared_ptr<const std::vector<float>> data;
      if (numerics_) data = std::make_shared<const std::vector<float>>(sv.params);
      sim_.send(sv.node, w, step_tag(step) + 1, n * kFloatBytes, std::move(data));
    }
    if (diverged_at(step)) co_return;
  }
}

}  // namespace dtsim::detail
