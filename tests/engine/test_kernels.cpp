#include <doctest/doctest.h>

#include <vector>

#include "engine/kernels.hpp"
#include "engine/layers.hpp"
#include "engine/rng.hpp"

using namespace dtsim;

namespace {
std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  CounterRng rng({seed, RngPurpose::kTest, 0, 0});
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}
}  // namespace

TEST_CASE("BLAS gemm matches the reference gemm") {
  const int m = 7, n = 13, k = 5;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const auto a = random_vector(static_cast<std::size_t>(m) * k, 1);
      const auto b = random_vector(static_cast<std::size_t>(k) * n, 2);
      auto c_blas = random_vector(static_cast<std::size_t>(m) * n, 3);
      auto c_ref = c_blas;
      gemm(ta, tb, m, n, k, 0.5f, a.data(), b.data(), 2.0f, c_blas.data());
      gemm_reference(ta, tb, m, n, k, 0.5f, a.data(), b.data(), 2.0f, c_ref.data());
      for (std::size_t i = 0; i < c_ref.size(); ++i)
        CHECK(c_blas[i] == doctest::Approx(c_ref[i]).epsilon(1e-5));
    }
  }
}

TEST_CASE("gemm_reference computes a hand-checked product") {
  // [1 2; 3 4] * [5 6; 7 8] = [19 22; 43 50]
  const float a[] = {1, 2, 3, 4};
  const float b[] = {5, 6, 7, 8};
  float c[4] = {};
  gemm_reference(false, false, 2, 2, 2, 1.0f, a, b, 0.0f, c);
  CHECK(c[0] == 19);
  CHECK(c[1] == 22);
  CHECK(c[2] == 43);
  CHECK(c[3] == 50);
  // A^T * B with A stored [k=2, m=2]: [1 3; 2 4] * B = [26 30; 38 44]
  gemm_reference(true, false, 2, 2, 2, 1.0f, a, b, 0.0f, c);
  CHECK(c[0] == 26);
  CHECK(c[3] == 44);
}

TEST_CASE("im2col unrolls a padded 3x3 image") {
  // One channel, 3x3, kernel 3, pad 1: the centre tap column is the image itself and the
  // top-left tap sees the image shifted down-right with zeros at the border.
  const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> col(9 * 9);
  im2col(x, 1, 3, 3, 3, 1, col.data());
  for (int i = 0; i < 9; ++i) CHECK(col[4 * 9 + i] == x[i]);
  const float top_left[] = {0, 0, 0, 0, 1, 2, 0, 4, 5};
  for (int i = 0; i < 9; ++i) CHECK(col[i] == top_left[i]);
}

TEST_CASE("col2im is the adjoint of im2col") {
  const int c = 2, h = 5, w = 4, k = 3, pad = 1;
  const auto x = random_vector(static_cast<std::size_t>(c) * h * w, 4);
  const auto y = random_vector(static_cast<std::size_t>(c) * k * k * h * w, 5);
  std::vector<float> col(y.size());
  im2col(x.data(), c, h, w, k, pad, col.data());
  std::vector<float> back(x.size(), 0.0f);
  col2im(y.data(), c, h, w, k, pad, back.data());
  double lhs = 0, rhs = 0;
  for (std::size_t i = 0; i < y.size(); ++i) lhs += static_cast<double>(col[i]) * y[i];
  for (std::size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * back[i];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
}

TEST_CASE("BLAS layers match their naive references") {
  SUBCASE("dense") {
    const int in = 9, out = 4, batch = 3;
    Dense layer(in, out, InitKind::kHe);
    const auto params = random_vector(static_cast<std::size_t>(in) * out + out, 6);
    const auto x = random_vector(static_cast<std::size_t>(batch) * in, 7);
    std::vector<float> y(static_cast<std::size_t>(batch) * out), y_ref(y.size());
    layer.forward({params.data(), nullptr, nullptr}, x.data(), y.data(), batch);
    dense_forward_reference(in, out, params.data(), x.data(), y_ref.data(), batch);
    for (std::size_t i = 0; i < y.size(); ++i)
      CHECK(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-5));
  }
  SUBCASE("conv2d") {
    const Shape in{2, 6, 5};
    const int oc = 3, k = 3, batch = 2;
    Conv2d layer(in, oc, k, InitKind::kHe);
    const auto params = random_vector(static_cast<std::size_t>(oc) * in.channels * k * k + oc, 8);
    const auto x = random_vector(static_cast<std::size_t>(batch) * in.size(), 9);
    std::vector<float> scratch(layer.scratch_floats(batch));
    std::vector<float> y(static_cast<std::size_t>(batch) * layer.output().size()), y_ref(y.size());
    layer.forward({params.data(), nullptr, scratch.data()}, x.data(), y.data(), batch);
    conv2d_forward_reference(in, oc, k, params.data(), x.data(), y_ref.data(), batch);
    for (std::size_t i = 0; i < y.size(); ++i)
      CHECK(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-4));
  }
}
