// Synchronization modes: equivalences that must hold exactly, and behaviour on small
// synthetic problems (sim/strategies/).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sim/train/summary.hpp"
#include "sim/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

// Blobs, a small MLP, 4 workers on a star; `extra` overrides keys ("strategy.sync=asp").
Scenario modes_scenario(const std::vector<std::string>& extra) {
  return parse_scenario(R"(
name = "modes"
seed = 5
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
                        "modes.toml", extra);
}

RunResult run(const std::vector<std::string>& extra, int threads = 1) {
  const Scenario s = modes_scenario(extra);
  return run_training(s, load_data(s), threads);
}

// Equal, or both NaN (no training loss since the previous point).
bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Every evaluation point's numbers, bit for bit.
void check_same_curve(const RunResult& a, const RunResult& b) {
  REQUIRE(a.evals.size() == b.evals.size());
  for (std::size_t i = 0; i < a.evals.size(); ++i) {
    CAPTURE(i);
    CHECK(a.evals[i].samples == b.evals[i].samples);
    CHECK(same(a.evals[i].train_loss, b.evals[i].train_loss));
    CHECK(a.evals[i].test_loss == b.evals[i].test_loss);
    CHECK(a.evals[i].test_accuracy == b.evals[i].test_accuracy);
  }
}

std::map<std::uint64_t, std::uint64_t> histogram(const RunResult& r) {
  return {r.staleness_histogram.begin(), r.staleness_histogram.end()};
}

}  // namespace

TEST_CASE("ssp with s = 0 gives exactly the bsp result") {
  for (const char* servers : {"cluster.servers=1", "cluster.servers=3"}) {
    CAPTURE(servers);
    // A straggler and jitter, so arrivals at the servers come in a changing order.
    const std::vector<std::string> common = {
        "strategy.architecture=ps", servers, "cluster.stragglers.fraction=0.25",
        "cluster.stragglers.slowdown=3", "cluster.stragglers.jitter=0.3"};
    std::vector<std::string> ssp = common;
    ssp.insert(ssp.end(), {"strategy.sync=ssp", "strategy.staleness=0"});
    const RunResult a = run(common);
    const RunResult b = run(ssp);
    check_same_curve(a, b);
    CHECK(b.steps == a.steps);
    CHECK(histogram(b) == std::map<std::uint64_t, std::uint64_t>{{0, 4 * a.steps}});
  }
}

TEST_CASE("asp with one worker is sequential SGD") {
  const RunResult seq = run({"cluster.workers=1"});
  const RunResult asp = run(
      {"cluster.workers=1", "strategy.architecture=ps", "cluster.servers=1", "strategy.sync=asp"});
  check_same_curve(seq, asp);
  CHECK(asp.steps == seq.steps);
  CHECK(histogram(asp) == std::map<std::uint64_t, std::uint64_t>{{0, seq.steps}});
}

TEST_CASE("delayed: every gradient is exactly tau updates old") {
  SUBCASE("tau = 0 with one worker is sequential SGD") {
    const RunResult seq = run({"cluster.workers=1"});
    const RunResult d = run({"cluster.workers=1", "strategy.architecture=ps", "cluster.servers=1",
                             "strategy.sync=delayed", "strategy.staleness=0"});
    check_same_curve(seq, d);
  }
  SUBCASE("tau = 0 with four workers: one gradient at a time, each on the newest version") {
    const RunResult d = run({"strategy.architecture=ps", "cluster.servers=1",
                             "strategy.sync=delayed", "strategy.staleness=0"});
    const std::uint64_t gradients = 4 * 10 * 2;  // 640 / (4 * 16) = 10 steps per epoch
    CHECK(d.steps == gradients);
    CHECK(histogram(d) == std::map<std::uint64_t, std::uint64_t>{{0, gradients}});
    // Sequential: the workers' compute never overlaps, so it adds up in virtual time.
    double compute = 0;
    for (int w = 0; w < 4; ++w) compute += d.nodes[static_cast<std::size_t>(w)].compute_s;
    CHECK(d.virtual_time_s > compute);
  }
  SUBCASE("tau = 3: the first three are younger, every later one exactly 3") {
    // (At lr 0.05 with momentum 0.9, a delay of 3 makes this problem oscillate.)
    const RunResult d = run({"strategy.architecture=ps", "cluster.servers=2",
                             "strategy.sync=delayed", "strategy.staleness=3", "train.lr=0.01"});
    CHECK(histogram(d) ==
          std::map<std::uint64_t, std::uint64_t>{{0, 1}, {1, 1}, {2, 1}, {3, d.steps - 3}});
    CHECK(d.evals.back().test_accuracy > 0.9);
  }
}

TEST_CASE("local SGD with H = 1 and plain SGD follows bsp") {
  const RunResult bsp = run({"train.optimizer=\"sgd\""});
  const RunResult local =
      run({"train.optimizer=\"sgd\"", "strategy.sync=local-sgd", "strategy.local_steps=1"});
  REQUIRE(bsp.evals.size() == local.evals.size());
  for (std::size_t i = 1; i < bsp.evals.size(); ++i) {
    CAPTURE(i);
    CHECK(local.evals[i].test_loss == doctest::Approx(bsp.evals[i].test_loss).epsilon(1e-5));
    // Averaged every step: the replicas agree up to float rounding.
    CHECK(local.evals[i].consensus_distance < 1e-5);
  }
  // With H = 4 they drift apart between averagings, and are one model at the end.
  const RunResult h4 =
      run({"train.optimizer=\"sgd\"", "strategy.sync=local-sgd", "strategy.local_steps=4"});
  CHECK(h4.evals[1].consensus_distance > 1e-3);  // step 5: one step after an average
  CHECK(h4.evals.back().consensus_distance < 1e-5);
  // And it communicates a quarter as often as bsp.
  CHECK(h4.evals.back().bytes_sent * 3 < bsp.evals.back().bytes_sent);
}

TEST_CASE("backup workers: b = 0 is bsp; b = 1 drops the straggler's gradients") {
  // A slow compute speed, so gradients (not messages) take most of a step.
  const std::vector<std::string> straggler = {"cluster.stragglers.fraction=0.25",
                                              "cluster.stragglers.slowdown=4",
                                              "cluster.compute=\"0.02 GFLOPS\""};
  std::vector<std::string> none = straggler;
  none.push_back("strategy.backup_workers=0");
  check_same_curve(run(straggler), run(none));
  for (const char* arch : {"allreduce", "ps"}) {
    CAPTURE(arch);
    std::vector<std::string> base = straggler;
    base.push_back(std::string("strategy.architecture=") + arch);
    if (std::string(arch) == "ps") base.push_back("cluster.servers=1");
    std::vector<std::string> backup = base;
    backup.push_back("strategy.backup_workers=1");
    const RunResult bsp = run(base);
    const RunResult b1 = run(backup);
    CHECK(b1.steps == bsp.steps);
    // The straggler (slowdown 4) never makes the first three; the others always do.
    int straggler_node = -1;
    for (const NodeStats& n : b1.nodes) {
      if (n.role == "worker" && n.compute_flops_per_s < 0.01e9) straggler_node = n.node;
    }
    REQUIRE(straggler_node >= 0);
    for (int w = 0; w < 4; ++w) {
      CAPTURE(w);
      const NodeStats& n = b1.nodes[static_cast<std::size_t>(w)];
      if (w == straggler_node) {
        CHECK(n.dropped > 0);
        CHECK(n.dropped == n.steps);
      } else {
        CHECK(n.dropped == 0);
        CHECK(n.steps == b1.steps);
      }
    }
    CHECK(b1.samples == b1.steps * 3 * 16);
    // A step takes a fast gradient, not the straggler's four.
    CHECK(b1.virtual_time_s < 0.4 * bsp.virtual_time_s);
    CHECK(b1.evals.back().test_accuracy > 0.9);
  }
}

TEST_CASE("with one 4x straggler of 8, asp and ssp finish the samples before bsp") {
  const std::vector<std::string> common = {"cluster.workers=8",
                                           "strategy.architecture=ps",
                                           "cluster.servers=1",
                                           "cluster.stragglers.fraction=0.125",
                                           "cluster.stragglers.slowdown=4",
                                           "cluster.compute=\"0.02 GFLOPS\""};
  const auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), common.begin(), common.end());
    return run(more);
  };
  const RunResult bsp = with({});
  const RunResult asp = with({"strategy.sync=asp"});
  const RunResult ssp = with({"strategy.sync=ssp", "strategy.staleness=3"});
  CHECK(asp.samples == bsp.samples);
  CHECK(ssp.samples == bsp.samples);
  CHECK(asp.virtual_time_s < 0.6 * bsp.virtual_time_s);
  CHECK(ssp.virtual_time_s < bsp.virtual_time_s);
  CHECK(asp.virtual_time_s < ssp.virtual_time_s);
  // The straggler does a quarter as many gradients as a fast worker under asp.
  std::uint64_t fewest = ~0ull;
  std::uint64_t most = 0;
  for (int w = 0; w < 8; ++w) {
    fewest = std::min(fewest, asp.nodes[static_cast<std::size_t>(w)].steps);
    most = std::max(most, asp.nodes[static_cast<std::size_t>(w)].steps);
  }
  CHECK(static_cast<double>(most) / static_cast<double>(fewest) ==
        doctest::Approx(4.0).epsilon(0.2));
}

TEST_CASE("asp staleness grows with the number of workers") {
  double last = -1;
  for (const int p : {1, 2, 4, 8}) {
    CAPTURE(p);
    const RunResult r = run({"cluster.workers=" + std::to_string(p), "strategy.architecture=ps",
                             "cluster.servers=1", "strategy.sync=asp"});
    const double mean = *summary_value(r, "mean_staleness");
    CHECK(mean > last);
    // Equal workers take turns: each gradient waits for about the other p - 1.
    CHECK(mean == doctest::Approx(p - 1).epsilon(0.2));
    last = mean;
  }
}

TEST_CASE("ssp never exceeds its bound") {
  for (const int s : {1, 2, 5}) {
    CAPTURE(s);
    const RunResult r = run({"cluster.workers=8", "strategy.architecture=ps", "cluster.servers=2",
                             "strategy.sync=ssp", "strategy.staleness=" + std::to_string(s),
                             "cluster.stragglers.fraction=0.25", "cluster.stragglers.slowdown=3",
                             "cluster.stragglers.jitter=0.5"});
    REQUIRE_FALSE(r.staleness_histogram.empty());
    CHECK(r.staleness_histogram.back().first == static_cast<std::uint64_t>(s));
    for (const EvalPoint& p : r.evals) CHECK(p.max_staleness <= static_cast<std::uint64_t>(s));
  }
}

TEST_CASE("staleness-aware lr and delay compensation change asp's updates") {
  const std::vector<std::string> asp = {"strategy.architecture=ps", "cluster.servers=1",
                                        "strategy.sync=asp"};
  const RunResult plain = run(asp);
  std::vector<std::string> scaled = asp;
  scaled.push_back("strategy.staleness_lr=true");
  std::vector<std::string> dc = asp;
  dc.push_back("strategy.delay_compensation=0.5");
  const RunResult a = run(scaled);
  const RunResult b = run(dc);
  // Same timing, different numbers.
  CHECK(a.virtual_time_s == plain.virtual_time_s);
  CHECK(histogram(a) == histogram(plain));
  CHECK(a.evals.back().test_loss != plain.evals.back().test_loss);
  CHECK(b.evals.back().test_loss != plain.evals.back().test_loss);
  // With one worker nothing is stale: lr / max(1, 0) and w - w_read = 0 change nothing.
  const std::vector<std::string> one = {"cluster.workers=1", "strategy.architecture=ps",
                                        "cluster.servers=1", "strategy.sync=asp"};
  std::vector<std::string> one_both = one;
  one_both.insert(one_both.end(),
                  {"strategy.staleness_lr=true", "strategy.delay_compensation=0.5"});
  check_same_curve(run(one), run(one_both));
}

TEST_CASE("d-psgd: the replicas' spread shrinks with the learning rate") {
  double last = 1e9;
  for (const char* lr : {"0.2", "0.05", "0.01", "0.0"}) {
    CAPTURE(lr);
    const RunResult r = run({"strategy.architecture=gossip", "strategy.sync=d-psgd",
                             std::string("train.lr=") + lr, "cluster.workers=6"});
    double spread = 0;
    for (const EvalPoint& p : r.evals) spread = std::max(spread, p.consensus_distance);
    CHECK(spread < last);
    last = spread;
    if (std::string(lr) == "0.0") CHECK(spread < 1e-6);  // mixing equal replicas: rounding
  }
}

TEST_CASE("gossip modes learn, and ad-psgd keeps the replicas close") {
  const RunResult d = run({"strategy.architecture=gossip", "strategy.sync=d-psgd"});
  const RunResult ad = run({"strategy.architecture=gossip", "strategy.sync=ad-psgd"});
  CHECK(d.evals.back().test_accuracy > 0.9);
  CHECK(ad.evals.back().test_accuracy > 0.9);
  CHECK(ad.steps == 4 * 20);  // one update per gradient
  CHECK(std::isnan(ad.evals.back().mean_staleness));
  CHECK(ad.evals.back().consensus_distance < 0.5);
  // d-psgd on a ring of 4: each worker sends its replica to 2 neighbours every step.
  const std::uint64_t n = 10 * 16 + 16 + 16 * 4 + 4;
  CHECK(d.evals.back().bytes_sent == 20 * 4 * 2 * n * 4);
}

TEST_CASE("every mode gives the same files for any number of threads") {
  const std::vector<std::vector<std::string>> modes = {
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.sync=asp"},
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.sync=ssp",
       "strategy.staleness=2"},
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.sync=delayed",
       "strategy.staleness=2"},
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.backup_workers=1"},
      {"strategy.backup_workers=1"},
      {"strategy.sync=local-sgd", "strategy.local_steps=3"},
      {"strategy.architecture=gossip", "strategy.sync=d-psgd"},
      {"strategy.architecture=gossip", "strategy.sync=ad-psgd"},
  };
  for (std::vector<std::string> m : modes) {
    CAPTURE(m[m.size() - 1]);
    m.push_back("cluster.stragglers.jitter=0.4");
    const RunResult a = run(m, 1);
    const RunResult b = run(m, 2);
    check_same_curve(a, b);
    CHECK(a.virtual_time_s == b.virtual_time_s);
    CHECK(a.staleness_histogram == b.staleness_histogram);
  }
}

TEST_CASE("time-only runs of every mode take the same virtual time as with numerics") {
  const std::vector<std::vector<std::string>> modes = {
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.sync=asp"},
      {"strategy.architecture=ps", "cluster.servers=2", "strategy.sync=ssp",
       "strategy.staleness=1"},
      {"strategy.architecture=ps", "cluster.servers=1", "strategy.sync=delayed",
       "strategy.staleness=1"},
      {"strategy.architecture=ps", "cluster.servers=1", "strategy.backup_workers=2"},
      {"strategy.sync=local-sgd", "strategy.local_steps=2"},
      {"strategy.architecture=gossip", "strategy.sync=d-psgd"},
      {"strategy.architecture=gossip", "strategy.sync=ad-psgd"},
  };
  for (std::vector<std::string> m : modes) {
    CAPTURE(m[m.size() - 1]);
    m.push_back("cluster.stragglers.jitter=0.2");
    const RunResult with = run(m);
    m.push_back("strategy.time_only=true");
    const RunResult without = run(m);
    CHECK(without.virtual_time_s == with.virtual_time_s);
    CHECK(without.steps == with.steps);
  }
}

TEST_CASE("a diverging asynchronous run stops with a diagnosis") {
  for (const char* sync : {"asp", "ssp", "delayed"}) {
    CAPTURE(sync);
    const RunResult r =
        run({"strategy.architecture=ps", "cluster.servers=1", std::string("strategy.sync=") + sync,
             "strategy.staleness=2", "train.lr=1e4"});
    CHECK(r.diverged);
    CHECK_CONTAINS(r.diverged_reason, "lower train.lr");
    CHECK(r.steps < 4 * 20);
  }
  const RunResult ad =
      run({"strategy.architecture=gossip", "strategy.sync=ad-psgd", "train.lr=1e4"});
  CHECK(ad.diverged);
  CHECK(ad.steps < 4 * 20);
  // Lock-step replicas: local SGD stops at the next average, d-psgd runs to the end.
  const RunResult local =
      run({"strategy.sync=local-sgd", "strategy.local_steps=4", "train.lr=1e4"});
  CHECK(local.diverged);
  CHECK(local.steps % 4 == 0);
  CHECK(local.steps < 20);
  const RunResult d = run({"strategy.architecture=gossip", "strategy.sync=d-psgd", "train.lr=1e4"});
  CHECK(d.diverged);
  CHECK_CONTAINS(d.diverged_reason, "lower train.lr");
}

namespace {

// A shipped teaching scenario's sweep points, time-only (the trade-off in time and bytes does
// not depend on the numerics), one epoch.
std::vector<RunResult> teaching_points_time_only(const std::string& file) {
  const std::string path = std::string(DTSIM_SOURCE_DIR) + "/scenarios/teaching/" + file;
  const Scenario base = load_scenario(path);
  std::vector<RunResult> out;
  for (const SweepPoint& point : expand_sweep(base)) {
    CAPTURE(point.label);
    Scenario s = load_scenario(path, point.overrides);
    s.strategy.time_only = true;
    s.train.target_accuracy.reset();
    s.train.epochs = 1;
    out.push_back(run_training(s, load_data(s), 2));
  }
  return out;
}

bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace

TEST_CASE("teaching: sync vs async with a straggler shows the trade-off in time") {
  if (!have_fashion_mnist()) return;  // scripts/setup installs it; the app tests require it
  // Points: bsp, asp, asp + staleness_lr, ssp (s = 2), bsp + 1 backup worker.
  const std::vector<RunResult> r = teaching_points_time_only("sync-vs-async.toml");
  REQUIRE(r.size() == 5);
  const RunResult& bsp = r[0];
  const RunResult& asp = r[1];
  const RunResult& ssp = r[3];
  const RunResult& backup = r[4];
  // Nobody waits for the straggler in asp; backup workers drop it; ssp soon waits at its bound.
  CHECK(asp.virtual_time_s < 0.4 * bsp.virtual_time_s);
  CHECK(backup.virtual_time_s < 0.5 * bsp.virtual_time_s);
  CHECK(ssp.virtual_time_s < bsp.virtual_time_s);
  CHECK(ssp.virtual_time_s > 0.95 * bsp.virtual_time_s);
  CHECK(r[2].virtual_time_s == asp.virtual_time_s);  // staleness_lr changes numbers, not time
  // 8 workers taking turns: gradients land about 7 updates late; ssp's are at most 2.
  CHECK(*summary_value(asp, "mean_staleness") == doctest::Approx(7.0).epsilon(0.05));
  CHECK(*summary_value(ssp, "max_staleness") == 2);
  CHECK(*summary_value(bsp, "max_staleness") == 0);
  // Worker 7 (4x slower) does a quarter of a fast worker's gradients under asp, and every one
  // of its gradients is dropped with a backup worker.
  CHECK(static_cast<double>(asp.nodes[0].steps) / static_cast<double>(asp.nodes[7].steps) ==
        doctest::Approx(4.0).epsilon(0.15));
  CHECK(backup.nodes[7].dropped == backup.nodes[7].steps);
  CHECK(backup.nodes[0].dropped == 0);
}

TEST_CASE("teaching: local SGD and gossip communicate less") {
  if (!have_fashion_mnist()) return;
  // Points: bsp, local-sgd H = 4, 16, 64, d-psgd, ad-psgd.
  const std::vector<RunResult> r = teaching_points_time_only("local-sgd.toml");
  REQUIRE(r.size() == 6);
  const auto bytes = [](const RunResult& x) { return *summary_value(x, "bytes_sent_total"); };
  for (std::size_t i = 1; i <= 3; ++i) {
    CAPTURE(i);
    CHECK(r[i].virtual_time_s < r[i - 1].virtual_time_s);
    CHECK(bytes(r[i]) < bytes(r[i - 1]) / 3.5);
  }
  // Gossip sends each replica to 2 neighbours, about what a ring allreduce moves, but without
  // the allreduce's 2(p - 1) latency-bound steps, and overlapped with the gradient.
  CHECK(r[4].virtual_time_s < r[0].virtual_time_s);
}

TEST_CASE("teaching: data vs model parallelism on four nodes") {
  if (!have_fashion_mnist()) return;
  // Points: bsp; gpipe m = 1, 4, 16; 1f1b m = 1, 4, 16; 2 stages x 2 replicas; tensor;
  // feature split.
  const std::vector<RunResult> r = teaching_points_time_only("model-parallel.toml");
  REQUIRE(r.size() == 10);
  const auto bytes = [](const RunResult& x) { return *summary_value(x, "bytes_sent_total"); };
  for (std::size_t i = 1; i < r.size(); ++i) {
    CAPTURE(i);
    REQUIRE(r[i].model_parallel);
    CHECK(r[i].steps == r[0].steps);  // one global batch of 128 everywhere
  }
  const ModelParallelStats& m1 = *r[1].model_parallel;
  const ModelParallelStats& m16 = *r[3].model_parallel;
  const ModelParallelStats& f16 = *r[6].model_parallel;
  // A pipeline sends activations only: a small share of data parallelism's gradient bytes.
  CHECK(bytes(r[1]) < bytes(r[0]) / 10);
  CHECK(bytes(r[1]) == bytes(r[3]));
  // More micro-batches: a smaller bubble and a shorter step, above the equal-stage formula
  // since stage 0 holds the 784-wide layer.
  CHECK(m1.bubble_fraction > r[2].model_parallel->bubble_fraction);
  CHECK(r[2].model_parallel->bubble_fraction > m16.bubble_fraction);
  CHECK(m16.bubble_fraction > 3.0 / 19.0);
  CHECK(r[3].virtual_time_s < 0.5 * r[1].virtual_time_s);
  CHECK(r[3].virtual_time_s < r[0].virtual_time_s);
  // With one micro-batch the two schedules are the same.
  CHECK(r[4].virtual_time_s == r[1].virtual_time_s);
  // GPipe holds all 16 micro-batches, 1F1B at most p - s; here its short queue exposes the
  // messages' latency, so it is slower.
  CHECK(m16.peak_in_flight == std::vector<int>{16, 16, 16, 16});
  CHECK(f16.peak_in_flight == std::vector<int>{4, 3, 2, 1});
  CHECK(r[5].model_parallel->peak_in_flight == std::vector<int>{4, 3, 2, 1});
  CHECK(f16.activation_bytes[0] * 4 == m16.activation_bytes[0]);
  CHECK(r[6].virtual_time_s > r[3].virtual_time_s);
  // Tensor shards never wait for another stage, but allreduce activations.
  CHECK(r[8].model_parallel->bubble_fraction == 0);
  CHECK(bytes(r[8]) > bytes(r[1]));
}
