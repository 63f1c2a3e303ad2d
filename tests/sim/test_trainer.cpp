#include <doctest/doctest.h>

#include <cmath>

#include "engine/data/batch_sampler.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/schedule.hpp"
#include "sim/train/explain.hpp"
#include "sim/train/summary.hpp"
#include "sim/train/trainer.hpp"
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
  struct Streamed : SimObserver {
    std::vector<EvalPoint>& out;
    explicit Streamed(std::vector<EvalPoint>& o) : out(o) {}
    void on_evaluation(const EvalPoint& p) override { out.push_back(p); }
  } observer(streamed);
  const RunResult r = run_training(s, data, 1, {&observer});
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
  const RunResult r = run_training(s, load_data(s), 1);
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
  const RunResult r = run_training(s, data, 1);
  CHECK(std::isnan(r.evals.back().test_accuracy));
  // Half mean squared error of a perfect fit is noise^2 / 2 = 5e-5.
  CHECK(r.evals.back().test_loss < 2e-4);
  CHECK(r.evals.front().test_loss > 1.0);
}

TEST_CASE("the same seed gives the same run, another seed another") {
  Scenario s = blobs_scenario();
  const RunResult a = run_training(s, load_data(s), 1);
  const RunResult b = run_training(s, load_data(s), 1);
  REQUIRE(a.evals.size() == b.evals.size());
  for (std::size_t i = 0; i < a.evals.size(); ++i) {
    CHECK(a.evals[i].test_loss == b.evals[i].test_loss);
    CHECK(a.evals[i].virtual_time_s == b.evals[i].virtual_time_s);
  }
  s.seed = 4;
  const RunResult c = run_training(s, load_data(s), 1);
  CHECK(c.evals.back().test_loss != a.evals.back().test_loss);
}

TEST_CASE("a diverging run stops with a diagnosis") {
  Scenario s = blobs_scenario();
  s.data.dataset = "linreg";
  s.train.target_accuracy.reset();
  s.train.schedule.lr = 1e6;
  s.train.optimizer.kind = OptimizerKind::kSgd;
  const RunResult r = run_training(s, load_data(s), 1);
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
  const RunResult free_run = run_training(s, load_data(s), 1);
  s.train.clip_norm = 1e-6;
  const RunResult clipped = run_training(s, load_data(s), 1);
  // One step of at most lr * 1e-6 barely moves the model: its test loss stays at the start.
  CHECK(clipped.evals.back().test_loss ==
        doctest::Approx(clipped.evals.front().test_loss).epsilon(1e-5));
  CHECK(free_run.evals.back().test_loss < free_run.evals.front().test_loss - 1e-3);
}

namespace {

// One node with batch p*b, fed the concatenation of the p workers' batches, step by step:
// what BSP data parallelism must reproduce. Returns the test loss after every step.
std::vector<double> reference_curve(const Scenario& s, const DatasetPair& data, int steps) {
  const int p = s.cluster.workers;
  const int b = s.train.batch_size;
  const Model model(s.model, {data.train.channels, data.train.height, data.train.width},
                    data.train.task, data.train.outputs);
  std::vector<float> params = model.init_params(s.seed);
  std::vector<float> grads(model.num_params());
  Optimizer optimizer(s.train.optimizer, model.num_params());
  Workspace ws(model, p * b);
  Workspace eval_ws(model, 500);
  const auto shards = partition(data.train, p, s.data.partition, s.seed);
  std::vector<BatchSampler> samplers;
  for (int w = 0; w < p; ++w) {
    samplers.emplace_back(shards[static_cast<std::size_t>(w)].rows, b, s.seed,
                          static_cast<std::uint32_t>(w));
  }
  std::vector<double> curve;
  std::vector<std::uint32_t> rows, part;
  for (int step = 0; step < steps; ++step) {
    rows.clear();
    for (auto& sampler : samplers) {
      sampler.next(part);
      rows.insert(rows.end(), part.begin(), part.end());
    }
    const Batch batch = gather_batch(data.train, rows, ws);
    model.gradient(params, batch, grads, ws);
    optimizer.step(params, grads,
                   learning_rate(s.train.schedule, static_cast<std::uint64_t>(step),
                                 static_cast<std::uint64_t>(steps)));
    curve.push_back(model.evaluate(params, data.test, eval_ws).loss);
  }
  return curve;
}

// 4 workers on blobs, 12 steps; `cluster` is added to [cluster], `rest` after it.
Scenario bsp_scenario(const std::string& rest, const std::string& cluster = "") {
  return parse_scenario(R"(
name = "bsp"
seed = 5
[model]
kind = "mlp"
hidden = [12]
[data]
dataset = "blobs"
features = 6
classes = 3
train_samples = 600
test_samples = 200
[train]
optimizer = "momentum"
lr = 0.1
batch_size = 8
steps = 12
eval_every = 1
schedule = "cosine"
[cluster]
workers = 4
)" + cluster + rest,
                        "bsp.toml");
}

}  // namespace

TEST_CASE("BSP over p workers of batch b follows one node with batch p*b") {
  const std::pair<const char*, const char*> strategies[] = {
      {"[strategy]\ncollective = \"ring\"\n", ""},
      {"[strategy]\ncollective = \"tree\"\n", ""},
      {"[strategy]\ncollective = \"halving-doubling\"\n", ""},
      {"[network]\ntopology = \"hierarchical\"\nnodes_per_machine = 2\n"
       "[strategy]\ncollective = \"hierarchical\"\n",
       ""},
      {"[strategy]\narchitecture = \"ps\"\n", "servers = 1\n"},
      {"[strategy]\narchitecture = \"ps\"\n", "servers = 3\n"},
  };
  for (const auto& [strategy, cluster] : strategies) {
    CAPTURE(strategy);
    CAPTURE(cluster);
    const Scenario s = bsp_scenario(strategy, cluster);
    const DatasetPair data = load_data(s);
    const RunResult r = run_training(s, data, 1);
    const std::vector<double> expected = reference_curve(s, data, 12);
    REQUIRE(r.evals.size() == 13);
    for (int i = 0; i < 12; ++i) {
      CAPTURE(i);
      CHECK(r.evals[static_cast<std::size_t>(i) + 1].test_loss ==
            doctest::Approx(expected[static_cast<std::size_t>(i)]).epsilon(1e-5));
    }
    CHECK(r.evals.back().samples == 12 * 4 * 8);
    CHECK(r.evals.back().bytes_sent > 0);
  }
}

TEST_CASE("a BSP step costs gradient + allreduce + update in virtual time") {
  // Softmax regression 4 -> 3 has 15 parameters: 3 ring parts of 5 floats (20 bytes).
  // 1 GFLOP/s: a FLOP is a nanosecond. Star links of 1 us and 1e9 B/s: a = 2 us, b = 1 ns/B.
  //   gradient: forward 2*8*4*3 + 8*3 + 4*8*3 = 312, backward 2*8*4*3 + 8*3 = 216 -> 528 ns
  //   ring allreduce: 2(p-1) = 4 messages of 20 bytes: 4 * (2000 + 20) ns, plus the two
  //     reductions and two copies of 5 floats on the critical path: 4 * 5 ns
  //   update: momentum 5 * 15 + averaging 15 = 90 ns
  const Scenario s = parse_scenario(R"(
name = "cost"
[model]
kind = "softmax"
[data]
dataset = "blobs"
features = 4
classes = 3
train_samples = 240
[train]
batch_size = 8
steps = 5
[cluster]
workers = 3
compute = "1 GFLOPS"
[network]
latency = "1us"
bandwidth = "1 GB/s"
)",
                                    "cost.toml");
  const RunResult r = run_training(s, load_data(s), 1);
  CHECK(r.steps == 5);
  CHECK(r.virtual_time_s == doctest::Approx(5 * (528 + 4 * 2020 + 20 + 90) * 1e-9).epsilon(1e-12));
  REQUIRE(r.nodes.size() == 3);
  for (const NodeStats& n : r.nodes) {
    CHECK(n.compute_s == doctest::Approx(5 * (528 + 20 + 90) * 1e-9).epsilon(1e-12));
    CHECK(n.compute_s + n.comm_s + n.idle_s == doctest::Approx(r.virtual_time_s).epsilon(1e-12));
    CHECK(n.bytes_sent == 5 * 4 * 20);
  }
}

TEST_CASE("time-only mode moves sizes and skips numerics") {
  Scenario s = bsp_scenario("[strategy]\ntime_only = true\n");
  const RunResult r = run_training(s, load_data(s), 1);
  Scenario real = bsp_scenario("");
  const RunResult rr = run_training(real, load_data(real), 1);
  CHECK(r.virtual_time_s == doctest::Approx(rr.virtual_time_s).epsilon(1e-12));
  CHECK(std::isnan(r.evals.back().test_loss));
  CHECK(r.nodes[1].bytes_sent == rr.nodes[1].bytes_sent);
}

TEST_CASE("results do not depend on the number of threads") {
  Scenario s = bsp_scenario("");
  s.cluster.workers = 8;
  s.model.hidden = {64, 32};
  const DatasetPair data = load_data(s);
  const RunResult one = run_training(s, data, 1);
  const RunResult two = run_training(s, data, 2);
  const RunResult four = run_training(s, data, 4);
  REQUIRE(one.evals.size() == two.evals.size());
  for (std::size_t i = 0; i < one.evals.size(); ++i) {
    CHECK(one.evals[i].test_loss == two.evals[i].test_loss);
    CHECK(one.evals[i].test_loss == four.evals[i].test_loss);
    if (i > 0) CHECK(one.evals[i].train_loss == two.evals[i].train_loss);
    CHECK(one.evals[i].virtual_time_s == two.evals[i].virtual_time_s);
  }
}

TEST_CASE("observers see every compute span, message and step") {
  struct Recorder : SimObserver {
    std::vector<double> compute_s = std::vector<double>(4, 0.0);
    std::uint64_t messages = 0, bytes = 0, steps = 0, gradients = 0;
    double last_arrival = 0;
    bool in_order = true;
    void on_compute(int node, const char* what, SimTime start, SimTime end) override {
      compute_s[static_cast<std::size_t>(node)] += (end - start).seconds();
      gradients += std::string(what) == "gradient";
    }
    void on_message(const Message& m, SimTime sent, SimTime arrived) override {
      ++messages;
      bytes += m.bytes;
      in_order = in_order && arrived.seconds() >= last_arrival && arrived > sent;
      last_arrival = arrived.seconds();
    }
    void on_step_end(std::uint64_t, SimTime) override { ++steps; }
  } rec;
  const Scenario s = bsp_scenario("");
  const RunResult r = run_training(s, load_data(s), 1, {&rec});
  CHECK(rec.steps == 12);
  CHECK(rec.gradients == 12 * 4);
  CHECK(rec.messages == 12 * 4 * 2 * 3);  // ring: 2(p-1) messages per worker per step
  CHECK(rec.in_order);
  std::uint64_t sent = 0;
  for (int n = 0; n < 4; ++n) {
    CHECK(rec.compute_s[static_cast<std::size_t>(n)] ==
          doctest::Approx(r.nodes[static_cast<std::size_t>(n)].compute_s));
    sent += r.nodes[static_cast<std::size_t>(n)].bytes_sent;
  }
  CHECK(rec.bytes == sent);
}

TEST_CASE("time-only runs take the same virtual time as runs with numerics") {
  // A slow node makes every charged operation visible: optimizer steps, sums and copies.
  for (const char* strategy :
       {"[strategy]\ncollective = \"ring\"\n", "[strategy]\ncollective = \"tree\"\n",
        "[strategy]\ncollective = \"halving-doubling\"\n",
        "[network]\ntopology = \"hierarchical\"\nnodes_per_machine = 2\n[strategy]\ncollective = "
        "\"hierarchical\"\n"}) {
    CAPTURE(strategy);
    for (OptimizerKind kind : {OptimizerKind::kMomentum, OptimizerKind::kAdam}) {
      Scenario real = bsp_scenario(strategy, "compute = \"1 GFLOPS\"\n");
      real.train.optimizer.kind = kind;
      Scenario sized = real;
      sized.strategy.time_only = true;
      const DatasetPair data = load_data(real);
      const RunResult a = run_training(real, data, 1);
      const RunResult b = run_training(sized, data, 1);
      CHECK(a.virtual_time_s == b.virtual_time_s);
      CHECK(a.nodes[0].compute_s == b.nodes[0].compute_s);
    }
  }
  Scenario ps =
      bsp_scenario("[strategy]\narchitecture = \"ps\"\n", "servers = 2\ncompute = \"1 GFLOPS\"\n");
  ps.train.optimizer.kind = OptimizerKind::kAdam;
  Scenario ps_sized = ps;
  ps_sized.strategy.time_only = true;
  const DatasetPair data = load_data(ps);
  CHECK(run_training(ps, data, 1).virtual_time_s == run_training(ps_sized, data, 1).virtual_time_s);
}

TEST_CASE("set-up errors are input errors") {
  SUBCASE("more server shards than parameters") {
    Scenario s = bsp_scenario("[strategy]\narchitecture = \"ps\"\n", "servers = 2\n");
    s.model.kind = ModelKind::kSoftmax;
    s.data.blobs.features = 1;
    s.data.blobs.classes = 2;  // 4 parameters
    s.cluster.servers = 5;
    CHECK_THROWS_WITH_AS(Training(s, load_data(s), 1),
                         doctest::Contains("5 server shards for a model of 4 parameters"),
                         InputError);
  }
  SUBCASE("more workers than samples") {
    Scenario s = bsp_scenario("");
    s.data.train_samples = 3;
    CHECK_THROWS_AS(Training(s, load_data(s), 1), InputError);
  }
}

TEST_CASE("failed [expect] checks say what was found and where") {
  Scenario s = bsp_scenario(
      "[expect]\nsteps = 12\nfinal_test_accuracy = \">= 2\"\ntime_to_target_s = \"< 1\"\n");
  const RunResult r = run_training(s, load_data(s), 1);
  const std::vector<std::string> failures = failed_expectations(s, r);
  REQUIRE(failures.size() == 2);
  CHECK_CONTAINS(failures[0], "expect final_test_accuracy >= 2: found 0.");
  CHECK_CONTAINS(failures[0], "bsp.toml:24:23");
  CHECK_CONTAINS(failures[1], "time_to_target_s < 1: it has no value");
  CHECK(summary_value(r, "steps") == 12.0);
  CHECK(*summary_value(r, "samples") == 12.0 * 4 * 8);
}

TEST_CASE("explain predicts the virtual time of an uncontended BSP run") {
  const std::pair<const char*, const char*> strategies[] = {
      {"[strategy]\ncollective = \"ring\"\n", ""},
      {"[strategy]\ncollective = \"tree\"\n", ""},
      {"[strategy]\ncollective = \"halving-doubling\"\n", ""},
      {"[network]\ntopology = \"hierarchical\"\nnodes_per_machine = 2\n[strategy]\ncollective = "
       "\"hierarchical\"\n",
       ""},
      {"[strategy]\narchitecture = \"ps\"\n", "servers = 2\n"},
      {"[network]\ntopology = \"ring\"\n[strategy]\narchitecture = \"ps\"\n", "servers = 2\n"},
      {"[strategy]\narchitecture = \"ps\"\n", "servers = 1\n"},
      // Robust rules gather every gradient.
      {"[strategy]\naggregation = \"median\"\n", ""},
      {"[strategy]\naggregation = \"trimmed-mean\"\ntrim = 1\n", ""},
      // And the other lock-step modes.
      {"[strategy]\nsync = \"local-sgd\"\nlocal_steps = 4\n", ""},
      {"[strategy]\nsync = \"local-sgd\"\nlocal_steps = 3\ncollective = \"tree\"\n", ""},
      {"[network]\ntopology = \"ring\"\n[strategy]\narchitecture = \"gossip\"\nsync = \"d-psgd\"\n",
       ""},
      {"[strategy]\narchitecture = \"gossip\"\nsync = \"d-psgd\"\n", ""},
      {"[network]\ntopology = \"full\"\n[strategy]\narchitecture = \"gossip\"\nsync = \"d-psgd\"\n",
       ""},
  };
  for (const auto& [strategy, cluster] : strategies) {
    CAPTURE(strategy);
    CAPTURE(cluster);
    const Scenario s = bsp_scenario(strategy, std::string(cluster) + "compute = \"1 GFLOPS\"\n");
    const DatasetPair data = load_data(s);
    const Explanation e = explain(s, data);
    const RunResult r = run_training(s, data, 1);
    CHECK(e.steps == r.steps);
    CHECK(e.run_s == doctest::Approx(r.virtual_time_s).epsilon(0.01));
    CHECK(e.bottleneck == (e.communicate_s > e.compute_s ? "communication" : "computation"));
  }
}

TEST_CASE("heterogeneous nodes: a slower worker holds BSP back by exactly its extra compute") {
  Scenario even = bsp_scenario("", "compute = \"1 GFLOPS\"\n");
  Scenario slow = bsp_scenario(
      "", "compute = \"1 GFLOPS\"\n[[cluster.group]]\nnodes = 3\ncompute = \"250 MFLOPS\"\n");
  const DatasetPair data = load_data(even);
  const RunResult a = run_training(even, data, 1);
  const RunResult b = run_training(slow, data, 1);
  // Worker 3 takes 4x as long for its gradient and update; the others wait for it each step.
  const double extra = b.nodes[3].compute_s - a.nodes[3].compute_s;
  CHECK(b.nodes[3].compute_flops_per_s == doctest::Approx(2.5e8));
  CHECK(b.nodes[0].compute_flops_per_s == doctest::Approx(1e9));
  CHECK(extra > 0);
  CHECK(b.virtual_time_s - a.virtual_time_s == doctest::Approx(extra).epsilon(0.02));
  // The fast ones wait for it (in the allreduce, or idle): by the same amount.
  CHECK(b.nodes[0].comm_s + b.nodes[0].idle_s - a.nodes[0].comm_s - a.nodes[0].idle_s ==
        doctest::Approx(extra).epsilon(0.02));
  // The numerics do not change: BSP is BSP, only time does.
  CHECK(b.evals.back().test_loss == a.evals.back().test_loss);
}

TEST_CASE("stragglers and jitter are seeded") {
  Scenario s = bsp_scenario(
      "", "compute = \"1 GFLOPS\"\n[cluster.stragglers]\nfraction = 0.25\nslowdown = 3.0\n");
  const DatasetPair data = load_data(s);
  const RunResult r = run_training(s, data, 1);
  int slowed = 0;
  for (const NodeStats& n : r.nodes) slowed += n.compute_flops_per_s < 1e9 / 2;
  CHECK(slowed == 1);
  s.cluster.stragglers = {0, 1, 0.3};
  const RunResult j1 = run_training(s, data, 1);
  const RunResult j2 = run_training(s, data, 1);
  CHECK(j1.virtual_time_s == j2.virtual_time_s);
  s.seed = 6;
  CHECK(run_training(s, load_data(s), 1).virtual_time_s != j1.virtual_time_s);
  Scenario plain = bsp_scenario("", "compute = \"1 GFLOPS\"\n");
  CHECK(run_training(plain, data, 1).virtual_time_s != j1.virtual_time_s);
}

TEST_CASE("a group's slower links slow the ring down") {
  Scenario fast = bsp_scenario("", "compute = \"1 GFLOPS\"\n");
  Scenario narrow = bsp_scenario("",
                                 "compute = \"1 GFLOPS\"\n[[cluster.group]]\nnodes = "
                                 "\"1-1\"\nbandwidth = \"100Mbps\"\nlatency = \"1ms\"\n");
  const DatasetPair data = load_data(fast);
  const RunResult a = run_training(fast, data, 1);
  const RunResult b = run_training(narrow, data, 1);
  // A ring step is a chain of 2(p-1) = 6 hops round the ring of 4; half of them (0->1, 1->2)
  // cross one of node 1's links and pay its 1 ms latency instead of 10 us: 3 ms more a step.
  CHECK(b.virtual_time_s - a.virtual_time_s ==
        doctest::Approx(12 * 3 * (1e-3 - 10e-6)).epsilon(0.05));
}
