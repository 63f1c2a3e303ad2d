#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "reports/compare_report.hpp"
#include "reports/html_report.hpp"
#include "reports/run_writer.hpp"
#include "reports/trace_writer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  TempDir() : path(fs::temp_directory_path() / ("dtsim_reports_" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

}  // namespace

TEST_CASE("metrics rows: shortest round-trip numbers, NaN as an empty cell") {
  EvalPoint p;
  p.step = 200;
  p.epoch = 0.5;
  p.virtual_time_s = 0.1;
  p.samples = 12800;
  p.train_loss = std::numeric_limits<double>::quiet_NaN();
  p.test_loss = 0.25;
  p.test_accuracy = 0.8125;
  CHECK(metrics_csv_row(p) == "200,0.5,0.1,12800,,0.25,0.8125,0,0,0,,,ok\n");
  CHECK(metrics_csv_header() ==
        "step,epoch,virtual_time_s,samples,train_loss,test_loss,test_accuracy,bytes_sent,"
        "mean_staleness,max_staleness,consensus_distance,grad_norm,health\n");
  // Replicas without a global version: no staleness, a consensus distance.
  p.mean_staleness = std::numeric_limits<double>::quiet_NaN();
  p.max_staleness = 0;
  p.consensus_distance = 0.125;
  CHECK(metrics_csv_row(p) == "200,0.5,0.1,12800,,0.25,0.8125,0,,,0.125,,ok\n");
  // A gradient norm, and a run that exploded.
  p.grad_norm = 1.5;
  p.health = Health::kExploded;
  CHECK(metrics_csv_row(p) == "200,0.5,0.1,12800,,0.25,0.8125,0,,,0.125,1.5,exploded\n");
}

TEST_CASE("layers.csv: a row per evaluation and parameter tensor") {
  RunResult r;
  r.layer_names = {"dense1.weight", "dense1.bias"};
  r.evals.resize(2);
  r.evals[1].step = 100;
  r.evals[1].layer_grad_norms = {0.5, 0.25};
  CHECK(layers_csv(r) == "step,layer,grad_norm\n100,dense1.weight,0.5\n100,dense1.bias,0.25\n");
}

TEST_CASE("metrics.csv is readable while streaming and appears whole on commit") {
  TempDir dir;
  {
    MetricsCsvWriter writer(dir.path);
    EvalPoint p;
    p.step = 1;
    writer.append(p);
    CHECK_FALSE(fs::exists(dir.path / "metrics.csv"));
    const std::string partial = read(dir.path / "metrics.csv.partial");
    CHECK(partial == metrics_csv_header() + metrics_csv_row(p));
    writer.commit();
  }
  CHECK(fs::exists(dir.path / "metrics.csv"));
  CHECK_FALSE(fs::exists(dir.path / "metrics.csv.partial"));
}

TEST_CASE("an abandoned file leaves nothing under its final name") {
  TempDir dir;
  {
    AtomicFile f(dir.path / "x.json");
    f.write("{");
  }
  CHECK_FALSE(fs::exists(dir.path / "x.json"));
  CHECK_FALSE(fs::exists(dir.path / "x.json.partial"));
}

TEST_CASE("summary.json has the design's keys and values") {
  Scenario s;
  s.name = "n";
  s.seed = 5;
  s.train.target_accuracy = 0.8;
  RunResult r;
  EvalPoint a;
  a.test_accuracy = 0.7;
  a.test_loss = 0.9;
  EvalPoint b;
  b.test_accuracy = 0.85;
  b.test_loss = 0.5;
  EvalPoint c;
  c.test_accuracy = 0.83;
  c.test_loss = 0.55;
  r.evals = {a, b, c};
  r.virtual_time_s = 2.0;
  r.samples = 1000;
  r.time_to_target_s = 1.5;
  r.nodes = {NodeStats{}};
  r.nodes[0].bytes_sent = 42;
  r.wall_time_s = 3.5;
  r.threads = 2;
  const auto j = nlohmann::json::parse(summary_json(s, r));
  CHECK(j["name"] == "n");
  CHECK(j["seed"] == 5);
  CHECK(j["final_test_accuracy"].get<double>() == doctest::Approx(0.83));
  CHECK(j["best_test_accuracy"].get<double>() == doctest::Approx(0.85));
  CHECK(j["final_test_loss"].get<double>() == doctest::Approx(0.55));
  CHECK(j["virtual_time_s"].get<double>() == doctest::Approx(2.0));
  CHECK(j["time_to_target_s"].get<double>() == doctest::Approx(1.5));
  CHECK(j["throughput_samples_per_s"].get<double>() == doctest::Approx(500.0));
  CHECK(j["bytes_sent_total"] == 42);
  // No staleness recorded (replicas): null; otherwise over the whole histogram.
  CHECK(j["mean_staleness"].is_null());
  CHECK(j["max_staleness"].is_null());
  r.staleness_histogram = {{0, 2}, {1, 1}, {5, 1}};
  const auto k = nlohmann::json::parse(summary_json(s, r));
  CHECK(k["mean_staleness"].get<double>() == doctest::Approx(1.5));
  CHECK(k["max_staleness"] == 5);
  CHECK(k["staleness_histogram"].dump() == "[[0,2],[1,1],[5,1]]");
  CHECK(j["wall"]["wall_time_s"].get<double>() == doctest::Approx(3.5));
  CHECK(j["wall"]["threads"] == 2);
  SUBCASE("never reaching the target gives null") {
    r.time_to_target_s.reset();
    CHECK(nlohmann::json::parse(summary_json(s, r))["time_to_target_s"].is_null());
  }
}

TEST_CASE("nodes.csv has one row per node") {
  RunResult r;
  NodeStats n;
  n.node = 0;
  n.role = "worker";
  n.compute_flops_per_s = 5e12;
  n.compute_s = 0.25;
  n.steps = 7;
  n.dropped = 2;
  r.nodes = {n};
  CHECK(nodes_csv(r) ==
        "node,role,compute_flops_per_s,compute_s,comm_s,idle_s,bytes_sent,bytes_received,steps,"
        "dropped\n"
        "0,worker,5000000000000,0.25,0,0,0,0,7,2\n");
}

TEST_CASE("trace.json is Chrome trace-event JSON, bounded in size") {
  TempDir dir;
  {
    TraceWriter trace(dir.path, 2, 1, 3);
    trace.on_compute(0, "gradient", SimTime::from_ns(0), SimTime::from_ns(1500));
    trace.on_wait(1, SimTime::from_ns(0), SimTime::from_ns(2000));
    trace.on_message(Message{0, 1, 7, 4096, nullptr, nullptr}, SimTime::from_ns(1500),
                     SimTime::from_ns(2500));
    trace.on_compute(1, "update", SimTime::from_ns(2500),
                     SimTime::from_ns(3000));  // over the bound
    CHECK(trace.truncated());
    trace.commit();
  }
  const auto j = nlohmann::json::parse(read(dir.path / "trace.json"));
  const auto& ev = j["traceEvents"];
  int threads = 0, spans = 0, begins = 0, ends = 0;
  for (const auto& e : ev) {
    if (e["name"] == "thread_name") ++threads;
    if (e["ph"] == "X") ++spans;
    if (e["ph"] == "b") {
      ++begins;
      CHECK(e["ts"].get<double>() == 1.5);
      CHECK(e["args"]["bytes"] == 4096);
      CHECK(e["tid"] == 0);
    }
    if (e["ph"] == "e") ++ends;
  }
  CHECK(threads == 2);
  CHECK(spans == 2);
  CHECK(begins == 1);
  CHECK(ends == 1);
  CHECK(j["metadata"]["events"] == 3);
  CHECK(j["metadata"]["trace_truncated_at_s"].get<double>() == doctest::Approx(2.5e-6));
  for (const auto& e : ev) {
    if (e["ph"] == "X" && e["name"] == "gradient") CHECK(e["dur"].get<double>() == 1.5);
  }
}

TEST_CASE("HTML escaping") {
  CHECK(html_escape("<script>alert('x')</script> & \"q\"") ==
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
}

TEST_CASE("report.html holds scenario text only as inert data") {
  Scenario s;
  s.name = "<script>alert(1)</script>";
  s.description = "</script><img src=x onerror=alert(2)>";
  RunResult r;
  r.evals = {EvalPoint{}};
  r.nodes = {NodeStats{}};
  r.nodes[0].role = "worker";
  const std::string page = report_html(s, r);
  CHECK(page.find("<script>alert(1)</script>") == std::string::npos);
  CHECK(page.find("<img src=x") == std::string::npos);
  CHECK(page.find("<title>&lt;script&gt;alert(1)&lt;/script&gt; — dtsim report</title>") !=
        std::string::npos);
  CHECK(page.find("\\u003c/script\\u003e\\u003cimg src=x onerror=alert(2)\\u003e") !=
        std::string::npos);
  CHECK(page.find("Chart.js v4") != std::string::npos);  // the library is embedded, not linked
  CHECK(page.find("cdn") == std::string::npos);
}

TEST_CASE("the account of where time went") {
  Scenario s;
  s.train.target_accuracy = 0.9;
  RunResult r;
  r.virtual_time_s = 2.0;
  r.steps = 10;
  r.samples = 640;
  NodeStats a, b;
  a.role = b.role = "worker";
  a.node = 0;
  b.node = 1;
  a.compute_s = 0.5;
  a.comm_s = 1.4;
  a.idle_s = 0.1;
  b.compute_s = 1.5;
  b.comm_s = 0.4;
  b.idle_s = 0.1;
  a.bytes_sent = b.bytes_sent = 500;
  r.nodes = {a, b};
  const auto lines = time_account(s, r);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] ==
        "The 2 workers ran for 2 s of virtual time (10 steps, 640 samples). On average a "
        "worker spent 50% of it computing, 45% communicating and 5% idle.");
  CHECK(lines[1] == "Worker 1 computed longest (1.5 s), 3.0x worker 0 (500 ms).");
  CHECK(lines[2] == "1 kB crossed the network in all: 100 B per step.");
  CHECK(lines[3] == "Test accuracy never reached the target 0.9.");
  // The finding atop the page: no evaluations, so steps and time.
  CHECK(run_finding(s, r) ==
        "It ran 10 steps in 2 s of virtual time. Computation limits it (50% of a worker's "
        "time computing, 45% communicating).");
  EvalPoint end;
  end.test_accuracy = 0.9125;
  r.evals = {end};
  r.time_to_target_s = 1.5;
  CHECK(run_finding(s, r) ==
        "It ended at test accuracy 0.9125 after 2 s of virtual time, and reached the target "
        "0.90 after 1.5 s (75% of the run). Computation limits it (50% of a worker's time "
        "computing, 45% communicating).");
  r.nodes[1].comm_s = 1.4;
  r.nodes[1].compute_s = 0.5;
  r.time_to_target_s.reset();
  r.staleness_histogram = {{0, 1}, {3, 1}};
  FaultRecord f;
  f.lost_gradients = 2;
  FaultRecord shard;
  shard.lost_updates = 5;
  FaultRecord late;  // after the run's end: it never hit
  late.at_s = 3;
  late.lost_gradients = 1;
  r.faults = {f, shard, late};
  CHECK(run_finding(s, r) ==
        "It ended at test accuracy 0.9125 after 2 s of virtual time, without reaching the "
        "target 0.90. Communication limits it (25% of a worker's time computing, 70% "
        "communicating). Its gradients were 1.5 updates stale on average. 2 faults hit it (2 "
        "gradients lost, 5 server updates undone).");
}

TEST_CASE("the account tells dropped gradients, staleness and replica spread") {
  Scenario s;
  RunResult r;
  r.virtual_time_s = 1.0;
  r.steps = 4;
  NodeStats a, b;
  a.role = b.role = "worker";
  a.node = 0;
  b.node = 1;
  a.compute_s = b.compute_s = 0.5;
  a.steps = b.steps = 4;
  b.dropped = 3;
  r.nodes = {a, b};
  r.staleness_histogram = {{0, 1}, {2, 3}};
  EvalPoint p;
  p.consensus_distance = 0.5;
  EvalPoint q;
  q.consensus_distance = 0.25;
  r.evals = {p, q};
  const auto lines = time_account(s, r);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1] ==
        "3 of the 8 gradients computed were dropped (backup workers: each step used only the "
        "first to arrive); their compute time was wasted.");
  CHECK(lines[2] ==
        "Updates were applied 1.50 versions late on average (at most 2): each gradient was "
        "computed on parameters that other workers' updates had since changed.");
  CHECK(lines[3] ==
        "The workers keep their own replicas; the model evaluated is their average. The "
        "replicas' spread (consensus distance) was at most 0.5, and 0.25 at the end.");
  // The page charts the histogram: labels and counts in the data.
  const std::string page = report_html(s, r);
  // (Not CHECK_CONTAINS: it would print the whole page, chart library included.)
  CHECK(page.find("\"labels\":[\"0\",\"2\"]") != std::string::npos);
  CHECK(page.find("\"counts\":[1,3]") != std::string::npos);
  CHECK(page.find("\"consensus\":[0.5,0.25]") != std::string::npos);
}

TEST_CASE("placeholders in scenario text are not filled in") {
  Scenario s;
  s.name = "{{CHART_JS}} {{DATA_JSON}} {{TITLE}}";
  RunResult r;
  r.evals = {EvalPoint{}};
  const std::string page = report_html(s, r);
  std::size_t copies = 0;
  for (std::size_t at = page.find("Chart.js v4"); at != std::string::npos;
       at = page.find("Chart.js v4", at + 1))
    ++copies;
  CHECK(copies == 1);
  CHECK(page.find("<title>{{CHART_JS}} {{DATA_JSON}} {{TITLE}} — dtsim report</title>") !=
        std::string::npos);
}

TEST_CASE("compare.html's finding names the fastest to target, the most accurate and the misses") {
  auto run = [](const char* label, double accuracy, double to_target, double time) {
    FinishedRun r;
    r.label = label;
    r.final_test_accuracy = accuracy;
    r.time_to_target_s = to_target;
    r.virtual_time_s = time;
    return r;
  };
  const double never = std::numeric_limits<double>::quiet_NaN();
  std::vector<FinishedRun> runs = {run("bsp", 0.86, 4.0, 6.0), run("asp", 0.84, 1.0, 2.0),
                                   run("ssp", 0.81, never, 3.0)};
  CHECK(compare_finding(runs) ==
        "asp reached the target accuracy first, in 1 s of virtual time, 4.0x sooner than bsp "
        "(4 s). bsp ended the most accurate, at 0.8600. ssp did not reach the target.");
  runs[2].failed = "failed (exit 2)";
  runs[1].time_to_target_s = never;
  runs[0].time_to_target_s = never;
  CHECK(compare_finding(runs) ==
        "bsp ended the most accurate, at 0.8600. The shortest run was asp, 2 s of virtual time. "
        "1 run(s) failed or diverged.");
  // The page: each run linked to its report, bytes per sample, the shared description.
  runs = {run("a", 0.9, 1.0, 2.0), run("b", 0.8, 2.0, 3.0)};
  runs[0].dir = "/x/runs/01-a";
  runs[1].dir = "/x/runs/02-b";
  runs[0].description = runs[1].description = "Two strategies";
  runs[0].bytes_sent_total = 6000;
  runs[0].samples = 3000;
  const std::string html = compare_html(runs, "t", "/x/runs");
  runs[1].final_test_accuracy = 0.9;
  CHECK_CONTAINS(compare_finding(runs), "All ended at the same accuracy, 0.9000.");
  CHECK_CONTAINS(html, R"("links":["./01-a/report.html","./02-b/report.html"])");
  CHECK_CONTAINS(html, R"("description":"Two strategies")");
  CHECK_CONTAINS(html, R"("2 B")");  // 6000 bytes over 3000 samples
  CHECK_CONTAINS(html, "bytes per sample");
}
