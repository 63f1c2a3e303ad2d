#include <doctest/doctest.h>

#include <cmath>

#include "engine/data/synthetic.hpp"
#include "sim/local_trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

Scenario blobs_scenario() {
  return parse_scenario(R"(
name = "blobs"
seed = 3
[model]
kind = "mlp"
hidden = [16]
[data]
dataset = "blobs"
features = 10
classes = 4
train_samples = 800
test_samples = 400
[train]
lr = 0.05
batch_size = 20
epochs = 3
eval_every = 40
target_accuracy = 0.9
)",
                        "blobs.toml");
}

}  // namespace

TEST_CASE("one node learns separable blobs") {
  const Scenario s = blobs_scenario();
  const DatasetPair data = load_data(s);
  std::vector<EvalPoint> streamed;
  const RunResult r =
      train_single_node(s, data, [&](const EvalPoint& p) { streamed.push_back(p); });
  REQUIRE(r.evals.size() == 4);  // step 0, 40, 80, 120 (= 3 epochs of 40 steps)
  CHECK(streamed.size() == r.evals.size());
  CHECK(r.evals[0].step == 0);
  CHECK(r.evals.back().step == 120);
  CHECK(r.evals.back().samples == 2400);
  CHECK(r.evals.back().epoch == doctest::Approx(3.0));
  CHECK(std::isnan(r.evals[0].train_loss));
  CHECK(r.evals[0].test_accuracy < 0.6);
  CHECK(r.evals.back().test_accuracy > 0.95);
  CHECK(r.evals.back().test_loss < r.evals[0].test_loss / 4);
  REQUIRE(r.time_to_target_s.has_value());
  CHECK(*r.time_to_target_s == doctest::Approx(r.evals[1].virtual_time_s));
  CHECK_FALSE(r.diverged);
  REQUIRE(r.nodes.size() == 1);
  CHECK(r.nodes[0].steps == 120);
  CHECK(r.nodes[0].compute_s == doctest::Approx(r.virtual_time_s));
}

TEST_CASE("virtual time is FLOPs over speed plus per-sample loading cost") {
  // Softmax regression 4 -> 3, batch 10, 100 samples = 10 steps, on a 1 GFLOP/s node, so
  // one FLOP is one nanosecond:
  //   forward  2*10*4*3 (products) + 10*3 (bias) + 4*10*3 (loss) = 390
  //   backward 2*10*4*3 (weight gradient; no input gradient) + 10*3 (bias gradient) = 270
  //   momentum update 5 * 15 parameters = 75
  //   loading 10 samples * 1 us = 10000
  const Scenario s = parse_scenario(R"(
name = "time"
[model]
kind = "softmax"
[data]
dataset = "blobs"
features = 4
classes = 3
train_samples = 100
test_samples = 10
load_cost = "1us"
[train]
batch_size = 10
epochs = 1
[cluster]
compute = "1 GFLOPS"
)",
                                    "time.toml");
  const RunResult r = train_single_node(s, load_data(s));
  CHECK(r.steps == 10);
  CHECK(r.virtual_time_s == doctest::Approx(10 * (390 + 270 + 75 + 10000) * 1e-9).epsilon(1e-12));
}

TEST_CASE("linear regression recovers the true weights") {
  const Scenario s = parse_scenario(R"(
name = "linreg"
seed = 4
[model]
kind = "softmax"
[data]
dataset = "linreg"
features = 5
noise = 0.01
train_samples = 2000
test_samples = 200
[train]
optimizer = "sgd"
lr = 0.05
batch_size = 16
epochs = 5
)",
                                    "linreg.toml");
  const DatasetPair data = load_data(s);
  const RunResult r = train_single_node(s, data);
  CHECK(std::isnan(r.evals.back().test_accuracy));
  // Half mean squared error of a perfect fit is noise^2 / 2 = 5e-5.
  CHECK(r.evals.back().test_loss < 2e-4);
  CHECK(r.evals.front().test_loss > 1.0);
}

TEST_CASE("the same seed gives the same run, another seed another") {
  Scenario s = blobs_scenario();
  const RunResult a = train_single_node(s, load_data(s));
  const RunResult b = train_single_node(s, load_data(s));
  REQUIRE(a.evals.size() == b.evals.size());
  for (std::size_t i = 0; i < a.evals.size(); ++i) {
    CHECK(a.evals[i].test_loss == b.evals[i].test_loss);
    CHECK(a.evals[i].virtual_time_s == b.evals[i].virtual_time_s);
  }
  s.seed = 4;
  const RunResult c = train_single_node(s, load_data(s));
  CHECK(c.evals.back().test_loss != a.evals.back().test_loss);
}

TEST_CASE("a diverging run stops with a diagnosis") {
  Scenario s = blobs_scenario();
  s.data.dataset = "linreg";
  s.train.target_accuracy.reset();
  s.train.schedule.lr = 1e6;
  s.train.optimizer.kind = OptimizerKind::kSgd;
  const RunResult r = train_single_node(s, load_data(s));
  CHECK(r.diverged);
  CHECK_CONTAINS(r.diverged_reason, "lower train.lr");
  CHECK(r.steps < 120);
  CHECK(r.evals.back().step == r.steps);
}

TEST_CASE("gradient clipping bounds each update") {
  Scenario s = blobs_scenario();
  s.train.optimizer.kind = OptimizerKind::kSgd;
  s.train.steps = 1;
  s.train.epochs = 0;
  s.train.eval_every = 1;
  const RunResult free_run = train_single_node(s, load_data(s));
  s.train.clip_norm = 1e-6;
  const RunResult clipped = train_single_node(s, load_data(s));
  // One step of at most lr * 1e-6 barely moves the model: its test loss stays at the start.
  CHECK(clipped.evals.back().test_loss ==
        doctest::Approx(clipped.evals.front().test_loss).epsilon(1e-5));
  CHECK(free_run.evals.back().test_loss < free_run.evals.front().test_loss - 1e-3);
}
