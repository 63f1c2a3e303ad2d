// Finite-difference gradient checks for every layer and both losses.
//
// For a layer f and a fixed random vector r, L(x, w) = <r, f(x; w)>; backward() with dy = r
// must give dL/dx and dL/dw. Central differences in double around float evaluations.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "engine/layers.hpp"
#include "engine/loss.hpp"
#include "engine/rng.hpp"

using namespace dtsim;

namespace {

std::vector<float> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  CounterRng rng({seed, RngPurpose::kTest, 0, 0});
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

// Compares an analytic gradient with central differences of `loss` in `values`.
void check_gradient(std::vector<float>& values, const std::vector<float>& analytic,
                    const std::function<double()>& loss, const char* what) {
  CAPTURE(what);
  const double eps = 1e-2;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float saved = values[i];
    values[i] = static_cast<float>(saved + eps);
    const double up = loss();
    values[i] = static_cast<float>(saved - eps);
    const double down = loss();
    values[i] = saved;
    const double numeric = (up - down) / (2 * eps);
    CAPTURE(i);
    CHECK(analytic[i] == doctest::Approx(numeric).epsilon(2e-2).scale(1.0));
  }
}

void check_layer(const Layer& layer, int batch, std::vector<float> x, std::uint64_t seed) {
  std::size_t n_params = 0;
  for (const auto& spec : layer.param_specs()) {
    std::size_t size = 1;
    for (int d : spec.shape) size *= static_cast<std::size_t>(d);
    n_params += size;
  }
  std::vector<float> params = random_vector(n_params, seed + 1, 0.5);
  const std::size_t out_size = static_cast<std::size_t>(batch) * layer.output().size();
  const std::vector<float> r = random_vector(out_size, seed + 2);
  std::vector<float> scratch(layer.scratch_floats(batch));
  std::vector<float> y(out_size);

  auto loss = [&]() {
    layer.forward({params.data(), nullptr, scratch.data()}, x.data(), y.data(), batch);
    double l = 0;
    for (std::size_t i = 0; i < out_size; ++i) l += static_cast<double>(r[i]) * y[i];
    return l;
  };
  loss();
  std::vector<float> dx(x.size()), dparams(n_params, 12345.0f);
  layer.backward({params.data(), dparams.data(), scratch.data()}, x.data(), y.data(), r.data(),
                 dx.data(), batch);
  check_gradient(x, dx, loss, "input");
  if (n_params > 0) check_gradient(params, dparams, loss, "parameters");
}

// Values bounded away from zero and from each other, so ReLU kinks and max-pool ties are
// further than the finite-difference step.
std::vector<float> spaced_values(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  CounterRng rng({seed, RngPurpose::kTest, 0, 0});
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(0.1 * (static_cast<double>(i) + 1.0) / 2.0);
  for (std::size_t i = 0; i < n; ++i) {
    if (rng.uniform() < 0.5) v[i] = -v[i];
  }
  rng.shuffle(std::span<float>(v));
  return v;
}

}  // namespace

TEST_CASE("dense backward matches finite differences") {
  Dense layer(5, 3, InitKind::kHe);
  check_layer(layer, 4, random_vector(20, 10), 10);
}

TEST_CASE("relu backward matches finite differences") {
  Relu layer({1, 1, 12});
  check_layer(layer, 2, spaced_values(24, 11), 11);
}

TEST_CASE("tanh backward matches finite differences") {
  Tanh layer({1, 1, 6});
  check_layer(layer, 3, random_vector(18, 12), 12);
}

TEST_CASE("conv2d backward matches finite differences") {
  SUBCASE("kernel 3, two input channels") {
    Conv2d layer({2, 5, 4}, 3, 3, InitKind::kHe);
    check_layer(layer, 2, random_vector(2 * 2 * 5 * 4, 13), 13);
  }
  SUBCASE("kernel 5 larger than the image") {
    Conv2d layer({1, 3, 3}, 2, 5, InitKind::kHe);
    check_layer(layer, 2, random_vector(2 * 9, 14), 14);
  }
}

TEST_CASE("max-pool backward matches finite differences") {
  SUBCASE("even sides") {
    MaxPool2d layer({2, 4, 4});
    check_layer(layer, 2, spaced_values(2 * 32, 15), 15);
  }
  SUBCASE("odd sides drop the last row and column") {
    MaxPool2d layer({1, 5, 3});
    CHECK(layer.output() == Shape{1, 2, 1});
    check_layer(layer, 1, spaced_values(15, 16), 16);
  }
}

TEST_CASE("max-pool forward takes each window's maximum") {
  MaxPool2d layer({1, 2, 4});
  const float x[] = {1, 5, -2, 0, 3, 2, -1, -3};
  float y[2];
  layer.forward({}, x, y, 1);
  CHECK(y[0] == 5);
  CHECK(y[1] == 0);
}

TEST_CASE("softmax cross-entropy: value and gradient") {
  SUBCASE("hand-computed value") {
    // logits [0, ln 3]: softmax = [1/4, 3/4]; label 1 -> loss = -ln(3/4).
    const float z[] = {0.0f, static_cast<float>(std::log(3.0))};
    const std::int32_t label[] = {1};
    float d[2];
    CHECK(softmax_cross_entropy(z, label, 1, 2, d) == doctest::Approx(-std::log(0.75)));
    CHECK(d[0] == doctest::Approx(0.25));
    CHECK(d[1] == doctest::Approx(-0.25));
  }
  SUBCASE("stable for huge logits") {
    const float z[] = {1000.0f, 0.0f, -1000.0f};
    const std::int32_t label[] = {0};
    CHECK(softmax_cross_entropy(z, label, 1, 3, nullptr) == doctest::Approx(0.0));
  }
  SUBCASE("finite differences") {
    const int batch = 3, classes = 4;
    std::vector<float> z = random_vector(batch * classes, 17);
    const std::int32_t labels[] = {2, 0, 3};
    std::vector<float> d(z.size());
    softmax_cross_entropy(z.data(), labels, batch, classes, d.data());
    check_gradient(
        z, d, [&] { return softmax_cross_entropy(z.data(), labels, batch, classes, nullptr); },
        "logits");
  }
}

TEST_CASE("half squared error: value and gradient") {
  const float y[] = {1.0f, 2.0f, 0.5f, -1.0f};
  const float t[] = {0.0f, 2.0f, 1.5f, 1.0f};
  float d[4];
  // batch 2, 2 outputs: 0.5 * (1 + 0 + 1 + 4) / 2 = 1.5
  CHECK(half_squared_error(y, t, 2, 2, d) == doctest::Approx(1.5));
  CHECK(d[0] == doctest::Approx(0.5));
  CHECK(d[3] == doctest::Approx(-1.0));
  std::vector<float> yv(y, y + 4);
  std::vector<float> dv(d, d + 4);
  check_gradient(
      yv, dv, [&] { return half_squared_error(yv.data(), t, 2, 2, nullptr); }, "outputs");
}

TEST_CASE("FLOP counts of a dense layer follow 2*batch*in*out") {
  Dense layer(784, 256, InitKind::kHe);
  CHECK(layer.forward_flops(64) == 2.0 * 64 * 784 * 256 + 64 * 256);
  CHECK(layer.backward_flops(64, true) == 4.0 * 64 * 784 * 256 + 64 * 256);
  CHECK(layer.backward_flops(64, false) == 2.0 * 64 * 784 * 256 + 64 * 256);
}
