// The services every strategy of a training run shares: the scenario's model and data, the
// simulation and its nodes' speeds, workers' gradients on their next batches, job times,
// learning rates, staleness, progress, evaluation of the global model and divergence.
//
// A RunCore belongs to one run (sim/train/training_run.hpp), which pairs it with the
// scenario's Strategy. Everything here runs on the event loop's thread, except the work inside
// compute() jobs; a gradient job touches only its worker's GradientWorker until it ends.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/data/batch_sampler.hpp"
#include "engine/data/dataset.hpp"
#include "engine/memory.hpp"
#include "engine/model.hpp"
#include "sim/des/simulation.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/faults.hpp"
#include "sim/train/health.hpp"
#include "sim/train/observer.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

class Strategy;

// What every worker has, whatever the strategy: its data and its gradient.
struct GradientWorker {
  int node = 0;
  // The last gradient (empty in time-only mode): the worker's slice of one block that holds
  // every worker's gradient (allocated at once, on huge pages).
  std::span<float> grads;
  std::unique_ptr<BatchSampler> sampler;
  std::vector<std::uint32_t> rows;  // the current batch
  std::uint64_t steps = 0;          // gradients computed
  std::uint64_t dropped = 0;        // of them, thrown away (backup workers)
  double loss_sum = 0;              // training losses since the last evaluation
  std::uint64_t loss_count = 0;
  // Gradient norms since the last evaluation (numerics): of the whole gradient and per
  // parameter tensor, summed over the norm_count gradients. The gradient job writes only the
  // last gradient's (an evaluation may run while a job is in flight); they are added to the
  // sums when the job ends, on the event loop.
  double norm_sum = 0;
  std::vector<double> layer_norm_sum;
  std::uint64_t norm_count = 0;
  double last_norm = 0;
  std::vector<double> last_layer_norms;
  bool norms_pending = false;  // RunCore::defer_norms: the last gradient is not measured yet
};

// Workspaces for gradient jobs: a job takes one and gives it back when it ends, so there are
// only as many as jobs ever ran at once (at most the threads), not one per worker. A gradient
// overwrites everything it reads in its workspace, so which one a job gets changes nothing.
class WorkspacePool {
 public:
  WorkspacePool(const Model& model, int batch) : model_(model), batch_(batch) {}
  std::unique_ptr<Workspace> take();
  void give(std::unique_ptr<Workspace> ws);

 private:
  const Model& model_;
  int batch_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Workspace>> free_;
};

class RunCore {
 public:
  // Sets up the model, the data partitions, the nodes and the simulation. Throws InputError
  // for impossible shapes.
  RunCore(const Scenario& s, const DatasetPair& data, int threads);
  RunCore(const RunCore&) = delete;
  RunCore& operator=(const RunCore&) = delete;

  // The strategy whose global model progress() evaluates (set once, before the run).
  void attach(Strategy& strategy) { strategy_ = &strategy; }
  void add_observer(SimObserver* o);

  // ---- what the run is ----
  const Scenario& scenario() const { return s_; }
  const StrategyConfig& config() const { return s_.strategy; }
  const Model& model() const { return model_; }
  const DatasetPair& data() const { return data_; }
  std::size_t num_params() const { return model_.num_params(); }
  bool numerics() const { return numerics_; }
  // Data-parallel replicas: the workers, or strategy.data_parallel for a split model. Each has
  // a GradientWorker (its batches, its losses).
  int workers() const { return p_; }
  // Every node: the cluster's workers (all the split model's nodes), then the servers.
  int nodes() const { return nodes_; }
  int servers() const { return k_; }
  int batch() const { return batch_; }
  // Lock-step rounds of p gradients in the whole run (from steps or epochs).
  std::uint64_t total_steps() const { return total_steps_; }
  Simulation& sim() { return sim_; }
  const Simulation& sim() const { return sim_; }
  // Each data replica's first node (for data-parallel strategies, worker w is node w), and the
  // servers' nodes (after the cluster's workers).
  std::span<const int> worker_nodes() const { return worker_nodes_; }
  std::span<const int> server_nodes() const { return server_nodes_; }
  // The model's initial parameters (empty in time-only mode).
  const std::vector<float>& initial_params() const { return init_; }
  bool running() const { return running_; }

  // ---- costs ----
  // Virtual time of a job of `flops` on `node` over `samples` samples: its speed, straggler
  // slowdown and seeded lognormal jitter, plus the per-sample loading cost.
  SimTime job_time(int node, double flops, int samples = 0);
  double flops_per_s(int node) const { return flops_per_s_[static_cast<std::size_t>(node)]; }
  double slowdown(int node) const { return slowdown_[static_cast<std::size_t>(node)]; }

  // ---- faults ----
  // The run's crash, restart, slow, link-down and loss faults (null when it has none).
  FaultSchedule* faults() { return faults_.get(); }
  // Whether worker w is down now: crashed, or inside its restart's window.
  bool down(int w) const { return faults_ != nullptr && faults_->down(w); }
  // A server shard took a checkpoint that took `t` (strategy.checkpoint_every).
  void record_checkpoint(SimTime t) {
    ++result_.checkpoints;
    result_.checkpoint_s += t.seconds();
  }

  // ---- gradients ----
  GradientWorker& worker(int w) { return workers_[static_cast<std::size_t>(w)]; }
  const GradientWorker& worker(int w) const { return workers_[static_cast<std::size_t>(w)]; }
  // The job time of worker w's next gradient (each call draws the next jitter).
  SimTime gradient_cost(int w);
  // Computes worker w's gradient on its next batch (into its grads) as a job on `params`,
  // charged `cost` (default: gradient_cost(w)). Clips it, and lets a Byzantine worker
  // corrupt it. A loss that is not finite stops the run (stopped()).
  Task<> gradient(int w, std::span<const float> params, std::optional<SimTime> cost = {});
  double lr_at(std::uint64_t step) const;
  // Gradient norms measured later, several workers' at once: a norm is a sum in double, element
  // by element in a fixed order, whose additions each wait for the last; four workers' sums
  // side by side keep the processor busy (each sum, and so every number, is the same). For a
  // strategy that leaves every gradient as it is until the worker's next one (bsp over a
  // ring, summed by ring_sum) and where nothing changes a gradient after its norm is taken (no
  // clipping, no Byzantine worker): it then calls measure_pending() once all are in. A
  // worker's own are measured alone when it is about to overwrite them (its next gradient, or
  // settle_norms) and an evaluation settles every worker's first.
  void defer_norms() { defer_norms_ = s_.train.clip_norm <= 0 && s_.faults.empty(); }
  void settle_norms(int w);
  void measure_pending();
  // measure_pending() in two halves: measures lane `lane` of `lanes` of the pending workers'
  // norms (a pure job: lanes may run side by side, while nothing touches the workers), then
  // adds them all, in worker order, on the event loop.
  void measure_pending_lane(std::size_t lane, std::size_t lanes);
  void add_pending_norms();
  // Data replica w's training loss of a batch (or micro-batch), for the metrics; a loss that
  // is not finite stops the run (stopped()), as gradient() does.
  void report_loss(int w, double loss);

  // ---- progress and evaluation ----
  // Staleness of one applied gradient, in updates.
  void record_staleness(std::uint64_t s);
  // The global model reached `updates` updates over `samples` training samples. Evaluates it
  // when another eval_every * (workers * batch) samples have gone by, or at the end; `when`
  // overrides that (replicas are evaluated only at steps where they were snapshot).
  enum class EvalNow { kIfDue, kYes, kNo };
  void progress(std::uint64_t updates, std::uint64_t samples, EvalNow when = EvalNow::kIfDue);
  // A lock-step program finished step `step` (0-based) with `counted` gradients in it: each
  // counts at staleness 0, and the run progresses, to (step + 1) * counted * batch samples, or
  // to `samples` when the steps' sizes changed (a crashed worker).
  void bsp_step_done(std::uint64_t step, int counted, std::optional<std::uint64_t> samples = {});
  // One of `parts` nodes that hold the global model together (a split model's stages or
  // shards) is past step `step`'s update; when the last one is, bsp_step_done(step, counted).
  void part_done(std::uint64_t step, int parts, int counted);
  // A loss was not finite: asynchronous programs stop taking gradients.
  bool stopped() const { return stop_; }
  // Whether some worker's loss at `step` (0-based) or earlier was not finite. Lock-step
  // programs check this after the step's exchange, when every loss of that step is known, so
  // all of them stop together.
  bool diverged_at(std::uint64_t step) const { return first_bad_step_ <= step; }
  // Every evaluation's workspace and the test set: evaluates `params` (chunks in parallel,
  // summed in chunk order, so the result is the same for any number of threads).
  EvalResult evaluate_params(std::span<const float> params);

  // Runs the simulation (the strategy's programs must be spawned) and gathers the result.
  RunResult run();

 private:
  void evaluate(std::uint64_t updates, std::uint64_t samples);
  std::string divergence_reason() const;
  // ", first in WHERE (node N)" when the first non-finite value was located, else "".
  std::string where() const;
  // The norms of the gradient in wk.grads, into wk.last_* (inside its gradient job); of several
  // workers' at once, into each one's (the same numbers). add_norms then adds them to the
  // worker's sums, on the event loop.
  void measure_gradients(std::span<GradientWorker* const> wks) const;
  void add_norms(GradientWorker& wk);
  void measure_gradient(GradientWorker& wk) const;
  // The mean gradient norms since the last point, into p; resets the sums.
  void gather_gradient_norms(EvalPoint& p);
  // p's health; the run's first unhealthy point goes into the result.
  void judge_health(EvalPoint& p);
  // The Byzantine fault worker w is under now, if any, and what it does to a gradient.
  const FaultConfig* active_fault(int w) const;
  void corrupt(const FaultConfig& f, int w, std::uint64_t step, std::span<float> g) const;
  void set_up_nodes();
  void set_up_workers(const DatasetPair& data);
  NodeStats node_stats(int node) const;

  const Scenario& s_;
  const DatasetPair& data_;
  const bool numerics_;
  const int p_;
  const int k_;
  const int nodes_;
  const int batch_;
  Model model_;
  Strategy* strategy_ = nullptr;
  std::vector<double> flops_per_s_;  // each node's speed ([[cluster.group]])
  std::vector<double> slowdown_;     // each node's straggler multiplier
  std::vector<std::uint64_t> jobs_;  // jobs charged so far per node (keys the jitter)
  std::uint64_t total_steps_ = 0;
  std::uint64_t total_updates_ = 0;
  std::vector<float> init_;
  std::vector<GradientWorker> workers_;
  ZeroedFloats grad_store_;  // workers * num_params() floats: every worker's grads
  std::vector<int> worker_nodes_;
  std::vector<int> server_nodes_;
  std::vector<std::unique_ptr<Workspace>> eval_ws_;  // one per job thread
  WorkspacePool gradient_ws_;
  bool defer_norms_ = false;
  std::vector<SimObserver*> observers_;
  RunResult result_;
  std::uint64_t updates_done_ = 0;
  std::uint64_t samples_done_ = 0;
  std::uint64_t next_eval_samples_ = 0;
  std::uint64_t evaluated_at_ = std::numeric_limits<std::uint64_t>::max();
  std::map<std::uint64_t, std::uint64_t> staleness_;  // histogram over the run
  std::map<std::uint64_t, int> parts_done_;           // part_done's count per step
  double window_staleness_sum_ = 0;                   // since the last evaluation
  std::uint64_t window_staleness_count_ = 0;
  std::uint64_t window_staleness_max_ = 0;
  std::uint64_t first_bad_step_ = std::numeric_limits<std::uint64_t>::max();
  double first_bad_loss_ = 0;
  int first_bad_worker_ = 0;
  std::string first_bad_where_;  // where the non-finite value showed, if known
  HealthMonitor health_;
  std::unique_ptr<FaultSchedule> faults_;
  bool stop_ = false;
  bool running_ = false;  // inside sim_.run()
  // Last, so it is destroyed first: its node programs and jobs use everything above.
  Simulation sim_;
};

}  // namespace dtsim
