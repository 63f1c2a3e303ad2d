#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/errors.hpp"
#include "engine/model.hpp"
#include "engine/rng.hpp"

using namespace dtsim;

namespace {

struct Fixture {
  Fixture(const ModelConfig& config, Shape input, int classes, int batch_size)
      : net(config, input, LearningTask::kClassification, classes), ws(net, batch_size) {
    CounterRng rng({21, RngPurpose::kTest, 0, 0});
    x.resize(static_cast<std::size_t>(batch_size) * input.size());
    for (float& v : x) v = static_cast<float>(rng.normal());
    labels.resize(static_cast<std::size_t>(batch_size));
    for (auto& l : labels) l = static_cast<std::int32_t>(rng.uniform_int(classes));
    params = net.init_params(3);
    // Biases start at zero; move them so their gradients are exercised away from that point.
    for (float& p : params) p += static_cast<float>(0.05 * rng.normal());
    batch = {x.data(), labels.data(), nullptr, batch_size};
  }
  Model net;
  Workspace ws;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
  std::vector<float> params;
  Batch batch;
};

// Checks dLoss/dparams against central differences on a spread of parameter indices.
void check_network_gradient(Fixture& f, int probes, double eps) {
  std::vector<float> grads(f.net.num_params());
  f.net.gradient(f.params, f.batch, grads, f.ws);
  std::vector<float> scratch(f.net.num_params());
  const std::size_t stride = std::max<std::size_t>(1, f.params.size() / probes);
  int checked = 0;
  for (std::size_t i = 0; i < f.params.size(); i += stride) {
    const float saved = f.params[i];
    f.params[i] = static_cast<float>(saved + eps);
    const double up = f.net.gradient(f.params, f.batch, scratch, f.ws);
    f.params[i] = static_cast<float>(saved - eps);
    const double down = f.net.gradient(f.params, f.batch, scratch, f.ws);
    f.params[i] = saved;
    CAPTURE(i);
    CHECK(grads[i] == doctest::Approx((up - down) / (2 * eps)).epsilon(3e-2).scale(0.02));
    ++checked;
  }
  CHECK(checked >= probes / 2);
}

}  // namespace

TEST_CASE("network gradients match finite differences") {
  SUBCASE("mlp, tanh") {
    ModelConfig c;
    c.hidden = {7, 5};
    c.activation = Activation::kTanh;
    Fixture f(c, {1, 1, 6}, 3, 4);
    check_network_gradient(f, 200, 1e-2);
  }
  SUBCASE("softmax regression") {
    ModelConfig c;
    c.kind = ModelKind::kSoftmax;
    Fixture f(c, {1, 1, 8}, 4, 5);
    check_network_gradient(f, 36, 1e-2);
  }
  SUBCASE("cnn") {
    ModelConfig c;
    c.kind = ModelKind::kCnn;
    c.channels = {2, 3};
    c.kernel = 3;
    c.hidden = {6};
    c.activation = Activation::kTanh;
    Fixture f(c, {1, 8, 8}, 3, 2);
    // Max-pooling is piecewise smooth: the step must be small enough that no window changes
    // its winner (1e-3 already crosses a few kinks here), and float noise still allows 1e-4.
    check_network_gradient(f, 150, 1e-4);
  }
}

TEST_CASE("the default MLP has the expected layout and FLOPs") {
  Model net(ModelConfig{}, {1, 28, 28}, LearningTask::kClassification, 10);
  CHECK(net.num_params() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  REQUIRE(net.layout().tensors().size() == 6);
  CHECK(net.layout().tensors()[0].name == "dense1.weight");
  CHECK(net.layout().tensors()[0].shape == std::vector<int>{256, 784});
  CHECK(net.layout().tensors()[5].name == "dense3.bias");
  CHECK(net.layout().tensors()[5].offset == net.num_params() - 10);
  const double b = 64;
  const double macs = 784.0 * 256 + 256.0 * 128 + 128.0 * 10;
  const double bias = 256 + 128 + 10;
  const double relu = 256 + 128;
  CHECK(net.forward_flops(64) == 2 * b * macs + b * bias + b * relu + 4 * b * 10);
  // Backward: weight gradients everywhere, input gradients except for the first layer.
  CHECK(net.backward_flops(64) ==
        2 * b * macs + 2 * b * (256.0 * 128 + 128.0 * 10) + b * bias + b * relu);
  CHECK(net.summary() == "mlp 784-256-128-10 relu (235146 parameters)");
}

TEST_CASE("initialisation is seeded and scaled") {
  Model net(ModelConfig{}, {1, 28, 28}, LearningTask::kClassification, 10);
  const auto a = net.init_params(5);
  const auto b = net.init_params(5);
  const auto c = net.init_params(6);
  CHECK(a == b);
  CHECK(a != c);
  // He-normal first layer: variance 2 / fan_in.
  const auto& w1 = net.layout().tensors()[0];
  double sum_sq = 0;
  for (std::size_t i = 0; i < w1.size; ++i)
    sum_sq += static_cast<double>(a[w1.offset + i]) * a[w1.offset + i];
  CHECK(sum_sq / static_cast<double>(w1.size) == doctest::Approx(2.0 / 784).epsilon(0.02));
  const auto& b1 = net.layout().tensors()[1];
  for (std::size_t i = 0; i < b1.size; ++i) CHECK(a[b1.offset + i] == 0.0f);
}

TEST_CASE("evaluate counts correct argmax predictions") {
  // A softmax model whose weights copy the input: the prediction is the largest feature.
  ModelConfig c;
  c.kind = ModelKind::kSoftmax;
  Model net(c, {1, 1, 3}, LearningTask::kClassification, 3);
  std::vector<float> params(net.num_params(), 0.0f);
  for (int i = 0; i < 3; ++i) params[static_cast<std::size_t>(i) * 3 + i] = 1.0f;
  Dataset d;
  d.features = 3;
  d.width = 3;
  d.classes = 3;
  d.outputs = 3;
  d.x = {5, 0, 0, 0, 5, 0, 0, 0, 5, 5, 0, 0};
  d.labels = {0, 1, 1, 0};  // the third sample is wrong
  Workspace ws(net, 3);     // evaluates in two chunks
  const EvalResult r = net.evaluate(params, d, ws);
  CHECK(r.samples == 4);
  CHECK(r.accuracy == doctest::Approx(0.75));
  const double right = std::log(1 + 2 * std::exp(-5.0));
  const double wrong = right + 5.0;
  CHECK(r.loss == doctest::Approx((3 * right + wrong) / 4));
}

TEST_CASE("gather_batch copies the chosen rows") {
  ModelConfig c;
  c.kind = ModelKind::kSoftmax;
  Model net(c, {1, 1, 2}, LearningTask::kClassification, 2);
  Workspace ws(net, 4);
  Dataset d;
  d.features = 2;
  d.width = 2;
  d.classes = 2;
  d.outputs = 2;
  d.x = {0, 1, 10, 11, 20, 21};
  d.labels = {0, 1, 0};
  const std::uint32_t rows[] = {2, 0};
  const Batch b = gather_batch(d, rows, ws);
  CHECK(b.size == 2);
  CHECK(b.x[0] == 20);
  CHECK(b.x[3] == 1);
  CHECK(b.labels[0] == 0);
}

TEST_CASE("impossible models are input errors") {
  ModelConfig c;
  c.kind = ModelKind::kCnn;
  CHECK_THROWS_AS(Model(c, {1, 1, 20}, LearningTask::kClassification, 4), InputError);
  c.kernel = 4;
  CHECK_THROWS_WITH_AS(Model(c, {1, 28, 28}, LearningTask::kClassification, 4),
                       doctest::Contains("model.kernel"), InputError);
  ModelConfig zero;
  zero.hidden = {0};
  CHECK_THROWS_AS(Model(zero, {1, 1, 4}, LearningTask::kClassification, 2), InputError);
}
