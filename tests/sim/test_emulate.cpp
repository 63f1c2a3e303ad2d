// Emulation (sim/emulate/emulation.hpp): the ranks, here threads, compute what the simulated
// nodes compute, so a bsp run ends with the simulation's model bit for bit, and evaluates it
// at the same points.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/emulate/emulation.hpp"
#include "sim/net/collectives.hpp"
#include "sim/train/trainer.hpp"
#include "tests/sim/thread_transport.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

std::string scenario_text(const std::string& strategy, int workers, int servers = 0, int steps = 30,
                          const std::string& optimizer = "momentum") {
  return "name = \"e\"\nseed = 5\n[model]\nkind = \"mlp\"\nhidden = [32]\n"
         "[data]\ndataset = \"fashion-mnist\"\ntrain_samples = 3000\ntest_samples = 1000\n"
         "[train]\noptimizer = \"" +
         optimizer +
         "\"\nlr = 0.05\nbatch_size = 32\nclip_norm = 5\nsteps = " + std::to_string(steps) +
         "\neval_every = 10\n[cluster]\nworkers = " + std::to_string(workers) +
         "\nservers = " + std::to_string(servers) + "\n[strategy]\n" + strategy + "\n";
}

const DatasetPair& data_of(const Scenario& s) {
  static const DatasetPair data = load_data(s);
  return data;
}

struct Both {
  Emulated emulated;
  RunResult simulated;
  std::vector<float> simulated_params;
};

Both run_both(const std::string& text, EmulateOptions options = {},
              const std::vector<std::string>& overrides = {}) {
  const Scenario s = parse_scenario(text, "e.toml", overrides);
  const DatasetPair& data = data_of(s);
  const int ranks = emulation_ranks(s);
  REQUIRE(emulation_problem(s, ranks, options).empty());
  Both both;
  testing::ThreadWorld world(ranks);
  world.run([&](Transport& t) {
    Emulated e = emulate(s, data, t, options);
    if (t.rank() == 0) both.emulated = std::move(e);
  });
  Training training(s, data, 1);
  both.simulated = training.run();
  both.simulated_params = training.global_params();
  return both;
}

// The points' steps and test accuracies are the simulation's.
void check_same_points(const Both& b) {
  const std::vector<EvalPoint>& m = b.emulated.run.evals;
  const std::vector<EvalPoint>& s = b.simulated.evals;
  REQUIRE(m.size() == s.size());
  for (std::size_t i = 0; i < m.size(); ++i) {
    CHECK(m[i].step == s[i].step);
    CHECK(m[i].samples == s[i].samples);
    CHECK(m[i].test_accuracy == s[i].test_accuracy);
    CHECK(m[i].test_loss == s[i].test_loss);
  }
}

}  // namespace

TEST_CASE(
    "emulate: bsp over a ring or a tree of point-to-point messages is the simulation, bit for "
    "bit") {
  for (const char* collective : {"ring", "tree"}) {
    for (int workers : {2, 4}) {
      CAPTURE(collective);
      CAPTURE(workers);
      const Both b = run_both(scenario_text(
          std::string("architecture = \"allreduce\"\nsync = \"bsp\"\ncollective = \"") +
              collective + "\"",
          workers));
      const EmulationStats st = compare_runs(b.emulated.run, b.simulated, b.emulated.per_round,
                                             b.emulated.params, b.simulated_params);
      CHECK(st.params_identical);
      CHECK(st.relative_diff == 0.0);
      CHECK(b.emulated.params.size() == b.simulated_params.size());
      check_same_points(b);
      // The training loss and gradient norms of each window are the same sums.
      for (std::size_t i = 1; i < b.simulated.evals.size(); ++i) {
        CHECK(b.emulated.run.evals[i].train_loss ==
              doctest::Approx(b.simulated.evals[i].train_loss).epsilon(1e-12));
        CHECK(b.emulated.run.evals[i].grad_norm ==
              doctest::Approx(b.simulated.evals[i].grad_norm).epsilon(1e-9));
      }
      // Each rank sent what the ring or tree sends: 2 (p-1)/p of the gradient per step (ring).
      const RunResult& m = b.emulated.run;
      REQUIRE(m.nodes.size() == static_cast<std::size_t>(workers));
      CHECK(m.steps == 30);
      CHECK(m.nodes[0].steps == 30);
      if (std::string(collective) == "ring") {
        const double n = static_cast<double>(b.simulated_params.size());
        const double expected = 30 * 2.0 * (workers - 1) / workers * n * 4;
        CHECK(static_cast<double>(m.nodes[1].bytes_sent) ==
              doctest::Approx(expected).epsilon(1e-3));
        CHECK(m.nodes[1].bytes_sent == b.simulated.nodes[1].bytes_sent);
      }
      CHECK(m.virtual_time_s > 0);
      CHECK(m.nodes[0].compute_s > 0);
      CHECK(m.nodes[0].compute_s + m.nodes[0].comm_s <= m.virtual_time_s * 1.0001);
    }
  }
}

TEST_CASE("emulate: MPI_Allreduce sums in its own order, within 1e-5 of the simulation") {
  EmulateOptions o;
  o.library_allreduce = true;
  const Both b = run_both(scenario_text("architecture = \"allreduce\"\nsync = \"bsp\"", 4), o);
  const EmulationStats st = compare_runs(b.emulated.run, b.simulated, b.emulated.per_round,
                                         b.emulated.params, b.simulated_params);
  CHECK(st.relative_diff > 0);
  CHECK(st.relative_diff < 1e-5);
  CHECK(std::abs(st.measured_accuracy - st.simulated_accuracy) < 0.01);
}

TEST_CASE("emulate: bsp over parameter-server shards on their own ranks is the simulation") {
  const Both b = run_both(scenario_text("architecture = \"ps\"\nsync = \"bsp\"", 3, 2));
  const EmulationStats st = compare_runs(b.emulated.run, b.simulated, b.emulated.per_round,
                                         b.emulated.params, b.simulated_params);
  CHECK(st.params_identical);
  check_same_points(b);
  const RunResult& m = b.emulated.run;
  REQUIRE(m.nodes.size() == 5);
  CHECK(m.nodes[3].role == "server");
  CHECK(m.nodes[3].steps == 30);
  // A shard receives its part of every worker's gradient each step.
  const auto [b0, e0] = part_range(b.simulated_params.size(), 2, 0);
  CHECK(m.nodes[3].bytes_received == 30 * 3 * (e0 - b0) * 4);
}

TEST_CASE("emulate: asp with one worker is sequential sgd, as in the simulation") {
  const Both b = run_both(scenario_text("architecture = \"ps\"\nsync = \"asp\"", 1, 2));
  const EmulationStats st = compare_runs(b.emulated.run, b.simulated, b.emulated.per_round,
                                         b.emulated.params, b.simulated_params);
  CHECK(st.params_identical);
  check_same_points(b);
  // Each window's gradients are those of its updates, as in the simulation.
  for (std::size_t i = 1; i < b.simulated.evals.size(); ++i) {
    CHECK(b.emulated.run.evals[i].train_loss ==
          doctest::Approx(b.simulated.evals[i].train_loss).epsilon(1e-12));
  }
}

TEST_CASE("emulate: asp hands out steps x workers gradients and learns like the simulation") {
  const Both b = run_both(scenario_text("architecture = \"ps\"\nsync = \"asp\"", 3, 2, 40, "sgd"));
  const RunResult& m = b.emulated.run;
  std::uint64_t gradients = 0;
  for (int w = 0; w < 3; ++w) gradients += m.nodes[static_cast<std::size_t>(w)].steps;
  CHECK(gradients == 120);
  CHECK(m.nodes[3].steps == 120);
  CHECK(m.nodes[4].steps == 120);
  std::uint64_t histogram = 0;
  for (const auto& [staleness, count] : m.staleness_histogram) histogram += count;
  CHECK(histogram == 120);
  REQUIRE(m.evals.size() == b.simulated.evals.size());
  CHECK(m.evals.back().step == 120);
  CHECK(m.evals[0].test_accuracy == b.simulated.evals[0].test_accuracy);
  CHECK(m.evals.back().test_accuracy > m.evals[0].test_accuracy + 0.1);
  // The last point counts every byte sent.
  std::uint64_t sent = 0;
  for (const NodeStats& n : m.nodes) sent += n.bytes_sent;
  CHECK(m.evals.back().bytes_sent == sent);
  CHECK(std::abs(m.evals.back().test_accuracy - b.simulated.evals.back().test_accuracy) < 0.15);
}

TEST_CASE("emulate: a loss that is not finite makes the run unhealthy") {
  const Both b = run_both(scenario_text("architecture = \"allreduce\"\nsync = \"bsp\"", 2), {},
                          {"train.lr=1e30", "train.clip_norm=0"});
  REQUIRE(b.simulated.health == Health::kNonFinite);
  const RunResult& m = b.emulated.run;
  CHECK(m.health == Health::kNonFinite);
  CHECK(m.diverged);
  CHECK_CONTAINS(m.health_reason, "was not finite by step");
  // Every step ran; the simulation stopped early, and each is timed over its own steps.
  CHECK(m.steps == 30);
  CHECK(b.simulated.steps < 30);
  const EmulationStats st = compare_runs(m, b.simulated, 1, b.emulated.params, b.simulated_params);
  CHECK(st.simulated_step_s ==
        doctest::Approx(b.simulated.virtual_time_s / static_cast<double>(b.simulated.steps)));
  CHECK_FALSE(st.params_identical);
}

TEST_CASE("emulate: what cannot be emulated is refused by name") {
  auto problem = [](const std::string& strategy, int ranks, int workers = 2, int servers = 0) {
    return emulation_problem(parse_scenario(scenario_text(strategy, workers, servers), "e.toml"),
                             ranks, {});
  };
  CHECK(problem("architecture = \"allreduce\"\nsync = \"bsp\"", 2).empty());
  CHECK(problem("architecture = \"allreduce\"\nsync = \"bsp\"", 3) ==
        "the scenario has 2 worker(s): run it on 2 rank(s) (mpirun -np 2), not 3");
  CHECK(problem("architecture = \"ps\"\nsync = \"bsp\"", 2, 2, 1)
            .find("and 1 server shard(s): run it on 3 rank(s)") != std::string::npos);
  CHECK(
      problem("architecture = \"allreduce\"\nsync = \"bsp\"\ncollective = \"halving-doubling\"", 2)
          .find("strategy.collective = \"halving-doubling\"") == 0);
  CHECK(problem("architecture = \"ps\"\nsync = \"ssp\"\nstaleness = 2", 3, 2, 1)
            .find("strategy.sync = \"ssp\" cannot be emulated") != std::string::npos);
  CHECK(problem("architecture = \"allreduce\"\nsync = \"bsp\"\n[compression]\ncodec = \"topk\"", 2)
            .find("[compression] codec") == 0);
}
