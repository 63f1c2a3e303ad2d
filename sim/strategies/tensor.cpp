// tensor, bsp: every layer's weights split among `tensor_parallel` nodes (engine/tensor_shard.hpp):
// Megatron's column / row pairs, convolutions by output channels (data.partition = rows), or
// the input's features split among the nodes, the first layer row-split over them and the rest
// computed whole by each (data.partition = columns; blocks adds data_parallel row groups).
// The shards' forward and backward run part by part, each part a job, then the part's
// all-reduce or all-gather among the replica's shards (the scenario's collective, ring for
// gathers); every shard computes the loss. With data_parallel = d, each shard's replicas
// allreduce its gradient before the update. Nodes: replica r's shard j is node r * t + j.
#include <fmt/format.h>

#include <functional>
#include <map>

#include "engine/tensor_shard.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/scenario/checks.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/strategies/strategy.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

ShardPlan plan_of(const Scenario& s) {
  return s.data.partition.kind == PartitionKind::kRows ? ShardPlan::kMegatron
                                                       : ShardPlan::kFeatures;
}

class Tensor : public Strategy {
 public:
  explicit Tensor(RunCore& core);
  void start() override;
  std::span<const float> global_params(double& consensus) override;
  void describe(int node, NodeStats& out) const override;
  void finish(RunResult& result) override;

 private:
  struct ShardNode {
    int node = 0;
    int replica = 0;
    int rank = 0;
    std::vector<float> params;
    std::vector<float> grads;
    std::unique_ptr<Optimizer> optimizer;
    ShardWorkspace ws;
    std::unique_ptr<BatchSampler> sampler;  // the replica's, so every shard draws its batches
    std::vector<std::uint32_t> rows;
    std::uint64_t steps = 0;
  };
  const TensorShard& shard(int rank) const { return shards_[static_cast<std::size_t>(rank)]; }
  Task<> program(int r, int j);
  Task<> collective(ShardNode& n, ShardComm comm, std::span<float> buffer, std::size_t floats,
                    std::uint64_t tag);
  Task<> update(ShardNode& n, std::uint64_t step, std::uint64_t tag);
  // The rank's features of its batch, into its workspace.
  void gather_input(ShardNode& n) const;

  int t_;
  int d_;
  std::vector<TensorShard> shards_;  // per rank, the same for every replica
  std::vector<ShardNode> nodes_;
  std::uint64_t exchanged_per_step_ = 0;
  std::vector<float> global_;
};

Tensor::Tensor(RunCore& core)
    : Strategy(core), t_(core.config().tensor_parallel), d_(core.config().data_parallel) {
  const ShardPlan plan = plan_of(core.scenario());
  for (int j = 0; j < t_; ++j) shards_.emplace_back(core.model(), plan, t_, j);
  const TensorShard& s0 = shards_[0];
  std::uint64_t collectives = d_ > 1 ? 1 : 0;
  for (int k = 0; k < s0.forward_parts(); ++k) {
    collectives += s0.forward_comm(k) != ShardComm::kNone ? 1 : 0;
    exchanged_per_step_ += s0.forward_comm_floats(k, core.batch()) * wire::kFloatBytes;
  }
  for (int k = 0; k < s0.backward_parts(); ++k) {
    collectives += s0.backward_comm(k) != ShardComm::kNone ? 1 : 0;
    exchanged_per_step_ += s0.backward_comm_floats(k, core.batch()) * wire::kFloatBytes;
  }
  exchanged_per_step_ *= static_cast<std::uint64_t>(d_);
  if (collectives > tags::kCollectivesPerStep) {
    throw InputError({}, "strategy.tensor_parallel",
                     fmt::format("this model needs {} collectives per step split this way; at "
                                 "most {} are supported",
                                 collectives, tags::kCollectivesPerStep));
  }
  for (int r = 0; r < d_; ++r) {
    for (int j = 0; j < t_; ++j) {
      ShardNode n;
      n.node = r * t_ + j;
      n.replica = r;
      n.rank = j;
      n.sampler = std::make_unique<BatchSampler>(*core.worker(r).sampler);
      if (core.numerics()) {
        n.params.resize(shard(j).num_params());
        shard(j).extract(core.initial_params(), n.params);
        n.grads.assign(shard(j).num_params(), 0.0f);
        n.optimizer = std::make_unique<Optimizer>(core.scenario().train.optimizer, n.params.size());
        n.ws = shard(j).make_workspace(core.batch());
      }
      nodes_.push_back(std::move(n));
    }
  }
}

void Tensor::start() {
  for (int r = 0; r < d_; ++r) {
    for (int j = 0; j < t_; ++j) core().sim().spawn(program(r, j));
  }
}

void Tensor::gather_input(ShardNode& n) const {
  const Dataset& train = core().data().train;
  const auto [c0, c1] = shard(n.rank).input_features();
  const auto features = static_cast<std::size_t>(train.features);
  const auto width = static_cast<std::size_t>(c1 - c0);
  for (std::size_t i = 0; i < n.rows.size(); ++i) {
    std::copy_n(train.x.data() + n.rows[i] * features + static_cast<std::size_t>(c0), width,
                n.ws.input.data() + i * width);
  }
}

Task<> Tensor::collective(ShardNode& n, ShardComm comm, std::span<float> buffer, std::size_t floats,
                          std::uint64_t tag) {
  RunCore& c = core();
  std::vector<int> group;
  for (int j = 0; j < t_; ++j) group.push_back(n.replica * t_ + j);
  const CollBuf buf = c.numerics() ? CollBuf::real(buffer) : CollBuf::sized(floats);
  const CollContext ctx{&c.sim(), group, n.rank, tag, c.flops_per_s(n.node)};
  if (comm == ShardComm::kAllreduce) {
    co_await allreduce(ctx, buf, c.config().collective, c.scenario().network.nodes_per_machine);
  } else {
    co_await allgather(ctx, buf);
  }
}

Task<> Tensor::program(int r, int j) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  ShardNode& n = nodes_[static_cast<std::size_t>(r * t_ + j)];
  const TensorShard& sh = shard(j);
  const int b = c.batch();
  const Dataset& train = c.data().train;
  const auto [c0, c1] = sh.input_features();
  const double share = static_cast<double>(c1 - c0) / static_cast<double>(train.features);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    n.sampler->next(n.rows);
    // The labels (or targets) for the loss, copied here for the jobs.
    std::vector<std::int32_t> labels;
    std::vector<float> targets;
    if (c.numerics()) {
      for (std::uint32_t row : n.rows) {
        if (train.task == LearningTask::kClassification) {
          labels.push_back(train.labels[row]);
        } else {
          const auto o = static_cast<std::size_t>(train.outputs);
          targets.insert(targets.end(),
                         train.targets.begin() + static_cast<std::ptrdiff_t>(row * o),
                         train.targets.begin() + static_cast<std::ptrdiff_t>((row + 1) * o));
        }
      }
    }
    const Batch batch{nullptr, labels.data(), targets.data(), b};
    std::uint64_t collectives = 0;
    for (int k = 0; k < sh.forward_parts(); ++k) {
      std::function<void()> work;
      if (c.numerics()) {
        work = [&, k] {
          if (k == 0) gather_input(n);
          sh.forward(k, n.params, batch, n.ws);
        };
      }
      // The first part loads the rank's share of the batch's features.
      const SimTime load =
          k == 0 ? SimTime::from_seconds(c.scenario().data.load_cost.seconds() * b * share)
                 : SimTime();
      co_await sim.compute(n.node, c.job_time(n.node, sh.forward_flops(k, b)) + load,
                           std::move(work), "forward");
      if (sh.forward_comm(k) != ShardComm::kNone) {
        // (Not a conditional inside co_await's operands: GCC 12 evaluates both arms there.)
        std::span<float> buffer;
        if (c.numerics()) buffer = sh.forward_comm_buffer(k, b, n.ws);
        co_await collective(n, sh.forward_comm(k), buffer, sh.forward_comm_floats(k, b),
                            tags::collective_tag(step, collectives++));
      }
    }
    if (j == 0 && c.numerics()) c.report_loss(r, n.ws.loss);
    for (int k = 0; k < sh.backward_parts(); ++k) {
      std::function<void()> work;
      if (c.numerics()) work = [&, k] { sh.backward(k, n.params, b, n.grads, n.ws); };
      co_await sim.compute(n.node, c.job_time(n.node, sh.backward_flops(k, b)), std::move(work),
                           "backward");
      if (sh.backward_comm(k) != ShardComm::kNone) {
        // (Not a conditional inside co_await's operands: GCC 12 evaluates both arms there.)
        std::span<float> buffer;
        if (c.numerics()) buffer = sh.backward_comm_buffer(k, b, n.ws);
        co_await collective(n, sh.backward_comm(k), buffer, sh.backward_comm_floats(k, b),
                            tags::collective_tag(step, collectives++));
      }
    }
    if (j == 0) ++c.worker(r).steps;
    co_await update(n, step, tags::collective_tag(step, collectives));
    if (c.diverged_at(step)) co_return;
  }
}

Task<> Tensor::update(ShardNode& n, std::uint64_t step, std::uint64_t tag) {
  RunCore& c = core();
  const std::size_t size = shard(n.rank).num_params();
  if (d_ > 1) {
    // The shard's replicas sum their gradients.
    std::vector<int> group;
    for (int r = 0; r < d_; ++r) group.push_back(r * t_ + n.rank);
    const CollBuf buf = c.numerics() ? CollBuf::real(n.grads) : CollBuf::sized(size);
    co_await allreduce(CollContext{&c.sim(), group, n.replica, tag, c.flops_per_s(n.node)}, buf,
                       c.config().collective, c.scenario().network.nodes_per_machine);
  }
  const double lr = c.lr_at(step);
  const int d = d_;
  std::function<void()> work;
  if (c.numerics()) {
    work = [&n, lr, d] {
      if (d > 1) {
        const float inv = 1.0f / static_cast<float>(d);
        for (float& g : n.grads) g *= inv;
      }
      n.optimizer->step(n.params, n.grads, lr);
    };
  }
  const double flops = optimizer_step_flops(c.scenario().train.optimizer.kind, size) +
                       (d_ > 1 ? static_cast<double>(size) : 0.0);
  co_await c.sim().compute(n.node, c.job_time(n.node, flops), std::move(work), "update");
  ++n.steps;
  if (n.replica == 0) c.part_done(step, t_, d_);
}

std::span<const float> Tensor::global_params(double& /*consensus*/) {
  global_.assign(core().num_params(), 0.0f);
  for (int j = 0; j < t_; ++j) shard(j).place(nodes_[static_cast<std::size_t>(j)].params, global_);
  return global_;
}

void Tensor::describe(int node, NodeStats& out) const {
  const ShardNode& n = nodes_[static_cast<std::size_t>(node)];
  out.role = fmt::format("shard {}", n.rank);
  out.steps = n.steps;
}

void Tensor::finish(RunResult& result) {
  ModelParallelStats mp;
  mp.kind = "tensor";
  mp.tensor_parallel = t_;
  mp.data_parallel = d_;
  mp.activation_bytes_per_step = exchanged_per_step_;
  for (int j = 0; j < t_; ++j) {
    // A time-only run has no workspaces: size one.
    ShardWorkspace sized;
    if (!core().numerics()) sized = shard(j).make_workspace(core().batch());
    const ShardWorkspace& ws = core().numerics() ? nodes_[static_cast<std::size_t>(j)].ws : sized;
    std::uint64_t floats = ws.input.size();
    for (const auto& a : ws.acts) floats += a.size();
    for (const auto& g : ws.gathered) floats += g.size();
    mp.activation_bytes.push_back(floats * wire::kFloatBytes);
    mp.peak_in_flight.push_back(1);
  }
  result.model_parallel = mp;
}

}  // namespace

// A feature split: columns give every node all the samples, blocks split them among
// data_parallel row groups too.
void check_tensor(const Scenario& s, ScenarioChecks& checks) {
  const PartitionKind partition = s.data.partition.kind;
  if (partition == PartitionKind::kColumns && s.strategy.data_parallel > 1) {
    checks.error("data.partition",
                 "columns give every node all the samples: with data_parallel > 1 row groups, "
                 "use partition = \"blocks\"");
  }
  if (partition == PartitionKind::kBlocks && s.strategy.data_parallel < 2) {
    checks.error("data.partition",
                 "blocks are row groups (strategy.data_parallel >= 2) by column groups; with "
                 "one row group use partition = \"columns\"");
  }
}

void predict_tensor(const PredictionBasis& basis, StepPrediction& out) {
  const Scenario& sc = basis.scenario;
  const StrategyConfig& st = sc.strategy;
  const int t = st.tensor_parallel;
  const int b = sc.train.batch_size;
  const TensorShard sh(basis.model, plan_of(sc), t, 0);
  const auto [c0, c1] = sh.input_features();
  double compute = sc.data.load_cost.seconds() * b * (c1 - c0) / basis.model.input_shape().size();
  double comm = 0;
  PredictionBasis shards = basis;
  shards.workers = t;
  const auto exchange = [&](ShardComm kind, std::size_t floats) {
    if (kind == ShardComm::kNone || t == 1) return 0.0;
    const double n = static_cast<double>(floats);
    if (kind == ShardComm::kAllgather) {
      return (t - 1) * basis.alpha + (t - 1.0) / t * (4 * n * basis.beta + n / basis.flops_per_s);
    }
    shards.params = n;
    shards.bytes = 4 * n;
    StepPrediction ar;
    predict_allreduce(shards, ar);
    return ar.communicate_s;
  };
  for (int k = 0; k < sh.forward_parts(); ++k) {
    compute += sh.forward_flops(k, b) / basis.flops_per_s;
    comm += exchange(sh.forward_comm(k), sh.forward_comm_floats(k, b));
  }
  for (int k = 0; k < sh.backward_parts(); ++k) {
    compute += sh.backward_flops(k, b) / basis.flops_per_s;
    comm += exchange(sh.backward_comm(k), sh.backward_comm_floats(k, b));
  }
  const auto n = static_cast<double>(sh.num_params());
  double update =
      optimizer_step_flops(sc.train.optimizer.kind, sh.num_params()) / basis.flops_per_s;
  if (st.data_parallel > 1) {
    PredictionBasis replicas = basis;
    replicas.workers = st.data_parallel;
    replicas.params = n;
    replicas.bytes = 4 * n;
    replicas.alpha = basis.topology.path_latency(0, t).seconds();
    StepPrediction ar;
    predict_allreduce(replicas, ar);
    comm += ar.communicate_s;
    update += n / basis.flops_per_s;
  }
  out.step_s = compute + comm + update;
  out.compute_s = compute + update;
  out.communicate_s = comm;
  out.how = fmt::format(
      "{} shards ({}): {} collectives per step between them{}", t,
      plan_of(sc) == ShardPlan::kMegatron ? "Megatron column/row pairs" : "input features split",
      sh.forward_parts() + sh.backward_parts() - 1,
      st.data_parallel > 1 ? ", each shard's allreduce over the replicas" : "");
}

std::unique_ptr<Strategy> make_tensor(RunCore& core) { return std::make_unique<Tensor>(core); }

}  // namespace dtsim
