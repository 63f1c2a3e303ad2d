// What a run produced, as plain data for the report writers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dtsim {

// One evaluation of the global model (a row of metrics.csv).
struct EvalPoint {
  std::uint64_t step = 0;  // global optimizer steps so far
  double epoch = 0;        // samples processed / training-set size
  double virtual_time_s = 0;
  std::uint64_t samples = 0;  // training samples processed so far
  double train_loss = 0;      // mean training loss over the steps since the last point
  double test_loss = 0;
  double test_accuracy = 0;      // NaN for regression
  std::uint64_t bytes_sent = 0;  // by all nodes so far
  double mean_staleness = 0;
  std::uint64_t max_staleness = 0;
};

// Where one node's virtual time went (a row of nodes.csv).
struct NodeStats {
  int node = 0;
  std::string role;  // "worker", "server", ...
  double compute_flops_per_s = 0;
  double compute_s = 0;
  double comm_s = 0;
  double idle_s = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t steps = 0;
};

struct RunResult {
  std::vector<EvalPoint> evals;
  std::vector<NodeStats> nodes;
  double virtual_time_s = 0;
  std::uint64_t samples = 0;
  std::uint64_t steps = 0;
  std::optional<double> time_to_target_s;
  bool diverged = false;
  std::string diverged_reason;  // e.g. "train loss is NaN at step 812"
  std::string model_summary;
  // Wall-clock figures (never in metrics.csv / nodes.csv: they vary from run to run).
  double wall_time_s = 0;      // the whole command
  double load_wall_s = 0;      // reading or generating the data
  double simulate_wall_s = 0;  // the simulation, evaluations included
  double eval_wall_s = 0;      // evaluations of the global model
  double jobs_wall_s = 0;      // summed over jobs: the pure compute the run performed
  int threads = 1;
};

}  // namespace dtsim
