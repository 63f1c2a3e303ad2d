// What a run produced, as plain data for the report writers.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dtsim {

// How a run is going: fine, or one of the ways training fails (sim/train/health.hpp).
enum class Health { kOk, kExploded, kCollapsed, kNonFinite };

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
  // Staleness of the updates applied since the previous point (updates of the global model
  // minus the version each gradient was computed on); NaN / 0 when the strategy has no global
  // version (local-sgd, gossip).
  double mean_staleness = 0;
  std::uint64_t max_staleness = 0;
  // Spread of the workers' replicas, sqrt(mean_w ||x_w - mean||^2); NaN when they share one
  // model (bsp, parameter servers).
  double consensus_distance = std::numeric_limits<double>::quiet_NaN();
  // The mean L2 norm of the gradients computed since the previous point (each a worker's own,
  // before clipping), and the same per parameter tensor (RunResult::layer_names); NaN and
  // empty without numerics or for split models.
  double grad_norm = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> layer_grad_norms;
  Health health = Health::kOk;  // the run at this point (sim/train/health.hpp)
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
  std::uint64_t steps = 0;    // gradients computed (workers) or updates applied (servers)
  std::uint64_t dropped = 0;  // gradients thrown away (backup workers)
};

// What a split model measured (pipeline, tensor): summary.json's "model_parallel".
struct ModelParallelStats {
  std::string kind;  // "pipeline" or "tensor"
  int stages = 1;
  int micro_batches = 1;
  int tensor_parallel = 1;
  int data_parallel = 1;
  std::vector<int> stage_blocks;  // pipeline: blocks (weight layers) per stage
  // Pipeline: the idle share of each stage during the steps' fill and drain (from the first
  // forward to the last backward), and their mean.
  std::vector<double> stage_bubble;
  double bubble_fraction = 0;
  std::vector<int> peak_in_flight;  // per stage: micro-batches between forward and backward
  // Per stage (or shard): activation bytes kept at the peak (micro-batches in flight times
  // what each keeps from its forward to its backward).
  std::vector<std::uint64_t> activation_bytes;
  // Activations and their gradients sent between the nodes of the split models in one step
  // (all replicas): between stages, or in the shards' collectives.
  std::uint64_t activation_bytes_per_step = 0;
};

// One [[faults]] entry as it happened (summary.json's "faults"; docs/faults.md defines the
// costs). Times in virtual seconds; NaN where they do not apply.
struct FaultRecord {
  std::string kind;  // "crash", "restart", "slow", "link-down", "loss", "byzantine"
  int node = 0;
  std::string what;  // the fault in words
  double at_s = 0;
  double end_s = std::numeric_limits<double>::quiet_NaN();       // its window's end
  double detected_s = std::numeric_limits<double>::quiet_NaN();  // crash, restart
  double rejoined_s = std::numeric_limits<double>::quiet_NaN();  // restart
  // Virtual time the run lost to it: the waits it caused (crash, restart), the extra compute
  // (slow), the window if a transfer waited in it (link-down), the timeouts (loss).
  double cost_s = 0;
  double lost_compute_s = 0;  // compute thrown away (crash, restart)
  std::uint64_t lost_gradients = 0;
  std::uint64_t lost_updates = 0;      // a server shard's crash, restart: undone by its checkpoint
  std::uint64_t paused_transfers = 0;  // link-down: transfers that had to wait
  std::uint64_t retransmissions = 0;   // loss
  std::uint64_t retransmitted_bytes = 0;
};

// An emulated run (real processes, measured time) held against the simulation of the same
// scenario: summary.json's "emulation" (sim/emulate/emulation.hpp).
struct EmulationStats {
  int ranks = 0;
  std::string exchange;     // how the ranks exchanged, in words
  std::uint64_t steps = 0;  // lock-step rounds of p gradients (asp: gradients / p)
  double measured_step_s = 0;
  double simulated_step_s = 0;
  // The workers' mean time computing and communicating, as shares of the run's time.
  double measured_compute_share = 0;
  double simulated_compute_share = 0;
  double measured_comm_share = 0;
  double simulated_comm_share = 0;
  double measured_accuracy = std::numeric_limits<double>::quiet_NaN();
  double simulated_accuracy = std::numeric_limits<double>::quiet_NaN();
  // The final global models: bit for bit equal, or their largest differences.
  bool params_identical = false;
  double max_abs_diff = 0;
  double relative_diff = 0;  // ||measured - simulated|| / ||simulated|| (L2 norms)
};

struct RunResult {
  std::vector<EvalPoint> evals;
  std::vector<FaultRecord> faults;  // [[faults]] other than byzantine, as they happened
  std::vector<NodeStats> nodes;
  double virtual_time_s = 0;
  std::uint64_t samples = 0;
  std::uint64_t steps = 0;
  std::optional<double> time_to_target_s;
  // Staleness over the whole run: histogram of (staleness, updates), ascending; empty when
  // the strategy has no global version.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> staleness_histogram;
  bool diverged = false;
  std::string diverged_reason;  // e.g. "train loss is NaN at step 812"
  // The first point whose health was not ok (its health, why, where); ok if none.
  Health health = Health::kOk;
  std::string health_reason;
  std::uint64_t health_step = 0;
  double health_time_s = 0;
  std::vector<std::string> layer_names;  // the parameter tensors of layer_grad_norms
  std::string model_summary;
  std::optional<ModelParallelStats> model_parallel;
  std::optional<EmulationStats> emulation;  // dtsim emulate: measured against simulated
  // strategy.checkpoint_every: the shards' checkpoints, and the virtual time they took
  // (summed over shards).
  std::uint64_t checkpoints = 0;
  double checkpoint_s = 0;
  // Wall-clock figures (never in metrics.csv / nodes.csv: they vary from run to run).
  double wall_time_s = 0;      // the whole command
  double load_wall_s = 0;      // reading or generating the data
  double simulate_wall_s = 0;  // the simulation, evaluations included
  double eval_wall_s = 0;      // evaluations of the global model
  double jobs_wall_s = 0;      // summed over jobs: the pure compute the run performed
  int threads = 1;
};

}  // namespace dtsim
