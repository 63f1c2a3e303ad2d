// Compression, aggregation rules and Byzantine workers in training runs
// (sim/strategies/coded_exchange.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/compress.hpp"
#include "sim/train/summary.hpp"
#include "sim/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

// Blobs, a small MLP (10-16-4: 244 parameters), 4 workers on a star.
Scenario coded_scenario(std::vector<std::string> extra) {
  return parse_scenario(R"(
name = "coded"
seed = 8
[model]
kind = "mlp"
hidden = [16]
[data]
dataset = "blobs"
features = 10
classes = 4
train_samples = 640
test_samples = 300
[train]
optimizer = "momentum"
lr = 0.05
batch_size = 16
epochs = 2
eval_every = 5
[cluster]
workers = 4
compute = "1 GFLOPS"
[network]
latency = "10us"
bandwidth = "10Gbps"
)",
                        "coded.toml", extra);
}

RunResult run(const std::vector<std::string>& extra, int threads = 1) {
  const Scenario s = coded_scenario(extra);
  return run_training(s, load_data(s), threads);
}

constexpr std::uint64_t kParams = 10 * 16 + 16 + 16 * 4 + 4;
constexpr std::uint64_t kSteps = 20;  // 640 / (4 * 16) per epoch, 2 epochs

std::uint64_t bytes(const RunResult& r) {
  return static_cast<std::uint64_t>(*summary_value(r, "bytes_sent_total"));
}

}  // namespace

TEST_CASE("gathering the raw gradients and taking their weighted mean is bsp") {
  const RunResult bsp = run({});
  const RunResult gathered = run({"strategy.aggregation=\"weighted-mean\""});
  REQUIRE(bsp.evals.size() == gathered.evals.size());
  for (std::size_t i = 1; i < bsp.evals.size(); ++i) {
    CAPTURE(i);
    CHECK(gathered.evals[i].test_loss == doctest::Approx(bsp.evals[i].test_loss).epsilon(1e-4));
  }
  // A ring allgather of 4 * 244 bytes per worker and step: p (p - 1) payloads in all.
  CHECK(bytes(gathered) == kSteps * 4 * 3 * kParams * 4);
}

TEST_CASE("the wire carries each codec's real payload") {
  // Top-k of 10%: 24 (index, value) pairs and a count, gathered around the ring.
  const RunResult topk = run({"compression.codec=\"topk\"", "compression.ratio=0.1"});
  CHECK(bytes(topk) == kSteps * 4 * 3 * (4 + 8 * 24));
  // Sign: a bit per element.
  const RunResult sign = run({"compression.codec=\"sign\""});
  CHECK(bytes(sign) == kSteps * 4 * 3 * ((kParams + 7) / 8));
  // fp16 rides the ring allreduce at half the bytes of float.
  const RunResult plain = run({});
  const RunResult fp16 = run({"compression.codec=\"fp16\""});
  CHECK(bytes(fp16) * 2 == bytes(plain));
  // Random-k of 10%: 24 values, allreduced (the indices come from the shared seed).
  const RunResult randomk = run({"compression.codec=\"randomk\"", "compression.ratio=0.1"});
  CHECK(static_cast<double>(bytes(randomk)) ==
        doctest::Approx(static_cast<double>(bytes(plain)) * 24 / kParams).epsilon(0.02));
  // PowerSGD rank 1: the 16x10 and 4x16 weights become 16 + 10 and 4 + 16 floats (each
  // (n + m) * 2 < n m), the 20 biases travel as they are; three allreduces instead of one.
  const RunResult power = run({"compression.codec=\"powersgd\"", "compression.rank=1"});
  CHECK(
      static_cast<double>(bytes(power)) ==
      doctest::Approx(static_cast<double>(bytes(plain)) * (26 + 20 + 20) / kParams).epsilon(0.02));
  // To a parameter server: each worker pushes its payload, the server sends floats back.
  const RunResult ps =
      run({"strategy.architecture=\"ps\"", "cluster.servers=1", "compression.codec=\"int8\""});
  CHECK(bytes(ps) == kSteps * 4 * ((8 + kParams) + kParams * 4));
}

TEST_CASE("codecs change the numbers, not whether the run learns") {
  const RunResult plain = run({});
  for (const char* codec : {"fp16", "bf16", "int8", "qsgd", "terngrad", "onebit", "sign", "ef-sign",
                            "topk", "randomk", "powersgd"}) {
    CAPTURE(codec);
    const RunResult r =
        run({std::string("compression.codec=\"") + codec + "\"", "compression.ratio=0.25"});
    CHECK(r.evals.back().test_accuracy > 0.9);
    if (std::string(codec) != "fp16" && std::string(codec) != "bf16") {
      CHECK(r.evals.back().test_loss != plain.evals.back().test_loss);
    }
  }
}

TEST_CASE("time-only runs of every codec take the same virtual time as with numerics") {
  for (const char* codec :
       {"int8", "qsgd", "terngrad", "sign", "topk", "randomk", "powersgd", "fp16"}) {
    CAPTURE(codec);
    std::vector<std::string> m = {std::string("compression.codec=\"") + codec + "\"",
                                  "compression.ratio=0.1", "compression.warmup_steps=5"};
    const RunResult with = run(m);
    m.push_back("strategy.time_only=true");
    const RunResult without = run(m);
    CHECK(without.virtual_time_s == with.virtual_time_s);
    CHECK(bytes(without) == bytes(with));
  }
}

TEST_CASE("compressed runs are the same for any number of threads") {
  for (const std::vector<std::string>& m : std::vector<std::vector<std::string>>{
           {"compression.codec=\"qsgd\""},
           {"compression.codec=\"powersgd\""},
           {"strategy.architecture=\"ps\"", "cluster.servers=2", "compression.codec=\"topk\"",
            "strategy.aggregation=\"median\""}}) {
    CAPTURE(m[0]);
    const RunResult a = run(m, 1);
    const RunResult b = run(m, 2);
    REQUIRE(a.evals.size() == b.evals.size());
    for (std::size_t i = 0; i < a.evals.size(); ++i)
      CHECK(a.evals[i].test_loss == b.evals[i].test_loss);
    CHECK(a.virtual_time_s == b.virtual_time_s);
  }
}

TEST_CASE("encoding and decoding cost compute time, as the scenario says") {
  const RunResult cheap =
      run({"compression.codec=\"int8\"", "compression.encode_flops_per_element=0",
           "compression.decode_flops_per_element=0"});
  const RunResult dear =
      run({"compression.codec=\"int8\"", "compression.encode_flops_per_element=1000",
           "compression.decode_flops_per_element=0"});
  // 1000 FLOPs per element at 1 GFLOP/s: 244 us more per step and worker.
  CHECK(dear.nodes[0].compute_s - cheap.nodes[0].compute_s ==
        doctest::Approx(kSteps * 1000.0 * kParams / 1e9).epsilon(1e-6));
}

TEST_CASE("one Byzantine worker of 8: the mean breaks, robust rules hold") {
  const std::vector<std::string> attack = {"cluster.workers=8", "train.epochs=4",
                                           "faults=[{kind=\"byzantine\", node=3, at=\"0s\", "
                                           "mode=\"sign-flip\", factor=10}]"};
  const auto with = [&](const char* rule) {
    std::vector<std::string> m = attack;
    m.push_back(std::string("strategy.aggregation=\"") + rule + "\"");
    m.push_back("strategy.trim=1");
    return run(m);
  };
  const RunResult mean = with("mean");
  CHECK(mean.evals.back().test_accuracy < 0.6);
  for (const char* rule : {"median", "trimmed-mean", "krum", "multi-krum"}) {
    CAPTURE(rule);
    CHECK(with(rule).evals.back().test_accuracy > 0.9);
  }
}

TEST_CASE("robust rules where a server sees several gradients at once: ssp, backup workers") {
  const std::vector<std::string> attack = {
      "cluster.workers=8", "train.epochs=4", "cluster.servers=1", "strategy.architecture=\"ps\"",
      "faults=[{kind=\"byzantine\", node=3, at=\"0s\", mode=\"sign-flip\", factor=10}]"};
  const auto with = [&](const std::vector<std::string>& mode, const char* rule) {
    std::vector<std::string> m = attack;
    m.insert(m.end(), mode.begin(), mode.end());
    m.push_back(std::string("strategy.aggregation=\"") + rule + "\"");
    m.push_back("strategy.trim=1");
    return run(m);
  };
  const std::vector<std::vector<std::string>> modes = {
      {"strategy.sync=\"ssp\"", "strategy.staleness=1"},
      {"strategy.sync=\"bsp\"", "strategy.backup_workers=1"}};
  for (const std::vector<std::string>& mode : modes) {
    CAPTURE(mode[0]);
    const RunResult mean = with(mode, "mean");
    CHECK(mean.evals.back().test_accuracy < 0.6);
    for (const char* rule : {"median", "trimmed-mean", "krum"}) {
      CAPTURE(rule);
      const RunResult r = with(mode, rule);
      CHECK(r.evals.back().test_accuracy > 0.9);
      // The rule is charged: the server's compute is more than the mean's.
      CHECK(r.nodes[8].compute_s > mean.nodes[8].compute_s);
    }
  }
  // Fewer gradients a step than the rule needs: refused.
  CHECK_THROWS_WITH_AS(coded_scenario({"cluster.workers=5", "cluster.servers=1",
                                       "strategy.architecture=\"ps\"", "strategy.backup_workers=1",
                                       "strategy.aggregation=\"krum\"", "strategy.trim=1"}),
                       doctest::Contains("with backup_workers = 1 a step counts 4"), ScenarioError);
}

TEST_CASE("gossip with compression is CHOCO-SGD: fewer bytes, the same accuracy") {
  const std::vector<std::string> gossip = {"strategy.architecture=\"gossip\"",
                                           "strategy.sync=\"d-psgd\"", "train.epochs=4"};
  const auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), gossip.begin(), gossip.end());
    return extra;
  };
  const RunResult plain = run(gossip);
  const double accuracy = plain.evals.back().test_accuracy;
  REQUIRE(accuracy > 0.9);
  const std::uint64_t steps = 2 * kSteps;
  for (const char* codec : {"topk", "qsgd", "fp16"}) {
    CAPTURE(codec);
    const std::vector<std::string> extra =
        with({std::string("compression.codec=\"") + codec + "\"", "compression.ratio=0.25"});
    const RunResult r = run(extra);
    CHECK(r.evals.back().test_accuracy >= accuracy - 0.02);
    // Each of the 4 workers sends its payload to its 2 ring neighbours every step.
    const Scenario s = coded_scenario(extra);
    const Compressor sizes(s.compression, kParams, s.seed, 0);
    CHECK(bytes(r) == 4 * 2 * steps * sizes.payload_size(0));
    CHECK(bytes(r) < bytes(plain));
    // The same virtual time without numerics, and for any number of threads.
    std::vector<std::string> time_only = extra;
    time_only.push_back("strategy.time_only=true");
    CHECK(run(time_only).virtual_time_s == r.virtual_time_s);
    const RunResult two = run(extra, 2);
    CHECK(two.evals.back().test_accuracy == r.evals.back().test_accuracy);
    CHECK(two.evals.back().consensus_distance == r.evals.back().consensus_distance);
  }
  // A tiny consensus step barely mixes: the replicas drift apart.
  const RunResult apart = run(with({"compression.codec=\"topk\"", "compression.ratio=0.25",
                                    "strategy.consensus_step=0.000001"}));
  const RunResult mixed = run(with({"compression.codec=\"topk\"", "compression.ratio=0.25"}));
  CHECK(apart.evals.back().consensus_distance > 2 * mixed.evals.back().consensus_distance);
  // What makes no sense here is refused.
  CHECK_THROWS_WITH_AS(coded_scenario(with({"compression.codec=\"sign\""})),
                       doctest::Contains("d-psgd sends its replica's differences"), ScenarioError);
  CHECK_THROWS_WITH_AS(
      coded_scenario(with({"compression.codec=\"topk\"", "compression.error_feedback=true"})),
      doctest::Contains("leave error_feedback out"), ScenarioError);
  CHECK_THROWS_WITH_AS(coded_scenario({"strategy.architecture=\"gossip\"",
                                       "strategy.sync=\"ad-psgd\"", "compression.codec=\"topk\""}),
                       doctest::Contains("compression works with"), ScenarioError);
}

TEST_CASE("a Byzantine fault starts at its time") {
  const RunResult honest = run({});
  const double half = honest.evals[2].virtual_time_s;  // after step 10
  const RunResult late = run({"faults=[{kind=\"byzantine\", node=1, at=\"" +
                              std::to_string(half * 1e6) + "us\", mode=\"scale\", factor=-50}]"});
  // Identical until the fault, different after.
  CHECK(late.evals[1].test_loss == honest.evals[1].test_loss);
  CHECK(late.evals[2].test_loss == honest.evals[2].test_loss);
  CHECK(late.evals.back().test_loss != honest.evals.back().test_loss);
}

TEST_CASE("asynchronous servers take compressed gradients, each worker with its own memory") {
  const std::vector<std::string> ps = {"strategy.architecture=ps", "cluster.servers=2",
                                       "data.spread=2.5", "train.epochs=4", "train.lr=0.01"};
  const auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), ps.begin(), ps.end());
    return more;
  };
  for (const std::vector<std::string>& mode : {std::vector<std::string>{"strategy.sync=asp"},
                                               {"strategy.sync=ssp", "strategy.staleness=2"},
                                               {"strategy.sync=delayed", "strategy.staleness=3"}}) {
    CAPTURE(mode[0]);
    std::vector<std::string> plain_keys = with(mode);
    const RunResult plain = run(plain_keys);
    for (const char* codec : {"topk", "fp16"}) {
      CAPTURE(codec);
      std::vector<std::string> keys = plain_keys;
      keys.push_back(std::string("compression.codec=\"") + codec + "\"");
      keys.push_back("compression.ratio=0.1");
      const RunResult r = run(keys);
      // Within 2 points of the uncompressed run, and learning (chance is 0.25). (At lr 0.05
      // these asynchronous runs explode, compressed or not.)
      CHECK(std::fabs(r.evals.back().test_accuracy - plain.evals.back().test_accuracy) <= 0.02);
      CHECK(r.evals.back().test_accuracy > 0.6);
      CHECK(r.evals.back().test_loss != plain.evals.back().test_loss);
      // Top-k pushes about a tenth of the values (with their indices), fp16 half the bytes.
      CHECK(bytes(r) < bytes(plain));
      // The same time without numerics, and the same numbers on 2 threads.
      keys.push_back("strategy.time_only=true");
      const RunResult sized = run(keys);
      CHECK(sized.virtual_time_s == r.virtual_time_s);
      CHECK(bytes(sized) == bytes(r));
      keys.pop_back();
      const RunResult two = run(keys, 2);
      CHECK(two.evals.back().test_loss == r.evals.back().test_loss);
    }
  }
}
