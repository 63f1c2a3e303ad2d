// End-to-end tests of the dtsim command: exit codes, output files, determinism, errors.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_support.hpp"

namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Sandbox {
  Sandbox() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("dtsim_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~Sandbox() { fs::remove_all(path); }

  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return path / name;
  }

  // Runs dtsim (or `program`) with `args`; returns its exit code and keeps stdout/stderr.
  int run(const std::string& args, const std::string& program = DTSIM_EXE) {
    const std::string cmd = program + " " + args + " >" + (path / "out.txt").string() + " 2>" +
                            (path / "err.txt").string();
    const int status = std::system(cmd.c_str());
    out = read(path / "out.txt");
    err = read(path / "err.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path path;
  std::string out;
  std::string err;
};

const char* kBlobs = R"(
name = "blobs e2e"
seed = 11
[model]
kind = "mlp"
hidden = [32, 16]
[data]
dataset = "blobs"
features = 12
classes = 5
train_samples = 1500
test_samples = 500
load_cost = "1us"
[train]
lr = 0.05
batch_size = 25
epochs = 3
eval_every = 20
target_accuracy = 0.9
)";

// summary.json says the run was healthy, and layers.csv has rows for the MLP's tensors.
bool summary_health_ok(const fs::path& out) {
  const auto summary = nlohmann::json::parse(read(out / "summary.json"));
  return summary["health"] == "ok" && summary["health_reason"].is_null() &&
         read(out / "layers.csv").find(",dense1.weight,") != std::string::npos;
}

bool have_fashion_mnist() {
  return fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace

TEST_CASE("dtsim run writes metrics.csv, nodes.csv and summary.json") {
  Sandbox box;
  const fs::path scenario = box.write("blobs.toml", kBlobs);
  const fs::path out = box.path / "out";
  REQUIRE(box.run("run " + scenario.string() + " -o " + out.string() + " --quiet") == 0);
  CHECK(box.err.empty());
  CHECK_CONTAINS(box.out, out.string());
  const std::string metrics = read(out / "metrics.csv");
  CHECK(metrics.rfind("step,epoch,virtual_time_s,samples,train_loss,test_loss,test_accuracy,"
                      "bytes_sent,mean_staleness,max_staleness,consensus_distance,grad_norm,"
                      "health\n",
                      0) == 0);
  CHECK(summary_health_ok(out));
  // 1500 / 25 = 60 steps per epoch, 180 steps: rows at 0, 20, ..., 180.
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 1 + 10);
  CHECK_CONTAINS(read(out / "nodes.csv"), "\n0,worker,5000000000000,");
  const auto summary = nlohmann::json::parse(read(out / "summary.json"));
  CHECK(summary["name"] == "blobs e2e");
  CHECK(summary["seed"] == 11);
  CHECK(summary["final_test_accuracy"].get<double>() > 0.9);
  CHECK(summary["samples"] == 4500);
  CHECK(summary["throughput_samples_per_s"].get<double>() ==
        doctest::Approx(4500 / summary["virtual_time_s"].get<double>()));
  CHECK_FALSE(summary["time_to_target_s"].is_null());
  CHECK_FALSE(fs::exists(out / "metrics.csv.partial"));

  // trace.json: a track per node, compute spans that add up to nodes.csv's compute time.
  const auto trace = nlohmann::json::parse(read(out / "trace.json"));
  double compute_us = 0;
  bool named = false;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == "worker 0")
      named = true;
    if (e["ph"] == "X" && e["cat"] == "compute") compute_us += e["dur"].get<double>();
  }
  CHECK(named);
  CHECK(compute_us * 1e-6 ==
        doctest::Approx(summary["virtual_time_s"].get<double>()).epsilon(1e-9));
  CHECK(trace["metadata"]["trace_truncated_at_s"].is_null());
}

TEST_CASE("the same scenario and seed give byte-identical outputs for any --threads") {
  Sandbox box;
  // Eight workers doing BSP over a ring allreduce: many jobs overlap in virtual time, so with
  // two threads they really run side by side.
  const fs::path scenario = box.write("blobs.toml", std::string(kBlobs) + R"(
[cluster]
workers = 8
[strategy]
architecture = "allreduce"
collective = "ring"
)");
  REQUIRE(box.run("run " + scenario.string() + " -q --threads 1 -o " +
                  (box.path / "t1").string()) == 0);
  REQUIRE(box.run("run " + scenario.string() + " -q --threads 2 -o " +
                  (box.path / "t2").string()) == 0);
  REQUIRE(box.run("run " + scenario.string() + " -q --threads 2 -o " +
                  (box.path / "t2b").string()) == 0);
  for (const char* file : {"metrics.csv", "nodes.csv", "trace.json"}) {
    CAPTURE(file);
    const std::string a = read(box.path / "t1" / file);
    CHECK_FALSE(a.empty());
    CHECK(a == read(box.path / "t2" / file));
    CHECK(a == read(box.path / "t2b" / file));
  }
}

TEST_CASE("a bad scenario exits 2 with file:line:col and writes nothing") {
  Sandbox box;
  const fs::path scenario =
      box.write("bad.toml", "name = \"bad\"\n[train]\nlr = \"fast\"\nbatchsize = 4\n");
  const fs::path out = box.path / "out";
  CHECK(box.run("run " + scenario.string() + " -o " + out.string()) == 2);
  CHECK_CONTAINS(box.err, scenario.string() + ":3:6: train.lr: expected a number");
  CHECK_CONTAINS(box.err, scenario.string() + ":4:1: train.batchsize: unknown key");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a missing dataset names the Debian package and writes nothing") {
  Sandbox box;
  const fs::path scenario = box.write(
      "fm.toml", "name = \"fm\"\n[data]\npath = \"" + (box.path / "nowhere").string() + "\"\n");
  const fs::path out = box.path / "out";
  CHECK(box.run("run " + scenario.string() + " -o " + out.string()) == 2);
  CHECK_CONTAINS(box.err, "dataset-fashion-mnist");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a diverging run exits 1 and still writes its report") {
  Sandbox box;
  std::string text = kBlobs;
  text.replace(text.find("lr = 0.05"), 9, "lr = 1e30");
  const fs::path scenario = box.write("div.toml", text);
  const fs::path out = box.path / "out";
  CHECK(box.run("run " + scenario.string() + " -q -o " + out.string()) == 1);
  CHECK_CONTAINS(box.err, "the run's health is non-finite: the training loss became");
  const auto summary = nlohmann::json::parse(read(out / "summary.json"));
  CHECK(summary["diverged"] == true);
  CHECK(summary["health"] == "non-finite");
  CHECK_CONTAINS(summary["health_reason"].get<std::string>(), "(node 0)");
  CHECK_CONTAINS(summary["diverged_reason"].get<std::string>(), "lower train.lr");
  CHECK(fs::exists(out / "metrics.csv"));
  CHECK_CONTAINS(read(out / "metrics.csv"), ",non-finite\n");
}

TEST_CASE("validate and explain warn about unstable settings on stderr, exit code unchanged") {
  Sandbox box;
  const std::string teaching = std::string(DTSIM_SOURCE_DIR) + "/scenarios/teaching/";
  CHECK(box.run("validate " + teaching + "sync-vs-async.toml") == 0);
  // Its asp point (lr 0.1, 8 workers, no staleness_lr), not the one with staleness_lr.
  CHECK_CONTAINS(box.err,
                 "dtsim: warning: point sync=asp: sync = \"asp\" applies each of the 8 "
                 "workers' gradients whole: at lr 0.1 that is about 0.8");
  CHECK(box.err.find("point sync=asp,staleness_lr=true") == std::string::npos);
  const std::string quickstart = std::string(DTSIM_SOURCE_DIR) + "/scenarios/quickstart.toml";
  CHECK(box.run("validate " + quickstart) == 0);
  CHECK(box.err.find("warning") == std::string::npos);
  CHECK(box.run("explain " + quickstart + " --set train.lr=2") == 0);
  CHECK_CONTAINS(box.err, "dtsim: warning: train.lr = 2 without clipping");
  CHECK(box.run("explain " + quickstart + " --set train.lr=2 --set train.clip_norm=1") == 0);
  CHECK(box.err.find("warning") == std::string::npos);
}

// The quickstart on one node at a learning rate 100x too high: its loss explodes within the first
// evaluation window, then the network is dead (chance accuracy). Finite all along.
TEST_CASE("an exploding run exits 1 with its health, a report banner and layer norms") {
  if (!have_fashion_mnist()) return;
  Sandbox box;
  const std::string quickstart = std::string(DTSIM_SOURCE_DIR) + "/scenarios/quickstart.toml";
  const fs::path out = box.path / "lr5";
  CHECK(box.run("run " + quickstart + " -q --set cluster.workers=1 --set train.lr=5 -o " +
                out.string()) == 1);
  CHECK_CONTAINS(box.err, "the run's health is exploded: the training loss reached");
  const auto summary = nlohmann::json::parse(read(out / "summary.json"));
  CHECK(summary["health"] == "exploded");
  CHECK(summary["health_step"] == 200);
  CHECK(summary["diverged"] == false);
  CHECK_CONTAINS(read(out / "report.html"), "\"state\":\"exploded\"");
  const std::string metrics = read(out / "metrics.csv");
  CHECK_CONTAINS(metrics, ",exploded\n");
  CHECK_CONTAINS(metrics, ",collapsed\n");  // later points: back at chance
  const std::string layers = read(out / "layers.csv");
  CHECK(layers.rfind("step,layer,grad_norm\n200,dense1.weight,", 0) == 0);
  // With plain SGD at lr 50 the loss is finite but huge, then NaN.
  const fs::path out50 = box.path / "lr50";
  CHECK(box.run("run " + quickstart +
                " -q --set cluster.workers=1 --set train.lr=50 --set train.optimizer=sgd -o " +
                out50.string()) == 1);
  const auto s50 = nlohmann::json::parse(read(out50 / "summary.json"));
  CHECK(s50["health"] != "ok");
  // The healthy quickstart (four workers) stays ok, and its first report shows the network.
  const fs::path ok = box.path / "ok";
  CHECK(box.run("run " + quickstart + " -q -o " + ok.string()) == 0);
  const auto quick = nlohmann::json::parse(read(ok / "summary.json"));
  CHECK(quick["health"] == "ok");
  CHECK(quick["bytes_sent_total"].get<double>() > 0);
  CHECK(quick["final_test_accuracy"].get<double>() > 0.8);
}

TEST_CASE("bad command-line values exit 2") {
  Sandbox box;
  const fs::path scenario = box.write("blobs.toml", kBlobs);
  CHECK(box.run("run " + scenario.string() + " --threads 0") == 2);
  CHECK_CONTAINS(box.err, "--threads");
  CHECK(box.run("frobnicate") == 2);
  CHECK(box.run("run") == 2);
  CHECK(box.run("bench engine --model resnet") == 2);
  CHECK(box.run("--help") == 0);
  CHECK_CONTAINS(box.out, "run");
  CHECK_CONTAINS(box.out, "bench");
}

TEST_CASE("dtsim collective prints the simulated time of one collective") {
  Sandbox box;
  REQUIRE(box.run("collective --op allreduce --algo ring --nodes 4 --bytes 100MB --latency 2.5us "
                  "--bandwidth \"10 GB/s\" --json") == 0);
  const auto j = nlohmann::json::parse(box.out);
  // Reference sheet D.5: 0.015030 s (a star path is two links: alpha = 5 us).
  CHECK(j["simulated_time_s"].get<double>() == doctest::Approx(0.015030).epsilon(1e-9));
  CHECK(j["bytes_sent_per_node"] == 150000000);
  CHECK(j["bytes_sent_total"] == 4 * 150000000);
  CHECK(j["wall_time_s"].get<double>() >= 0);
  // A binomial broadcast from node 0 over 8 nodes: the root sends to its 3 children, 7 copies
  // are sent in all.
  REQUIRE(box.run("collective --op broadcast --nodes 8 --bytes 8MB") == 0);
  CHECK_CONTAINS(box.out, "bytes sent       24 MB by the busiest node, 56 MB in all");
  CHECK(box.run("collective --nodes 4 --bytes 100") == 2);
  CHECK_CONTAINS(box.err, "--bytes: '100' is not a valid size: the unit is missing");
  CHECK(box.run("collective --nodes 6 --bytes 1MB --algo hierarchical --nodes-per-machine 4") == 2);
  CHECK_CONTAINS(box.err, "not a multiple");
}

TEST_CASE("dtsim bench engine --json reports consistent numbers") {
  Sandbox box;
  REQUIRE(box.run("bench engine --batch 32 --seconds 0.2 --json") == 0);
  const auto j = nlohmann::json::parse(box.out);
  CHECK(j["model"] == "mlp 784-256-128-10 relu (235146 parameters)");
  CHECK(j["batch"] == 32);
  CHECK(j["samples_per_s"].get<double>() > 0);
  CHECK(j["blas_gflops"].get<double>() > 0);
  CHECK(j["gflops"].get<double>() == doctest::Approx(j["samples_per_s"].get<double>() *
                                                     j["flops_per_sample"].get<double>() / 1e9)
                                         .epsilon(0.01));
}

TEST_CASE("brief Fashion-MNIST training clears a lower bar") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST is not installed (scripts/setup installs it); skipped");
    return;
  }
  Sandbox box;
  SUBCASE("mlp") {
    const fs::path scenario = box.write("mlp.toml", R"(
name = "brief mlp"
[data]
train_samples = 10000
test_samples = 2000
[train]
lr = 0.05
epochs = 2
eval_every = 1000
)");
    REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string()) == 0);
    const auto j = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
    CHECK(j["final_test_accuracy"].get<double>() > 0.78);
  }
  SUBCASE("cnn") {
    const fs::path scenario = box.write("cnn.toml", R"(
name = "brief cnn"
[model]
kind = "cnn"
channels = [8, 16]
hidden = [64]
[data]
train_samples = 3000
test_samples = 1000
[train]
lr = 0.05
epochs = 2
eval_every = 1000
)");
    REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string()) == 0);
    const auto j = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
    CHECK(j["final_test_accuracy"].get<double>() > 0.70);
  }
}

TEST_CASE("a worker of eight crashes halfway: bsp re-forms without it and still learns") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST is not installed (scripts/setup installs it); skipped");
    return;
  }
  Sandbox box;
  // The teaching scenario's bsp point, one epoch, worker 3 crashing at about half of it.
  const std::string args = std::string("run ") + DTSIM_SOURCE_DIR +
                           "/scenarios/teaching/faults.toml --set train.epochs=1 --set "
                           "'faults=[{kind=\"crash\",node=3,at=\"0.5s\"}]' -q -o " +
                           (box.path / "o").string();
  REQUIRE(box.run(args) == 0);
  const auto j = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
  CHECK(j["final_test_accuracy"].get<double>() >= 0.80);
  REQUIRE(j["faults"].size() == 1);
  const auto& f = j["faults"][0];
  CHECK(f["kind"] == "crash");
  CHECK(f["node"] == 3);
  CHECK(f["detected_s"].get<double>() == doctest::Approx(0.7));  // failure_timeout = 0.2 s
  CHECK(f["lost_gradients"] == 1);
  CHECK(f["cost_s"].get<double>() > 0.1);  // the others waited at their next step
  CHECK(f["cost_s"].get<double>() < 0.2);
  // Worker 3 stopped; nodes.csv shows it computed about half the others' gradients.
  std::istringstream nodes(read(box.path / "o" / "nodes.csv"));
  std::string line;
  std::vector<double> steps;  // the 9th column, per node
  std::getline(nodes, line);
  while (std::getline(nodes, line)) {
    std::istringstream cells(line);
    std::string cell;
    for (int c = 0; c < 9; ++c) std::getline(cells, cell, ',');
    steps.push_back(std::stod(cell));
  }
  REQUIRE(steps.size() == 8);
  CHECK(steps[3] > 0.3 * steps[0]);
  CHECK(steps[3] < 0.6 * steps[0]);
  CHECK(steps[0] == steps[7]);
  // The trace has the crash on worker 3's track, and the report its section.
  const auto trace = nlohmann::json::parse(read(box.path / "o" / "trace.json"));
  int crash_events = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e.value("cat", "") == "fault" && e["tid"] == 3) ++crash_events;
  }
  CHECK(crash_events == 2);  // the crash and where it was noticed
  const std::string report = read(box.path / "o" / "report.html");
  CHECK_CONTAINS(report, "\"kind\":\"crash\"");
  CHECK_CONTAINS(report, "Fault: worker 3 went down at");
}

TEST_CASE("a crashed server shard: summary.json, trace.json and the report say what it cost") {
  Sandbox box;
  const fs::path file =
      box.write("s.toml", std::string(kBlobs) +
                              "[cluster]\nworkers = 4\nservers = 2\ncompute = \"1 GFLOPS\"\n"
                              "[strategy]\narchitecture = \"ps\"\nsync = \"bsp\"\n"
                              "checkpoint_every = 20\nfailure_timeout = \"1ms\"\n"
                              "[[faults]]\nkind = \"crash\"\nnode = 5\nat = \"3ms\"\n");
  REQUIRE(box.run("run " + file.string() + " -q -o " + (box.path / "o").string()) == 0);
  const auto j = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
  REQUIRE(j["faults"].size() == 1);
  const auto& f = j["faults"][0];
  CHECK(f["node"] == 5);
  CHECK(f["detected_s"].get<double>() == doctest::Approx(0.004));
  // The spare is up at 4 ms, then reads the checkpoint and the step's gradients again.
  CHECK(f["rejoined_s"].get<double>() > 0.004);
  CHECK(f["rejoined_s"].get<double>() < 0.0041);
  CHECK(f["lost_updates"].get<int>() > 0);  // (about 14 steps, 20 between checkpoints)
  CHECK(f["lost_updates"].get<int>() < 20);
  CHECK(j["health"] == "ok");
  CHECK(j["checkpoints"]["every"] == 20);
  CHECK(j["checkpoints"]["taken"].get<int>() >= 2);
  CHECK(j["checkpoints"]["time_s"].get<double>() > 0);
  const auto trace = nlohmann::json::parse(read(box.path / "o" / "trace.json"));
  int checkpoints = 0;
  int restores = 0;
  for (const auto& e : trace["traceEvents"]) {
    checkpoints += e.value("name", "") == "checkpoint";
    restores += e.value("name", "") == "restore" && e["tid"] == 5;
  }
  CHECK(checkpoints == j["checkpoints"]["taken"].get<int>());
  CHECK(restores == 1);
  const std::string report = read(box.path / "o" / "report.html");
  CHECK_CONTAINS(report, "Fault: server 5 went down at");
  CHECK_CONTAINS(report, "a spare resumed from its last checkpoint");
  CHECK_CONTAINS(report, "The server shards took");
}

TEST_CASE("the stability lesson: lr 0.5 breaks the run, clipping cures it") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST is not installed (scripts/setup installs it); skipped");
    return;
  }
  Sandbox box;
  const std::string base = std::string("run ") + DTSIM_SOURCE_DIR +
                           "/scenarios/teaching/stability.toml --set train.lr=0.5 --set "
                           "data.train_samples=15000 --set data.test_samples=2000 -q ";
  REQUIRE(box.run(base + "--set train.clip_norm=0 -o " + (box.path / "bad").string()) == 1);
  const auto bad = nlohmann::json::parse(read(box.path / "bad" / "summary.json"));
  CHECK(bad["health"] != "ok");
  CHECK(bad["final_test_accuracy"].get<double>() < 0.2);
  CHECK_CONTAINS(box.err, "set train.clip_norm");
  REQUIRE(box.run(base + "--set train.clip_norm=1 -o " + (box.path / "cured").string()) == 0);
  const auto cured = nlohmann::json::parse(read(box.path / "cured" / "summary.json"));
  CHECK(cured["health"] == "ok");
  CHECK(cured["final_test_accuracy"].get<double>() > 0.7);
}

TEST_CASE("dtsim demo lists the tutorial's demos and runs one, with its narrative") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST is not installed (scripts/setup installs it); skipped");
    return;
  }
  Sandbox box;
  REQUIRE(box.run("demo") == 0);
  for (const char* name : {"model-parallel", "sync-vs-async", "staleness", "sync-bsp", "byzantine",
                           "compression", "local-sgd", "stability", "faults"}) {
    CHECK_CONTAINS(box.out, name);
  }
  CHECK_CONTAINS(box.out, "lesson 11  faults");
  // The stability sweep, on a slice of the data: unhealthy points on purpose, so exit 1.
  const fs::path out = box.path / "stability";
  CHECK(box.run("demo stability --set data.train_samples=3000 --set data.test_samples=500 -q -o " +
                out.string()) == 1);
  CHECK_CONTAINS(box.out, "report: " + (out / "compare.html").string());
  CHECK_CONTAINS(box.out, "  - Each point's health: ok, collapsed, exploded");
  const std::string report = read(out / "01-lr=0.05_clip_norm=0" / "report.html");
  CHECK_CONTAINS(report, "\"teaching\":{\"lesson\":9,\"look_at\":[\"Each point's health");
  CHECK(box.run("demo nope") == 2);
  CHECK_CONTAINS(box.err, "no demo \"nope\"; the demos are: model-parallel");
}

TEST_CASE("set-up errors after loading still name file:line:col and write nothing") {
  Sandbox box;
  const fs::path scenario =
      box.write("many.toml", std::string(kBlobs) + "[cluster]\nworkers = 2000\n");
  const fs::path out = box.path / "out";
  CHECK(box.run("run " + scenario.string() + " -o " + out.string()) == 2);
  CHECK_CONTAINS(box.err, scenario.string() + ":21:11: cluster.workers:");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("virtual time that overflows is reported as bad input") {
  Sandbox box;
  std::string text = kBlobs;
  text.replace(text.find("load_cost = \"1us\""), 17, "load_cost = \"1e9 s\"");
  const fs::path scenario = box.write("slow.toml", text);
  CHECK(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string()) == 2);
  CHECK_CONTAINS(box.err, "virtual time overflow");
}

TEST_CASE("[expect] checks set the exit code") {
  Sandbox box;
  SUBCASE("all pass: exit 0") {
    const fs::path scenario =
        box.write("pass.toml", std::string(kBlobs) +
                                   "[expect]\nfinal_test_accuracy = \">= 0.9\"\nsteps = 180\n");
    CHECK(box.run("run " + scenario.string() + " -o " + (box.path / "o").string()) == 0);
    CHECK_CONTAINS(box.err, "all 2 [expect] checks passed");
  }
  SUBCASE("one fails: exit 1, with the check, the value and its line") {
    const fs::path scenario =
        box.write("fail.toml",
                  std::string(kBlobs) +
                      "[expect]\nfinal_test_accuracy = \">= 0.9\"\nvirtual_time_s = \"< 1e-9\"\n");
    CHECK(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string()) == 1);
    CHECK_CONTAINS(box.err, "expect virtual_time_s < 1e-9: found ");
    CHECK_CONTAINS(box.err, scenario.string() + ":22:18");
    CHECK(box.err.find("final_test_accuracy") == std::string::npos);
    CHECK(fs::exists(box.path / "o" / "summary.json"));
  }
}

TEST_CASE("--set overrides scenario keys from the command line") {
  Sandbox box;
  const fs::path scenario = box.write("blobs.toml", kBlobs);
  REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string() +
                  " --set train.steps=7 --set train.epochs=0 --set cluster.workers=2") == 2);
  CHECK_CONTAINS(box.err,
                 "--set train.epochs=0: train.epochs: expected a value in [1, 1000000], found 0");
  REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string() +
                  " --set train.epochs=1 --set cluster.workers=2 --set strategy.collective=tree") ==
          0);
  const auto j = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
  CHECK(j["steps"] == 30);  // 1500 samples / (2 workers x 25)
  CHECK(read(box.path / "o" / "nodes.csv").find("\n1,worker,") != std::string::npos);
}

TEST_CASE("the common flags mean the same on every command that takes them") {
  Sandbox box;
  const fs::path file = box.write("s.toml", kBlobs);
  const std::string f = file.string();
  // --set, on every command that reads a scenario: the value is the one it uses.
  REQUIRE(box.run("validate " + f + " --set train.lr=0.0123") == 0);
  CHECK_CONTAINS(box.out, "train.lr = 0.0123");
  // (1500 samples, batch 25, 3 epochs: 60 steps over 3 workers, 45 over the default 4.)
  REQUIRE(box.run("explain " + f + " --set cluster.workers=3") == 0);
  CHECK_CONTAINS(box.out, "60 steps");
  REQUIRE(box.run("calibrate " + f + " --repeats 2 --format set --set train.batch_size=7") == 0);
  CHECK_CONTAINS(box.out, "--set cluster.compute=");
  CHECK_CONTAINS(box.err, "a batch of 7");
  const std::string sweep =
      box.write("w.toml", std::string(kBlobs) + "[sweep]\n\"train.lr\" = [0.05, 0.1]\n").string();
  for (const std::string cmd : {"validate", "explain", "calibrate", "run", "sweep"}) {
    CAPTURE(cmd);
    CHECK(box.run(cmd + " " + (cmd == "sweep" ? sweep : f) + " --set train.nope=1") == 2);
    CHECK_CONTAINS(box.err, "train.nope");
  }
  // -o, --quiet and --threads on the commands that run: the folder, nothing on stderr, and
  // a bad thread count refused by name.
  const std::string small = " --set train.epochs=1 --set data.train_samples=300";
  for (const std::string cmd : {"run", "sweep"}) {
    CAPTURE(cmd);
    const fs::path out = box.path / ("o-" + cmd);
    const std::string input = cmd == "sweep" ? sweep : f;
    REQUIRE(box.run(cmd + " " + input + small + " -q --threads 1 -o " + out.string()) == 0);
    CHECK(box.err.empty());
    CHECK(fs::exists(out / (cmd == "run" ? "report.html" : "compare.html")));
    CHECK(box.run(cmd + " " + input + " --threads 0") == 2);
    CHECK_CONTAINS(box.err, "--threads");
  }
  REQUIRE(
      box.run("demo sync-bsp -q --threads 1 -o " + (box.path / "demo").string() +
              " --set data.train_samples=600 --set train.epochs=1 --set data.test_samples=200") <=
      1);  // (its [expect] may fail on so little data)
  CHECK(fs::exists(box.path / "demo" / "report.html"));
  CHECK(box.run("demo sync-bsp --threads 0") == 2);
  CHECK_CONTAINS(box.err, "--threads");
}

TEST_CASE("validate and list") {
  Sandbox box;
  const fs::path good = box.write("good.toml", kBlobs);
  CHECK(box.run("validate " + good.string()) == 0);
  CHECK_CONTAINS(box.out, "ok");
  CHECK_CONTAINS(box.out, "  train.batch_size = 25 per worker");
  // Quantities as people write them.
  CHECK_CONTAINS(box.out, "  data.load_cost = 1 us");
  CHECK_CONTAINS(box.out, "  cluster.compute = 5 TFLOP/s");
  CHECK_CONTAINS(box.out, "  network.bandwidth = 25 Gbps (3.125 GB/s)");
  const fs::path bad = box.write("bad.toml", std::string(kBlobs) + "[cluster]\nworkers = 5000\n");
  CHECK(box.run("validate " + bad.string()) == 2);
  CHECK_CONTAINS(box.err, bad.string() + ":21:11: cluster.workers");
  CHECK(box.run("explain " + good.string() + " --set cluster.workers=4") == 0);
  CHECK_CONTAINS(box.out, "expected bottleneck");
  CHECK_CONTAINS(box.out, "ring: 2(p-1)a");
  CHECK(box.run("explain " + good.string() +
                " --set compression.codec=topk --set compression.ratio=0.1") == 0);
  // 12-32-16-5: 1,029 parameters, 4,116 bytes; top-k 10%: 102 pairs of 8 bytes and a count.
  CHECK_CONTAINS(box.out, "820 B (topk, 5.0x smaller; gathered)");
  CHECK_CONTAINS(box.out, "gradient bytes per worker and step             4.116 KB");
  CHECK_CONTAINS(box.out, "132.8 KFLOP (forward 51.83 KFLOP, backward 80.92 KFLOP; batch 25)");
  CHECK(box.run("explain " + bad.string()) == 2);
  CHECK(box.run("list") == 0);
  CHECK_CONTAINS(box.out, "halving-doubling");
  CHECK_CONTAINS(box.out, "powersgd");
  CHECK_CONTAINS(box.out, "ad-psgd");
  CHECK_CONTAINS(box.out, "final_test_accuracy");
}

TEST_CASE("golden runs match their checked-in outputs byte for byte") {
  // Every tests/golden/NAME.toml against tests/golden/NAME/. Time-only runs depend on no
  // floating-point kernel; runs with numerics are pinned to one OpenBLAS kernel family
  // (AVX2, present on every x86-64 machine dtsim targets), so they match on any CPU that has
  // it. Update the files only on purpose: scripts/update-goldens.
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  const fs::path golden = fs::path(DTSIM_SOURCE_DIR) / "tests" / "golden";
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(golden)) {
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  CHECK(names.size() >= 40);
  for (const std::string& name : names) {
    CAPTURE(name);
    Sandbox box;
    REQUIRE(box.run("run " + (golden / (name + ".toml")).string() + " -q --threads 2 -o " +
                    (box.path / "o").string()) == 0);
    for (const char* file : {"metrics.csv", "nodes.csv", "trace.json"}) {
      CAPTURE(file);
      const std::string expected = read(golden / name / file);
      REQUIRE_FALSE(expected.empty());
      CHECK(read(box.path / "o" / file) == expected);
    }
  }
  unsetenv("OPENBLAS_CORETYPE");
}

TEST_CASE(
    "progress: a bar with an ETA on a terminal, plain lines elsewhere, nothing with --quiet") {
  Sandbox box;
  const fs::path scenario = box.write("blobs.toml", kBlobs);
  const std::string run =
      std::string(DTSIM_EXE) + " run " + scenario.string() + " -o " + (box.path / "o").string();
  // `script` gives dtsim a pseudo-terminal.
  REQUIRE(box.run("--version") == 0);
  const std::string tty_cmd =
      "script -qec '" + run + "' /dev/null > " + (box.path / "tty.txt").string() + " 2>&1";
  REQUIRE(std::system(tty_cmd.c_str()) == 0);
  const std::string tty = read(box.path / "tty.txt");
  CHECK_CONTAINS(tty, "ETA");
  CHECK_CONTAINS(tty, "step 180/180");
  REQUIRE(box.run("run " + scenario.string() + " -o " + (box.path / "o2").string()) == 0);
  CHECK(box.err.find("ETA") == std::string::npos);
  CHECK_CONTAINS(box.err, "  step     180  epoch   3.00");
  REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o3").string()) == 0);
  CHECK(box.err.empty());
}

TEST_CASE("dtsim sweep runs each point into its own folder and compares them") {
  Sandbox box;
  const fs::path scenario =
      box.write("sweep.toml", std::string(kBlobs) +
                                  "[cluster]\nworkers = 2\n[sweep]\n"
                                  "\"strategy.collective\" = [\"ring\", \"tree\"]\n");
  const fs::path out = box.path / "sw";
  REQUIRE(box.run("sweep " + scenario.string() + " -o " + out.string()) == 0);
  CHECK(fs::exists(out / "01-collective=ring" / "summary.json"));
  CHECK(fs::exists(out / "02-collective=tree" / "summary.json"));
  const std::string html = read(out / "compare.html");
  CHECK_CONTAINS(html, "collective=tree");
  // Each row links to its point's report; the finding and bytes per sample are there.
  CHECK_CONTAINS(
      html, R"("links":["./01-collective=ring/report.html","./02-collective=tree/report.html"])");
  CHECK_CONTAINS(html, "reached the target accuracy first");
  CHECK_CONTAINS(html, "bytes per sample");
  // The two points differ only in time: same numerics (allreduce is a sum either way).
  const auto a = nlohmann::json::parse(read(out / "01-collective=ring" / "summary.json"));
  const auto b = nlohmann::json::parse(read(out / "02-collective=tree" / "summary.json"));
  CHECK(a["final_test_accuracy"] == b["final_test_accuracy"]);
  CHECK(a["virtual_time_s"] != b["virtual_time_s"]);
  // Points run as separate processes, two at a time: each is the same as a single run.
  REQUIRE(box.run("run " + scenario.string() +
                  " -q --threads 2 --set strategy.collective=tree -o " +
                  (box.path / "single").string()) == 0);
  CHECK(read(box.path / "single" / "metrics.csv") ==
        read(out / "02-collective=tree" / "metrics.csv"));
  CHECK(read(box.path / "single" / "trace.json") ==
        read(out / "02-collective=tree" / "trace.json"));

  // dtsim compare over the same folders.
  REQUIRE(box.run("compare " + (out / "01-collective=ring").string() + " " +
                  (out / "02-collective=tree").string() + " -o " + (box.path / "cmp").string()) ==
          0);
  CHECK_CONTAINS(read(box.path / "cmp" / "compare.html"), "02-collective=tree");
  CHECK(box.run("compare " + box.path.string() + " -o " + (box.path / "cmp2").string()) == 2);
  CHECK_CONTAINS(box.err, "summary.json: missing");
  CHECK(box.run("sweep " + box.write("plain.toml", kBlobs).string()) == 2);
  CHECK_CONTAINS(box.err, "no [sweep] section");
}

TEST_CASE("trace.json can be left out; sweep --quiet prints only failures") {
  Sandbox box;
  const fs::path scenario =
      box.write("sweep.toml", std::string(kBlobs) +
                                  "[cluster]\nworkers = 2\n[sweep]\n"
                                  "\"strategy.collective\" = [\"ring\", \"tree\"]\n");
  // dtsim run on a sweep file says it runs the base point only.
  const fs::path one = box.path / "one";
  REQUIRE(box.run("run " + scenario.string() + " --no-trace -o " + one.string()) == 0);
  CHECK_CONTAINS(box.err, "has a [sweep] of 2 points; `dtsim run` runs its base point only");
  CHECK_FALSE(fs::exists(one / "trace.json"));
  CHECK(fs::exists(one / "metrics.csv"));
  CHECK(fs::exists(one / "report.html"));
  CHECK(box.out.find("trace.json") == std::string::npos);
  // The same from the scenario file.
  const fs::path two = box.path / "two";
  REQUIRE(box.run("run " +
                  box.write("p.toml", read(scenario) + "[output]\ntrace = false\n").string() +
                  " -q -o " + two.string()) == 0);
  CHECK_FALSE(fs::exists(two / "trace.json"));
  CHECK(read(two / "metrics.csv") == read(one / "metrics.csv"));
  // A sweep passes it on to its points, and --quiet keeps only the comparison line.
  const fs::path sw = box.path / "sw";
  REQUIRE(box.run("sweep " + scenario.string() + " --quiet --no-trace -o " + sw.string()) == 0);
  CHECK_FALSE(fs::exists(sw / "01-collective=ring" / "trace.json"));
  CHECK(fs::exists(sw / "02-collective=tree" / "metrics.csv"));
  CHECK(box.out.find("point 1/2") == std::string::npos);
  CHECK_CONTAINS(box.out, "comparison: ");
}

TEST_CASE("dtsim explain on a sweep predicts every point in a compact table") {
  Sandbox box;
  const fs::path scenario = box.write(
      "sweep.toml", std::string(kBlobs) +
                        "[cluster]\nworkers = 4\n[sweep]\n\"strategy.collective\" = [\"ring\", "
                        "\"tree\"]\n\"network.bandwidth\" = [\"1Gbps\", \"100Gbps\"]\n");
  REQUIRE(box.run("explain " + scenario.string()) == 0);
  CHECK_CONTAINS(box.out, "(the base point)");
  CHECK_CONTAINS(box.out, "[sweep]: 4 points, predicted");
  CHECK_CONTAINS(box.out, "collective=tree,bandwidth=1Gbps");
  REQUIRE(box.run("explain " + scenario.string() + " --json") == 0);
  const auto j = nlohmann::json::parse(box.out);
  REQUIRE(j["points"].size() == 4);
  // Each point is its own prediction: the point's --set explained alone gives the same.
  REQUIRE(box.run("explain " + scenario.string() +
                  " --json --set strategy.collective=tree --set network.bandwidth=1Gbps") == 0);
  const auto alone = nlohmann::json::parse(box.out);
  const auto& point = j["points"][2];
  CHECK(point["label"] == "collective=tree,bandwidth=1Gbps");
  CHECK(point["predicted_step_s"] == alone["predicted_step_s"]);
  // Less bandwidth, more time communicating.
  CHECK(j["points"][2]["communicate_s"].get<double>() >
        j["points"][3]["communicate_s"].get<double>());
}

TEST_CASE("a sweep with an unhealthy point exits 1 and its comparison says why") {
  Sandbox box;
  const fs::path scenario =
      box.write("sweep.toml", std::string(kBlobs) + "[sweep]\n\"train.lr\" = [0.05, 1e30]\n");
  const fs::path out = box.path / "sw";
  CHECK(box.run("sweep " + scenario.string() + " -o " + out.string()) == 1);
  CHECK(nlohmann::json::parse(read(out / "01-lr=0.05" / "summary.json"))["health"] == "ok");
  fs::path second;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().filename().string().rfind("02-", 0) == 0) second = e.path();
  }
  REQUIRE_FALSE(second.empty());
  CHECK(nlohmann::json::parse(read(second / "summary.json"))["health"] == "non-finite");
  CHECK_CONTAINS(read(out / "compare.html"), "diverged (health: non-finite)");
}

TEST_CASE("a sweep point that fails does not stop the others") {
  // Every point is a valid scenario (checked before any runs), but 2000 server shards are
  // more than this model has parameters (1,189), which only the run itself finds out.
  Sandbox box;
  const fs::path scenario = box.write(
      "sweep.toml", std::string(kBlobs) +
                        "[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n[sweep]\n"
                        "\"cluster.workers\" = [2, 3]\n"
                        "\"cluster.servers\" = [1, 2000]\n");
  const fs::path out = box.path / "sw";
  CHECK(box.run("sweep " + scenario.string() + " -o " + out.string()) == 2);
  CHECK_CONTAINS(box.out, "point 4/4 workers=3,servers=2000: exit 2");
  CHECK(fs::exists(out / "01-workers=2_servers=1" / "summary.json"));
  CHECK_FALSE(fs::exists(out / "02-workers=2_servers=2000" / "summary.json"));
  CHECK(fs::exists(out / "03-workers=3_servers=1" / "summary.json"));
  CHECK_CONTAINS(read(out / "04-workers=3_servers=2000" / "run.log"), "every shard");
  CHECK_CONTAINS(read(out / "compare.html"), "failed (exit 2");
}

// mpirun, when the machine has it (scripts/setup installs OpenMPI), allowed to run as root.
std::string mpirun(int ranks = 3) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) return "";
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
         "ASAN_OPTIONS=detect_leaks=0 mpirun -np " +
         std::to_string(ranks) + " --oversubscribe ";
}

// The files of two sweeps' points that must be byte-identical.
void check_same_points(const fs::path& a, const fs::path& b, int points) {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(a)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    CAPTURE(name);
    for (const char* file : {"metrics.csv", "nodes.csv", "trace.json"}) {
      if (!fs::exists(entry.path() / file)) continue;
      CHECK(read(entry.path() / file) == read(b / name / file));
    }
    ++seen;
  }
  CHECK(seen == points);
}

TEST_CASE("dtsim sweep --mpi hands the points to MPI ranks: the same files as a local sweep") {
  const std::string launcher = mpirun();
  REQUIRE_MESSAGE(!launcher.empty(), "mpirun is missing: scripts/setup installs openmpi-bin");
  Sandbox box;
  const fs::path scenario = box.write(
      "sweep.toml", std::string(kBlobs) +
                        "[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n[sweep]\n"
                        "\"cluster.workers\" = [2, 3]\n"
                        "\"cluster.servers\" = [1, 2000]\n");
  REQUIRE(box.run("sweep " + scenario.string() + " -q -o " + (box.path / "local").string()) == 2);
  // Points 2 and 4 fail when they run (more shards than parameters); the others go on.
  CHECK(box.run("sweep " + scenario.string() + " --mpi -o " + (box.path / "mpi").string(),
                launcher + DTSIM_EXE) == 2);
  CHECK_CONTAINS(box.out, "4 points over 3 MPI rank(s) (2 running points)");
  CHECK_CONTAINS(box.out, "point 4/4 workers=3,servers=2000: exit 2");
  CHECK(fs::exists(box.path / "mpi" / "03-workers=3_servers=1" / "summary.json"));
  CHECK_CONTAINS(read(box.path / "mpi" / "compare.html"), "failed (exit 2");
  check_same_points(box.path / "local", box.path / "mpi", 4);
  // --gather: the ranks run in folders of their own and send the files to rank 0.
  CHECK(box.run("sweep " + scenario.string() + " --mpi --gather -q -o " +
                    (box.path / "gathered").string(),
                launcher + DTSIM_EXE) == 2);
  check_same_points(box.path / "local", box.path / "gathered", 4);
  CHECK_CONTAINS(read(box.path / "gathered" / "04-workers=3_servers=2000" / "run.log"),
                 "every shard");
  CHECK(box.run("sweep " + scenario.string() + " --gather") == 2);
  CHECK_CONTAINS(box.err, "--gather sends the points' files over MPI: add --mpi");
}

// Column `column` (0-based) of a CSV file's rows.
std::vector<std::string> csv_column(const fs::path& csv, std::size_t column) {
  std::vector<std::string> out;
  std::istringstream in(read(csv));
  std::string line;
  std::getline(in, line);  // (the header)
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    out.push_back(cells.at(column));
  }
  return out;
}

TEST_CASE("dtsim emulate: real MPI processes end with the simulation's model and accuracy") {
  if (!have_fashion_mnist()) {
    MESSAGE("skipped: dataset-fashion-mnist is not installed (scripts/setup installs it)");
    return;
  }
  Sandbox box;
  auto scenario = [&](int workers) {
    return box.write("e" + std::to_string(workers) + ".toml",
                     "name = \"e\"\nseed = 4\n[model]\nkind = \"mlp\"\nhidden = [64]\n[data]\n"
                     "dataset = \"fashion-mnist\"\ntrain_samples = 4000\ntest_samples = 1000\n"
                     "[train]\nlr = 0.05\nbatch_size = 32\nsteps = 60\neval_every = 20\n"
                     "[cluster]\nworkers = " +
                         std::to_string(workers) + "\n");
  };
  for (int ranks : {2, 4}) {
    CAPTURE(ranks);
    const fs::path file = scenario(ranks);
    const fs::path out = box.path / ("em" + std::to_string(ranks));
    REQUIRE(box.run("emulate " + file.string() + " -q -o " + out.string(),
                    mpirun(ranks) + DTSIM_EXE) == 0);
    CHECK_CONTAINS(box.out, "final parameters: identical to the simulation's, bit for bit");
    const auto summary = nlohmann::json::parse(read(out / "summary.json"));
    CHECK(summary["emulation"]["params_identical"] == true);
    CHECK(summary["emulation"]["ranks"] == ranks);
    CHECK(summary["emulation"]["measured_step_s"].get<double>() > 0);
    CHECK_CONTAINS(read(out / "report.html"), "Emulated: measured against simulated");
    // The accuracy at every point is a `dtsim run`'s of the same file.
    const fs::path run = box.path / ("run" + std::to_string(ranks));
    REQUIRE(box.run("run " + file.string() + " -q -o " + run.string()) == 0);
    CHECK(csv_column(out / "metrics.csv", 6) == csv_column(run / "metrics.csv", 6));
    CHECK(read(out / "simulated" / "metrics.csv") == read(run / "metrics.csv"));
    // Each rank sent what the simulated ring sends: 2 (p - 1) parts of the gradient a step.
    CHECK(csv_column(out / "nodes.csv", 6) == csv_column(run / "nodes.csv", 6));
  }
  // Parameter servers on ranks of their own: 2 workers and 1 shard, bsp (the simulation's
  // model) and asp (steps x workers gradients, in the machine's order).
  const fs::path ps =
      box.write("ps.toml", read(scenario(2)) + "[strategy]\narchitecture = \"ps\"\n");
  REQUIRE(box.run("emulate " + ps.string() + " -q --set cluster.servers=1 -o " +
                      (box.path / "ps").string(),
                  mpirun(3) + DTSIM_EXE) == 0);
  CHECK(nlohmann::json::parse(
            read(box.path / "ps" / "summary.json"))["emulation"]["params_identical"] == true);
  REQUIRE(box.run("emulate " + ps.string() +
                      " -q --set cluster.servers=1 --set strategy.sync=asp "
                      "--set train.optimizer=sgd --set train.lr=0.1 -o " +
                      (box.path / "asp").string(),
                  mpirun(3) + DTSIM_EXE) == 0);
  const auto asp = nlohmann::json::parse(read(box.path / "asp" / "summary.json"));
  CHECK(asp["steps"] == 120);
  CHECK(asp["final_test_accuracy"].get<double>() > 0.5);
  // MPI_Allreduce: the library's summation order, so the model differs by rounding only.
  const fs::path out = box.path / "lib";
  REQUIRE(box.run("emulate " + scenario(4).string() + " --mpi-allreduce -q -o " + out.string(),
                  mpirun(4) + DTSIM_EXE) == 0);
  const auto summary = nlohmann::json::parse(read(out / "summary.json"));
  CHECK(summary["emulation"]["exchange"] == "MPI_Allreduce");
  CHECK(summary["emulation"]["relative_diff"].get<double>() < 1e-5);
  // The wrong number of ranks, said once (by rank 0), exit 2, nothing written.
  CHECK(box.run("emulate " + scenario(2).string() + " -o " + (box.path / "bad").string(),
                mpirun(3) + DTSIM_EXE) == 2);
  CHECK_CONTAINS(box.err,
                 "the scenario has 2 worker(s): run it on 2 rank(s) (mpirun -np 2), not 3");
  CHECK_FALSE(fs::exists(box.path / "bad"));
}

TEST_CASE("dtsim calibrate prints settings a scenario takes") {
  if (!have_fashion_mnist()) {
    MESSAGE("skipped: dataset-fashion-mnist is not installed (scripts/setup installs it)");
    return;
  }
  Sandbox box;
  const fs::path file = box.write("c.toml",
                                  "name = \"c\"\n[model]\nkind = \"mlp\"\nhidden = [64]\n[data]\n"
                                  "dataset = \"fashion-mnist\"\ntrain_samples = 2000\n"
                                  "test_samples = 500\n[cluster]\nworkers = 2\n");
  REQUIRE(box.run("calibrate " + file.string() + " --repeats 10") == 0);
  CHECK_CONTAINS(box.out, "[cluster]\ncompute = \"");
  CHECK_CONTAINS(box.out, "# [network]: run under mpirun");
  // Under mpirun: the network too; the set form is accepted by the scenario it measured.
  REQUIRE(box.run("calibrate " + file.string() + " --mpi --repeats 10 --format set",
                  mpirun(2) + DTSIM_EXE) == 0);
  const std::string set = box.out.substr(0, box.out.find('\n'));
  CHECK_CONTAINS(set, "--set network.latency=");
  CHECK_CONTAINS(set, "--set network.bandwidth=");
  REQUIRE(box.run("validate " + file.string() + " " + set) == 0);
  CHECK_CONTAINS(box.out, "network.topology = star");
  CHECK(box.run("calibrate " + file.string() + " --format yaml") == 2);
  CHECK_CONTAINS(box.err, "--format: \"yaml\": expected toml or set");
}

TEST_CASE("dtsim sweep --emit slurm writes each point as a scenario and a job array") {
  Sandbox box;
  const fs::path scenario = box.write("sweep.toml", std::string(kBlobs) +
                                                        "[sweep]\n\"strategy.collective\" = "
                                                        "[\"ring\", \"tree\"]\n");
  REQUIRE(box.run("sweep " + scenario.string() + " -q -o " + (box.path / "local").string()) == 0);
  const fs::path out = box.path / "emit";
  REQUIRE(box.run("sweep " + scenario.string() + " --emit slurm -o " + out.string()) == 0);
  CHECK_CONTAINS(box.out, "run them: sbatch");
  REQUIRE(fs::exists(out / "01-collective=ring.toml"));
  const std::string point = read(out / "02-collective=tree.toml");
  CHECK_CONTAINS(point, "collective = 'tree'");
  CHECK(point.find("[sweep]") == std::string::npos);
  const std::string script = read(out / "sweep.slurm");
  CHECK_CONTAINS(script, "#SBATCH --array=1-2");
  // What Slurm would do: each array task, then dtsim compare.
  for (int task = 1; task <= 2; ++task) {
    REQUIRE(box.run("-c 'SLURM_ARRAY_TASK_ID=" + std::to_string(task) + " bash " +
                        (out / "sweep.slurm").string() + "'",
                    "bash") == 0);
  }
  REQUIRE(box.run("compare " + (out / "01-collective=ring").string() + " " +
                  (out / "02-collective=tree").string() + " -o " + out.string()) == 0);
  CHECK(fs::exists(out / "compare.html"));
  check_same_points(box.path / "local", out, 2);
}

TEST_CASE("a sweep whose grid has a point that cannot work is refused before any run") {
  Sandbox box;
  const fs::path scenario = box.write(
      "sweep.toml", std::string(kBlobs) +
                        "[network]\nnodes_per_machine = 2\n[sweep]\n\"cluster.workers\" = [2, 3]\n"
                        "\"strategy.collective\" = [\"ring\", \"hierarchical\"]\n");
  const fs::path out = box.path / "sw";
  CHECK(box.run("sweep " + scenario.string() + " -o " + out.string()) == 2);
  CHECK_CONTAINS(box.err,
                 "sweep.toml:23:21: sweep: the point workers=3,collective=hierarchical "
                 "does not work");
  CHECK_CONTAINS(box.err, "not a multiple of network.nodes_per_machine");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a pipeline run: explain --json predicts it, summary.json and the trace describe it") {
  Sandbox box;
  const fs::path scenario = box.write("pipe.toml", std::string(kBlobs) + R"(
[strategy]
architecture = "pipeline"
sync = "1f1b"
stages = 3
micro_batches = 5
)");
  REQUIRE(box.run("explain " + scenario.string() + " --json") == 0);
  const auto predicted = nlohmann::json::parse(box.out);
  REQUIRE(box.run("run " + scenario.string() + " -q -o " + (box.path / "o").string()) == 0);
  const auto summary = nlohmann::json::parse(read(box.path / "o" / "summary.json"));
  CHECK(predicted["bottleneck"].is_string());
  CHECK(predicted["predicted_step_s"].get<double>() > 0);
  CHECK(predicted["predicted_virtual_time_s"].get<double>() ==
        doctest::Approx(summary["virtual_time_s"].get<double>()).epsilon(0.02));
  const auto& mp = summary["model_parallel"];
  CHECK(mp["stages"] == 3);
  CHECK(mp["micro_batches"] == 5);
  CHECK(mp["data_parallel"] == 1);
  CHECK(mp["peak_in_flight"] == nlohmann::json::array({3, 2, 1}));
  CHECK(mp["bubble_fraction"].get<double>() > 0);
  CHECK(mp["activation_bytes_per_step"].get<std::uint64_t>() > 0);
  // The timeline has a forward and a backward span for each stage and micro-batch.
  const std::string trace = read(box.path / "o" / "trace.json");
  CHECK_CONTAINS(trace, "\"name\": \"forward 3\"");
  CHECK_CONTAINS(trace, "\"name\": \"backward 0\"");
  CHECK_CONTAINS(read(box.path / "o" / "nodes.csv"), "2,stage 2,");
}
