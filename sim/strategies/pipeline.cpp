// pipeline, gpipe and 1f1b: the model's layers split into `stages` contiguous stages, one node
// each; a step's batch (train.batch_size) is cut into `micro_batches` micro-batches that flow
// forward through the stages (activations as point-to-point messages of their real size) and
// backward (the activations' gradients). Each stage accumulates its parameters' gradients over
// the micro-batches and, after the last one (the flush), takes one optimizer step on their
// mean: the same gradient as one node's accumulation over the same micro-batches.
//
//   gpipe  (Huang et al. 2019) all forwards, then all backwards (in the same order, so that the
//   micro-batches' gradients add up in the order one node would add them) 1f1b   (PipeDream-Flush,
//   Narayanan et al. 2021) stage s runs min(p - s - 1, m) forwards,
//          then one forward and one backward in turn, then the remaining backwards: at most
//          p - s micro-batches in flight where GPipe holds m
//
// With data_parallel = d, d replicas of the pipeline each take their own batch, and after the
// flush each stage's replicas allreduce that stage's gradient (the scenario's collective).
// Nodes: replica r's stage s is node r * stages + s.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>

#include "engine/model_stage.hpp"
#include "sim/net/collectives.hpp"
#include "sim/net/tags.hpp"
#include "sim/net/wire.hpp"
#include "sim/scenario/checks.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/strategies/strategy.hpp"
#include "sim/train/explain.hpp"

namespace dtsim {
namespace {

// A stage's order of work in one step: (backward?, micro-batch).
std::vector<std::pair<bool, int>> stage_schedule(bool one_f_one_b, int p, int m, int s) {
  std::vector<std::pair<bool, int>> ops;
  if (!one_f_one_b) {
    for (int j = 0; j < m; ++j) ops.emplace_back(false, j);
    for (int j = 0; j < m; ++j) ops.emplace_back(true, j);
    return ops;
  }
  const int warmup = std::min(p - s - 1, m);
  for (int j = 0; j < warmup; ++j) ops.emplace_back(false, j);
  for (int j = 0; j < m - warmup; ++j) {
    ops.emplace_back(false, warmup + j);
    ops.emplace_back(true, j);
  }
  for (int j = m - warmup; j < m; ++j) ops.emplace_back(true, j);
  return ops;
}

// "forward 3", "backward 3": labels of a micro-batch's spans (static: observers keep them).
const char* micro_batch_label(bool backward, int j) {
  constexpr int kLabelled = 4096;
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> out;
    for (int b = 0; b < 2; ++b) {
      for (int i = 0; i < kLabelled; ++i)
        out.push_back(fmt::format("{} {}", b ? "backward" : "forward", i));
    }
    return out;
  }();
  if (j >= kLabelled) return backward ? "backward" : "forward";
  return labels[static_cast<std::size_t>((backward ? kLabelled : 0) + j)].c_str();
}

// The blocks per stage: the scenario's, or balanced by FLOPs. Throws InputError.
std::vector<int> stage_blocks(const Model& model, const StrategyConfig& st, int micro_batch) {
  const int blocks = model_blocks(model);
  if (st.stages > blocks) {
    throw InputError({}, "strategy.stages",
                     fmt::format("{} stages for a model of {} layers (dense or conv, with their "
                                 "activation and pooling): use at most {}",
                                 st.stages, blocks, blocks));
  }
  if (st.stage_layers.empty()) return balanced_stages(model, st.stages, micro_batch);
  int sum = 0;
  for (int n : st.stage_layers) sum += n;
  if (sum != blocks) {
    throw InputError({}, "strategy.stage_layers",
                     fmt::format("the stages hold {} layers in all, but the model has {} (dense "
                                 "or conv, each with its activation and pooling)",
                                 sum, blocks));
  }
  return st.stage_layers;
}

class Pipeline : public Strategy {
 public:
  Pipeline(RunCore& core, bool one_f_one_b);
  void start() override;
  std::span<const float> global_params(double& consensus) override;
  void describe(int node, NodeStats& out) const override;
  void finish(RunResult& result) override;

 private:
  struct StageNode {
    int node = 0;
    int replica = 0;
    int stage = 0;
    std::vector<float> params;  // the stage's slice of the model
    std::vector<float> grads;   // accumulated over the step's micro-batches
    std::unique_ptr<Optimizer> optimizer;
    ModelStage::Workspace ws;
    std::vector<StageSlot> slots;                                   // per micro-batch
    std::vector<std::shared_ptr<const std::vector<float>>> inputs;  // per micro-batch
    std::vector<std::vector<float>> dys;                            // last stage: per micro-batch
    int in_flight = 0;
    int peak = 0;
    SimTime busy;  // inside forward and backward jobs, over the run
    std::uint64_t steps = 0;
  };
  StageNode& at(int r, int s) { return nodes_[static_cast<std::size_t>(r * p_ + s)]; }

  Task<> program(int r, int s);
  Task<> forward(StageNode& n, std::uint64_t step, int j);
  Task<> backward(StageNode& n, std::uint64_t step, int j);
  Task<> flush(StageNode& n, std::uint64_t step);
  // Stage 0's input for micro-batch j: its samples' features.
  std::vector<float> micro_batch_input(int r, int j) const;

  bool one_f_one_b_;
  int p_;
  int m_;
  int d_;
  int mb_;  // samples per micro-batch
  std::vector<int> blocks_;
  std::vector<ModelStage> stages_;
  std::vector<StageNode> nodes_;
  std::vector<std::vector<std::uint32_t>> rows_;  // each replica's batch of this step
  std::vector<SimTime> span_start_;               // per replica: the step's first forward
  SimTime span_total_;                            // sum of the steps' fill-and-drain spans
  std::uint64_t sent_per_step_ = 0;
  std::vector<float> global_;
};

Pipeline::Pipeline(RunCore& core, bool one_f_one_b)
    : Strategy(core),
      one_f_one_b_(one_f_one_b),
      p_(core.config().stages),
      m_(core.config().micro_batches),
      d_(core.config().data_parallel),
      mb_(core.batch() / core.config().micro_batches) {
  blocks_ = stage_blocks(core.model(), core.config(), mb_);
  for (const auto& [first, last] : stage_layer_ranges(core.model(), blocks_)) {
    stages_.emplace_back(core.model(), first, last);
  }
  for (int r = 0; r < d_; ++r) {
    for (int s = 0; s < p_; ++s) {
      const ModelStage& stage = stages_[static_cast<std::size_t>(s)];
      StageNode n;
      n.node = r * p_ + s;
      n.replica = r;
      n.stage = s;
      if (core.numerics()) {
        const std::vector<float>& init = core.initial_params();
        const auto begin = init.begin() + static_cast<std::ptrdiff_t>(stage.param_offset());
        n.params.assign(begin, begin + static_cast<std::ptrdiff_t>(stage.num_params()));
        n.grads.assign(stage.num_params(), 0.0f);
        n.optimizer =
            std::make_unique<Optimizer>(core.scenario().train.optimizer, stage.num_params());
        n.ws = stage.make_workspace(mb_);
        for (int j = 0; j < m_; ++j) n.slots.push_back(stage.make_slot(mb_));
        n.inputs.resize(static_cast<std::size_t>(m_));
        if (stage.is_last()) n.dys.resize(static_cast<std::size_t>(m_));
      }
      nodes_.push_back(std::move(n));
    }
  }
  rows_.resize(static_cast<std::size_t>(d_));
  span_start_.resize(static_cast<std::size_t>(d_));
  // Between consecutive stages, each micro-batch's activation goes forward and its gradient
  // back.
  for (int s = 0; s + 1 < p_; ++s) {
    sent_per_step_ +=
        2 * static_cast<std::uint64_t>(d_) * static_cast<std::uint64_t>(m_) *
        static_cast<std::uint64_t>(mb_) *
        static_cast<std::uint64_t>(stages_[static_cast<std::size_t>(s)].output_features()) *
        wire::kFloatBytes;
  }
}

void Pipeline::start() {
  for (int r = 0; r < d_; ++r) {
    for (int s = 0; s < p_; ++s) core().sim().spawn(program(r, s));
  }
}

std::vector<float> Pipeline::micro_batch_input(int r, int j) const {
  const Dataset& train = core().data().train;
  const auto features = static_cast<std::size_t>(train.features);
  std::vector<float> x(static_cast<std::size_t>(mb_) * features);
  const std::vector<std::uint32_t>& rows = rows_[static_cast<std::size_t>(r)];
  for (int i = 0; i < mb_; ++i) {
    const std::uint32_t row = rows[static_cast<std::size_t>(j * mb_ + i)];
    std::copy_n(train.x.data() + row * features, features,
                x.data() + static_cast<std::size_t>(i) * features);
  }
  return x;
}

Task<> Pipeline::program(int r, int s) {
  RunCore& c = core();
  StageNode& n = at(r, s);
  const auto ops = stage_schedule(one_f_one_b_, p_, m_, s);
  for (std::uint64_t step = 0; step < c.total_steps(); ++step) {
    if (s == 0) {
      GradientWorker& wk = c.worker(r);
      wk.sampler->next(wk.rows);
      rows_[static_cast<std::size_t>(r)] = wk.rows;
      span_start_[static_cast<std::size_t>(r)] = c.sim().now();
    }
    for (const auto& [is_backward, j] : ops) {
      if (is_backward) {
        co_await backward(n, step, j);
      } else {
        co_await forward(n, step, j);
      }
    }
    if (s == 0) {
      span_total_ += c.sim().now() - span_start_[static_cast<std::size_t>(r)];
      ++c.worker(r).steps;
    }
    co_await flush(n, step);
    if (c.diverged_at(step)) co_return;
  }
}

Task<> Pipeline::forward(StageNode& n, std::uint64_t step, int j) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  const ModelStage& stage = stages_[static_cast<std::size_t>(n.stage)];
  const auto jj = static_cast<std::size_t>(j);
  const bool numerics = c.numerics();
  if (n.stage > 0) {
    Message m = co_await sim.recv(n.node, n.node - 1, tags::micro_batch_tag(step, false, jj));
    if (numerics) n.inputs[jj] = std::move(m.data);
  } else if (numerics) {
    n.inputs[jj] = std::make_shared<const std::vector<float>>(micro_batch_input(n.replica, j));
  }
  // The last stage's labels, copied here (on the event loop's thread) for the job.
  std::vector<std::int32_t> labels;
  std::vector<float> targets;
  double loss = 0;
  if (numerics && stage.is_last()) {
    const Dataset& train = c.data().train;
    for (int i = 0; i < mb_; ++i) {
      const std::uint32_t row =
          rows_[static_cast<std::size_t>(n.replica)]
               [jj * static_cast<std::size_t>(mb_) + static_cast<std::size_t>(i)];
      if (train.task == LearningTask::kClassification) {
        labels.push_back(train.labels[row]);
      } else {
        const auto o = static_cast<std::size_t>(train.outputs);
        targets.insert(targets.end(), train.targets.begin() + static_cast<std::ptrdiff_t>(row * o),
                       train.targets.begin() + static_cast<std::ptrdiff_t>((row + 1) * o));
      }
    }
  }
  std::function<void()> work;
  if (numerics) {
    work = [&] {
      const float* out = stage.forward(n.params, n.inputs[jj]->data(), mb_, n.slots[jj], n.ws);
      if (stage.is_last()) {
        n.dys[jj].resize(static_cast<std::size_t>(mb_) *
                         static_cast<std::size_t>(stage.output_features()));
        const Batch b{nullptr, labels.data(), targets.data(), mb_};
        loss = c.model().loss(out, b, n.dys[jj].data());
      }
    };
  }
  const SimTime begin = sim.now();
  co_await sim.compute(n.node,
                       c.job_time(n.node, stage.forward_flops(mb_), stage.is_first() ? mb_ : 0),
                       std::move(work), micro_batch_label(false, j));
  n.busy += sim.now() - begin;
  n.peak = std::max(n.peak, ++n.in_flight);
  if (numerics && stage.is_last()) c.report_loss(n.replica, loss);
  if (!stage.is_last()) {
    std::shared_ptr<const std::vector<float>> out;
    if (numerics) {
      const std::vector<float>& act = n.slots[jj].acts.back();
      out = std::make_shared<const std::vector<float>>(
          act.begin(), act.begin() + static_cast<std::ptrdiff_t>(mb_ * stage.output_features()));
    }
    const std::uint64_t bytes = static_cast<std::uint64_t>(mb_) *
                                static_cast<std::uint64_t>(stage.output_features()) *
                                wire::kFloatBytes;
    sim.send(n.node, n.node + 1, tags::micro_batch_tag(step, false, jj), bytes, std::move(out));
  }
}

Task<> Pipeline::backward(StageNode& n, std::uint64_t step, int j) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  const ModelStage& stage = stages_[static_cast<std::size_t>(n.stage)];
  const auto jj = static_cast<std::size_t>(j);
  const bool numerics = c.numerics();
  std::shared_ptr<const std::vector<float>> dy;
  if (!stage.is_last()) {
    Message m = co_await sim.recv(n.node, n.node + 1, tags::micro_batch_tag(step, true, jj));
    dy = std::move(m.data);
  }
  std::vector<float> dx;
  std::function<void()> work;
  if (numerics) {
    if (!stage.is_first())
      dx.resize(static_cast<std::size_t>(mb_) * static_cast<std::size_t>(stage.input_features()));
    work = [&] {
      const float* g = stage.is_last() ? n.dys[jj].data() : dy->data();
      stage.backward(n.params, n.inputs[jj]->data(), n.slots[jj], g, dx.data(), n.grads, mb_, n.ws);
    };
  }
  const SimTime begin = sim.now();
  co_await sim.compute(n.node, c.job_time(n.node, stage.backward_flops(mb_)), std::move(work),
                       micro_batch_label(true, j));
  n.busy += sim.now() - begin;
  --n.in_flight;
  if (numerics) n.inputs[jj].reset();
  if (!stage.is_first()) {
    const std::uint64_t bytes = static_cast<std::uint64_t>(mb_) *
                                static_cast<std::uint64_t>(stage.input_features()) *
                                wire::kFloatBytes;
    std::shared_ptr<const std::vector<float>> out;
    if (numerics) out = std::make_shared<const std::vector<float>>(std::move(dx));
    sim.send(n.node, n.node - 1, tags::micro_batch_tag(step, true, jj), bytes, std::move(out));
  }
}

Task<> Pipeline::flush(StageNode& n, std::uint64_t step) {
  RunCore& c = core();
  Simulation& sim = c.sim();
  const ModelStage& stage = stages_[static_cast<std::size_t>(n.stage)];
  const std::size_t size = stage.num_params();
  if (d_ > 1) {
    // The stage's replicas sum their gradients.
    std::vector<int> group;
    for (int r = 0; r < d_; ++r) group.push_back(r * p_ + n.stage);
    const CollBuf buf = c.numerics() ? CollBuf::real(n.grads) : CollBuf::sized(size);
    co_await allreduce(
        CollContext{&sim, group, n.replica, tags::collective_tag(step, 1), c.flops_per_s(n.node)},
        buf, c.config().collective, c.scenario().network.nodes_per_machine);
  }
  const double lr = c.lr_at(step);
  const int parts = m_ * d_;
  std::function<void()> work;
  if (c.numerics()) {
    work = [&n, lr, parts] {
      const float inv = 1.0f / static_cast<float>(parts);
      for (float& g : n.grads) g *= inv;
      n.optimizer->step(n.params, n.grads, lr);
      std::fill(n.grads.begin(), n.grads.end(), 0.0f);
    };
  }
  const double flops =
      optimizer_step_flops(c.scenario().train.optimizer.kind, size) + static_cast<double>(size);
  co_await sim.compute(n.node, c.job_time(n.node, flops), std::move(work), "update");
  ++n.steps;
  // The model is evaluated once every stage of replica 0 is past this step's update.
  if (n.replica == 0) c.part_done(step, p_, d_);
}

std::span<const float> Pipeline::global_params(double& /*consensus*/) {
  global_.resize(core().num_params());
  for (int s = 0; s < p_; ++s) {
    const StageNode& n = nodes_[static_cast<std::size_t>(s)];
    std::copy(n.params.begin(), n.params.end(),
              global_.begin() +
                  static_cast<std::ptrdiff_t>(stages_[static_cast<std::size_t>(s)].param_offset()));
  }
  return global_;
}

void Pipeline::describe(int node, NodeStats& out) const {
  const StageNode& n = nodes_[static_cast<std::size_t>(node)];
  out.role = fmt::format("stage {}", n.stage);
  out.steps = n.steps;
}

void Pipeline::finish(RunResult& result) {
  ModelParallelStats mp;
  mp.kind = "pipeline";
  mp.stages = p_;
  mp.micro_batches = m_;
  mp.data_parallel = d_;
  mp.stage_blocks = blocks_;
  mp.activation_bytes_per_step = sent_per_step_;
  // Per replica: the fill-and-drain spans of all steps, and each stage's busy time in them.
  const double span = span_total_.seconds() / static_cast<double>(d_);
  for (int s = 0; s < p_; ++s) {
    double busy = 0;
    int peak = 0;
    for (int r = 0; r < d_; ++r) {
      busy += at(r, s).busy.seconds();
      peak = std::max(peak, at(r, s).peak);
    }
    busy /= d_;
    mp.stage_bubble.push_back(span > 0 ? 1.0 - busy / span : 0.0);
    mp.peak_in_flight.push_back(peak);
    mp.activation_bytes.push_back(static_cast<std::uint64_t>(peak) *
                                  stages_[static_cast<std::size_t>(s)].activation_floats(mb_) *
                                  wire::kFloatBytes);
  }
  double sum = 0;
  for (double b : mp.stage_bubble) sum += b;
  mp.bubble_fraction = sum / p_;
  result.model_parallel = mp;
}

// Uncontended times of a schedule, for predictions: per stage, a micro-batch's forward and
// backward, the messages to the next stage (activation) and from it (gradient), and the flush.
struct StageTimes {
  std::vector<double> forward, backward, to_next, from_next, flush;
};

// The end of `steps` steps, each stage running its schedule as soon as its inputs are there.
// Also each stage's busy time in one step.
double run_schedule(bool one_f_one_b, const StageTimes& t, int m, int steps) {
  const int p = static_cast<int>(t.forward.size());
  std::vector<double> free(static_cast<std::size_t>(p), 0.0);
  std::vector<std::vector<std::pair<bool, int>>> ops;
  for (int s = 0; s < p; ++s) ops.push_back(stage_schedule(one_f_one_b, p, m, s));
  const double unknown = -1;
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<double>> f_end(
        static_cast<std::size_t>(p), std::vector<double>(static_cast<std::size_t>(m), unknown));
    auto b_end = f_end;
    std::vector<std::size_t> next(static_cast<std::size_t>(p), 0);
    for (bool progress = true; progress;) {
      progress = false;
      for (int s = 0; s < p; ++s) {
        const auto us = static_cast<std::size_t>(s);
        while (next[us] < ops[us].size()) {
          const auto [backward, j] = ops[us][next[us]];
          const auto uj = static_cast<std::size_t>(j);
          double ready = 0;
          if (!backward) {
            ready = s == 0                  ? free[0]
                    : f_end[us - 1][uj] < 0 ? unknown
                                            : f_end[us - 1][uj] + t.to_next[us - 1];
          } else {
            ready = s == p - 1              ? f_end[us][uj]
                    : b_end[us + 1][uj] < 0 ? unknown
                                            : b_end[us + 1][uj] + t.from_next[us];
          }
          if (ready < 0) break;
          const double begin = std::max(free[us], ready);
          free[us] = begin + (backward ? t.backward[us] : t.forward[us]);
          (backward ? b_end : f_end)[us][uj] = free[us];
          ++next[us];
          progress = true;
        }
      }
    }
    for (int s = 0; s < p; ++s)
      free[static_cast<std::size_t>(s)] += t.flush[static_cast<std::size_t>(s)];
  }
  return *std::max_element(free.begin(), free.end());
}

}  // namespace

void predict_pipeline(const PredictionBasis& basis, StepPrediction& out) {
  const Scenario& sc = basis.scenario;
  const StrategyConfig& st = sc.strategy;
  const int m = st.micro_batches;
  const int mb = sc.train.batch_size / m;
  const std::vector<int> blocks = stage_blocks(basis.model, st, mb);
  StageTimes t;
  double busiest = 0;
  for (const auto& [first, last] : stage_layer_ranges(basis.model, blocks)) {
    const ModelStage stage(basis.model, first, last);
    const int s = static_cast<int>(t.forward.size());
    t.forward.push_back(stage.forward_flops(mb) / basis.flops_per_s +
                        (stage.is_first() ? mb * sc.data.load_cost.seconds() : 0.0));
    t.backward.push_back(stage.backward_flops(mb) / basis.flops_per_s);
    if (!stage.is_last()) {
      const double latency = basis.topology.path_latency(s, s + 1).seconds();
      const double bytes = static_cast<double>(mb) * stage.output_features() * wire::kFloatBytes;
      t.to_next.push_back(latency + bytes * basis.beta);
      t.from_next.push_back(latency + bytes * basis.beta);
    }
    const auto n = static_cast<double>(stage.num_params());
    double flush =
        (optimizer_step_flops(sc.train.optimizer.kind, stage.num_params()) + n) / basis.flops_per_s;
    if (st.data_parallel > 1) {
      PredictionBasis replicas = basis;
      replicas.workers = st.data_parallel;
      replicas.params = n;
      replicas.bytes = 4 * n;
      replicas.alpha = basis.topology.path_latency(s, s + st.stages).seconds();
      StepPrediction allreduce;
      predict_allreduce(replicas, allreduce);
      flush += allreduce.communicate_s;
    }
    t.flush.push_back(flush);
    busiest = std::max(busiest, m * (t.forward.back() + t.backward.back()));
  }
  // Two steps give the period, which later steps repeat.
  const double one = run_schedule(st.sync == SyncMode::k1F1B, t, m, 1);
  const double two = run_schedule(st.sync == SyncMode::k1F1B, t, m, 2);
  const double step = two - one;
  out.step_s = step;
  out.compute_s = busiest;
  out.communicate_s = step - busiest;
  out.how = fmt::format(
      "{} stages ({}), {} micro-batches of {}: the schedule's fill and drain, "
      "messages between stages{}",
      st.stages, fmt::join(blocks, "+"), m, mb,
      st.data_parallel > 1 ? ", each stage's allreduce over the replicas" : "");
  out.bottleneck_waiting = "the pipeline's bubble and messages";
  out.lines.emplace_back(
      "pipeline: ideal bubble (p-1)/(m+p-1)",
      fmt::format("{:.3f}", static_cast<double>(st.stages - 1) / (m + st.stages - 1)));
}

void check_pipeline(const Scenario& s, ScenarioChecks& checks) {
  const StrategyConfig& st = s.strategy;
  if (s.train.batch_size % st.micro_batches != 0) {
    checks.error("strategy.micro_batches",
                 fmt::format("{} micro-batches do not divide train.batch_size = {}: use a divisor",
                             st.micro_batches, s.train.batch_size));
  }
  if (!st.stage_layers.empty() && static_cast<int>(st.stage_layers.size()) != st.stages) {
    checks.error("strategy.stage_layers",
                 fmt::format("{} stages but {} entries: give one count per stage", st.stages,
                             st.stage_layers.size()));
  }
}

std::unique_ptr<Strategy> make_gpipe(RunCore& core) {
  return std::make_unique<Pipeline>(core, false);
}
std::unique_ptr<Strategy> make_1f1b(RunCore& core) {
  return std::make_unique<Pipeline>(core, true);
}

}  // namespace dtsim
