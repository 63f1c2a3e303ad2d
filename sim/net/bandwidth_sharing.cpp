#include "sim/net/bandwidth_sharing.hpp"

#include <algorithm>
#include <limits>

namespace dtsim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// The most flows a loose link carries.
constexpr int kMaxLoose = 64;

}  // namespace

BandwidthSharing::BandwidthSharing(EventQueue& queue, const SimTime& now,
                                   std::vector<double> capacities)
    : queue_(queue), now_(now) {
  links_.resize(capacities.size());
  for (std::size_t i = 0; i < links_.size(); ++i) {
    links_[i].capacity = capacities[i];
    links_[i].loose_bound = kInf;
  }
}

void BandwidthSharing::add_member(int l, int f, int slot) {
  LinkState& L = link(l);
  flow(f).pos(static_cast<std::size_t>(slot)) = static_cast<int>(L.members.size());
  L.members.push_back({f, slot});
}

void BandwidthSharing::remove_member(int l, int f, int slot) {
  LinkState& L = link(l);
  FlowState& g = flow(f);
  const auto i = static_cast<std::size_t>(g.pos(static_cast<std::size_t>(slot)));
  g.pos(static_cast<std::size_t>(slot)) = -1;
  if (i + 1 != L.members.size()) {  // swap-remove
    const Member moved = L.members.back();
    L.members[i] = moved;
    flow(moved.flow).pos(static_cast<std::size_t>(moved.slot)) = static_cast<int>(i);
  }
  L.members.pop_back();
}

void BandwidthSharing::add(int id, const int* links_begin, const int* links_end, double bytes) {
  if (static_cast<std::size_t>(id) >= flows_.size())
    flows_.resize(static_cast<std::size_t>(id) + 1);
  FlowState& f = flow(id);
  const int n = static_cast<int>(links_end - links_begin);
  f.count = n;
  if (n > 4) f.spill.resize(2 * static_cast<std::size_t>(n));
  std::copy(links_begin, links_end, f.links().begin());
  f.kind = Kind::kNew;
  f.group = -1;
  f.remaining = bytes;
  f.rate = 0;
  f.last_update = now_;
  f.finish = SimTime::from_ns(-1);
  ++f.version;  // (any event left by the id's last flow is stale)
  f.tight = 0;
  f.seq = seq_++;
  bool alone = true;  // no other flow on any of its links
  for (int k = 0; k < n; ++k) {
    const int l = links_begin[k];
    LinkState& L = link(l);
    ++L.flows;
    alone = alone && L.flows == 1;
    f.tight += L.tight ? 1 : 0;
    add_member(l, id, k);
  }
  if (f.tight == 0) {
    // Every flow crosses a tight link: here its link with the lowest c/n (the first on a tie).
    int best = links_begin[0];
    for (int l : f.links()) {
      if (share_of(link(l)) < share_of(link(best))) best = l;
    }
    make_tight(best);  // (f is among its members: f.tight is 1 now)
  }
  // Its loose links' c/n fell: each is checked against its flows' new rates when they are
  // worked out. (A loose link is checked flow by flow, so one with many flows is made tight
  // instead: most often it limits them.)
  if (!alone) {
    for (int l : f.links()) {
      LinkState& L = link(l);
      if (L.tight) continue;
      if (L.flows > kMaxLoose) {
        make_tight(l);
      } else {
        check_later(l);
      }
    }
  }
  int t = -1;
  for (int l : f.links()) {
    if (link(l).tight) t = l;
  }
  if (f.tight > 1) {
    f.kind = Kind::kSpanning;
    for (int l : f.links()) {
      if (link(l).tight) mark_dirty(l);
    }
    return;
  }
  if (alone) {
    // Nothing shares its path: its rate is its slowest link's (the tight one), at once.
    LinkState& T = link(t);
    T.clock = 0;
    T.anchor = now_;
    T.level = T.capacity;
    to_grouped(id, t, false);
    schedule_group(t);
    return;
  }
  to_grouped(id, t, true);
}

void BandwidthSharing::make_tight(int l) {
  LinkState& L = link(l);
  L.tight = true;
  L.grouped = 0;
  L.level = 0;
  L.clock = 0;
  L.anchor = now_;
  L.heap.clear();
  L.loose_bound = kInf;
  ++L.event_version;
  L.event_at = SimTime::from_ns(-1);
  // Its flows all cross one tight link more; those grouped elsewhere now span two. (to_spanning
  // changes other links' member lists, not this one's.)
  for (std::size_t i = 0; i < L.members.size(); ++i) {
    const int g = L.members[i].flow;
    ++flow(g).tight;
    if (flow(g).kind == Kind::kGrouped) to_spanning(g);
  }
  mark_dirty(l);
}

void BandwidthSharing::make_loose(int l) {
  LinkState& L = link(l);
  L.tight = false;
  L.heap.clear();
  L.loose_bound = kInf;
  ++L.event_version;
  L.event_at = SimTime::from_ns(-1);
  // (It has no group.) Its flows that now cross one tight link join that link's group: they were
  // limited there, so their rate is its level.
  for (std::size_t i = 0; i < L.members.size(); ++i) {
    const int g = L.members[i].flow;
    FlowState& G = flow(g);
    if (--G.tight != 1) continue;
    for (int t : G.links()) {
      if (link(t).tight) {
        to_grouped(g, t, false);
        break;
      }
    }
  }
}

void BandwidthSharing::check_later(int l) {
  LinkState& L = link(l);
  if (!L.check) {
    L.check = true;
    checks_.push_back(l);
  }
  if (reallocation_pending_) return;
  reallocation_pending_ = true;
  queue_.schedule(now_, Event{&BandwidthSharing::reallocate_event, this, 0});
}

bool BandwidthSharing::check_loose(int l) {
  LinkState& L = link(l);
  const double share = share_of(L);
  for (const Member& m : L.members) {
    const FlowState& g = flow(m.flow);
    if (rate_of(g) > share) {
      make_tight(l);
      return true;
    }
    if (g.kind == Kind::kGrouped) {
      LinkState& B = link(g.group);
      B.loose_bound = std::min(B.loose_bound, share);
    }
  }
  return false;
}

void BandwidthSharing::to_spanning(int id) {
  FlowState& g = flow(id);
  const int b = g.group;
  LinkState& B = link(b);
  g.remaining = std::max(0.0, g.mark - clock_now(B));
  g.rate = B.level;
  g.last_update = now_;
  g.finish = SimTime::from_ns(-1);
  ++g.entry;  // its heap entry is stale
  if (--B.grouped == 0) {
    B.heap.clear();
    B.loose_bound = kInf;
  }
  for (std::size_t k = 0; k < g.span_size(); ++k) {
    if (g.links()[k] == b) add_member(b, id, static_cast<int>(k));
  }
  g.kind = Kind::kSpanning;
  g.group = -1;
  mark_dirty(b);
}

void BandwidthSharing::to_grouped(int id, int t, bool dirty) {
  FlowState& g = flow(id);
  LinkState& T = link(t);
  if (g.kind == Kind::kSpanning) {
    g.remaining = std::max(0.0, g.remaining - g.rate * (now_ - g.last_update).seconds());
    ++g.version;  // supersedes its finish event
    g.finish = SimTime::from_ns(-1);
  }
  if (T.grouped == 0) {  // a new group: its clock starts now
    T.heap.clear();
    T.clock = 0;
    T.anchor = now_;
    T.loose_bound = kInf;
  }
  for (std::size_t k = 0; k < g.span_size(); ++k) {
    const int l = g.links()[k];
    if (l == t) {
      remove_member(t, id, static_cast<int>(k));
    } else {
      T.loose_bound = std::min(T.loose_bound, share_of(link(l)));  // (its other links are loose)
    }
  }
  g.kind = Kind::kGrouped;
  g.group = t;
  g.mark = clock_now(T) + g.remaining;
  ++g.entry;
  push_entry(T, {g.mark, g.seq, id, g.entry});
  ++T.grouped;
  if (dirty) mark_dirty(t);
}

void BandwidthSharing::remove(int id) {
  FlowState& f = flow(id);
  for (std::size_t k = 0; k < f.span_size(); ++k) {
    const int l = f.links()[k];
    --link(l).flows;
    if (f.pos(k) >= 0) remove_member(l, id, static_cast<int>(k));
  }
  if (f.kind == Kind::kGrouped) {
    LinkState& B = link(f.group);
    ++f.entry;
    if (--B.grouped == 0) {
      B.heap.clear();
      B.loose_bound = kInf;
    }
  }
  f.kind = Kind::kNone;
  f.group = -1;
  ++f.version;
  // Its tight links' other flows may speed up (its loose links' c/n only rose); a tight link
  // left empty is loose at once.
  for (int l : f.links()) {
    LinkState& L = link(l);
    if (!L.tight) continue;
    if (L.flows == 0) {
      make_loose(l);
    } else {
      mark_dirty(l);
    }
  }
}

void BandwidthSharing::mark_dirty(int l) {
  LinkState& L = link(l);
  if (!L.dirty) {
    L.dirty = true;
    dirty_.push_back(l);
  }
  if (reallocation_pending_) return;
  reallocation_pending_ = true;
  queue_.schedule(now_, Event{&BandwidthSharing::reallocate_event, this, 0});
}

void BandwidthSharing::reallocate_event(void* self, std::uint64_t) {
  auto* s = static_cast<BandwidthSharing*>(self);
  s->reallocate();  // (links it marks dirty are taken in its own rounds)
  s->reallocation_pending_ = false;
}

void BandwidthSharing::reallocate() {
  // Each round recomputes the components of the dirty tight links; a round that finds a loose
  // link over its c/n makes it tight and goes again. touched: every link and spanning flow a
  // round covered.
  std::vector<int>& touched_links = comp_links_;
  std::vector<int>& touched_flows = comp_flows_;
  touched_links.clear();
  touched_flows.clear();
  ++epoch_;
  bool any = false;
  while (!dirty_.empty() || !checks_.empty()) {
    const std::size_t links_from = touched_links.size();
    const std::size_t flows_from = touched_flows.size();
    // 1. The components: tight links connected through flows that cross several of them.
    ++epoch_;
    std::vector<std::size_t>& ends = comp_ends_;  // where each component's links end
    ends.clear();
    for (int d : dirty_) {
      LinkState& D = link(d);
      D.dirty = false;
      if (!D.tight || D.seen == epoch_) continue;
      D.seen = epoch_;
      const std::size_t first = touched_links.size();
      touched_links.push_back(d);
      for (std::size_t i = first; i < touched_links.size(); ++i) {
        const LinkState& L = link(touched_links[i]);
        for (const Member& m : L.members) {
          FlowState& g = flow(m.flow);
          if (g.seen == epoch_) continue;
          g.seen = epoch_;
          touched_flows.push_back(m.flow);
          for (int t : g.links()) {
            LinkState& T = link(t);
            if (T.tight && T.seen != epoch_) {
              T.seen = epoch_;
              touched_links.push_back(t);
            }
          }
        }
      }
      ends.push_back(touched_links.size());
    }
    dirty_.clear();
    // 2. Spanning flows' progress at their old rates.
    for (std::size_t i = flows_from; i < touched_flows.size(); ++i) {
      FlowState& g = flow(touched_flows[i]);
      g.remaining = std::max(0.0, g.remaining - g.rate * (now_ - g.last_update).seconds());
      g.last_update = now_;
      g.fixed = false;
    }
    // 3. Progressive filling, component by component; then the new levels and rates.
    std::size_t begin = links_from;
    for (std::size_t end : ends) {
      fill(begin, end);
      begin = end;
    }
    for (std::size_t i = links_from; i < touched_links.size(); ++i) {
      LinkState& L = link(touched_links[i]);
      if (L.grouped > 0 || L.members.size() > 0) any = true;
      if (!L.picked || L.new_level == L.level) continue;
      L.clock = clock_now(L);
      L.anchor = now_;
      L.level = L.new_level;
    }
    for (std::size_t i = flows_from; i < touched_flows.size(); ++i) {
      FlowState& g = flow(touched_flows[i]);
      g.rate = g.new_rate;
    }
    // 4. Loose links over their c/n become tight (and dirty: another round).
    tighten(links_from, flows_from);
    for (int l : checks_) {
      LinkState& L = link(l);
      L.check = false;
      if (!L.tight && L.flows > 0) check_loose(l);
    }
    checks_.clear();
  }
  if (any) ++reallocations_;
  // 5. Tight links that limit none of their flows, each flow getting at most half its c/n,
  // become loose; then the events.
  for (int l : touched_links) {
    LinkState& L = link(l);
    if (!L.tight || L.grouped > 0 || L.flows > kMaxLoose) continue;
    const double half = share_of(L) / 2;
    bool limits = !(half > 0);  // (a link that is down holds its flows)
    for (const Member& m : L.members) limits = limits || flow(m.flow).rate > half;
    if (!limits) make_loose(l);
  }
  for (int l : touched_links) schedule_group(l);
  for (int g : touched_flows) {
    if (flow(g).kind == Kind::kSpanning) schedule_spanning(g);
  }
}

void BandwidthSharing::fill(std::size_t begin, std::size_t end) {
  const int* first = comp_links_.data() + begin;
  const int* last = comp_links_.data() + end;
  for (const int* it = first; it != last; ++it) {
    LinkState& L = link(*it);
    L.left = L.capacity;
    L.unfixed = L.grouped + static_cast<int>(L.members.size());
    L.picked = false;
  }
  for (;;) {
    double best = kInf;
    int best_link = -1;
    for (const int* it = first; it != last; ++it) {
      const LinkState& L = link(*it);
      if (L.unfixed == 0) continue;
      const double share = std::max(0.0, L.left) / L.unfixed;
      if (share < best) {
        best = share;
        best_link = *it;
      }
    }
    if (best_link < 0) return;
    LinkState& B = link(best_link);
    B.picked = true;
    B.new_level = best;
    for (const Member& m : B.members) {
      FlowState& g = flow(m.flow);
      if (g.fixed) continue;
      g.fixed = true;
      g.new_rate = best;
      for (int t : g.links()) {
        LinkState& T = link(t);
        if (!T.tight) continue;
        T.left -= best;
        --T.unfixed;
      }
    }
    B.unfixed = 0;  // (its group too)
  }
}

bool BandwidthSharing::tighten(std::size_t links_from, std::size_t flows_from) {
  to_tighten_.clear();
  for (std::size_t i = links_from; i < comp_links_.size(); ++i) {
    LinkState& L = link(comp_links_[i]);
    if (L.grouped == 0 || !(L.level > L.loose_bound)) continue;
    // The bound may be stale (flows have left, loose links have lost flows): work it out.
    double bound = kInf;
    for (const Entry& e : L.heap) {
      if (!entry_live(e)) continue;
      for (int t : flow(e.flow).links()) {
        const LinkState& T = link(t);
        if (!T.tight) bound = std::min(bound, share_of(T));
      }
    }
    L.loose_bound = bound;
    if (!(L.level > bound)) continue;
    for (const Entry& e : L.heap) {
      if (!entry_live(e)) continue;
      for (int t : flow(e.flow).links()) {
        const LinkState& T = link(t);
        if (!T.tight && share_of(T) < L.level) to_tighten_.push_back(t);
      }
    }
  }
  for (std::size_t i = flows_from; i < comp_flows_.size(); ++i) {
    const FlowState& g = flow(comp_flows_[i]);
    for (int t : g.links()) {
      const LinkState& T = link(t);
      if (!T.tight && g.rate > share_of(T)) to_tighten_.push_back(t);
    }
  }
  bool made = false;
  for (int t : to_tighten_) {
    if (link(t).tight) continue;
    make_tight(t);
    made = true;
  }
  return made;
}

SimTime BandwidthSharing::finish_of(const LinkState& l, const Entry& e) const {
  const SimTime at = l.anchor + SimTime::from_seconds((e.mark - l.clock) / l.level);
  return std::max(at, now_);
}

namespace {

// Heap order: the smallest mark first, then the earliest made.
struct Later {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.mark > b.mark || (a.mark == b.mark && a.seq > b.seq);
  }
};

}  // namespace

void BandwidthSharing::push_entry(LinkState& l, const Entry& e) {
  l.heap.push_back(e);
  std::push_heap(l.heap.begin(), l.heap.end(), Later{});
}

void BandwidthSharing::pop_entry(LinkState& l) {
  std::pop_heap(l.heap.begin(), l.heap.end(), Later{});
  l.heap.pop_back();
}

void BandwidthSharing::schedule_group(int l) {
  LinkState& L = link(l);
  if (!L.tight || L.grouped == 0 || !(L.level > 0)) {
    if (L.event_at != SimTime::from_ns(-1)) {
      ++L.event_version;
      L.event_at = SimTime::from_ns(-1);
    }
    return;
  }
  while (!entry_live(L.heap.front())) pop_entry(L);
  const SimTime at = finish_of(L, L.heap.front());
  if (at == L.event_at) return;  // its pending event is still right
  ++L.event_version;
  L.event_at = at;
  queue_.schedule(at, Event{&BandwidthSharing::group_event, this,
                            (static_cast<std::uint64_t>(l) << 32) | L.event_version});
}

void BandwidthSharing::schedule_spanning(int id) {
  FlowState& f = flow(id);
  if (!(f.rate > 0)) {  // a link on its path is down: no end in sight
    if (f.finish != SimTime::from_ns(-1)) {
      ++f.version;
      f.finish = SimTime::from_ns(-1);
    }
    return;
  }
  const SimTime finish = now_ + SimTime::from_seconds(f.remaining / f.rate);
  if (finish == f.finish) return;
  ++f.version;
  f.finish = finish;
  queue_.schedule(finish, Event{&BandwidthSharing::flow_event, this,
                                (static_cast<std::uint64_t>(id) << 32) | f.version});
}

void BandwidthSharing::group_event(void* self, std::uint64_t arg) {
  auto* s = static_cast<BandwidthSharing*>(self);
  const int l = static_cast<int>(arg >> 32);
  LinkState& L = s->link(l);
  if (L.event_version != static_cast<std::uint32_t>(arg)) return;  // superseded
  L.event_at = SimTime::from_ns(-1);
  // Every flow of the group whose finish rounds to now ends now.
  while (!L.heap.empty()) {
    const Entry e = L.heap.front();
    if (!s->entry_live(e)) {
      s->pop_entry(L);
      continue;
    }
    if (s->finish_of(L, e) > s->now_) break;
    s->pop_entry(L);
    s->end_now(e.flow);
  }
}

void BandwidthSharing::flow_event(void* self, std::uint64_t arg) {
  auto* s = static_cast<BandwidthSharing*>(self);
  const int id = static_cast<int>(arg >> 32);
  const FlowState& f = s->flow(id);
  if (f.kind != Kind::kSpanning || f.version != static_cast<std::uint32_t>(arg)) return;
  s->end_now(id);
}

void BandwidthSharing::end_now(int id) {
  ending_.push_back({flow(id).seq, id});
  remove(id);
  if (ends_pending_) return;
  ends_pending_ = true;
  queue_.schedule(now_, Event{&BandwidthSharing::ends_event, this, 0});
}

void BandwidthSharing::ends_event(void* self, std::uint64_t) {
  auto* s = static_cast<BandwidthSharing*>(self);
  s->ends_pending_ = false;
  // Transfers that ended in this nanosecond are handed on in the order they began (finish
  // marks and events that tie to the nanosecond may differ in their last bits).
  std::vector<std::pair<std::uint64_t, int>> ending;
  ending.swap(s->ending_);
  std::sort(ending.begin(), ending.end());
  for (const auto& [seq, id] : ending) s->end_(s->end_context_, id);
  ending.clear();
  if (s->ending_.empty()) s->ending_.swap(ending);  // (keeps its storage)
}

void BandwidthSharing::set_capacity(int l, double bytes_per_s) {
  LinkState& L = link(l);
  L.capacity = bytes_per_s;
  if (L.tight) {
    mark_dirty(l);
  } else if (L.flows > 0) {
    check_later(l);
  }
}

std::vector<double> BandwidthSharing::link_rates(int l) const {
  const LinkState& L = links_[static_cast<std::size_t>(l)];
  std::vector<double> rates;
  for (const Member& m : L.members)
    rates.push_back(rate_of(flows_[static_cast<std::size_t>(m.flow)]));
  if (L.tight) rates.insert(rates.end(), static_cast<std::size_t>(L.grouped), L.level);
  return rates;
}

}  // namespace dtsim
