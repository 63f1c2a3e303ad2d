#include "sim/local_trainer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "engine/data/idx_reader.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/network.hpp"
#include "engine/optimizer.hpp"
#include "engine/schedule.hpp"
#include "sim/cost_model.hpp"

namespace dtsim {
namespace {

constexpr int kEvalBatch = 500;
constexpr std::size_t kSyntheticTrain = 4000;
constexpr std::size_t kSyntheticTest = 1000;

}  // namespace

DatasetPair load_data(const Scenario& s) {
  const DataConfig& d = s.data;
  if (d.dataset == "fashion-mnist") {
    DatasetPair pair = load_fashion_mnist(d.path);
    shuffle_and_take(pair.train, d.train_samples, s.seed, 0);
    shuffle_and_take(pair.test, d.test_samples, s.seed, 1);
    return pair;
  }
  const std::size_t train = d.train_samples > 0 ? d.train_samples : kSyntheticTrain;
  const std::size_t test = d.test_samples > 0 ? d.test_samples : kSyntheticTest;
  if (d.dataset == "blobs") {
    BlobsConfig c = d.blobs;
    c.train_samples = train;
    c.test_samples = test;
    return make_blobs(c, s.seed);
  }
  LinregConfig c = d.linreg;
  c.train_samples = train;
  c.test_samples = test;
  return make_linreg(c, s.seed).data;
}

RunResult train_single_node(const Scenario& s, const DatasetPair& data,
                            const EvalCallback& on_eval) {
  const Dataset& train = data.train;
  const Network net(s.model, {train.channels, train.height, train.width}, train.task,
                    train.outputs);
  std::vector<float> params = net.init_params(s.seed);
  std::vector<float> grads(net.num_params());
  Optimizer optimizer(s.train.optimizer, net.num_params());
  const int batch_size = s.train.batch_size;
  Workspace ws(net, batch_size);
  Workspace eval_ws(net, kEvalBatch);

  const std::size_t n = train.samples();
  const std::uint64_t steps_per_epoch = (n + batch_size - 1) / batch_size;
  const std::uint64_t total_steps =
      s.train.steps > 0 ? s.train.steps
                        : static_cast<std::uint64_t>(s.train.epochs) * steps_per_epoch;
  const NodeSpeed speed{s.cluster.compute_flops_per_s, s.data.load_cost};
  const double update_flops =
      optimizer.step_flops(net.num_params()) + (s.train.clip_norm > 0 ? 3.0 * net.num_params() : 0);

  RunResult result;
  result.model_summary = net.summary();
  SimTime now;
  double loss_sum = 0;
  std::uint64_t loss_count = 0;

  auto evaluate = [&](std::uint64_t step) {
    const EvalResult test = net.evaluate(params, data.test, eval_ws);
    EvalPoint p;
    p.step = step;
    p.samples = result.samples;
    p.epoch = static_cast<double>(result.samples) / static_cast<double>(n);
    p.virtual_time_s = now.seconds();
    p.train_loss = loss_count > 0 ? loss_sum / static_cast<double>(loss_count)
                                  : std::numeric_limits<double>::quiet_NaN();
    p.test_loss = test.loss;
    p.test_accuracy = test.accuracy;
    loss_sum = 0;
    loss_count = 0;
    if (s.train.target_accuracy && !result.time_to_target_s &&
        p.test_accuracy >= *s.train.target_accuracy) {
      result.time_to_target_s = p.virtual_time_s;
    }
    result.evals.push_back(p);
    if (on_eval) on_eval(p);
  };

  evaluate(0);
  std::vector<std::uint32_t> order(n);
  std::uint64_t step = 0;
  while (step < total_steps) {
    const std::uint64_t epoch = step / steps_per_epoch;
    const std::uint64_t in_epoch = step % steps_per_epoch;
    if (in_epoch == 0) {
      std::iota(order.begin(), order.end(), 0u);
      CounterRng rng({s.seed, RngPurpose::kBatch, 0, epoch});
      rng.shuffle(std::span<std::uint32_t>(order));
    }
    const std::size_t begin = in_epoch * batch_size;
    const std::size_t size = std::min<std::size_t>(batch_size, n - begin);
    const Batch batch = gather_batch(train, std::span(order).subspan(begin, size), ws);
    const double loss = net.gradient(params, batch, grads, ws);
    ++step;
    result.samples += size;
    now += compute_time(
        speed, net.forward_flops(batch.size) + net.backward_flops(batch.size) + update_flops,
        batch.size);
    if (!std::isfinite(loss)) {
      result.diverged = true;
      result.diverged_reason = fmt::format(
          "the training loss became {} at step {} (lr {}); lower train.lr or set "
          "train.clip_norm",
          loss, step, learning_rate(s.train.schedule, step - 1, total_steps));
      loss_sum += loss;
      ++loss_count;
      evaluate(step);
      break;
    }
    loss_sum += loss;
    ++loss_count;
    if (s.train.clip_norm > 0) clip_global_norm(grads, s.train.clip_norm);
    optimizer.step(params, grads, learning_rate(s.train.schedule, step - 1, total_steps));
    if (step % s.train.eval_every == 0 || step == total_steps) evaluate(step);
  }

  result.steps = step;
  result.virtual_time_s = now.seconds();
  NodeStats node;
  node.node = 0;
  node.role = "worker";
  node.compute_flops_per_s = speed.flops_per_s;
  node.compute_s = now.seconds();
  node.steps = step;
  result.nodes.push_back(node);
  return result;
}

}  // namespace dtsim
