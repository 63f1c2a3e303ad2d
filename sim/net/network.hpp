// The flow-level network model (the one SimGrid's default model uses).
//
// A message is a flow over its route. Flows that share a link share its bandwidth max-min
// fairly: sim/net/bandwidth_sharing.hpp holds the flows that contend and works out their rates
// when flows start or end, at a cost that does not grow with the number of flows on a link.
// A message arrives at (end of its transfer) + (sum of its links' latencies), so alone on its
// path it costs latency + bytes / bandwidth. Finish times are rounded to the nanosecond.
// A flow alone on its path gets a single event, its delivery, and stays out of the sharing
// model (each link only notes which lazy flow occupies it until when); only when another
// flow joins one of its links does it become an ordinary flow, handed to the sharing model with
// the bytes it has left. Structured collectives, whose flows rarely share links, so cost one
// event per message.
// Messages between the same two nodes are transferred in order, one after another (as over
// one connection: a TCP stream, an RDMA queue pair, MPI's non-overtaking rule): a message
// sent while an earlier one to the same node is still transferring waits for its end. Only
// messages of different pairs share links. (Sharing a rank's consecutive messages made a
// ring's parts that caught up with the part ahead move with it as one ever slower block.)
// This relies on latencies >= 0: a lazy flow's links forget it by time, once its transfer
// has ended, and it is delivered after that.
//
// Faults ([[faults]], sim/train/faults.hpp) change links while the network runs: a link's
// capacity may drop to 0 (link-down: its flows get rate 0 and wait, keeping the bytes they have
// moved, until it comes back), and a link may lose transfers with a probability (loss: a
// transfer over it is drawn lost when it starts, from one seeded stream in event order; a lost
// transfer uses the links as any other, then is sent again `timeout` after it ended, with a
// new draw; messages of the same pair behind it wait, as behind a TCP retransmission).
//
// Payloads are real data (a shared, immutable float vector) or, in time-only mode, just a size.
// Single-threaded: owned by a Simulation and used from its event loop.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "sim/des/event_queue.hpp"
#include "sim/net/bandwidth_sharing.hpp"
#include "sim/net/topology.hpp"

namespace dtsim {

struct Message {
  int src = 0;
  int dst = 0;
  std::uint64_t tag = 0;
  std::uint64_t bytes = 0;                         // charged on the wire
  std::shared_ptr<const std::vector<float>> data;  // null in time-only mode
  // Or opaque bytes (a compressed gradient); bytes == payload->size() with real data.
  std::shared_ptr<const std::vector<std::uint8_t>> payload;
};

class Network {
 public:
  // Called with each message on arrival, and the time it was sent (plain function pointers:
  // they run once per message). The message is the network's: the callback must move it
  // away before it does anything that may send.
  using DeliverFn = void (*)(void* context, Message& m, SimTime sent);
  using SentFn = void (*)(void* context, std::uint64_t flow_token);

  // `now` is the simulation clock (read, never written); `queue` receives the network's events.
  Network(Topology topology, EventQueue& queue, const SimTime& now);

  void on_deliver(DeliverFn fn, void* context) {
    deliver_ = fn;
    deliver_context_ = context;
  }
  // Called when a flow's transfer ends (its bytes have left the sender), with the token given
  // to send(); used for blocking sends.
  void on_sent(SentFn fn, void* context) {
    sent_ = fn;
    sent_context_ = context;
  }

  // Starts sending `m` now. `token` (not 0) asks for on_sent when the transfer ends.
  void send(Message&& m, std::uint64_t token = 0) {
    const int id = allocate_flow();
    flows_[static_cast<std::size_t>(id)].msg = std::move(m);
    start(id, token);
  }
  // The same for a message of floats (or of nothing), built in place.
  void send(int src, int dst, std::uint64_t tag, std::uint64_t bytes,
            std::shared_ptr<const std::vector<float>>&& data) {
    const int id = allocate_flow();
    Message& m = flows_[static_cast<std::size_t>(id)].msg;
    m.src = src;
    m.dst = dst;
    m.tag = tag;
    m.bytes = bytes;
    m.data = std::move(data);
    m.payload.reset();
    start(id, 0);
  }

  // ---- faults ----
  // Sets a link's capacity from now on (0: it carries nothing until raised again).
  void set_capacity(int link, double bytes_per_s);
  // Transfers that start over `link` from now on are lost with `probability` (0: none), and
  // sent again `timeout` after their transfer ends. `seed` keys the draws.
  void set_loss(int link, double probability, SimTime timeout, std::uint64_t seed);
  std::uint64_t retransmissions() const { return retransmissions_; }
  std::uint64_t retransmitted_bytes() const { return retransmitted_bytes_; }
  // The transfers lost on `link` so far (each counted on the first lossy link of its path),
  // and their bytes.
  std::uint64_t lost_on(int link) const {
    return loss_.empty() ? 0 : loss_[static_cast<std::size_t>(link)].lost;
  }
  std::uint64_t lost_bytes_on(int link) const {
    return loss_.empty() ? 0 : loss_[static_cast<std::size_t>(link)].lost_bytes;
  }
  // The flows transferring over `link` now.
  std::size_t flows_on(int link) const;

  const Topology& topology() const { return topology_; }
  std::uint64_t flows_started() const { return flows_started_; }
  // How many times rates were recomputed (for tests of the model's cost).
  std::uint64_t reallocations() const { return sharing_.reallocations(); }
  std::size_t active_flows() const { return active_; }
  // The current rate of every transferring flow over `link`, bytes/s (for tests).
  std::vector<double> link_rates(int link) const;

 private:
  // A flow's links: up to four inline (star, full, hierarchical), longer ring paths spill.
  struct LinkList {
    int count = 0;
    int inline_links[4] = {};
    std::vector<int> spill;
    const int* begin() const { return count <= 4 ? inline_links : spill.data(); }
    const int* end() const { return begin() + count; }
  };
  struct Flow {
    LinkList links;
    // Lazy: its rate (bytes per second), when its transfer began and when it ends.
    double rate = 0;
    SimTime last_update;
    SimTime finish;
    SimTime latency;
    SimTime sent;
    std::uint32_t version = 0;
    std::uint64_t token = 0;
    bool transferring = false;
    // Alone on its path when it started, so it was given only a delivery event and is in no
    // link's flow list (its links only point to it, until its transfer ends); it is made an
    // ordinary flow if another flow joins one of its links before then.
    bool lazy = false;
    // Queued behind an earlier message between the same two nodes (next_in_pair of that
    // one), not yet transferring.
    bool waiting = false;
    // Drawn lost when its transfer began (a loss fault): it is sent again retry_after its end.
    bool lost = false;
    SimTime retry_after;
    int next_in_pair = -1;  // the message queued right behind this one, if any
    Message msg;
  };
  // What sending a message reads and writes about a link: 32 bytes, two links to a line.
  struct alignas(32) LinkState {
    double capacity = 0;
    SimTime latency;
    // A lazy flow transferring over this link until lazy_until (it is alone on it then).
    SimTime lazy_until = SimTime::from_ns(-1);
    int lazy_flow = -1;
    int ordinary = 0;  // the number of non-lazy flows transferring over it (in sharing_)
  };

  // Sends flow `id`, whose message is in place: its transfer starts now, or when the
  // messages between the same two nodes sent before it have been transferred.
  void start(int id, std::uint64_t token);
  void begin_transfer(int id);
  static std::uint64_t pair_key(const Message& m) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(m.src)) << 32) |
           static_cast<std::uint32_t>(m.dst);
  }
  // The last message between m's nodes still transferring or waiting, or -1.
  int pair_predecessor(const Message& m, const LinkState& first);
  bool in_flight(const Flow& f) const {
    return f.waiting || (f.transferring && (!f.lazy || f.finish > now_));
  }
  void schedule_pair_start(int id, SimTime at) {
    queue_.schedule(at, Event{&Network::pair_start_event, this,
                              (static_cast<std::uint64_t>(id) << 32) |
                                  flows_[static_cast<std::size_t>(id)].version});
  }
  static void pair_start_event(void* self, std::uint64_t arg);
  static void deliver_event(void* self, std::uint64_t arg);
  static void sharing_end(void* self, int id) { static_cast<Network*>(self)->finish_transfer(id); }
  void finish_transfer(int id);
  // Makes flow `id`, transferring (not lazily), the one its pair's next message waits for.
  void note_pair_tail(int id);
  // Hands flow `id`, transferring now with `bytes` left, to the sharing model.
  void share(int id, double bytes);
  // A lazy flow still transferring becomes an ordinary one, in the sharing model, so that it
  // can share its links; its delivery event is superseded.
  void make_ordinary(int id);
  void schedule_delivery(int id, SimTime at) {
    queue_.schedule(at, Event{&Network::deliver_event, this,
                              (static_cast<std::uint64_t>(id) << 32) |
                                  flows_[static_cast<std::size_t>(id)].version});
  }
  // (Both may grow flows_, which invalidates references into it.)
  int allocate_flow() {
    if (free_flows_.empty()) return new_flow();
    const int id = free_flows_.back();
    free_flows_.pop_back();
    return id;
  }
  int new_flow();
  bool lazy_live(const LinkState& ls) const { return ls.lazy_until > now_; }

  Topology topology_;
  EventQueue& queue_;
  const SimTime& now_;
  DeliverFn deliver_ = nullptr;
  void* deliver_context_ = nullptr;
  SentFn sent_ = nullptr;
  void* sent_context_ = nullptr;
  std::vector<Flow> flows_;
  std::vector<int> free_flows_;
  std::vector<LinkState> links_;
  BandwidthSharing sharing_;  // the ordinary flows
  std::vector<int> route_;    // scratch for long routes
  // By (src, dst): the last message still transferring (not lazily) or waiting between them.
  std::unordered_map<std::uint64_t, int> pair_tail_;
  // The last transfer time worked out: collectives send runs of equal-sized messages over
  // equal links, and a division is a good part of a message's cost.
  double last_bytes_ = -1;
  double last_rate_ = -1;
  SimTime last_transfer_;
  std::uint64_t flows_started_ = 0;
  std::size_t active_ = 0;
  // Loss faults: each link's loss probability and retransmission timeout (empty until a loss
  // fault begins), how many links lose now, and the draws' stream position.
  struct LinkLoss {
    double probability = 0;
    SimTime timeout;
    std::uint64_t lost = 0;
    std::uint64_t lost_bytes = 0;
  };
  std::vector<LinkLoss> loss_;
  int lossy_links_ = 0;
  std::uint64_t loss_seed_ = 0;
  std::uint64_t loss_draws_ = 0;
  std::uint64_t retransmissions_ = 0;
  std::uint64_t retransmitted_bytes_ = 0;
  // Whether the transfer of flow `id` that begins now is lost, and if so the timeout.
  bool draw_loss(const Flow& f, SimTime& timeout);
};

}  // namespace dtsim
