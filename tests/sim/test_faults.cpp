// Faults ([[faults]], sim/train/faults.hpp, docs/faults.md): what each kind does to each
// strategy, and what the run reports about it.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/errors.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/trainer.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

// A small Fashion-MNIST run: `strategy` is the [strategy] table's body (and [cluster] extras
// after it), `faults` whole [[faults]] tables.
std::string scenario_text(const std::string& strategy, const std::string& faults, int workers = 4,
                          int steps = 40, bool time_only = false, int servers = 0) {
  return "name = \"f\"\nseed = 3\n[model]\nkind = \"mlp\"\nhidden = [32]\n"
         "[data]\ndataset = \"fashion-mnist\"\ntrain_samples = 4000\ntest_samples = 1000\n"
         "[train]\noptimizer = \"momentum\"\nlr = 0.05\nbatch_size = 32\nsteps = " +
         std::to_string(steps) +
         "\neval_every = 10\n"
         "[network]\nlatency = \"20us\"\nbandwidth = \"10 Gbps\"\n"
         "[cluster]\nworkers = " +
         std::to_string(workers) +
         "\ncompute = \"1 TFLOPS\"\nservers = " + std::to_string(servers) + "\n" + strategy +
         (time_only ? "\ntime_only = true\n" : "\n") + faults;
}

// Every scenario here reads the same data: loaded once.
const DatasetPair& data_of(const Scenario& s) {
  static const DatasetPair data = load_data(s);
  return data;
}

RunResult run_text(const std::string& text, int threads = 2) {
  const Scenario s = parse_scenario(text, "f.toml");
  return run_training(s, data_of(s), threads);
}

const FaultRecord& only_fault(const RunResult& r) {
  REQUIRE(r.faults.size() == 1);
  return r.faults[0];
}

const std::string kAllreduce = "[strategy]\narchitecture = \"allreduce\"\nsync = \"bsp\"";

}  // namespace

TEST_CASE("faults: a slow node, a cut link and lost messages delay bsp but change no number") {
  const RunResult base = run_text(scenario_text(kAllreduce, ""));
  REQUIRE(base.faults.empty());
  SUBCASE("slow: jobs started in the window take factor times longer") {
    const RunResult r = run_text(scenario_text(
        kAllreduce, "[[faults]]\nkind = \"slow\"\nnode = 2\nat = \"0s\"\nfactor = 3\n"));
    const FaultRecord& f = only_fault(r);
    // Node 2 computed 3x as long as it would have: 2x its normal compute is the extra.
    // (Its compute also holds the allreduce's additions, which the fault does not slow.)
    CHECK(f.cost_s > base.nodes[2].compute_s);
    CHECK(r.nodes[2].compute_s == doctest::Approx(base.nodes[2].compute_s + f.cost_s));
    CHECK(r.virtual_time_s > base.virtual_time_s);
    CHECK(r.evals.back().test_loss == base.evals.back().test_loss);
  }
  SUBCASE("link-down: 0.5 s without a link adds at least 0.5 s and loses no update") {
    // Two workers: while the link is down nothing else can go on (with more, the other
    // links' transfers overlap the window a little).
    const RunResult two = run_text(scenario_text(kAllreduce, "", 2));
    const RunResult r =
        run_text(scenario_text(kAllreduce,
                               "[[faults]]\nkind = \"link-down\"\nnode = 1\nat = \"1ms\"\n"
                               "duration = \"0.5s\"\n",
                               2));
    const FaultRecord& f = only_fault(r);
    CHECK(r.virtual_time_s >= two.virtual_time_s + 0.5);
    CHECK(r.virtual_time_s < two.virtual_time_s + 0.5 + 0.01);
    CHECK(f.paused_transfers > 0);
    CHECK(f.cost_s == 0.5);
    CHECK(r.steps == two.steps);
    CHECK(r.evals.back().test_loss == two.evals.back().test_loss);
    CHECK(r.nodes[1].bytes_sent == two.nodes[1].bytes_sent);
  }
  SUBCASE("loss: lost transfers are sent again after the timeout; nothing else changes") {
    const RunResult r =
        run_text(scenario_text(kAllreduce,
                               "[[faults]]\nkind = \"loss\"\nnode = 0\nat = \"0s\"\n"
                               "probability = 0.1\ntimeout = \"5ms\"\n"));
    const FaultRecord& f = only_fault(r);
    CHECK(f.retransmissions > 0);
    CHECK(f.cost_s == doctest::Approx(0.005 * static_cast<double>(f.retransmissions)));
    CHECK(f.retransmitted_bytes > 0);
    // Every retransmission stalls the ring by its timeout at least once.
    CHECK(r.virtual_time_s > base.virtual_time_s + 0.005);
    CHECK(r.evals.back().test_loss == base.evals.back().test_loss);
  }
}

TEST_CASE("faults: bsp over allreduce goes on without a crashed worker") {
  const std::string crash = "[[faults]]\nkind = \"crash\"\nnode = 3\nat = \"5ms\"\n";
  const RunResult base = run_text(scenario_text(kAllreduce + "\nfailure_timeout = \"20ms\"", ""));
  const RunResult r = run_text(scenario_text(kAllreduce + "\nfailure_timeout = \"20ms\"", crash));
  const FaultRecord& f = only_fault(r);
  CHECK(f.kind == "crash");
  CHECK(f.detected_s == doctest::Approx(0.025));
  CHECK(std::isnan(f.rejoined_s));
  CHECK(f.lost_gradients == 1);
  CHECK(f.lost_compute_s > 0);
  // The others waited for the detection: from their arrival to 25 ms.
  CHECK(f.cost_s > 0);
  CHECK(f.cost_s < 0.025);
  CHECK(r.steps == base.steps);
  CHECK(r.virtual_time_s > base.virtual_time_s);
  // The crashed worker computed only until its crash; the others every step.
  CHECK(r.nodes[3].steps < base.nodes[3].steps);
  CHECK(r.nodes[0].steps == base.nodes[0].steps);
  // After the crash, each step has 3 workers' samples: 32 * (4 s + 3 (40 - s)) for the s
  // steps before it.
  CHECK(r.samples < base.samples);
  CHECK(r.samples > base.samples * 3 / 4);
  CHECK((r.samples - 40 * 3 * 32) % 32 == 0);
  CHECK(r.evals.back().test_accuracy > 0.6);
}

TEST_CASE("faults: a restarted worker rejoins bsp with the others' model") {
  const std::string restart =
      "[[faults]]\nkind = \"restart\"\nnode = 0\nat = \"2ms\"\nduration = \"4ms\"\n";
  const RunResult base = run_text(scenario_text(kAllreduce + "\nfailure_timeout = \"2ms\"", ""));
  const RunResult r = run_text(scenario_text(kAllreduce + "\nfailure_timeout = \"2ms\"", restart));
  const FaultRecord& f = only_fault(r);
  CHECK(f.detected_s == doctest::Approx(0.004));
  REQUIRE(!std::isnan(f.rejoined_s));
  CHECK(f.rejoined_s >= 0.006);
  CHECK(f.lost_gradients == 1);
  CHECK(r.steps == base.steps);
  // Worker 0 was out for a few steps (its samples missing) and back for the rest.
  CHECK(r.nodes[0].steps < base.nodes[0].steps);
  CHECK(r.nodes[0].steps > base.nodes[0].steps / 2);
  CHECK(r.evals.back().test_accuracy > 0.6);
}

TEST_CASE("faults: bsp over a parameter server serves each step's group") {
  const std::string ps =
      "[strategy]\narchitecture = \"ps\"\nsync = \"bsp\"\nfailure_timeout = \"2ms\"";
  const RunResult base = run_text(scenario_text(ps, "", 4, 40, false, 2));
  for (const char* kind : {"crash", "restart"}) {
    CAPTURE(kind);
    const RunResult r = run_text(
        scenario_text(ps,
                      std::string("[[faults]]\nkind = \"") + kind + "\"\nnode = 2\nat = \"3ms\"\n" +
                          (std::string(kind) == "restart" ? "duration = \"4ms\"\n" : ""),
                      4, 40, false, 2));
    const FaultRecord& f = only_fault(r);
    CHECK(f.detected_s == doctest::Approx(0.005));
    CHECK(f.lost_gradients == 1);
    CHECK(r.steps == base.steps);
    CHECK(r.nodes[2].steps < base.nodes[2].steps);
    CHECK(r.nodes[0].steps == base.nodes[0].steps);
    // The shards applied every step (their nodes are 4 and 5).
    CHECK(r.nodes[4].steps == base.nodes[4].steps);
    CHECK(r.samples < base.samples);
    if (std::string(kind) == "restart") {
      CHECK(f.rejoined_s >= 0.007);
      CHECK(r.nodes[2].steps > base.nodes[2].steps / 2);
    }
    // (A 40-step run: its last evaluation moves by a few points either way; chance is 0.1.)
    CHECK(r.evals.back().test_accuracy > 0.6);
  }
  // A crash after the run's end changes nothing: the gate alone keeps the numbers.
  const RunResult late = run_text(scenario_text(
      ps, "[[faults]]\nkind = \"crash\"\nnode = 2\nat = \"100s\"\n", 4, 40, false, 2));
  CHECK(late.evals.back().test_loss == base.evals.back().test_loss);
  CHECK(std::isnan(only_fault(late).detected_s));
}

TEST_CASE("faults: server shards' checkpoints cost their bytes at the link's bandwidth") {
  // MLP 784-32-10: 25,450 parameters, 12,725 per shard; momentum keeps one more vector: a
  // checkpoint is 2 x 12,725 floats, written at 10 Gbps.
  const double one = 2 * 12725 * 4 / 1.25e9;
  for (const char* sync : {"bsp", "asp"}) {
    CAPTURE(sync);
    const std::string st =
        std::string("[strategy]\narchitecture = \"ps\"\nsync = \"") + sync + "\"";
    const RunResult base = run_text(scenario_text(st, "", 4, 40, false, 2));
    const RunResult r =
        run_text(scenario_text(st + "\ncheckpoint_every = 10", "", 4, 40, false, 2));
    // Each shard's updates: 40 steps (bsp), or 40 x 4 gradients (asp); none after the last.
    const std::uint64_t per_shard = std::string(sync) == "bsp" ? 40 / 10 - 1 : 160 / 10 - 1;
    CHECK(r.checkpoints == 2 * per_shard);
    CHECK(r.checkpoint_s == doctest::Approx(static_cast<double>(2 * per_shard) * one));
    CHECK(base.checkpoints == 0);
    // A lock-step run can only be delayed, and its numbers do not depend on time. (asp's
    // time can go either way: a checkpoint staggers the workers' pushes, which then queue
    // less at the server.)
    if (std::string(sync) == "bsp") {
      CHECK(r.virtual_time_s >= base.virtual_time_s);
      CHECK(r.evals.back().test_loss == base.evals.back().test_loss);
    }
  }
}

TEST_CASE("faults: a crashed server shard resumes from its checkpoint on a spare") {
  const std::string ps =
      "[strategy]\narchitecture = \"ps\"\nsync = \"bsp\"\nfailure_timeout = \"2ms\"\n";
  const RunResult base = run_text(scenario_text(ps + "checkpoint_every = 1", "", 4, 40, false, 2));
  const double at = base.virtual_time_s * 0.4;
  const std::string crash =
      "[[faults]]\nkind = \"crash\"\nnode = 4\nat = \"" + std::to_string(at) + "s\"\n";
  // Reading the checkpoint (2 x 12,725 floats) and the step's 4 gradient parts again.
  const double restore = (2 * 12725 * 4 + 4 * 12725 * 4) / 1.25e9;
  const double at_s = std::stod(std::to_string(at));
  SUBCASE("a checkpoint after every update: nothing is lost, the numbers are the same") {
    const RunResult r =
        run_text(scenario_text(ps + "checkpoint_every = 1", crash, 4, 40, false, 2));
    const FaultRecord& f = only_fault(r);
    CHECK(f.detected_s == doctest::Approx(at_s + 0.002));
    CHECK(f.rejoined_s == doctest::Approx(at_s + 0.002 + restore));
    // (From when the shard was next needed, at or after the crash, to its restore's end.)
    CHECK(f.cost_s > restore);
    CHECK(f.cost_s <= 0.002 + restore + 1e-12);
    CHECK(f.lost_updates == 0);
    CHECK(f.lost_gradients == 0);
    CHECK(r.steps == base.steps);
    CHECK(r.evals.back().test_loss == base.evals.back().test_loss);
    CHECK(r.virtual_time_s >= base.virtual_time_s + 0.002);
  }
  SUBCASE("rarer checkpoints: the updates since the last one are lost") {
    const RunResult every1 =
        run_text(scenario_text(ps + "checkpoint_every = 1", crash, 4, 40, false, 2));
    const RunResult r =
        run_text(scenario_text(ps + "checkpoint_every = 8", crash, 4, 40, false, 2));
    const RunResult never =
        run_text(scenario_text(ps + "checkpoint_every = 1000", crash, 4, 40, false, 2));
    const FaultRecord& f = only_fault(r);
    // Without a checkpoint the shard goes back to the initial model: every update it made
    // before the crash (about 40% of 40) is lost; with one every 8, fewer than 8.
    const std::uint64_t done = only_fault(never).lost_updates;
    CHECK(done >= 12);
    CHECK(done <= 20);
    CHECK(f.lost_updates < 8);
    CHECK(only_fault(every1).lost_updates == 0);
    CHECK(r.steps == base.steps);
    if (f.lost_updates > 0) CHECK(r.evals.back().test_loss != base.evals.back().test_loss);
    CHECK(never.evals.back().test_loss != base.evals.back().test_loss);
    CHECK(never.evals.back().test_accuracy > 0.5);
    CHECK(r.evals.back().test_accuracy > 0.6);
  }
}

TEST_CASE("faults: every parameter-server mode survives a shard's crash or restart") {
  for (const char* mode : {"bsp", "asp", "ssp", "delayed", "backup"}) {
    for (const char* kind : {"crash", "restart"}) {
      CAPTURE(mode);
      CAPTURE(kind);
      const std::string m = mode;
      std::string st =
          "[strategy]\narchitecture = \"ps\"\nfailure_timeout = \"2ms\"\n"
          "checkpoint_every = 5\nsync = \"" +
          (m == "backup" ? std::string("bsp") : m) + "\"\n";
      if (m == "ssp" || m == "delayed") st += "staleness = 2\n";
      if (m == "backup") st += "backup_workers = 1\n";
      const RunResult base = run_text(scenario_text(st, "", 4, 30, false, 2));
      const double at = std::stod(std::to_string(base.virtual_time_s * 0.3));
      const std::string fault = std::string("[[faults]]\nkind = \"") + kind +
                                "\"\nnode = 5\nat = \"" + std::to_string(at) + "s\"\n" +
                                (std::string(kind) == "restart" ? "duration = \"3ms\"\n" : "");
      const RunResult r = run_text(scenario_text(st, fault, 4, 30, false, 2));
      const FaultRecord& f = only_fault(r);
      // Down until the spare (crash) or the shard (restart) is up, then the restore (0.24 ms).
      const double up = at + (std::string(kind) == "crash" ? 0.002 : 0.003);
      CHECK(f.rejoined_s > up);
      CHECK(f.rejoined_s < up + 0.001);
      CHECK(f.cost_s <= f.rejoined_s - at + 1e-12);
      CHECK(f.cost_s > 0);
      CHECK(f.lost_updates < 5);
      // The run's length: bsp's steps, asp's and delayed's steps x p updates (ssp hands out
      // the same gradients, whose clocks may then form one more update).
      if (m == "ssp") {
        CHECK(r.samples == base.samples);
      } else {
        CHECK(r.steps == base.steps);
      }
      // (These 30-step runs learn little in the asynchronous modes: base accuracy 0.2 to 0.5.)
      CHECK(r.evals.back().test_accuracy > base.evals.back().test_accuracy - 0.1);
      if (m == "bsp" || m == "backup") CHECK(r.virtual_time_s > base.virtual_time_s);
    }
  }
}

TEST_CASE(
    "faults: asp, ssp and delayed go on without a crashed worker, whose ticket the others take") {
  for (const char* sync : {"asp", "ssp", "delayed"}) {
    CAPTURE(sync);
    const std::string st = std::string("[strategy]\narchitecture = \"ps\"\nsync = \"") + sync +
                           "\"\nstaleness = 2\nstaleness_lr = true\nfailure_timeout = \"5ms\"\n";
    std::string text = scenario_text(st, "[[faults]]\nkind = \"crash\"\nnode = 1\nat = \"3ms\"\n",
                                     4, 40, false, 2);
    if (std::string(sync) == "asp") text.replace(text.find("staleness = 2\n"), 14, "");
    const RunResult r = run_text(text);
    const RunResult base = run_text(text.substr(0, text.find("[[faults]]")));
    const FaultRecord& f = only_fault(r);
    CHECK(f.lost_gradients == 1);
    CHECK(f.detected_s == doctest::Approx(0.008));
    // Every gradient of the run's budget was applied (asp, delayed: one update each).
    if (std::string(sync) != "ssp") CHECK(r.steps == 40 * 4);
    // It goes on learning. (These short asynchronous runs are chaotic: which of two gradients
    // that arrive in the same nanosecond is applied first moves the final accuracy of the run
    // with or without the crash between 0.2 and 0.6, so the two are not compared.)
    CHECK(r.evals.back().test_loss < r.evals.front().test_loss - 0.1);
    CHECK(r.evals.back().test_accuracy > 0.15);
    CHECK(base.evals.back().test_loss < base.evals.front().test_loss - 0.1);
  }
}

TEST_CASE("faults: every strategy with every kind completes or refuses it by name") {
  struct Mode {
    const char* name;
    std::string strategy;
    int workers;
    int servers = 0;
  };
  const std::vector<Mode> modes = {
      {"allreduce bsp", kAllreduce, 4},
      {"allreduce local-sgd",
       "[strategy]\narchitecture = \"allreduce\"\nsync = \"local-sgd\"\nlocal_steps = 4", 4},
      {"ps bsp", "[strategy]\narchitecture = \"ps\"\nsync = \"bsp\"", 4, 2},
      {"ps asp", "[strategy]\narchitecture = \"ps\"\nsync = \"asp\"", 4, 2},
      {"ps ssp", "[strategy]\narchitecture = \"ps\"\nsync = \"ssp\"\nstaleness = 2", 4, 2},
      {"ps delayed", "[strategy]\narchitecture = \"ps\"\nsync = \"delayed\"\nstaleness = 2", 4, 2},
      {"gossip d-psgd", "[strategy]\narchitecture = \"gossip\"\nsync = \"d-psgd\"", 4},
      {"gossip ad-psgd", "[strategy]\narchitecture = \"gossip\"\nsync = \"ad-psgd\"", 4},
      {"pipeline gpipe",
       "[strategy]\narchitecture = \"pipeline\"\nsync = \"gpipe\"\nstages = 2\nmicro_batches = 4",
       2},
      {"tensor bsp", "[strategy]\narchitecture = \"tensor\"\nsync = \"bsp\"\ntensor_parallel = 2",
       2},
  };
  const std::vector<std::pair<const char*, std::string>> kinds = {
      {"crash", "kind = \"crash\"\nnode = 1\nat = \"2ms\""},
      {"restart", "kind = \"restart\"\nnode = 1\nat = \"2ms\"\nduration = \"3ms\""},
      {"slow", "kind = \"slow\"\nnode = 1\nat = \"0s\"\nfactor = 4"},
      {"link-down", "kind = \"link-down\"\nnode = 1\nat = \"1ms\"\nduration = \"50ms\""},
      {"loss", "kind = \"loss\"\nnode = 1\nat = \"0s\"\nprobability = 0.2\ntimeout = \"2ms\""},
  };
  for (const Mode& m : modes) {
    const std::string st = m.strategy + "\nfailure_timeout = \"3ms\"";
    const RunResult base = run_text(scenario_text(st, "", m.workers, 24, true, m.servers));
    for (const auto& [kind, body] : kinds) {
      const std::string mode_name = m.name;
      CAPTURE(mode_name);
      const std::string kind_name = kind;
      CAPTURE(kind_name);
      const std::string text = scenario_text(st, std::string("[[faults]]\n") + body + "\n",
                                             m.workers, 24, true, m.servers);
      const bool survives = std::string(kind) != "crash" && std::string(kind) != "restart";
      const bool crash_ok = m.name == std::string("allreduce bsp") ||
                            m.name == std::string("ps bsp") || m.name == std::string("ps asp") ||
                            m.name == std::string("ps ssp") ||
                            m.name == std::string("ps delayed") ||
                            (m.name == std::string("gossip d-psgd") && kind_name == "crash");
      if (!survives && !crash_ok) {
        try {
          (void)parse_scenario(text, "f.toml");
          FAIL("accepted");
        } catch (const ScenarioError& e) {
          REQUIRE(!e.errors().empty());
          CHECK(e.errors()[0].key() == "faults.kind");
          CHECK_CONTAINS(e.errors()[0].message(), mode_name == "gossip d-psgd"
                                                      ? "cannot rejoin its neighbours"
                                                      : "cannot go on without a worker");
        }
        continue;
      }
      const RunResult r = run_text(text);
      const FaultRecord& f = only_fault(r);
      CHECK(f.kind == kind);
      // A lock-step run can only be delayed. (A crash can make the rest quicker: fewer
      // workers to wait for; and an asynchronous run gives a slow worker's share to the
      // others.)
      const bool async = mode_name == "ps asp" || mode_name == "ps ssp" ||
                         mode_name == "ps delayed" || mode_name == "gossip ad-psgd";
      if (survives && !async) {
        CHECK(r.virtual_time_s >= base.virtual_time_s - 1e-12);
        CHECK(r.steps == base.steps);
      }
      if (std::string(kind) == "slow") CHECK(f.cost_s > 0);
      if (std::string(kind) == "loss") CHECK(f.retransmissions > 0);
      if (std::string(kind) == "link-down") CHECK(r.virtual_time_s >= 0.051);
      // (Gossip stops a worker whose crash came outside a gradient at its next step: none lost.)
      if (!survives && mode_name != "gossip d-psgd") CHECK(f.lost_gradients == 1);
      if (!survives) CHECK(f.lost_gradients <= 1);
    }
  }
}

TEST_CASE("faults: gossip goes on without a crashed worker, its neighbours mixing without it") {
  const std::string gossip =
      "[strategy]\narchitecture = \"gossip\"\nsync = \"d-psgd\"\nfailure_timeout = \"2ms\"";
  const std::string crash = "[[faults]]\nkind = \"crash\"\nnode = 2\nat = \"5ms\"\n";
  const RunResult base = run_text(scenario_text(gossip, "", 6, 60));
  const RunResult r = run_text(scenario_text(gossip, crash, 6, 60));
  const FaultRecord& f = only_fault(r);
  CHECK(f.lost_gradients <= 1);
  CHECK(f.detected_s == doctest::Approx(0.007));
  // Its neighbours (1 and 3) waited for it until they noticed; the others did not.
  CHECK(f.cost_s > 0);
  CHECK(f.cost_s <= 2 * 0.002 + 1e-9);
  // Every evaluation happened, over the five survivors' replicas, and they still learn.
  REQUIRE(r.evals.size() == base.evals.size());
  CHECK(r.steps == base.steps);
  CHECK(r.evals.back().test_accuracy > 0.7);
  CHECK(r.evals.back().test_accuracy >= base.evals.back().test_accuracy - 0.05);
  CHECK(r.nodes[2].steps < r.nodes[0].steps);
  // Samples count the survivors only after the crash.
  CHECK(r.samples < base.samples);
  // The same with CHOCO-SGD's compressed exchange, and for any number of threads.
  const std::string coded = crash + "[compression]\ncodec = \"topk\"\nratio = 0.25\n";
  const RunResult one = run_text(scenario_text(gossip, coded, 6, 60), 1);
  const RunResult two = run_text(scenario_text(gossip, coded, 6, 60), 2);
  CHECK(one.evals.back().test_accuracy > 0.7);
  CHECK(one.evals.back().test_loss == two.evals.back().test_loss);
  CHECK(one.virtual_time_s == two.virtual_time_s);
}

TEST_CASE("faults: a run with faults is the same for any number of threads") {
  const std::string faults =
      "[[faults]]\nkind = \"restart\"\nnode = 2\nat = \"4ms\"\nduration = \"6ms\"\n"
      "[[faults]]\nkind = \"loss\"\nnode = 1\nat = \"0s\"\nprobability = 0.05\n"
      "[[faults]]\nkind = \"slow\"\nnode = 3\nat = \"2ms\"\nduration = \"5ms\"\nfactor = 2\n";
  const std::string text = scenario_text(kAllreduce + "\nfailure_timeout = \"2ms\"", faults);
  const RunResult one = run_text(text, 1);
  const RunResult two = run_text(text, 2);
  REQUIRE(one.evals.size() == two.evals.size());
  for (std::size_t i = 0; i < one.evals.size(); ++i) {
    CHECK(one.evals[i].test_loss == two.evals[i].test_loss);
    CHECK(one.evals[i].virtual_time_s == two.evals[i].virtual_time_s);
  }
  REQUIRE(one.faults.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(one.faults[i].cost_s == two.faults[i].cost_s);
}

TEST_CASE("faults: bad [[faults]] entries are refused where they are written") {
  const auto errors_of = [](const std::string& text) {
    try {
      (void)parse_scenario(text, "f.toml");
    } catch (const ScenarioError& e) {
      return e.errors();
    }
    return std::vector<InputError>{};
  };
  const std::string head = "name = \"x\"\n[cluster]\nworkers = 4\n[[faults]]\n";
  auto e = errors_of(head + "kind = \"restart\"\nnode = 1\nat = \"1s\"\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "faults.duration");
  CHECK(e[0].place().line == 4);
  CHECK_CONTAINS(e[0].message(), "kind = \"restart\" needs duration");
  e = errors_of(head + "kind = \"crash\"\nnode = 1\nmode = \"noise\"\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "faults.mode");
  CHECK_CONTAINS(e[0].message(), "kind = \"crash\" does not read mode");
  e = errors_of(head + "kind = \"explode\"\nnode = 1\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "byzantine | crash | restart | slow | link-down | loss");
  e = errors_of(head + "kind = \"loss\"\nnode = 1\nprobability = 1.5\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "faults.probability");
  e = errors_of(head + "kind = \"link-down\"\nnode = 9\nduration = \"1s\"\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "node 9 does not exist: the nodes are 0-3");
  e = errors_of(
      "name = \"x\"\n[cluster]\nworkers = 2\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
      "sync = \"asp\"\n[[faults]]\nkind = \"crash\"\nnode = 2\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "node 2 is a parameter-server shard");
  CHECK_CONTAINS(e[0].message(), "set strategy.checkpoint_every");
  e = errors_of(
      "name = \"x\"\n[cluster]\nworkers = 2\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
      "sync = \"bsp\"\ncheckpoint_every = 4\n[compression]\ncodec = \"fp16\"\n"
      "[[faults]]\nkind = \"crash\"\nnode = 2\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "on a shard in bsp with [compression]");
  e = errors_of("name = \"x\"\n[strategy]\ncheckpoint_every = 4\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "strategy.checkpoint_every");
  CHECK_CONTAINS(e[0].message(), "parameter-server shards'");
  e = errors_of(
      "name = \"x\"\n[cluster]\nservers = 1\n[strategy]\narchitecture = \"ps\"\n"
      "checkpoint_every = 0\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].key() == "strategy.checkpoint_every");
  e = errors_of(
      "name = \"x\"\n[cluster]\nworkers = 2\n[[faults]]\nkind = \"crash\"\nnode = 0\n"
      "[[faults]]\nkind = \"crash\"\nnode = 1\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "every worker crashes");
  e = errors_of(head +
                "kind = \"crash\"\nnode = 1\n[[faults]]\nkind = \"restart\"\nnode = 1\n"
                "duration = \"1s\"\n");
  REQUIRE(e.size() == 1);
  CHECK_CONTAINS(e[0].message(), "node 1 already crashes or restarts");
  // bsp's coded exchanges (compression, robust rules) do not re-form, over either architecture.
  for (const char* arch : {"allreduce", "ps"}) {
    CAPTURE(arch);
    e = errors_of(std::string("name = \"x\"\n[cluster]\nworkers = 4\nservers = ") +
                  (std::string(arch) == "ps" ? "2" : "0") + "\n[strategy]\narchitecture = \"" +
                  arch +
                  "\"\n[compression]\ncodec = \"topk\"\n[[faults]]\nkind = \"crash\"\n"
                  "node = 1\n");
    REQUIRE(e.size() == 1);
    CHECK_CONTAINS(e[0].message(), "in bsp with [compression] or a robust aggregation");
  }
}

TEST_CASE("faults: a sweep can put faults (or any list) on an axis") {
  const std::string path = std::string(DTSIM_SOURCE_DIR) + "/scenarios/teaching/faults.toml";
  const Scenario base = load_scenario(path);
  const std::vector<SweepPoint> points = expand_sweep(base);
  REQUIRE(points.size() == 6);
  CHECK(points[0].label == "architecture=allreduce,sync=bsp,faults=none");
  CHECK(points[1].label == "architecture=allreduce,sync=bsp,faults=crash@3");
  CHECK(load_scenario(path, points[0].overrides).faults.empty());
  const Scenario crashed = load_scenario(path, points[5].overrides);
  REQUIRE(crashed.faults.size() == 1);
  CHECK(crashed.faults[0].kind == FaultKind::kCrash);
  CHECK(crashed.faults[0].at == SimTime::from_seconds(0.8));
  CHECK(crashed.strategy.sync == SyncMode::kSsp);
  CHECK(crashed.cluster.servers == 2);
  // Lists of numbers too: a point per hidden-layer shape.
  const Scenario s = parse_scenario(
      "name = \"x\"\n[sweep]\n\"model.hidden\" = [[64], [256, 128]]\n", "s.toml", {}, true);
  const std::vector<SweepPoint> shapes = expand_sweep(s);
  REQUIRE(shapes.size() == 2);
  CHECK(shapes[1].label == "hidden=[ 256, 128 ]");
  CHECK(parse_scenario("name = \"x\"\n", "s.toml", shapes[1].overrides).model.hidden ==
        std::vector<int>{256, 128});
}

TEST_CASE("bsp's shared replica (and a ring's sum) give the numbers of one replica per worker") {
  // Without crash or restart faults the bsp workers share one replica, and over a ring the
  // first worker to finish the allreduce forms its sum itself (allreduce_bsp.cpp). A restart
  // that comes after the run has ended changes nothing but makes each worker keep its own
  // replica and the ring pass real parts: the two must agree to the last bit.
  const std::string late =
      "[[faults]]\nkind = \"restart\"\nnode = 1\nat = \"100s\"\n"
      "duration = \"1ms\"\n";
  // (The first point has no training loss or gradient yet: NaN in both.)
  const auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  for (const std::string extra :
       {"collective = \"ring\"", "collective = \"tree\"", "collective = \"halving-doubling\""}) {
    CAPTURE(extra);
    for (int workers : {2, 5}) {
      CAPTURE(workers);
      const std::string strategy = kAllreduce + "\n" + extra;
      const RunResult shared = run_text(scenario_text(strategy, "", workers, 20));
      const RunResult apart = run_text(scenario_text(strategy, late, workers, 20));
      REQUIRE(apart.faults.size() == 1);
      CHECK(apart.faults[0].lost_gradients == 0);
      REQUIRE(shared.evals.size() == apart.evals.size());
      for (std::size_t i = 0; i < shared.evals.size(); ++i) {
        CHECK(same(shared.evals[i].train_loss, apart.evals[i].train_loss));
        CHECK(shared.evals[i].test_loss == apart.evals[i].test_loss);
        CHECK(shared.evals[i].test_accuracy == apart.evals[i].test_accuracy);
        CAPTURE(i);
        CAPTURE(shared.evals[i].grad_norm);
        CAPTURE(apart.evals[i].grad_norm);
        CHECK(same(shared.evals[i].grad_norm, apart.evals[i].grad_norm));
        CHECK(shared.evals[i].virtual_time_s == apart.evals[i].virtual_time_s);
      }
      CHECK(shared.nodes[0].bytes_sent == apart.nodes[0].bytes_sent);
    }
  }
}
