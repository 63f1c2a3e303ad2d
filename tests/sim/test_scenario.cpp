#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "sim/scenario/scenario.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

// The errors of a scenario that must fail to load.
std::vector<InputError> errors_of(const std::string& text) {
  try {
    parse_scenario(text, "s.toml");
  } catch (const ScenarioError& e) {
    return e.errors();
  }
  FAIL("the scenario loaded but should not have");
  return {};
}

std::vector<InputError> errors_of_with(const std::string& text,
                                       const std::vector<std::string>& overrides) {
  try {
    parse_scenario(text, "s.toml", overrides);
  } catch (const ScenarioError& e) {
    return e.errors();
  }
  FAIL("the scenario loaded but should not have");
  return {};
}

}  // namespace

TEST_CASE("a minimal scenario gets the documented defaults") {
  const Scenario s = parse_scenario("name = \"x\"\n", "s.toml");
  CHECK(s.name == "x");
  CHECK(s.seed == 1);
  CHECK(s.model.kind == ModelKind::kMlp);
  CHECK(s.model.hidden == std::vector<int>{256, 128});
  CHECK(s.data.dataset == "fashion-mnist");
  CHECK(s.data.path == "/usr/share/datasets/fashion-mnist");
  CHECK(s.train.optimizer.kind == OptimizerKind::kMomentum);
  CHECK(s.train.schedule.lr == doctest::Approx(0.05));
  CHECK(s.train.batch_size == 64);
  CHECK(s.train.epochs == 1);
  CHECK_FALSE(s.train.target_accuracy.has_value());
  CHECK(s.cluster.workers == 1);
  CHECK(s.cluster.compute_flops_per_s == doctest::Approx(5e12));
}

TEST_CASE("every implemented key is read") {
  const Scenario s = parse_scenario(R"(
name = "all"
description = "d"
seed = 9
[model]
kind = "cnn"
hidden = [64]
activation = "tanh"
channels = [4, 8]
kernel = 3
[data]
dataset = "fashion-mnist"
path = "/tmp/fm"
train_samples = 1000
test_samples = 200
partition = "rows"
split = "dirichlet"
alpha = 0.3
load_cost = "3us"
[train]
optimizer = "adam"
lr = 0.001
momentum = 0.5
weight_decay = 0.01
beta1 = 0.8
beta2 = 0.99
epsilon = 1e-6
batch_size = 32
steps = 100
schedule = "step"
warmup_steps = 5
decay_every = 30
decay_factor = 0.5
final_lr_fraction = 0.1
clip_norm = 1.5
eval_every = 10
target_accuracy = 0.7
[cluster]
workers = 4
compute = "2 TFLOPS"
[network]
topology = "hierarchical"
latency = "50us"
bandwidth = "10Gbps"
nodes_per_machine = 2
intra_latency = "2us"
intra_bandwidth = "100 GB/s"
[strategy]
architecture = "allreduce"
sync = "bsp"
collective = "tree"
time_only = false
)",
                                    "s.toml");
  CHECK(s.description == "d");
  CHECK(s.seed == 9);
  CHECK(s.model.kind == ModelKind::kCnn);
  CHECK(s.model.hidden == std::vector<int>{64});
  CHECK(s.model.activation == Activation::kTanh);
  CHECK(s.model.channels == std::vector<int>{4, 8});
  CHECK(s.model.kernel == 3);
  CHECK(s.data.path == "/tmp/fm");
  CHECK(s.data.train_samples == 1000);
  CHECK(s.data.test_samples == 200);
  CHECK(s.data.partition.split == SplitKind::kDirichlet);
  CHECK(s.data.partition.alpha == doctest::Approx(0.3));
  CHECK(s.data.load_cost.ns() == 3000);
  CHECK(s.train.optimizer.kind == OptimizerKind::kAdam);
  CHECK(s.train.schedule.lr == doctest::Approx(0.001));
  CHECK(s.train.optimizer.momentum == doctest::Approx(0.5));
  CHECK(s.train.optimizer.weight_decay == doctest::Approx(0.01));
  CHECK(s.train.optimizer.beta1 == doctest::Approx(0.8));
  CHECK(s.train.optimizer.beta2 == doctest::Approx(0.99));
  CHECK(s.train.optimizer.epsilon == doctest::Approx(1e-6));
  CHECK(s.train.batch_size == 32);
  CHECK(s.train.steps == 100);
  CHECK(s.train.epochs == 0);
  CHECK(s.train.schedule.kind == ScheduleKind::kStep);
  CHECK(s.train.schedule.warmup_steps == 5);
  CHECK(s.train.schedule.decay_every == 30);
  CHECK(s.train.schedule.decay_factor == doctest::Approx(0.5));
  CHECK(s.train.schedule.final_lr_fraction == doctest::Approx(0.1));
  CHECK(s.train.clip_norm == doctest::Approx(1.5));
  CHECK(s.train.eval_every == 10);
  CHECK(*s.train.target_accuracy == doctest::Approx(0.7));
  CHECK(s.cluster.compute_flops_per_s == doctest::Approx(2e12));
  CHECK(s.cluster.workers == 4);
  CHECK(s.network.topology == TopologyKind::kHierarchical);
  CHECK(s.network.link.latency.ns() == 50'000);
  CHECK(s.network.link.bandwidth == doctest::Approx(1.25e9));
  CHECK(s.network.nodes_per_machine == 2);
  CHECK(s.network.intra.latency.ns() == 2'000);
  CHECK(s.network.intra.bandwidth == doctest::Approx(1e11));
  CHECK(s.strategy.collective == AllreduceAlgo::kTree);
  CHECK_FALSE(s.strategy.time_only);
  CHECK(
      parse_scenario("name = \"t\"\n[strategy]\ntime_only = true\n", "t.toml").strategy.time_only);
}

TEST_CASE("synthetic dataset keys") {
  const Scenario s = parse_scenario(
      "name = \"b\"\n[data]\ndataset = \"blobs\"\nfeatures = 5\nclasses = 3\nspread = 0.5\n"
      "separation = 4.0\n",
      "s.toml");
  CHECK(s.data.blobs.features == 5);
  CHECK(s.data.blobs.classes == 3);
  CHECK(s.data.blobs.spread == doctest::Approx(0.5));
  CHECK(s.data.blobs.separation == doctest::Approx(4.0));
  const Scenario l = parse_scenario(
      "name = \"l\"\n[data]\ndataset = \"linreg\"\nfeatures = 7\noutputs = 2\nnoise = 0.01\n",
      "s.toml");
  CHECK(l.data.linreg.features == 7);
  CHECK(l.data.linreg.outputs == 2);
  CHECK(l.data.linreg.noise == doctest::Approx(0.01));
}

TEST_CASE("errors name file, line, column and key") {
  SUBCASE("misspelt key suggests the nearest one") {
    const auto e = errors_of("name = \"x\"\n[train]\nlearning_rate = 0.1\nbatchsize = 3\n");
    REQUIRE(e.size() == 2);
    CHECK(e[0].place().line == 3);
    CHECK(e[0].place().column == 1);
    CHECK(e[0].key() == "train.learning_rate");
    CHECK_CONTAINS(std::string(e[1].what()),
                   "s.toml:4:1: train.batchsize: unknown key (did you mean 'batch_size'?)");
  }
  SUBCASE("wrong type") {
    const auto e = errors_of("name = \"x\"\n[train]\nbatch_size = \"64\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "train.batch_size");
    CHECK(e[0].place().line == 3);
    CHECK(e[0].message() == "expected an integer, found a string");
  }
  SUBCASE("out of range") {
    const auto e = errors_of("name = \"x\"\n[train]\nlr = -1\nmomentum = 1.5\n");
    REQUIRE(e.size() == 2);
    CHECK(e[0].message() == "expected a value >= 0, found -1");
    CHECK(e[1].message() == "expected a value in [0, 1], found 1.5");
  }
  SUBCASE("bad choice lists the choices") {
    const auto e = errors_of("name = \"x\"\n[model]\nkind = \"resnet\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].message() == "expected mlp | cnn | softmax, found \"resnet\"");
  }
  SUBCASE("a bare number where a unit is needed") {
    const auto e = errors_of("name = \"x\"\n[cluster]\ncompute = 5\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "cluster.compute");
    CHECK_CONTAINS(e[0].message(), "expected a string with a unit");
    CHECK_CONTAINS(e[0].message(), "TFLOPS");
  }
  SUBCASE("a bad unit") {
    const auto e = errors_of("name = \"x\"\n[data]\nload_cost = \"2 parsecs\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "unknown unit 'parsecs'");
  }
  SUBCASE("missing name") {
    const auto e = errors_of("seed = 3\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "name");
  }
  SUBCASE("a fault's kind must be a string, a Byzantine fault its mode and factor") {
    auto e = errors_of("name = \"x\"\n[[faults]]\nkind = 3\nnode = 0\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "expected one of the strings byzantine | crash");
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 2\n[[faults]]\nkind = \"byzantine\"\nnode = 2\n"
        "mode = \"scale\"\n");
    REQUIRE(e.size() == 2);
    CHECK(e[0].key() == "faults.factor");
    CHECK(e[1].key() == "faults.node");
    CHECK_CONTAINS(e[1].message(), "the workers are 0-1");
  }
  SUBCASE("compression's options are checked against the rest") {
    auto e =
        errors_of("name = \"x\"\n[compression]\ncodec = \"topk\"\nmomentum_correction = true\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "compression.momentum_correction");
    CHECK_CONTAINS(e[0].message(), "train.optimizer = \"sgd\"");
    e = errors_of(
        "name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "[compression]\ncodec = \"powersgd\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "powersgd rides an allreduce");
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\n[strategy]\naggregation = \"krum\"\ntrim = 1\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "krum with trim = 1 needs at least 5 workers");
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\n[strategy]\narchitecture = \"gossip\"\n"
        "sync = \"ad-psgd\"\n[compression]\ncodec = \"fp16\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(),
                   "compression works with allreduce bsp, ps bsp, ps asp, ps ssp, "
                   "ps delayed, gossip d-psgd (without backup workers) in this version, not "
                   "gossip ad-psgd");
    // Asynchronous servers take codecs, but apply gradients one at a time: no vote, no
    // robust rule.
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "sync = \"asp\"\n[compression]\ncodec = \"sign\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "codec = \"sign\" is a majority vote");
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "sync = \"asp\"\naggregation = \"median\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(),
                   "needs several gradients together: sync = \"bsp\" | \"ssp\" (over an "
                   "allreduce: without backup workers), not \"asp\"");
    CHECK(parse_scenario("name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
                         "sync = \"asp\"\n[compression]\ncodec = \"topk\"\n",
                         "s.toml")
              .compression.kind == CodecKind::kTopK);
  }
  SUBCASE("a crash needs a strategy that can go on without the worker") {
    const auto e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\n[strategy]\narchitecture = \"gossip\"\n"
        "sync = \"ad-psgd\"\n[[faults]]\nkind = \"crash\"\nnode = 0\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "faults.kind");
    CHECK(e[0].place().line == 7);
    CHECK_CONTAINS(e[0].message(),
                   "gossip ad-psgd cannot go on without a worker in this version; these can: "
                   "allreduce bsp, ps bsp, ps asp, ps ssp, ps delayed, gossip d-psgd");
  }
  SUBCASE("a pipeline schedule needs the pipeline architecture") {
    const auto e =
        errors_of("name = \"x\"\n[strategy]\nsync = \"gpipe\"\narchitecture = \"allreduce\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.sync");
    CHECK(e[0].place().line == 3);
    CHECK(e[0].message() ==
          "architecture = \"allreduce\" runs sync = bsp | local-sgd; \"gpipe\" needs "
          "architecture = \"pipeline\"");
  }
  SUBCASE("a sync mode needs its architecture") {
    auto e = errors_of("name = \"x\"\n[strategy]\nsync = \"asp\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.sync");
    CHECK(e[0].place().line == 3);
    CHECK_CONTAINS(e[0].message(), "\"asp\" needs architecture = \"ps\"");
    e = errors_of("name = \"x\"\n[strategy]\narchitecture = \"gossip\"\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "runs sync = d-psgd | ad-psgd");
    e = errors_of(
        "name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "sync = \"local-sgd\"\nlocal_steps = 4\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "\"local-sgd\" needs architecture = \"allreduce\"");
  }
  SUBCASE("a sync mode's own keys: required when it needs them, checked when given") {
    auto e = errors_of(
        "name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "sync = \"ssp\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.staleness");
    CHECK_CONTAINS(e[0].message(), "missing: sync = \"ssp\" needs the bound s");
    e = errors_of("name = \"x\"\n[strategy]\nsync = \"local-sgd\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.local_steps");
    e = errors_of("name = \"x\"\n[strategy]\nlocal_steps = 0\nstaleness = -1\n");
    REQUIRE(e.size() == 2);
    e = errors_of("name = \"x\"\n[cluster]\nworkers = 4\n[strategy]\nbackup_workers = 4\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.backup_workers");
    CHECK(e[0].place().line == 5);
    CHECK_CONTAINS(e[0].message(), "use at most 3");
    e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 4\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
        "sync = \"asp\"\nbackup_workers = 1\nstaleness_lr = 1\n");
    REQUIRE(e.size() == 2);
    CHECK(e[0].key() == "strategy.backup_workers");
    CHECK_CONTAINS(e[0].message(), "go with sync = \"bsp\"");
    CHECK(e[1].key() == "strategy.staleness_lr");
  }
  SUBCASE("keys a mode does not use may stay (sweeps share one file)") {
    const Scenario s =
        parse_scenario("name = \"x\"\n[strategy]\nstaleness = 3\nlocal_steps = 2\n", "s.toml");
    CHECK(s.strategy.sync == SyncMode::kBsp);
    CHECK(s.strategy.staleness == 3);
  }
  SUBCASE("a parameter server needs servers, and servers need a parameter server") {
    auto e = errors_of("name = \"x\"\n[cluster]\nworkers = 4\n[strategy]\narchitecture = \"ps\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "cluster.servers");
    CHECK(e[0].place().line == 5);
    e = errors_of("name = \"x\"\n[cluster]\nworkers = 4\nservers = 2\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "cluster.servers");
    CHECK(e[0].place().line == 4);
  }
  SUBCASE("a hierarchical allreduce needs whole machines") {
    const auto e = errors_of(
        "name = \"x\"\n[cluster]\nworkers = 6\n[network]\nnodes_per_machine = 4\n"
        "[strategy]\ncollective = \"hierarchical\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "strategy.collective");
    CHECK_CONTAINS(e[0].message(), "6 workers are not a multiple of network.nodes_per_machine = 4");
  }
  SUBCASE("epochs and steps together") {
    const auto e = errors_of("name = \"x\"\n[train]\nepochs = 2\nsteps = 10\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "train.steps");
  }
  SUBCASE("a cnn needs images") {
    const auto e =
        errors_of("name = \"x\"\n[model]\nkind = \"cnn\"\n[data]\ndataset = \"blobs\"\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "model.kind");
    CHECK(e[0].place().line == 3);
  }
  SUBCASE("keys of the wrong dataset") {
    const auto e = errors_of("name = \"x\"\n[data]\nclasses = 3\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "data.classes");
  }
  SUBCASE("keys that would be silently ignored") {
    auto e = errors_of("name = \"x\"\n[data]\nalpha = 0.3\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "data.alpha");
    e = errors_of("name = \"x\"\n[train]\ntarget_accuracy = 0.8\n[strategy]\ntime_only = true\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "train.target_accuracy");
  }
  SUBCASE("a hierarchical allreduce is not checked when it is not used") {
    parse_scenario(
        "name = \"x\"\n[cluster]\nworkers = 1\n[strategy]\ncollective = \"hierarchical\"\n",
        "s.toml");
  }
  SUBCASE("even kernel") {
    const auto e = errors_of("name = \"x\"\n[model]\nkernel = 4\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "model.kernel");
  }
  SUBCASE("invalid TOML") {
    const auto e = errors_of("name = \"x\"\n[train\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].place().line == 2);
    CHECK_CONTAINS(e[0].message(), "not valid TOML");
  }
}

TEST_CASE("several errors are reported together, in file order") {
  try {
    parse_scenario("name = 3\n[model]\nhiden = [1]\n[train]\nlr = \"fast\"\n", "s.toml");
    FAIL("should not load");
  } catch (const ScenarioError& e) {
    REQUIRE(e.errors().size() == 3);
    const std::string text = e.what();
    CHECK_CONTAINS(text, "s.toml:1:8: name: expected a string");
    CHECK_CONTAINS(text, "s.toml:3:1: model.hiden: unknown key (did you mean 'hidden'?)");
    CHECK_CONTAINS(text, "s.toml:5:6: train.lr: expected a number");
  }
}

TEST_CASE("an unreadable file is an input error naming it") {
  CHECK_THROWS_WITH_AS(load_scenario("/nonexistent/x.toml"),
                       doctest::Contains("/nonexistent/x.toml"), InputError);
}

TEST_CASE("the shipped scenarios load, every sweep point too") {
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           std::filesystem::path(DTSIM_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() != ".toml") continue;
    CAPTURE(entry.path().string());
    const Scenario s = load_scenario(entry.path().string(), {}, /*check_sweep=*/true);
    CHECK_FALSE(s.name.empty());
    ++count;
  }
  CHECK(count >= 8);
}

TEST_CASE("a key's place in the file is found for errors raised after loading") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("dtsim_locate_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "s.toml").string();
  std::ofstream(file) << "name = \"x\"\n\n[cluster]\nworkers = 8\n";
  const SourcePlace at = locate_key(file, "cluster.workers");
  CHECK(at.line == 4);
  CHECK(at.column == 11);
  CHECK(locate_key(file, "cluster.servers").line == 3);  // absent: its section
  CHECK(locate_key(file, "strategy.sync").line == 0);    // absent section: just the file
  CHECK_THROWS_WITH_AS(load_scenario(dir.string()), doctest::Contains("not a file"), InputError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("--set overrides any key") {
  const std::string base = "name = \"x\"\n[train]\nlr = 0.05\n";
  SUBCASE("numbers, strings without quotes, lists, new sections") {
    const Scenario s =
        parse_scenario(base, "s.toml",
                       {"train.lr=0.2", "strategy.collective=tree", "model.hidden=[32, 16]",
                        "cluster.compute=2 TFLOPS", "seed=9"});
    CHECK(s.train.schedule.lr == doctest::Approx(0.2));
    CHECK(s.strategy.collective == AllreduceAlgo::kTree);
    CHECK(s.model.hidden == std::vector<int>{32, 16});
    CHECK(s.cluster.compute_flops_per_s == doctest::Approx(2e12));
    CHECK(s.seed == 9);
  }
  SUBCASE("a bad value is an error placed on the command line") {
    const auto e = errors_of_with(base, {"train.lr=fast"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].place().file == "--set train.lr=fast");
    CHECK(e[0].key() == "train.lr");
    CHECK(e[0].message() == "expected a number, found a string");
  }
  SUBCASE("control characters and line breaks") {
    CHECK(parse_scenario(base, "s.toml", {"description=a\x01b"}).description == "a\x01b");
    const auto e = errors_of_with(base, {"name=a\nb"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].message() == "expected a value on one line");
  }
  SUBCASE("unknown keys and malformed overrides") {
    auto e = errors_of_with(base, {"train.learning_rate=0.1"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "train.learning_rate");
    CHECK(e[0].place().file == "--set train.learning_rate=0.1");
    e = errors_of_with(base, {"train.lr"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].key() == "--set");
    e = errors_of_with(base, {"train.lr.x=1"});
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "'lr' is a value, not a section");
  }
}

TEST_CASE("[expect] checks") {
  const Scenario s = parse_scenario(R"(
name = "x"
[expect]
final_test_accuracy = ">= 0.84"
virtual_time_s = "<= 30"
steps = 100
best_test_accuracy = "0.8..0.9"
final_test_loss = "< 1"
samples = "> 5"
)",
                                    "s.toml");
  REQUIRE(s.expect.size() == 6);
  const auto find = [&](const char* key) {
    for (const auto& e : s.expect) {
      if (e.key == key) return e;
    }
    FAIL("missing");
    return Expectation{};
  };
  CHECK(find("final_test_accuracy").holds(0.84));
  CHECK_FALSE(find("final_test_accuracy").holds(0.8399));
  CHECK(find("virtual_time_s").holds(30));
  CHECK_FALSE(find("virtual_time_s").holds(30.1));
  CHECK(find("steps").holds(100));
  CHECK_FALSE(find("steps").holds(99));
  CHECK(find("best_test_accuracy").holds(0.9));
  CHECK_FALSE(find("best_test_accuracy").holds(0.91));
  CHECK_FALSE(find("final_test_loss").holds(1));
  CHECK(find("samples").holds(6));
  CHECK(find("final_test_accuracy").place.line == 4);

  SUBCASE("bad checks") {
    const auto e = errors_of(
        "name = \"x\"\n[expect]\nfinal_test_acuracy = \">= 1\"\nsteps = \"about 5\"\n"
        "samples = \"9..3\"\n");
    REQUIRE(e.size() == 3);
    CHECK_CONTAINS(e[0].message(), "did you mean 'final_test_accuracy'?");
    CHECK(e[1].key() == "expect.steps");
    CHECK_CONTAINS(e[1].message(), "expected a check such as");
    CHECK(e[2].key() == "expect.samples");
  }
}

TEST_CASE("[sweep] expands to the cartesian product, in file order") {
  const Scenario s = parse_scenario(R"(
name = "x"
[sweep]
"strategy.collective" = ["ring", "tree", "halving-doubling"]
"cluster.workers" = [2, 4]
)",
                                    "s.toml");
  REQUIRE(s.sweep.size() == 2);
  const std::vector<SweepPoint> points = expand_sweep(s);
  REQUIRE(points.size() == 6);
  CHECK(points[0].label == "collective=ring,workers=2");
  CHECK(points[1].label == "collective=ring,workers=4");
  CHECK(points[5].label == "collective=halving-doubling,workers=4");
  CHECK(points[2].overrides ==
        std::vector<std::string>{"strategy.collective=\"tree\"", "cluster.workers=2"});
  const Scenario point = parse_scenario("name = \"x\"\n", "s.toml", points[3].overrides);
  CHECK(point.strategy.collective == AllreduceAlgo::kTree);
  CHECK(point.cluster.workers == 4);
  CHECK(expand_sweep(parse_scenario("name = \"y\"\n", "s.toml")).empty());
}

TEST_CASE("a sweep value that does not work is an error at load time") {
  const auto errors_of = [](const std::string& text) {
    try {
      parse_scenario(text, "s.toml", {}, /*check_sweep=*/true);
    } catch (const ScenarioError& e) {
      return e.errors();
    }
    FAIL("the scenario loaded but should not have");
    return std::vector<InputError>{};
  };
  // Points load without the check, so a bad value stops only its own point.
  parse_scenario("name = \"x\"\n[sweep]\n\"strategy.sync\" = [\"bsp\", \"asp\"]\n", "s.toml");
  auto e = errors_of("name = \"x\"\n[sweep]\n\"strategy.sync\" = [\"bsp\", \"asp\"]\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "sweep.strategy.sync");
  CHECK(e[0].place().line == 3);
  CHECK_CONTAINS(e[0].message(), "the value sync=asp does not work");
  e = errors_of("name = \"x\"\n[sweep]\n\"train.lr\" = []\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "sweep.train.lr");
}

TEST_CASE("the resolved settings name the mode and the keys it uses") {
  const auto settings = [](const std::string& text) {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : resolved_settings(parse_scenario(text, "s.toml"))) m[k] = v;
    return m;
  };
  auto m = settings(
      "name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
      "sync = \"asp\"\nstaleness_lr = true\nlocal_steps = 4\n");
  CHECK(m["strategy.sync"] == "asp");
  CHECK(m["strategy.staleness_lr"] == "true");
  CHECK(m.count("strategy.local_steps") == 0);  // not asp's
  CHECK(m.count("compression.codec") == 0);
  m = settings(
      "name = \"x\"\n[cluster]\nworkers = 8\n[strategy]\naggregation = \"krum\"\ntrim = 2\n"
      "[compression]\ncodec = \"topk\"\nratio = 0.05\n"
      "[[faults]]\nkind = \"byzantine\"\nnode = 3\nat = \"1s\"\nmode = \"sign-flip\"\n");
  CHECK(m["strategy.sync"] == "bsp");
  CHECK(m["strategy.aggregation"] == "krum");
  CHECK(m["strategy.trim"] == "2");
  CHECK(m["compression.codec"] == "topk");
  CHECK(m["compression.ratio"] == "0.05");
  CHECK(m["compression.error_feedback"] == "true");
  CHECK(m["faults (node 3)"] == "byzantine sign-flip x 1 from 1 s");
}

TEST_CASE("a sweep value may be a table: several keys of a section, one point") {
  const Scenario s = parse_scenario(R"(
name = "x"
[cluster]
servers = 1
[strategy]
architecture = "ps"
[sweep]
strategy = [{ sync = "bsp" }, { sync = "ssp", staleness = 2 }, { sync = "bsp", backup_workers = 1 }]
"cluster.workers" = [4, 8]
)",
                                    "s.toml", {}, /*check_sweep=*/true);
  const std::vector<SweepPoint> points = expand_sweep(s);
  REQUIRE(points.size() == 6);
  CHECK(points[0].label == "sync=bsp,workers=4");
  CHECK(points[2].label == "sync=ssp,staleness=2,workers=4");
  CHECK(points[2].overrides == std::vector<std::string>{"strategy.sync=\"ssp\"",
                                                        "strategy.staleness=2",
                                                        "cluster.workers=4"});
  const Scenario point = parse_scenario(R"(
name = "x"
[cluster]
servers = 1
[strategy]
architecture = "ps"
)",
                                        "s.toml", points[5].overrides);
  CHECK(point.strategy.backup_workers == 1);
  CHECK(point.cluster.workers == 8);
  // A point that does not work names its table.
  try {
    parse_scenario("name = \"x\"\n[sweep]\nstrategy = [{ sync = \"ssp\" }, { nope = 1 }]\n",
                   "s.toml", {}, /*check_sweep=*/true);
    FAIL("loaded");
  } catch (const ScenarioError& e) {
    REQUIRE(e.errors().size() == 3);  // ssp: needs a ps, and a staleness; nope: unknown
    CHECK_CONTAINS(e.errors()[0].message(), "the value sync=ssp does not work");
    CHECK_CONTAINS(e.errors()[1].message(), "the value sync=ssp does not work");
    CHECK_CONTAINS(e.errors()[2].message(), "the value nope=1 does not work: unknown key");
  }
}

TEST_CASE("a sweep table's quoted dotted keys are paths from the root") {
  const Scenario s = parse_scenario(R"(
name = "x"
[sweep]
strategy = [{ sync = "bsp", "train.batch_size" = 16 },
            { architecture = "pipeline", sync = "gpipe", stages = 2, "cluster.workers" = 2 }]
)",
                                    "s.toml", {}, /*check_sweep=*/true);
  const std::vector<SweepPoint> points = expand_sweep(s);
  REQUIRE(points.size() == 2);
  CHECK(points[0].label == "sync=bsp,batch_size=16");
  CHECK(points[0].overrides ==
        std::vector<std::string>{"strategy.sync=\"bsp\"", "train.batch_size=16"});
  const Scenario p1 = parse_scenario("name = \"x\"\n", "s.toml", points[1].overrides);
  CHECK(p1.strategy.architecture == Architecture::kPipeline);
  CHECK(p1.cluster.workers == 2);
  CHECK(p1.train.batch_size == 64);
  // A point whose root path is wrong names it.
  try {
    parse_scenario("name = \"x\"\n[sweep]\nstrategy = [{ \"train.batchsize\" = 1 }]\n", "s.toml",
                   {}, /*check_sweep=*/true);
    FAIL("loaded");
  } catch (const ScenarioError& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK_CONTAINS(e.errors()[0].message(), "the value batchsize=1 does not work: unknown key");
  }
}

TEST_CASE("[[cluster.group]] and [cluster.stragglers]") {
  const Scenario s = parse_scenario(R"(
name = "x"
[cluster]
workers = 8
[[cluster.group]]
nodes = "6-7"
compute = "1 TFLOPS"
latency = "200us"
bandwidth = "1Gbps"
[[cluster.group]]
nodes = 2
compute = "2 TFLOPS"
[cluster.stragglers]
fraction = 0.25
slowdown = 3.0
jitter = 0.1
)",
                                    "s.toml");
  REQUIRE(s.cluster.groups.size() == 2);
  CHECK(s.cluster.groups[0].first == 6);
  CHECK(s.cluster.groups[0].last == 7);
  CHECK(*s.cluster.groups[0].compute_flops_per_s == doctest::Approx(1e12));
  CHECK(s.cluster.groups[0].latency->ns() == 200'000);
  CHECK(*s.cluster.groups[0].bandwidth == doctest::Approx(1.25e8));
  CHECK(s.cluster.groups[1].first == 2);
  CHECK_FALSE(s.cluster.groups[1].latency.has_value());
  CHECK(s.cluster.stragglers.fraction == doctest::Approx(0.25));
  CHECK(s.cluster.stragglers.slowdown == doctest::Approx(3.0));
  CHECK(s.cluster.stragglers.jitter == doctest::Approx(0.1));

  auto e = errors_of("name = \"x\"\n[cluster]\nworkers = 4\n[[cluster.group]]\nnodes = \"3-9\"\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "nodes 3-9 do not exist: the cluster has nodes 0-3");
  e = errors_of("name = \"x\"\n[[cluster.group]]\nnodes = \"two\"\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "cluster.group.nodes");
  e = errors_of("name = \"x\"\n[cluster.stragglers]\nslowdown = 0.5\nfractoin = 0.1\n");
  REQUIRE(e.size() == 2);
  CHECK_CONTAINS(e[1].message(), "did you mean 'fraction'?");
}

TEST_CASE("fuzzing's inputs: the corpus's bad scenarios and any crasher are refused cleanly") {
  // tests/fuzz/corpus: hand-made bad inputs that seed scripts/fuzz; tests/fuzz/crashers:
  // inputs that once crashed the loader (libFuzzer's artifacts), kept as regression tests.
  // Each is either a scenario or a ScenarioError naming where it is wrong; never a crash.
  int files = 0;
  for (const char* dir : {"corpus", "crashers"}) {
    const std::filesystem::path root = std::filesystem::path(DTSIM_SOURCE_DIR) / "tests/fuzz" / dir;
    for (const auto& entry : std::filesystem::directory_iterator(root)) {
      if (entry.path().filename() == ".gitkeep") continue;
      CAPTURE(entry.path().string());
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      ++files;
      try {
        const Scenario s = parse_scenario(text, entry.path().string(), {}, true);
        CHECK(std::string(dir) == "crashers");  // the corpus holds only bad scenarios
        (void)resolved_settings(s);
        for (const SweepPoint& p : expand_sweep(s)) (void)parse_scenario(text, "x", p.overrides);
      } catch (const ScenarioError& e) {
        REQUIRE(!e.errors().empty());
        CHECK(e.errors()[0].place().line >= 1);
      }
    }
  }
  CHECK(files >= 7);
}

TEST_CASE("[teaching]: a demo's lesson and what to look at, checked like the rest") {
  const Scenario s = parse_scenario(
      "name = \"x\"\n[teaching]\nlesson = 3\nlook_at = [\"a\", \"b\"]\nquestions = [\"q?\"]\n",
      "s.toml");
  CHECK(s.teaching.lesson == 3);
  CHECK(s.teaching.look_at == std::vector<std::string>{"a", "b"});
  CHECK(s.teaching.questions == std::vector<std::string>{"q?"});
  auto e = errors_of("name = \"x\"\n[teaching]\nlook_at = [\"a\", 3]\n");
  REQUIRE(e.size() == 2);
  CHECK(e[0].key() == "teaching.lesson");
  CHECK(e[1].key() == "teaching.look_at");
  CHECK_CONTAINS(e[1].message(), "expected a list of strings");
  // Every teaching scenario is a demo of a lesson.
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(DTSIM_SOURCE_DIR) + "/scenarios/teaching")) {
    CAPTURE(entry.path().string());
    const Scenario t = load_scenario(entry.path().string());
    CHECK(t.teaching.lesson >= 1);
    CHECK(t.teaching.look_at.size() >= 1);
  }
}
