#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/optimizer.hpp"
#include "engine/schedule.hpp"

using namespace dtsim;

TEST_CASE("optimizer updates match hand-computed values") {
  // One parameter w0 = 1, gradients 0.5 then -0.25, lr 0.1, momentum 0.9.
  std::vector<float> w = {1.0f};
  const std::vector<float> g1 = {0.5f};
  const std::vector<float> g2 = {-0.25f};
  OptimizerConfig c;
  SUBCASE("sgd") {
    c.kind = OptimizerKind::kSgd;
    Optimizer opt(c, 1);
    opt.step(w, g1, 0.1);
    CHECK(w[0] == doctest::Approx(0.95));
    opt.step(w, g2, 0.1);
    CHECK(w[0] == doctest::Approx(0.975));
  }
  SUBCASE("sgd with weight decay") {
    c.kind = OptimizerKind::kSgd;
    c.weight_decay = 0.1;
    Optimizer opt(c, 1);
    opt.step(w, g1, 0.1);  // g' = 0.5 + 0.1 * 1 = 0.6
    CHECK(w[0] == doctest::Approx(0.94));
  }
  SUBCASE("momentum") {
    c.kind = OptimizerKind::kMomentum;
    Optimizer opt(c, 1);
    opt.step(w, g1, 0.1);  // v = 0.5, w = 0.95
    CHECK(w[0] == doctest::Approx(0.95));
    opt.step(w, g2, 0.1);  // v = 0.45 - 0.25 = 0.2, w = 0.93
    CHECK(w[0] == doctest::Approx(0.93));
  }
  SUBCASE("nesterov") {
    c.kind = OptimizerKind::kNesterov;
    Optimizer opt(c, 1);
    opt.step(w, g1, 0.1);  // v = 0.5; w -= 0.1 * (0.5 + 0.45) = 0.905
    CHECK(w[0] == doctest::Approx(0.905));
    opt.step(w, g2, 0.1);  // v = 0.2; w -= 0.1 * (-0.25 + 0.18) -> 0.912
    CHECK(w[0] == doctest::Approx(0.912));
  }
  SUBCASE("adam") {
    c.kind = OptimizerKind::kAdam;
    Optimizer opt(c, 1);
    // Step 1: m = 0.05, s = 0.00025; m^ = 0.5, s^ = 0.25 -> w -= 0.1 * 0.5 / 0.5 = 0.1.
    opt.step(w, g1, 0.1);
    CHECK(w[0] == doctest::Approx(0.9));
    // Step 2: m = 0.045 - 0.025 = 0.02, m^ = 0.02 / 0.19;
    //         s = 0.00024975 + 0.0000625 = 0.00031225, s^ = s / 0.001999.
    const double m_hat = 0.02 / (1 - 0.81);
    const double s_hat = 0.00031225 / (1 - 0.999 * 0.999);
    opt.step(w, g2, 0.1);
    CHECK(w[0] == doctest::Approx(0.9 - 0.1 * m_hat / (std::sqrt(s_hat) + 1e-8)));
  }
}

TEST_CASE("global-norm clipping") {
  std::vector<float> g = {3.0f, 4.0f};
  SUBCASE("scales down to the bound") {
    CHECK(clip_global_norm(g, 1.0) == doctest::Approx(5.0));
    CHECK(g[0] == doctest::Approx(0.6));
    CHECK(g[1] == doctest::Approx(0.8));
  }
  SUBCASE("leaves small gradients alone") {
    CHECK(clip_global_norm(g, 10.0) == doctest::Approx(5.0));
    CHECK(g[0] == 3.0f);
  }
  SUBCASE("0 turns clipping off") {
    clip_global_norm(g, 0.0);
    CHECK(g[1] == 4.0f);
  }
}

TEST_CASE("learning-rate schedules") {
  ScheduleConfig c;
  c.lr = 0.1;
  SUBCASE("constant") { CHECK(learning_rate(c, 500, 1000) == doctest::Approx(0.1)); }
  SUBCASE("linear warm-up") {
    c.warmup_steps = 4;
    CHECK(learning_rate(c, 0, 100) == doctest::Approx(0.025));
    CHECK(learning_rate(c, 3, 100) == doctest::Approx(0.1));
    CHECK(learning_rate(c, 4, 100) == doctest::Approx(0.1));
  }
  SUBCASE("step") {
    c.kind = ScheduleKind::kStep;
    c.decay_every = 10;
    c.decay_factor = 0.5;
    CHECK(learning_rate(c, 9, 100) == doctest::Approx(0.1));
    CHECK(learning_rate(c, 10, 100) == doctest::Approx(0.05));
    CHECK(learning_rate(c, 25, 100) == doctest::Approx(0.025));
    c.decay_every = 0;  // default: a third of the run
    CHECK(learning_rate(c, 33, 99) == doctest::Approx(0.05));
  }
  SUBCASE("cosine") {
    c.kind = ScheduleKind::kCosine;
    CHECK(learning_rate(c, 0, 100) == doctest::Approx(0.1));
    CHECK(learning_rate(c, 50, 100) == doctest::Approx(0.05));
    CHECK(learning_rate(c, 100, 100) == doctest::Approx(0.0).scale(1));
    c.warmup_steps = 10;
    CHECK(learning_rate(c, 55, 100) == doctest::Approx(0.05));
  }
}
