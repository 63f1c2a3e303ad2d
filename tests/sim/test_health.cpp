// The health rules (sim/train/health.hpp) on hand-made evaluation points, and on real runs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "sim/train/health.hpp"
#include "sim/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

EvalPoint point(std::uint64_t step, double train_loss, double test_loss, double accuracy,
                double grad_norm = kNaN) {
  EvalPoint p;
  p.step = step;
  p.train_loss = train_loss;
  p.test_loss = test_loss;
  p.test_accuracy = accuracy;
  p.grad_norm = grad_norm;
  return p;
}

// The health of each point in turn.
std::vector<Health> judge(HealthMonitor& m, const std::vector<EvalPoint>& points,
                          std::string* last_reason = nullptr) {
  std::vector<Health> out;
  for (const EvalPoint& p : points) {
    std::string reason;
    out.push_back(m.classify(p, 0.1, reason));
    CHECK(reason.empty() == (out.back() == Health::kOk));
    if (last_reason != nullptr && !reason.empty()) *last_reason = reason;
  }
  return out;
}

using H = Health;

}  // namespace

TEST_CASE("health: a run that learns is ok, whatever its speed") {
  HealthMonitor m;
  m.start(10, 1000);
  const std::vector<EvalPoint> points = {
      point(0, kNaN, 2.30, 0.10),        point(200, 2.1, 2.0, 0.25, 1.0),
      point(400, 1.0, 0.9, 0.70, 3.0),   point(600, 0.6, 0.6, 0.80, 5.0),
      point(1000, 0.5, 0.55, 0.82, 4.0),
  };
  CHECK(judge(m, points) == std::vector<H>(5, H::kOk));
}

TEST_CASE("health: a training loss 10x the initial test loss has exploded") {
  HealthMonitor m;
  m.start(10, 1000);
  std::string reason;
  const auto h = judge(
      m, {point(0, kNaN, 2.0, 0.1), point(200, 19.9, 2.1, 0.3), point(400, 25, 2.5, 0.2)}, &reason);
  CHECK(h == std::vector<H>{H::kOk, H::kOk, H::kExploded});
  CHECK(reason ==
        "the training loss reached 25 by step 400, 12.5x the initial model's test loss "
        "2 (lr 0.1)");
}

TEST_CASE("health: a gradient norm 100x its first has exploded") {
  HealthMonitor m;
  m.start(0, 1000);  // regression: no accuracy
  std::string reason;
  const auto h = judge(m,
                       {point(0, kNaN, 1.0, kNaN), point(100, 0.9, 0.9, kNaN, 0.5),
                        point(200, 0.9, 0.9, kNaN, 49.0), point(300, 0.9, 0.9, kNaN, 51.0)},
                       &reason);
  CHECK(h == std::vector<H>{H::kOk, H::kOk, H::kOk, H::kExploded});
  CHECK_CONTAINS(reason,
                 "the gradient norm reached 51 by step 300, 102x its first measured "
                 "value 0.5");
}

TEST_CASE("health: back at chance after learning, or never leaving it, is a collapse") {
  const double ln10 = std::log(10.0);
  SUBCASE("after learning") {
    HealthMonitor m;
    m.start(10, 1000);
    std::string reason;
    const auto h = judge(m,
                         {point(0, kNaN, ln10, 0.1), point(100, 1.0, 1.0, 0.6),
                          point(200, 2.3, ln10, 0.115), point(300, 2.3, 0.95 * ln10, 0.11)},
                         &reason);
    // 0.115 is within 0.02 of chance (0.1), with the loss of a guess: collapsed from 200.
    CHECK(h == std::vector<H>{H::kOk, H::kOk, H::kCollapsed, H::kCollapsed});
    CHECK_CONTAINS(reason,
                   "test accuracy fell back to chance (0.1100, chance 0.1) at step 300 "
                   "after reaching 0.6000");
  }
  SUBCASE("a loss well under ln(classes) is not chance, even at chance's accuracy") {
    HealthMonitor m;
    m.start(10, 1000);
    CHECK(judge(m, {point(0, kNaN, ln10, 0.1), point(100, 1.0, 1.0, 0.6),
                    point(200, 1.9, 0.8 * ln10, 0.11)}) == std::vector<H>{H::kOk, H::kOk, H::kOk});
  }
  SUBCASE("never leaving chance: only from half the run on") {
    HealthMonitor m;
    m.start(10, 1000);
    std::string reason;
    const auto h =
        judge(m, {point(0, kNaN, ln10, 0.1), point(400, 2.4, 2.4, 0.1), point(500, 2.4, 2.4, 0.1)},
              &reason);
    CHECK(h == std::vector<H>{H::kOk, H::kOk, H::kCollapsed});
    CHECK_CONTAINS(reason, "still at chance (0.1000, chance 0.1) at step 500 of 1000");
  }
  SUBCASE("a regression task never collapses") {
    HealthMonitor m;
    m.start(0, 1000);
    CHECK(judge(m, {point(0, kNaN, 5, kNaN), point(900, 5, 5, kNaN)}) ==
          std::vector<H>{H::kOk, H::kOk});
  }
}

TEST_CASE("health of real runs: a NaN names the worker, its step, its node and where") {
  const Scenario s = parse_scenario(R"(
name = "nan"
seed = 3
[data]
dataset = "blobs"
train_samples = 512
test_samples = 128
[model]
hidden = [16, 16]
[train]
optimizer = "sgd"
lr = 1e30
batch_size = 16
steps = 20
eval_every = 5
)",
                                    "nan.toml");
  const RunResult r = run_training(s, load_data(s), 2);
  CHECK(r.health == Health::kNonFinite);
  CHECK(r.diverged);
  CHECK(r.evals.back().health == Health::kNonFinite);
  CHECK_CONTAINS(r.health_reason, "(node 0)");
  // The first step's update makes the weights huge but finite; the next forward overflows in
  // the second dense layer (layers: dense, relu, dense, relu, dense).
  CHECK_CONTAINS(r.health_reason,
                 "at step 2 (lr 1e+30), first in the output of layer 3 of 5 "
                 "(dense) (node 0)");
  REQUIRE(r.layer_names.size() == 6);
  CHECK(r.layer_names[0] == "dense1.weight");
}
