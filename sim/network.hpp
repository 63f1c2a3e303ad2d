// The flow-level network model (the one SimGrid's default model uses).
//
// A message is a flow over its route. Flows that share a link share its bandwidth max-min
// fairly (progressive filling); rates are recomputed when a flow starts or ends, but only for
// the flows connected to it through shared links, since no other flow's rate can change.
// A message arrives at (end of its transfer) + (sum of its links' latencies), so alone on its
// path it costs latency + bytes / bandwidth. Finish times are rounded to the nanosecond.
// A flow alone on its path gets a single event, its delivery; only when another flow joins
// one of its links does it become an ordinary flow with a transfer-end event. Structured
// collectives, whose flows rarely share links, so cost one event per message.
//
// Payloads are real data (a shared, immutable float vector) or, in time-only mode, just a size.
// Single-threaded: owned by a Simulation and used from its event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sim/event_queue.hpp"
#include "sim/topology.hpp"

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
  // Called with each message on arrival, and the time it was sent.
  using DeliverFn = std::function<void(Message&&, SimTime sent)>;
  using SentFn = std::function<void(std::uint64_t flow_token)>;

  // `now` is the simulation clock (read, never written); `queue` receives the network's events.
  Network(Topology topology, EventQueue& queue, const SimTime& now);

  void on_deliver(DeliverFn fn) { deliver_ = std::move(fn); }
  // Called when a flow's transfer ends (its bytes have left the sender), with the token given
  // to send(); used for blocking sends.
  void on_sent(SentFn fn) { sent_ = std::move(fn); }

  // Starts sending `m` now. `token` is passed back to on_sent when the transfer ends.
  void send(Message m, std::uint64_t token = 0);

  const Topology& topology() const { return topology_; }
  std::uint64_t flows_started() const { return flows_started_; }
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
    void assign(const std::vector<int>& links);
  };
  struct Flow {
    Message msg;
    LinkList links;
    double remaining = 0;  // bytes
    double rate = 0;       // bytes per second
    SimTime last_update;
    SimTime finish;
    SimTime latency;
    SimTime sent;
    std::uint32_t version = 0;
    std::uint64_t token = 0;
    bool transferring = false;
    // Alone on its path when it started, so it was given only a delivery event; it is
    // converted to an ordinary flow if another flow joins one of its links before it ends.
    bool lazy = false;
    bool fixed = false;      // progressive-filling scratch
    std::uint32_t mark = 0;  // component-search scratch
  };
  // The flows on one link: up to three inline (the usual case), more on the heap.
  class FlowList {
   public:
    std::size_t size() const { return static_cast<std::size_t>(count_); }
    bool empty() const { return count_ == 0; }
    const int* begin() const { return count_ <= kInline ? inline_ : heap_.data(); }
    const int* end() const { return begin() + count_; }
    int operator[](std::size_t i) const { return begin()[i]; }
    void push_back(int id);
    void remove(int id);  // swap-remove; `id` must be present

   private:
    static constexpr int kInline = 3;
    int count_ = 0;
    int inline_[kInline] = {};
    std::vector<int> heap_;  // holds every element while count_ > kInline
  };
  struct LinkState {
    double capacity = 0;
    FlowList flows;   // transferring flows on this link
    double left = 0;  // progressive-filling scratch
    int unfixed = 0;
    std::uint32_t mark = 0;
  };

  static void flow_event(void* self, std::uint64_t arg);
  static void deliver_event(void* self, std::uint64_t arg);
  void finish_transfer(int id);
  // Recomputes the rates of every flow connected to `seed_links`.
  void reallocate(const int* seed_begin, const int* seed_end);
  void schedule_finish(int id, Flow& f);
  // Settles the lazy flows on link l: finished ones leave their links, unfinished ones become
  // ordinary flows (their delivery event is superseded) so that they can share the link.
  void settle_lazy(int l);
  void leave_links(int id);
  void schedule_delivery(int id, SimTime at);
  int allocate_flow();

  Topology topology_;
  EventQueue& queue_;
  const SimTime& now_;
  DeliverFn deliver_;
  SentFn sent_;
  std::vector<Flow> flows_;
  std::vector<int> free_flows_;
  std::vector<LinkState> links_;
  std::uint32_t epoch_ = 0;
  std::vector<int> comp_flows_;  // scratch
  std::vector<int> comp_links_;  // scratch
  std::vector<int> route_;       // scratch
  std::uint64_t flows_started_ = 0;
  std::size_t active_ = 0;
};

}  // namespace dtsim
