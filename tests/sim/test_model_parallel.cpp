// Pipeline and tensor parallelism as strategies (sim/strategies/pipeline.cpp, tensor.cpp):
// one step equals one node's, the bubble and the activations in flight follow the schedules,
// predictions hold, runs are the same for any thread count, and bad set-ups are refused.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/train/explain.hpp"
#include "sim/train/summary.hpp"
#include "sim/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

// Blobs (20 features, 4 classes), an MLP 20-32-24-16-4, batch 32.
const char* kBlobs = R"(
name = "mp"
seed = 7
[model]
kind = "mlp"
hidden = [32, 24, 16]
[data]
dataset = "blobs"
features = 20
classes = 4
train_samples = 640
test_samples = 200
[train]
optimizer = "sgd"
lr = 1.0
batch_size = 32
steps = 1
[cluster]
compute = "1 GFLOPS"
[network]
latency = "10us"
bandwidth = "10Gbps"
)";

Scenario scenario(const char* text, std::vector<std::string> overrides) {
  return parse_scenario(text, "mp.toml", overrides);
}

// With plain SGD at lr 1, one step's gradient is the initial parameters minus the final ones.
std::vector<float> one_step_gradient(const char* text, const std::vector<std::string>& overrides) {
  const Scenario s = scenario(text, overrides);
  const DatasetPair data = load_data(s);
  Training training(s, data, 2);
  const std::vector<float> before = training.global_params();
  training.run();
  const std::vector<float> after = training.global_params();
  std::vector<float> g(before.size());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = before[i] - after[i];
  return g;
}

void check_close(const std::vector<float>& a, const std::vector<float>& b, double rel) {
  REQUIRE(a.size() == b.size());
  double scale = 0;
  for (float v : b) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  REQUIRE(scale > 0);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < a.size(); ++i) wrong += std::fabs(a[i] - b[i]) > rel * scale ? 1 : 0;
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("one step of a split model is one node's step on the same batch") {
  const std::vector<float> single = one_step_gradient(kBlobs, {});
  SUBCASE("gpipe, 3 stages, 4 micro-batches") {
    check_close(one_step_gradient(kBlobs, {"strategy.architecture=pipeline", "strategy.sync=gpipe",
                                           "strategy.stages=3", "strategy.micro_batches=4"}),
                single, 1e-5);
  }
  SUBCASE("1f1b, 4 stages, 8 micro-batches") {
    check_close(one_step_gradient(kBlobs, {"strategy.architecture=pipeline", "strategy.sync=1f1b",
                                           "strategy.stages=4", "strategy.micro_batches=8"}),
                single, 1e-5);
  }
  SUBCASE("tensor, Megatron pairs over 2 shards") {
    check_close(
        one_step_gradient(kBlobs, {"strategy.architecture=tensor", "strategy.tensor_parallel=2"}),
        single, 1e-5);
  }
  SUBCASE("tensor, the features in 3 columns") {
    check_close(one_step_gradient(kBlobs, {"strategy.architecture=tensor",
                                           "strategy.tensor_parallel=3", "data.partition=columns"}),
                single, 1e-5);
  }
}

TEST_CASE("one step of a split cnn is one node's step") {
  const char* cnn = R"(
name = "cnn"
seed = 2
[model]
kind = "cnn"
channels = [4, 8]
kernel = 3
hidden = [16]
[data]
train_samples = 256
test_samples = 64
[train]
optimizer = "sgd"
lr = 1.0
batch_size = 16
steps = 1
)";
  const std::vector<float> single = one_step_gradient(cnn, {});
  check_close(one_step_gradient(cnn, {"strategy.architecture=pipeline", "strategy.sync=1f1b",
                                      "strategy.stages=3", "strategy.micro_batches=4"}),
              single, 1e-5);
  check_close(
      one_step_gradient(cnn, {"strategy.architecture=tensor", "strategy.tensor_parallel=2"}),
      single, 1e-5);
}

namespace {

// Four equal stages: a 1-feature input makes the first layer's cost negligible, so each
// stage is one 512x512 dense layer (the last with the loss); messages take no time.
const char* kEqualStages = R"(
name = "bubble"
[model]
kind = "mlp"
hidden = [512, 512, 512, 512]
[data]
dataset = "blobs"
features = 1
classes = 512
train_samples = 4000
test_samples = 100
[train]
batch_size = 64
steps = 3
[cluster]
compute = "1 TFLOPS"
[network]
latency = "0us"
bandwidth = "100000 Tbps"
[strategy]
architecture = "pipeline"
sync = "gpipe"
stages = 4
micro_batches = 8
stage_layers = [2, 1, 1, 1]
time_only = true
)";

}  // namespace

TEST_CASE("equal stages idle (p-1)/(m+p-1) of the fill and drain; 1f1b holds at most p") {
  for (const char* sync : {"gpipe", "1f1b"}) {
    CAPTURE(sync);
    const Scenario s = scenario(kEqualStages, {fmt::format("strategy.sync={}", sync)});
    const RunResult r = run_training(s, load_data(s), 2);
    REQUIRE(r.model_parallel.has_value());
    const ModelParallelStats& mp = *r.model_parallel;
    CHECK(mp.bubble_fraction == doctest::Approx(3.0 / 11).epsilon(0.01));  // 0.273
    REQUIRE(mp.peak_in_flight.size() == 4);
    for (int st = 0; st < 4; ++st) {
      CAPTURE(st);
      CHECK(mp.stage_bubble[st] == doctest::Approx(3.0 / 11).epsilon(0.01));
      // GPipe keeps all 8 micro-batches; 1F1B at most p - s.
      CHECK(mp.peak_in_flight[st] == (std::string(sync) == "gpipe" ? 8 : 4 - st));
    }
    // Each micro-batch of 8 keeps the stage's input and outputs: 512 + 2 * 512 floats for
    // the middle stages (dense + relu).
    CHECK(mp.activation_bytes[1] ==
          static_cast<std::uint64_t>(mp.peak_in_flight[1]) * 8 * (512 + 2 * 512) * 4);
    // Three boundaries, 8 micro-batches of 8 x 512 floats each way.
    CHECK(mp.activation_bytes_per_step == 3 * 2 * 8 * 8 * 512 * 4);
    CHECK(r.nodes[2].role == "stage 2");
    CHECK(r.nodes[2].steps == 3);
  }
}

TEST_CASE("explain predicts uncontended split runs within 2%") {
  // Messages far shorter than the computation between them, so that none share a link.
  for (const std::vector<std::string>& split :
       {std::vector<std::string>{"strategy.architecture=pipeline", "strategy.sync=gpipe",
                                 "strategy.stages=3", "strategy.micro_batches=4"},
        {"strategy.architecture=pipeline", "strategy.sync=1f1b", "strategy.stages=4",
         "strategy.micro_batches=8", "strategy.data_parallel=2"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2", "strategy.data_parallel=2"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=3", "data.partition=blocks",
         "strategy.data_parallel=2"}}) {
    std::vector<std::string> overrides = split;
    for (const char* o : {"train.steps=6", "network.bandwidth=\"1000Gbps\""})
      overrides.push_back(o);
    CAPTURE(overrides[0]);
    CAPTURE(overrides[1]);
    const Scenario s = scenario(kBlobs, overrides);
    const DatasetPair data = load_data(s);
    const Explanation e = explain(s, data);
    const RunResult r = run_training(s, data, 2);
    CHECK(e.run_s == doctest::Approx(r.virtual_time_s).epsilon(0.02));
  }
}

TEST_CASE("a time-only split run takes the time and reports the measures of a full one") {
  for (const std::vector<std::string>& split :
       {std::vector<std::string>{"strategy.architecture=pipeline", "strategy.sync=1f1b",
                                 "strategy.stages=3", "strategy.micro_batches=4"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2", "model.hidden=[32, 24]"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2", "data.partition=blocks",
         "strategy.data_parallel=2"}}) {
    std::vector<std::string> overrides = split;
    overrides.push_back("train.steps=4");
    CAPTURE(overrides[0]);
    CAPTURE(overrides[1]);
    const Scenario full = scenario(kBlobs, overrides);
    overrides.push_back("strategy.time_only=true");
    const Scenario sized = scenario(kBlobs, overrides);
    const DatasetPair data = load_data(full);
    const RunResult a = run_training(full, data, 2);
    const RunResult b = run_training(sized, data, 2);
    CHECK(a.virtual_time_s == b.virtual_time_s);
    REQUIRE(a.model_parallel);
    REQUIRE(b.model_parallel);
    CHECK(a.model_parallel->activation_bytes == b.model_parallel->activation_bytes);
    CHECK(a.model_parallel->activation_bytes_per_step ==
          b.model_parallel->activation_bytes_per_step);
    CHECK(a.model_parallel->bubble_fraction == b.model_parallel->bubble_fraction);
    CHECK(b.model_parallel->activation_bytes[0] > 0);
  }
}

TEST_CASE("split runs are the same for any number of threads") {
  for (const std::vector<std::string>& split :
       {std::vector<std::string>{"strategy.architecture=pipeline", "strategy.sync=1f1b",
                                 "strategy.stages=3", "strategy.micro_batches=4",
                                 "strategy.data_parallel=2"},
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2",
         "strategy.data_parallel=2"}}) {
    std::vector<std::string> overrides = split;
    overrides.push_back("train.steps=10");
    overrides.push_back("train.lr=0.1");
    overrides.push_back("train.eval_every=5");
    const Scenario s = scenario(kBlobs, overrides);
    const DatasetPair data = load_data(s);
    const RunResult a = run_training(s, data, 1);
    const RunResult b = run_training(s, data, 2);
    REQUIRE(a.evals.size() == b.evals.size());
    for (std::size_t i = 0; i < a.evals.size(); ++i) {
      CHECK(a.evals[i].test_loss == b.evals[i].test_loss);
      CHECK(a.evals[i].virtual_time_s == b.evals[i].virtual_time_s);
    }
  }
}

TEST_CASE("split models train Fashion-MNIST as one node does") {
  const char* fashion = R"(
name = "fashion"
seed = 5
[model]
kind = "mlp"
hidden = [128, 64]
[data]
train_samples = 10000
test_samples = 2000
[train]
optimizer = "sgd"
lr = 0.05
batch_size = 64
epochs = 1
eval_every = 1000
)";
  const auto accuracy = [&](std::vector<std::string> overrides) {
    const Scenario s = scenario(fashion, overrides);
    const RunResult r = run_training(s, load_data(s), 2);
    return r.evals.back().test_accuracy;
  };
  const double single = accuracy({});
  CHECK(single > 0.7);
  CHECK(accuracy({"strategy.architecture=pipeline", "strategy.sync=gpipe", "strategy.stages=3",
                  "strategy.micro_batches=4"}) == doctest::Approx(single).epsilon(0.005));
  CHECK(accuracy({"strategy.architecture=pipeline", "strategy.sync=1f1b", "strategy.stages=3",
                  "strategy.micro_batches=8"}) == doctest::Approx(single).epsilon(0.005));
  CHECK(accuracy({"strategy.architecture=tensor", "strategy.tensor_parallel=2"}) ==
        doctest::Approx(single).epsilon(0.005));
}

TEST_CASE("split set-ups that cannot work are refused, naming the key") {
  const auto set_up_error = [&](std::vector<std::string> overrides) -> InputError {
    const Scenario s = scenario(kBlobs, overrides);
    try {
      Training training(s, load_data(s), 1);
    } catch (const InputError& e) {
      return e;
    }
    FAIL("set up");
    return InputError({}, "", "");
  };
  const auto load_errors = [&](std::vector<std::string> overrides) {
    try {
      scenario(kBlobs, overrides);
    } catch (const ScenarioError& e) {
      return e.errors();
    }
    FAIL("loaded");
    return std::vector<InputError>{};
  };
  SUBCASE("more stages than layers") {
    const InputError e = set_up_error(
        {"strategy.architecture=pipeline", "strategy.sync=gpipe", "strategy.stages=5"});
    CHECK(e.key() == "strategy.stages");
    CHECK_CONTAINS(e.message(), "use at most 4");
  }
  SUBCASE("stage_layers that do not add up") {
    const InputError e = set_up_error({"strategy.architecture=pipeline", "strategy.sync=gpipe",
                                       "strategy.stages=2", "strategy.stage_layers=[1, 2]"});
    CHECK(e.key() == "strategy.stage_layers");
  }
  SUBCASE("micro-batches that do not divide the batch") {
    const auto e = load_errors({"strategy.architecture=pipeline", "strategy.sync=gpipe",
                                "strategy.stages=2", "strategy.micro_batches=5"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.micro_batches");
    CHECK_CONTAINS(e[0].message(), "train.batch_size = 32");
  }
  SUBCASE("a width tensor_parallel does not divide") {
    const InputError e =
        set_up_error({"strategy.architecture=tensor", "strategy.tensor_parallel=3"});
    CHECK(e.key() == "strategy.tensor_parallel");
    CHECK_CONTAINS(e.message(), "32 cannot be split 3 ways");
  }
  SUBCASE("a sync mode the architecture does not run") {
    const auto e = load_errors({"strategy.architecture=pipeline", "strategy.sync=bsp"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.sync");
    CHECK_CONTAINS(e[0].message(), "gpipe | 1f1b");
  }
  SUBCASE("workers that are not stages x data_parallel") {
    const auto e = load_errors({"strategy.architecture=pipeline", "strategy.sync=gpipe",
                                "strategy.stages=2", "cluster.workers=3"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "cluster.workers");
    CHECK_CONTAINS(e[0].message(), "= 2 nodes");
  }
  SUBCASE("feature splits and row groups") {
    auto e = load_errors(
        {"strategy.architecture=tensor", "strategy.tensor_parallel=2", "data.partition=blocks"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "data.partition");
    CHECK_CONTAINS(e[0].message(), "with one row group use partition = \"columns\"");
    e = load_errors({"strategy.architecture=tensor", "strategy.tensor_parallel=2",
                     "strategy.data_parallel=2", "data.partition=columns"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "data.partition");
    CHECK_CONTAINS(e[0].message(), "use partition = \"blocks\"");
  }
  SUBCASE("columns of a cnn's image") {
    const Scenario s = parse_scenario(
        "name = \"x\"\n[model]\nkind = \"cnn\"\n[data]\ntrain_samples = 64\ntest_samples = 16\n"
        "partition = \"columns\"\n[strategy]\narchitecture = \"tensor\"\ntensor_parallel = 2\n",
        "x.toml");
    try {
      Training training(s, load_data(s), 1);
      FAIL("set up");
    } catch (const InputError& e) {
      CHECK(e.key() == "data.partition");
    }
  }
}
