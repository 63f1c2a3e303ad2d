// Parameter servers that handle each worker's request as it arrives: asp, ssp, delayed, and
// bsp with backup workers. One machinery (ps_async.cpp), one ServerRule per mode (ps_asp.cpp,
// ps_ssp.cpp, ps_delayed.cpp, ps_backup.cpp).
//
// A request carries the worker's gradient part (n/k floats), or only a header (8 bytes) for
// the first pull and the last message; the shard answers a pull with its part of the
// parameters. The worker waits for every shard's answer before its next gradient. What a
// shard does with a gradient, and when it may answer a pull, is its rule's.
//
// The run's length: the rules that hand out gradients one at a time give out the bsp run's
// number (steps * p) to whichever worker asks next; backup workers run bsp's number of steps.
// Staleness (version at apply minus the version the gradient was computed on) is recorded at
// shard 0. The global model (for evaluation) is the shards' parameters when the last of them
// reaches a version; the others may be ahead by then. staleness_lr divides each gradient's lr
// by max(1, staleness); delay_compensation (lambda) adds lambda * g * g * (w - w_read) to it
// (DC-ASGD, Zheng et al. 2017, with the parameters the worker read, as in the paper).
//
// Crash and restart faults (asp, ssp, delayed): a worker finds out at the end of the gradient it
// was computing, which is lost, and its ticket goes back to the others. A crashed worker's leaving
// reaches the shards failure_timeout after its crash (a notice, as its last request would); a
// restarted one is down until it is back, then pulls the current parameters and goes on (the shards
// are not told: ssp's bound may wait for it meanwhile). A shard's checkpoints, crash and restart
// are checkpoint.hpp's; a shard that resumes from its checkpoint keeps the requests and gradients
// that were waiting (their workers send them again).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/compress.hpp"
#include "sim/strategies/checkpoint.hpp"
#include "sim/strategies/strategy.hpp"

namespace dtsim {

// A gradient part waiting at a server shard.
struct Pending {
  int worker = 0;
  std::uint64_t clock = 0;         // the worker's gradient count
  std::uint64_t slot = 0;          // the update it must be (delayed)
  std::uint64_t read_version = 0;  // the version it was computed on
  std::vector<float> grad;         // this shard's part (empty in time-only mode)
  std::vector<float> read_params;  // delay compensation: the part the worker read
};

struct ServerShard {
  int node = 0;
  std::uint64_t begin = 0;  // this shard's range of the parameter vector
  std::uint64_t end = 0;
  std::vector<float> params;
  std::vector<float> buffer;  // sums the gradients of an update
  std::unique_ptr<Optimizer> optimizer;
  std::uint64_t version = 0;  // updates applied
  std::uint64_t applied = 0;  // gradients in them
  std::vector<Pending> pending;
  std::vector<int> pulls;             // workers waiting for parameters
  std::vector<std::uint64_t> clocks;  // gradients received per worker
  std::vector<bool> finished;         // workers that sent their last request
  std::vector<float> published;       // k > 1: params as of the last update (for evaluation)
  std::unique_ptr<ShardCheckpoints> checkpoints;  // strategy.checkpoint_every (null: none)
};

struct PsWorker {
  std::vector<float> params;                // pulled from the servers
  std::vector<std::uint64_t> read_version;  // per shard: the version its parameters came from
  // Its current request to the servers (read by them when the message arrives; the worker
  // changes it only after every server has answered).
  bool req_gradient = false;
  bool req_pull = false;
  std::uint64_t slot = 0;       // the run's gradient number its next gradient will be
  std::uint64_t grad_slot = 0;  // that of its last gradient
  bool done = false;            // backup workers: the servers said the run is over
  // With a codec: one compressor (and error-feedback memory) per shard, and this request's
  // encoded parts.
  std::vector<std::unique_ptr<Compressor>> codecs;
  std::vector<std::shared_ptr<Payload>> payloads;
  std::uint64_t pushed = 0;  // gradients pushed so far: the codecs' step
  bool left = false;         // sent its last request, or crashed and the shards were told
  bool hit = false;          // its crash or restart fault has hit it
};

// What makes each mode.
class ServerRule {
 public:
  virtual ~ServerRule() = default;
  // Takes the gradients of the shard's next update out of sv.pending, and sets its learning
  // rate; returns none while no update is ready.
  virtual std::vector<Pending> next_update(ServerShard& sv, int shard, double& lr) = 0;
  // Whether worker w, waiting for parameters, may be answered now.
  virtual bool may_answer(const ServerShard& /*sv*/, int /*shard*/, int /*w*/,
                          const PsWorker& /*wk*/) const {
    return true;
  }
  // The version `wk` is served, and its parameters (the newest, unless the rule keeps older
  // ones).
  virtual std::uint64_t served_version(const ServerShard& sv, const PsWorker& /*wk*/) const {
    return sv.version;
  }
  virtual const std::vector<float>& params_of(const ServerShard& sv, int /*shard*/,
                                              std::uint64_t /*version*/) const {
    return sv.params;
  }
  // The shard is set up (version 0), or applied an update.
  virtual void ready(const ServerShard& /*sv*/, int /*shard*/) {}
  virtual void updated(const ServerShard& /*sv*/, int /*shard*/) {}
  // The shard resumed from its checkpoint (sv.params): what the rule kept of it is gone too.
  virtual void restored(const ServerShard& /*sv*/, int /*shard*/) {}
  // true: the run has bsp's steps, and the servers say when it is over (backup workers);
  // false: the run hands out steps * p gradients, one at a time.
  virtual bool rounds() const { return false; }
  // Each gradient is an update of its own, so the run has steps * p updates.
  virtual bool update_per_gradient() const = 0;
};

// The strategy, for the rule's factory: std::make_unique<AsyncPs>(core, std::make_unique<R>()).
class AsyncPs : public Strategy {
 public:
  AsyncPs(RunCore& core, std::unique_ptr<ServerRule> rule);
  void start() override;
  std::span<const float> global_params(double& consensus) override;
  std::uint64_t total_updates() const override;
  bool lock_step() const override { return rule_->rounds(); }
  void worker_lost(int w) override;
  void describe(int node, NodeStats& out) const override {
    const int index = node - core().scenario().cluster.workers;
    if (index >= 0) out.steps = servers_[static_cast<std::size_t>(index)].version;
  }

 private:
  Task<> worker(int w);
  Task<> server(int s);
  bool take_ticket(int w);
  Task<> absorb(ServerShard& sv, int s);
  Task<> apply(ServerShard& sv, int s, std::vector<Pending> group, double lr);
  void answer_pulls(ServerShard& sv, int s);
  // With checkpoints: the shard's crash or restart, if it has come (checkpoint.hpp), with
  // `arriving` gradients besides those pending.
  Task<> recover(ServerShard& sv, int s, std::size_t arriving);
  // With a codec: worker w encodes its gradient's shard parts (a job), and shard s decodes
  // a pushed payload into g.grad (a job).
  Task<> encode(int w);
  Task<> decode(int s, const Payload* payload, Pending& g);  // payload: null in time-only runs

  std::unique_ptr<ServerRule> rule_;
  std::vector<PsWorker> workers_;
  std::vector<ServerShard> servers_;
  std::uint64_t tickets_ = 0;                          // gradients handed out so far
  std::vector<std::uint64_t> returned_;                // tickets of lost gradients
  std::map<std::uint64_t, int> shards_at_;             // shards that reached each version
  std::vector<float> global_;                          // the shards side by side
  std::vector<std::unique_ptr<Compressor>> decoders_;  // per shard, with a codec
};

// bsp with backup workers runs on this machinery: ps_bsp.cpp's factory makes it.
std::unique_ptr<Strategy> make_ps_backup(RunCore& core);

}  // namespace dtsim
