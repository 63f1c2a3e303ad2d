// Max-min fair sharing of link bandwidth among the flows that contend for it: the contended
// half of the network model (sim/net/network.hpp keeps the flows that are alone on their path).
//
// Rates are, at every instant, the max-min fair allocation of the links' capacities
// (progressive filling, the allocation SimGrid's flow model computes). Two facts about that
// allocation keep the cost of a flow's start or end from growing with the number of flows that
// share a link:
//
// Loose and tight links. A link of capacity c crossed by n flows that each get at most c/n is
// not over its capacity whatever the allocation, so it limits nobody and can be left out of
// the computation: it is loose. The allocation computed over the other links, the tight ones,
// is then the allocation over all of them (it is the max-min point of a larger feasible set and
// lies in the smaller one). The model keeps that invariant: when a flow joins a loose link, or a
// rate rises past the c/n of a loose link its flow crosses, that link becomes tight; a tight link
// that limits none of its flows, each getting at most half its c/n, becomes loose again. (A
// loose link is checked flow by flow when one joins, so a link of more than 64 flows is tight.)
//
// Groups. A flow that crosses exactly one tight link is limited by it, so all such flows of a
// link get the same rate, the link's level. The link keeps them as one group with a virtual
// clock (the bytes each of them has received since the clock began: processor sharing) and a
// heap of their finish marks (clock at its start + its bytes). The group costs one event, its
// first finish, and a new level only re-anchors the clock, whatever the group's size. The
// flows that cross several tight links (a flow limited by a link whose other flows are limited
// elsewhere: rare) are kept one by one, each with its remaining bytes, rate and finish event.
//
// Rates are recomputed at one event at the current instant, queued behind the events already
// there, so that all the flows that start or end together cost one recomputation, and only over
// the tight links connected to the changed ones by flows that cross several tight links. Finish
// times are rounded to the nanosecond. The flows whose transfers end in one nanosecond are
// handed on together, at one event queued behind those already there, in the order they were
// added.
//
// Single-threaded: owned by a Network and used from its simulation's event loop.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "sim/des/event_queue.hpp"

namespace dtsim {

class BandwidthSharing {
 public:
  // Called with a flow's id when its transfer ends; the flow has left the model by then (the
  // callback may add flows).
  using EndFn = void (*)(void* context, int flow);

  // `capacities`: each link's bandwidth in bytes/s (>= 0). `now` is the simulation clock.
  BandwidthSharing(EventQueue& queue, const SimTime& now, std::vector<double> capacities);

  void on_end(EndFn fn, void* context) {
    end_ = fn;
    end_context_ = context;
  }

  // Flow `flow` (an id >= 0 not in the model) starts to transfer `bytes` (>= 0) now over the
  // links [links_begin, links_end) (at least one).
  void add(int flow, const int* links_begin, const int* links_end, double bytes);

  // Sets a link's capacity from now on (0: its flows stop until it is raised again).
  void set_capacity(int link, double bytes_per_s);

  // The flows transferring over `link`, and their rates in bytes/s (for tests and reports).
  std::size_t flows_on(int link) const {
    return static_cast<std::size_t>(links_[static_cast<std::size_t>(link)].flows);
  }
  std::vector<double> link_rates(int link) const;
  // How many times rates were recomputed (for tests of the model's cost).
  std::uint64_t reallocations() const { return reallocations_; }
  // Whether `link` is tight now (for tests of the model's cost).
  bool tight(int link) const { return links_[static_cast<std::size_t>(link)].tight; }

 private:
  // Where a flow sits in a link's member list: the flow and the position of that link in its
  // path.
  struct Member {
    int flow = 0;
    int slot = 0;
  };
  enum class Kind : std::uint8_t { kNone, kNew, kGrouped, kSpanning };
  struct FlowState {
    // Its links, and by link its index in that link's member list (or -1): inline up to 4
    // links (star, full, hierarchical), after that in `spill` (links, then indices).
    int count = 0;
    int inline_links[4] = {};
    int inline_pos[4] = {};
    std::vector<int> spill;
    std::span<int> links() { return {count <= 4 ? inline_links : spill.data(), span_size()}; }
    std::span<const int> links() const {
      return {count <= 4 ? inline_links : spill.data(), span_size()};
    }
    int& pos(std::size_t slot) { return (count <= 4 ? inline_pos : spill.data() + count)[slot]; }
    std::size_t span_size() const { return static_cast<std::size_t>(count); }
    int tight = 0;  // how many of its links are tight
    Kind kind = Kind::kNone;
    int group = -1;           // kGrouped: the tight link whose group holds it
    double mark = 0;          // kGrouped: its finish mark on that link's clock
    std::uint64_t seq = 0;    // when it was added: flows that end together end in this order
    std::uint32_t entry = 0;  // kGrouped: the stamp of its heap entry (bumped to drop it)
    // kSpanning: bytes left at last_update, rate, and the pending finish event.
    double remaining = 0;
    double rate = 0;
    double new_rate = 0;  // progressive-filling scratch
    SimTime last_update;
    SimTime finish = SimTime::from_ns(-1);
    std::uint32_t version = 0;
    bool fixed = false;      // progressive-filling scratch
    std::uint32_t seen = 0;  // component-search scratch
  };
  struct Entry {  // a grouped flow's finish mark in its link's heap
    double mark = 0;
    std::uint64_t seq = 0;
    int flow = 0;
    std::uint32_t stamp = 0;
  };
  struct LinkState {
    double capacity = 0;
    int flows = 0;  // every flow over it
    bool tight = false;
    // Loose: every flow over it. Tight: the flows over it that cross other tight links too.
    std::vector<Member> members;
    // Tight: its group, the level its flows get, and the group's virtual clock (bytes sent to
    // each of them), `clock` at `anchor`.
    int grouped = 0;
    double level = 0;
    double clock = 0;
    SimTime anchor;
    std::vector<Entry> heap;  // min-heap by (mark, seq); entries of flows that left stay stale
    std::uint32_t event_version = 0;
    SimTime event_at = SimTime::from_ns(-1);
    // At most the lowest c/n of the loose links the group's flows cross: the level up to which
    // none of them can be over its capacity (lowered as flows join; raised only when recomputed).
    double loose_bound = 0;
    // Progressive-filling and search scratch.
    double left = 0;
    double new_level = 0;
    int unfixed = 0;
    bool picked = false;
    bool dirty = false;
    bool check = false;  // in checks_
    std::uint32_t seen = 0;
  };

  static double share_of(const LinkState& l) {
    return l.flows > 0 ? l.capacity / l.flows : l.capacity;
  }
  double clock_now(const LinkState& l) const {
    return l.clock + l.level * (now_ - l.anchor).seconds();
  }
  double rate_of(const FlowState& f) const {
    return f.kind == Kind::kGrouped ? links_[static_cast<std::size_t>(f.group)].level : f.rate;
  }
  FlowState& flow(int id) { return flows_[static_cast<std::size_t>(id)]; }
  LinkState& link(int id) { return links_[static_cast<std::size_t>(id)]; }

  void add_member(int link, int flow, int slot);
  void remove_member(int link, int flow, int slot);
  void make_tight(int link);
  void make_loose(int link);
  // A loose link's c/n fell: it is checked at the next reallocation.
  void check_later(int link);
  // It becomes tight if one of its flows gets more than its c/n; returns whether it did.
  bool check_loose(int link);
  // A grouped flow now crosses a second tight link: it is kept one by one.
  void to_spanning(int flow);
  // A flow that crosses one tight link, `link`, joins its group (marking it dirty if asked).
  void to_grouped(int flow, int link, bool dirty);
  void remove(int flow);
  void mark_dirty(int link);
  static void reallocate_event(void* self, std::uint64_t arg);
  void reallocate();
  // Progressive filling over one component (comp_links_[begin, end)).
  void fill(std::size_t begin, std::size_t end);
  // After a filling of the links from comp_links_[links_from] and the flows from
  // comp_flows_[flows_from]: makes tight the loose links whose c/n a rate now exceeds; returns
  // whether it made any.
  bool tighten(std::size_t links_from, std::size_t flows_from);
  void schedule_group(int link);
  void schedule_spanning(int flow);
  static void group_event(void* self, std::uint64_t arg);
  static void flow_event(void* self, std::uint64_t arg);
  // Flow `id`'s transfer ends now: it leaves the model at once, and is handed on (end_) at one
  // event at this instant, queued behind those already there, with the others that end now.
  void end_now(int id);
  static void ends_event(void* self, std::uint64_t arg);
  // The finish time of a group's entry at the link's current clock and level.
  SimTime finish_of(const LinkState& l, const Entry& e) const;
  void push_entry(LinkState& l, const Entry& e);
  void pop_entry(LinkState& l);
  bool entry_live(const Entry& e) const {
    const FlowState& f = flows_[static_cast<std::size_t>(e.flow)];
    return f.kind == Kind::kGrouped && f.entry == e.stamp;
  }

  EventQueue& queue_;
  const SimTime& now_;
  EndFn end_ = nullptr;
  void* end_context_ = nullptr;
  std::vector<FlowState> flows_;
  std::vector<LinkState> links_;
  std::vector<int> dirty_;   // tight links whose flows changed since the last reallocation
  std::vector<int> checks_;  // loose links whose c/n fell since then
  bool reallocation_pending_ = false;
  std::uint64_t reallocations_ = 0;
  std::uint64_t seq_ = 0;               // flows added so far
  std::uint32_t epoch_ = 0;             // for the scratch marks
  std::vector<int> comp_links_;         // scratch
  std::vector<int> comp_flows_;         // scratch: the components' spanning flows
  std::vector<std::size_t> comp_ends_;  // scratch: where each component's links end
  std::vector<int> to_tighten_;         // scratch
  // Flows that left the model now, to be handed on, with their seq.
  std::vector<std::pair<std::uint64_t, int>> ending_;
  bool ends_pending_ = false;
};

}  // namespace dtsim
