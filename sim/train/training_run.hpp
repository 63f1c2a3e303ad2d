// Inside a training run: the state every node program shares, and the programs themselves.
// Internal to sim/ (sim/trainer.hpp is the interface); one file per family of programs:
//
//   trainer.cpp          set-up, gradients, job costs, progress and evaluation
//   sync_allreduce.cpp   allreduce: bsp (optionally with backup workers), local-sgd
//   sync_ps.cpp          parameter server: bsp, and asp / ssp / delayed / bsp with backup
//                        workers, where the server handles each worker's request as it arrives
//   sync_gossip.cpp      gossip: d-psgd, ad-psgd
//
// Everything here runs on the event loop's thread, except the work inside compute() jobs.
// A job may touch only what its node program owns until the job ends (see each program).
#pragma once

#include <coroutine>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/aggregate.hpp"
#include "engine/compress.hpp"
#include "engine/data/batch_sampler.hpp"
#include "engine/data/dataset.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "sim/train/observer.hpp"
#include "sim/train/run_result.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/des/simulation.hpp"
#include "sim/net/collectives.hpp"

namespace dtsim::detail {

// Collective tags: one range per global step.
inline std::uint64_t step_tag(std::uint64_t step) { return (step + 1) << 28; }
// Bytes on the wire: a float, and a request that carries no data (a header).
inline constexpr std::uint64_t kFloatBytes = sizeof(float);
inline constexpr std::uint64_t kHeaderBytes = 8;
// Several collectives in one step (PowerSGD): the i-th uses step_tag + i * kCollectiveTags.
inline constexpr std::uint64_t kCollectiveTags = 1ULL << 24;

// Releases every program that waits on it once `count` have arrived, at the last arrival's
// time. Reusable: the next `count` arrivals make the next round.
class Barrier {
 public:
  Barrier(Simulation& sim, int count) : sim_(sim), count_(count) {}
  struct Awaiter {
    Barrier& b;
    bool await_ready() { return b.count_ <= 1; }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
  };
  // Arrives; `on_release` (may be empty) runs once per round, when the last one arrives and
  // before anyone resumes.
  Awaiter arrive() { return {*this}; }
  void on_release(std::function<void()> fn) { on_release_ = std::move(fn); }

 private:
  Simulation& sim_;
  int count_;
  std::vector<std::coroutine_handle<>> waiting_;
  std::function<void()> on_release_;
};

class TrainingRun {
 public:
  TrainingRun(const Scenario& s, const DatasetPair& data, int threads);
  RunResult run();
  void add_observer(SimObserver* o) {
    sim_.add_observer(o);
    observers_.push_back(o);
  }

 private:
  struct Worker {
    int node = 0;
    std::vector<float> params;
    std::vector<float> grads;
    std::unique_ptr<Optimizer> optimizer;  // when the worker updates its own replica
    std::unique_ptr<Workspace> ws;
    std::unique_ptr<BatchSampler> sampler;
    std::vector<std::uint32_t> rows;
    std::uint64_t steps = 0;    // gradients computed
    std::uint64_t dropped = 0;  // of them, thrown away (backup workers)
    double loss_sum = 0;        // training losses since the last evaluation
    std::uint64_t loss_count = 0;
    // Parameter server, per shard: the version the worker's parameters came from.
    std::vector<std::uint64_t> read_version;
    // Its current request to the servers (read by them when the message arrives; the worker
    // changes it only after every server has answered).
    bool req_gradient = false;
    bool req_pull = false;
    std::uint64_t slot = 0;       // delayed: the update its next gradient will be
    std::uint64_t grad_slot = 0;  // delayed: the update its last gradient will be
    // Finished: bsp with backup workers, the servers said the run is over; ad-psgd, the
    // worker took its last gradient (its next message to a neighbour is a goodbye).
    bool done = false;
    // Gossip: the parameters a gradient is computed on (ad-psgd: a copy, since neighbours
    // average into `params` while the gradient job runs).
    std::vector<float> compute_params;
    std::vector<int> neighbours;
    std::vector<float> mixing;  // d-psgd: weight of each neighbour; self weight last
    // Compression: one compressor (and error-feedback memory) for the whole gradient, or one
    // per server shard's part.
    std::vector<std::unique_ptr<Compressor>> codecs;
  };
  // A gradient waiting at a server shard (ssp / delayed / backup workers).
  struct Pending {
    int worker = 0;
    std::uint64_t clock = 0;         // the worker's gradient count (ssp order)
    std::uint64_t slot = 0;          // delayed: the update it must be
    std::uint64_t read_version = 0;  // the version it was computed on
    std::vector<float> grad;         // this shard's part (empty in time-only mode)
    std::vector<float> read_params;  // delay compensation: the part the worker read
  };
  struct Server {
    int node = 0;
    std::uint64_t begin = 0;  // this shard's range of the parameter vector
    std::uint64_t end = 0;
    std::vector<float> params;
    std::vector<float> buffer;  // sums gradients, then carries the updated parameters back
    std::unique_ptr<Optimizer> optimizer;
    // Servers that handle requests as they arrive:
    std::uint64_t version = 0;  // updates applied
    std::uint64_t applied = 0;  // gradients in them
    std::vector<Pending> pending;
    std::vector<int> pulls;                   // workers waiting for parameters
    std::vector<std::vector<float>> history;  // delayed: versions version-tau..version
    std::vector<std::uint64_t> clocks;        // ssp: gradients received per worker
    std::vector<bool> finished;               // workers that sent their last request
    std::vector<float> published;         // k > 1: params as of the last update (for evaluation)
    std::unique_ptr<Compressor> decoder;  // compression: decodes the workers' payloads
  };

  // ---- node programs ----
  Task<> allreduce_worker(int w);
  Task<> local_sgd_worker(int w);
  Task<> ps_worker(int w);
  Task<> ps_server(int s);
  Task<> async_ps_worker(int w);
  Task<> async_ps_server(int s);
  Task<> dpsgd_worker(int w);
  Task<> adpsgd_worker(int w);
  Task<> adpsgd_listener(int w);
  // bsp with compression or an aggregation rule (sync_coded.cpp).
  Task<> coded_exchange(int w, std::uint64_t step);
  Task<> coded_ps_worker(int w);
  Task<> coded_ps_server(int s);
  AggregationConfig aggregation_rule() const;
  // The Byzantine fault worker w is under now, if any, and what it does to a gradient.
  const FaultConfig* active_fault(int w) const;
  void corrupt(const FaultConfig& f, int w, std::uint64_t step, std::span<float> g) const;

  // ---- shared steps ----
  // Computes worker w's gradient on its next batch (into wk.grads) as a job on `params`
  // (default: wk.params), charged `cost` (default: its job_time).
  Task<> gradient(int w, std::optional<SimTime> cost = std::nullopt,
                  std::span<const float> params = {});
  SimTime gradient_cost(int w);
  // Virtual time of a job of `flops` on `node` over `samples` samples: its speed, straggler
  // slowdown and seeded lognormal jitter, plus the per-sample loading cost.
  SimTime job_time(int node, double flops, int samples = 0);
  // Whether some worker's loss at `step` (0-based) or earlier was not finite. The allreduce
  // and parameter-server lock-step programs check this after the step's collective, when
  // every worker's loss of that step is known, so all of them stop together (local SGD: after
  // an average). Asynchronous ones check stop_. d-psgd runs on to its last step: a worker
  // knows only its neighbours, so it cannot tell when everyone has seen the divergence.
  bool diverged_at(std::uint64_t step) const { return first_bad_step_ <= step; }
  // The async PS modes' run length: takes the next gradient of the run for worker w (and its
  // slot, for delayed), or says the run has all its gradients.
  bool take_ticket(int w);
  double lr_at(std::uint64_t step) const;
  // Staleness of one applied gradient, in updates.
  void record_staleness(std::uint64_t s);
  // Worker 0 of a bsp program finished step `step` (0-based) with `counted` gradients in it:
  // each counts at staleness 0, and the run progresses.
  void bsp_step_done(std::uint64_t step, int counted);

  // Async PS server: what happens to a request that arrived, and which pulls can be answered.
  Task<> ps_absorb(Server& sv, int s);
  Task<> ps_apply(Server& sv, int s, std::vector<Pending> group, double lr);
  Task<> ps_answer_pulls(Server& sv, int s);
  bool ps_may_answer(const Server& sv, int s, int w) const;

  // ---- progress and evaluation ----
  // The global model reached `updates` updates over `samples` training samples. Evaluates it
  // when another eval_every * (workers * batch) samples have gone by, or at the end.
  // `when` overrides that: replicas are evaluated only at steps where they were snapshot.
  enum class EvalNow { kIfDue, kYes, kNo };
  void progress(std::uint64_t updates, std::uint64_t samples, EvalNow when = EvalNow::kIfDue);
  // Replicas (local-sgd, d-psgd): worker w finished step `step` (1-based); `last` if it stops
  // after it. When every worker has finished the step, it counts as progress; at every
  // eval_every-th step (and the last) the replicas are snapshot as each worker gets there and
  // their average is evaluated.
  void replica_step_done(int w, std::uint64_t step, bool last);
  void evaluate(std::uint64_t updates, std::uint64_t samples);
  // The global model: worker 0's replica, the servers' shards, or the replicas' average
  // (with their consensus distance).
  std::span<const float> global_params(double& consensus);
  EvalResult evaluate_params(std::span<const float> params);
  std::string divergence_reason() const;

  const Scenario& s_;
  const StrategyConfig& st_;
  const DatasetPair& data_;
  const bool numerics_;
  const int p_;
  const int k_;
  const int batch_;
  const bool coded_;  // bsp with a codec or an aggregation rule other than mean
  Model model_;
  std::vector<double> flops_per_s_;  // each node's speed ([[cluster.group]])
  std::vector<double> slowdown_;     // each node's straggler multiplier
  std::vector<std::uint64_t> jobs_;  // jobs charged so far per node (keys the jitter)
  std::uint64_t total_steps_ = 0;    // lock-step rounds of p gradients
  std::uint64_t total_updates_ = 0;  // updates of the global model in the whole run
  std::uint64_t tickets_ = 0;        // async PS: gradients handed out so far
  std::vector<Worker> workers_;
  std::vector<Server> servers_;
  std::vector<int> worker_nodes_;
  std::vector<int> server_nodes_;
  std::vector<std::unique_ptr<Workspace>> eval_ws_;  // one per job thread
  std::vector<float> eval_params_;                   // the assembled or averaged model
  // Replica steps not yet finished by every worker (local-sgd, d-psgd), and the snapshots
  // of the step being evaluated.
  struct ReplicaStep {
    int arrived = 0;
    std::vector<std::vector<float>> snapshots;
  };
  std::map<std::uint64_t, ReplicaStep> replica_steps_;
  std::vector<std::vector<float>> snapshots_;
  std::map<std::uint64_t, int> shards_at_;  // async PS: shards that reached each version
  // Gathered compression: every worker decodes and aggregates the same p payloads, so the
  // first job of a step computes the result and the others copy it (each is still charged
  // the full virtual time).
  struct SharedAggregate {
    std::once_flag once;
    std::vector<float> result;
    int taken = 0;
  };
  std::map<std::uint64_t, std::unique_ptr<SharedAggregate>> shared_aggregates_;
  std::uint64_t gossip_gradients_ = 0;  // ad-psgd: gradients applied by all workers
  std::unique_ptr<Barrier> barrier_;    // bsp with backup workers
  std::vector<SimTime> backup_cost_;    // this step's gradient cost per worker (backup)
  std::vector<bool> backup_counts_;     // whether its gradient is among the first p - b
  SimTime backup_cutoff_;
  RunResult result_;
  std::vector<SimObserver*> observers_;
  std::uint64_t updates_done_ = 0;
  std::uint64_t samples_done_ = 0;
  std::uint64_t next_eval_samples_ = 0;
  std::uint64_t evaluated_at_ = std::numeric_limits<std::uint64_t>::max();
  std::map<std::uint64_t, std::uint64_t> staleness_;  // histogram over the run
  double window_staleness_sum_ = 0;                   // since the last evaluation
  std::uint64_t window_staleness_count_ = 0;
  std::uint64_t window_staleness_max_ = 0;
  std::uint64_t first_bad_step_ = std::numeric_limits<std::uint64_t>::max();
  double first_bad_loss_ = 0;
  int first_bad_worker_ = 0;
  bool stop_ = false;     // a loss was not finite: asynchronous programs stop
  bool running_ = false;  // inside sim_.run()
  // Last, so it is destroyed first: its node programs and jobs use everything above.
  Simulation sim_;
};

}  // namespace dtsim::detail
