// Model parallelism's numerics: pipeline stages and tensor-parallel shards give the gradient
// of the whole model (engine/model_stage.hpp, engine/tensor_shard.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/errors.hpp"
#include "engine/model.hpp"
#include "engine/model_stage.hpp"
#include "engine/rng.hpp"
#include "engine/tensor_shard.hpp"

using namespace dtsim;

namespace {

ModelConfig mlp(std::vector<int> hidden) {
  ModelConfig c;
  c.kind = ModelKind::kMlp;
  c.hidden = std::move(hidden);
  return c;
}

ModelConfig cnn() {
  ModelConfig c;
  c.kind = ModelKind::kCnn;
  c.channels = {4, 6};
  c.kernel = 3;
  c.hidden = {12};
  return c;
}

struct Data {
  Data(Shape input, int classes, int batch, std::uint64_t seed) {
    CounterRng rng({seed, RngPurpose::kTest, 0, 0});
    x.resize(static_cast<std::size_t>(batch) * static_cast<std::size_t>(input.size()));
    for (float& v : x) v = static_cast<float>(rng.normal());
    labels.resize(static_cast<std::size_t>(batch));
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.uniform_int(classes));
  }
  // Samples [begin, begin + size) as a batch.
  Batch part(int begin, int size, int features) const {
    return {x.data() + static_cast<std::size_t>(begin) * static_cast<std::size_t>(features),
            labels.data() + begin, nullptr, size};
  }
  std::vector<float> x;
  std::vector<std::int32_t> labels;
};

std::vector<float> moved_params(const Model& net) {
  std::vector<float> p = net.init_params(5);
  CounterRng rng({9, RngPurpose::kTest, 1, 0});
  for (float& v : p) v += static_cast<float>(0.05 * rng.normal());  // biases away from zero
  return p;
}

// Sum of the whole model's gradients over m micro-batches, in order.
std::vector<float> accumulated(const Model& net, std::span<const float> params, const Data& d,
                               int batch, int m) {
  Workspace ws(net, batch / m);
  std::vector<float> sum(net.num_params(), 0.0f), g(net.num_params());
  const int features = net.input_shape().size();
  for (int j = 0; j < m; ++j) {
    net.gradient(params, d.part(j * (batch / m), batch / m, features), g, ws);
    for (std::size_t i = 0; i < g.size(); ++i) sum[i] += g[i];
  }
  return sum;
}

// The same through pipeline stages, micro-batch by micro-batch (all forwards, then all
// backwards in the same order), each stage accumulating into its slice.
std::vector<float> pipelined(const Model& net, std::span<const float> params, const Data& d,
                             int batch, int m, const std::vector<int>& blocks) {
  const int mb = batch / m;
  const int features = net.input_shape().size();
  std::vector<ModelStage> stages;
  for (const auto& [first, last] : stage_layer_ranges(net, blocks)) stages.emplace_back(net, first, last);
  std::vector<float> grads(net.num_params(), 0.0f);
  std::vector<std::vector<StageSlot>> slots(stages.size());
  std::vector<ModelStage::Workspace> ws;
  std::vector<std::vector<std::vector<float>>> inputs(stages.size());
  for (const ModelStage& s : stages) ws.push_back(s.make_workspace(mb));
  for (int j = 0; j < m; ++j) {
    const Batch b = d.part(j * mb, mb, features);
    const float* x = b.x;
    for (std::size_t s = 0; s < stages.size(); ++s) {
      inputs[s].emplace_back(x, x + static_cast<std::size_t>(mb) * stages[s].input_features());
      slots[s].push_back(stages[s].make_slot(mb));
      x = stages[s].forward(params.subspan(stages[s].param_offset(), stages[s].num_params()),
                            inputs[s].back().data(), mb, slots[s].back(), ws[s]);
    }
  }
  for (int j = 0; j < m; ++j) {
    const Batch b = d.part(j * mb, mb, features);
    std::vector<float> dy(static_cast<std::size_t>(mb) * net.outputs());
    net.loss(slots.back()[static_cast<std::size_t>(j)].acts.back().data(), b, dy.data());
    for (std::size_t s = stages.size(); s-- > 0;) {
      std::vector<float> dx(static_cast<std::size_t>(mb) * stages[s].input_features());
      stages[s].backward(params.subspan(stages[s].param_offset(), stages[s].num_params()),
                         inputs[s][static_cast<std::size_t>(j)].data(),
                         slots[s][static_cast<std::size_t>(j)], dy.data(), dx.data(),
                         std::span<float>(grads).subspan(stages[s].param_offset(),
                                                         stages[s].num_params()),
                         mb, ws[s]);
      dy = std::move(dx);
    }
  }
  return grads;
}

// Tensor-parallel ranks run part by part; the communication is done here: an all-reduce
// sums the ranks' buffers in rank order, an all-gather puts each rank's block in place.
struct ShardRun {
  std::vector<float> grads;  // the whole model's, assembled from the shards
  double loss = 0;
};
ShardRun sharded(const Model& net, std::span<const float> params, const Data& d, int batch,
                 ShardPlan plan, int t) {
  std::vector<TensorShard> shards;
  for (int r = 0; r < t; ++r) shards.emplace_back(net, plan, t, r);
  std::vector<std::vector<float>> p, g;
  std::vector<ShardWorkspace> ws;
  const int features = net.input_shape().size();
  const Batch b = d.part(0, batch, features);
  for (const TensorShard& s : shards) {
    p.emplace_back(s.num_params());
    s.extract(params, p.back());
    g.emplace_back(s.num_params());
    ws.push_back(s.make_workspace(batch));
    const auto [c0, c1] = s.input_features();
    for (int i = 0; i < batch; ++i) {
      for (int c = c0; c < c1; ++c) {
        ws.back().input[static_cast<std::size_t>(i * (c1 - c0) + (c - c0))] =
            b.x[static_cast<std::size_t>(i * features + c)];
      }
    }
  }
  const auto communicate = [&](ShardComm comm, auto buffer_of) {
    if (comm == ShardComm::kNone) return;
    std::vector<std::span<float>> bufs;
    for (int r = 0; r < t; ++r) bufs.push_back(buffer_of(r));
    for (std::size_t i = 0; i < bufs[0].size(); ++i) {
      if (comm == ShardComm::kAllreduce) {
        float sum = 0;
        for (int r = 0; r < t; ++r) sum += bufs[static_cast<std::size_t>(r)][i];
        for (int r = 0; r < t; ++r) bufs[static_cast<std::size_t>(r)][i] = sum;
      } else {
        const std::size_t block = bufs[0].size() / static_cast<std::size_t>(t);
        const std::size_t owner = i / block;
        for (int r = 0; r < t; ++r) bufs[static_cast<std::size_t>(r)][i] = bufs[owner][i];
      }
    }
  };
  for (int k = 0; k < shards[0].forward_parts(); ++k) {
    for (int r = 0; r < t; ++r) shards[r].forward(k, p[r], b, ws[r]);
    communicate(shards[0].forward_comm(k),
                [&](int r) { return shards[r].forward_comm_buffer(k, batch, ws[r]); });
  }
  for (int k = 0; k < shards[0].backward_parts(); ++k) {
    for (int r = 0; r < t; ++r) shards[r].backward(k, p[r], batch, g[r], ws[r]);
    communicate(shards[0].backward_comm(k),
                [&](int r) { return shards[r].backward_comm_buffer(k, batch, ws[r]); });
  }
  ShardRun out;
  out.grads.assign(net.num_params(), 0.0f);
  for (int r = 0; r < t; ++r) {
    shards[r].place(g[r], out.grads);
    CHECK(ws[r].loss == doctest::Approx(ws[0].loss));
  }
  out.loss = ws[0].loss;
  return out;
}

void check_close(std::span<const float> a, std::span<const float> b, double rel) {
  REQUIRE(a.size() == b.size());
  double scale = 0;
  for (float v : b) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::fabs(a[i] - b[i]) > rel * scale) ++wrong;
  }
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("pipeline stages accumulate exactly the whole model's micro-batch gradients") {
  SUBCASE("mlp in 3 stages, 4 micro-batches") {
    const Model net(mlp({24, 16, 12}), {1, 1, 20}, LearningTask::kClassification, 5);
    const Data d({1, 1, 20}, 5, 32, 1);
    const std::vector<float> params = moved_params(net);
    CHECK(pipelined(net, params, d, 32, 4, {1, 2, 1}) == accumulated(net, params, d, 32, 4));
    CHECK(pipelined(net, params, d, 32, 4, {2, 1, 1}) == accumulated(net, params, d, 32, 4));
  }
  SUBCASE("cnn in 2 stages, 2 micro-batches") {
    const Model net(cnn(), {1, 8, 8}, LearningTask::kClassification, 4);
    const Data d({1, 8, 8}, 4, 8, 2);
    const std::vector<float> params = moved_params(net);
    CHECK(pipelined(net, params, d, 8, 2, {2, 2}) == accumulated(net, params, d, 8, 2));
  }
}

TEST_CASE("stages cover the model's blocks, balanced by FLOPs") {
  const Model net(mlp({256, 8, 8}), {1, 1, 64}, LearningTask::kClassification, 4);
  CHECK(model_blocks(net) == 4);
  const auto ranges = stage_layer_ranges(net, {1, 3});
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == std::pair<std::size_t, std::size_t>{0, 2});  // dense + relu
  CHECK(ranges[1] == std::pair<std::size_t, std::size_t>{2, 7});
  CHECK_THROWS_AS(stage_layer_ranges(net, {1, 2}), std::invalid_argument);
  // The first two layers hold most of the FLOPs (64x256, 256x8): the best cut puts the
  // first alone when there are two stages, and no stage of a 3-way split is larger than
  // with any other split.
  CHECK(balanced_stages(net, 2, 16) == std::vector<int>{1, 3});
  const std::vector<int> three = balanced_stages(net, 3, 16);
  const auto largest = [&](const std::vector<int>& blocks) {
    double worst = 0;
    for (const auto& [first, last] : stage_layer_ranges(net, blocks)) {
      const ModelStage s(net, first, last);
      worst = std::max(worst, s.forward_flops(16) + s.backward_flops(16));
    }
    return worst;
  };
  for (const std::vector<int>& other :
       {std::vector<int>{1, 1, 2}, std::vector<int>{1, 2, 1}, std::vector<int>{2, 1, 1}}) {
    CHECK(largest(three) <= largest(other));
  }
}

TEST_CASE("tensor-parallel shards give the whole model's gradient") {
  SUBCASE("megatron mlp: column, row, and a column-split output gathered") {
    const Model net(mlp({24, 16}), {1, 1, 20}, LearningTask::kClassification, 6);
    const Data d({1, 1, 20}, 6, 16, 3);
    const std::vector<float> params = moved_params(net);
    std::vector<float> whole(net.num_params());
    Workspace ws(net, 16);
    const double loss = net.gradient(params, d.part(0, 16, 20), whole, ws);
    const ShardRun run = sharded(net, params, d, 16, ShardPlan::kMegatron, 2);
    CHECK(run.loss == doctest::Approx(loss).epsilon(1e-6));
    check_close(run.grads, whole, 1e-5);
    // 6 outputs cannot be cut 4 ways.
    CHECK_THROWS_AS(TensorShard(net, ShardPlan::kMegatron, 4, 0), InputError);
  }
  SUBCASE("megatron mlp with one hidden layer: a column-row pair, nothing gathered") {
    const Model net(mlp({24}), {1, 1, 10}, LearningTask::kClassification, 5);
    const Data d({1, 1, 10}, 5, 8, 4);
    const std::vector<float> params = moved_params(net);
    std::vector<float> whole(net.num_params());
    Workspace ws(net, 8);
    const double loss = net.gradient(params, d.part(0, 8, 10), whole, ws);
    const TensorShard s(net, ShardPlan::kMegatron, 4, 1);
    CHECK(s.forward_parts() == 2);  // column + row, all-reduce; the loss
    CHECK(s.backward_parts() == 1);
    const ShardRun run = sharded(net, params, d, 8, ShardPlan::kMegatron, 4);
    CHECK(run.loss == doctest::Approx(loss).epsilon(1e-6));
    check_close(run.grads, whole, 1e-5);
  }
  SUBCASE("megatron cnn: convolutions split by output channels") {
    const Model net(cnn(), {1, 8, 8}, LearningTask::kClassification, 4);
    const Data d({1, 8, 8}, 4, 4, 5);
    const std::vector<float> params = moved_params(net);
    std::vector<float> whole(net.num_params());
    Workspace ws(net, 4);
    const double loss = net.gradient(params, d.part(0, 4, 64), whole, ws);
    const ShardRun run = sharded(net, params, d, 4, ShardPlan::kMegatron, 2);
    CHECK(run.loss == doctest::Approx(loss).epsilon(1e-6));
    check_close(run.grads, whole, 1e-5);
  }
  SUBCASE("feature split: the first layer over uneven feature ranges, the rest whole") {
    const Model net(mlp({12, 8}), {1, 1, 11}, LearningTask::kClassification, 3);
    const Data d({1, 1, 11}, 3, 8, 6);
    const std::vector<float> params = moved_params(net);
    std::vector<float> whole(net.num_params());
    Workspace ws(net, 8);
    const double loss = net.gradient(params, d.part(0, 8, 11), whole, ws);
    const TensorShard s(net, ShardPlan::kFeatures, 3, 2);
    CHECK(s.input_features() == std::pair<int, int>{8, 11});  // 4, 4, 3 features
    const ShardRun run = sharded(net, params, d, 8, ShardPlan::kFeatures, 3);
    CHECK(run.loss == doctest::Approx(loss).epsilon(1e-6));
    check_close(run.grads, whole, 1e-5);
  }
}

TEST_CASE("a shard's parameters come out of the whole model and go back") {
  const Model net(cnn(), {1, 8, 8}, LearningTask::kClassification, 4);
  const std::vector<float> params = moved_params(net);
  std::vector<float> back(net.num_params(), 0.0f);
  for (int r = 0; r < 2; ++r) {
    const TensorShard s(net, ShardPlan::kMegatron, 2, r);
    std::vector<float> mine(s.num_params());
    s.extract(params, mine);
    s.place(mine, back);
  }
  CHECK(back == params);
}
