#include "sim/network.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace dtsim {

void Network::LinkList::assign(const std::vector<int>& links) {
  count = static_cast<int>(links.size());
  if (count <= 4) {
    for (int i = 0; i < count; ++i) inline_links[i] = links[static_cast<std::size_t>(i)];
  } else {
    spill = links;
  }
}

Network::Network(Topology topology, EventQueue& queue, const SimTime& now)
    : topology_(std::move(topology)), queue_(queue), now_(now) {
  links_.resize(topology_.num_links());
  for (std::size_t i = 0; i < links_.size(); ++i) {
    links_[i].capacity = topology_.link(static_cast<int>(i)).bandwidth;
  }
}

int Network::allocate_flow() {
  if (!free_flows_.empty()) {
    const int id = free_flows_.back();
    free_flows_.pop_back();
    return id;
  }
  flows_.emplace_back();
  return static_cast<int>(flows_.size() - 1);
}

void Network::send(Message m, std::uint64_t token) {
  ++flows_started_;
  const int id = allocate_flow();
  Flow& f = flows_[static_cast<std::size_t>(id)];
  route_.clear();
  if (m.src != m.dst) topology_.route(m.src, m.dst, route_);
  f.links.assign(route_);
  f.latency = SimTime();
  for (int l : f.links) f.latency += topology_.link(l).latency;
  f.remaining = static_cast<double>(m.bytes);
  f.rate = 0;
  f.last_update = now_;
  f.sent = now_;
  f.finish = SimTime::from_ns(-1);  // no finish event scheduled yet
  f.token = token;
  f.msg = std::move(m);
  ++f.version;
  ++active_;
  if (f.links.count == 0 || f.msg.bytes == 0) {
    // Nothing to transfer: the message only pays its path latency.
    f.transferring = false;
    f.finish = now_;
    finish_transfer(id);
    return;
  }
  f.transferring = true;
  f.lazy = false;
  bool alone = true;
  double rate = std::numeric_limits<double>::infinity();
  for (int l : f.links) settle_lazy(l);
  Flow& g = flows_[static_cast<std::size_t>(id)];
  for (int l : g.links) {
    LinkState& ls = links_[static_cast<std::size_t>(l)];
    ls.flows.push_back(id);
    alone = alone && ls.flows.size() == 1;
    rate = std::min(rate, ls.capacity);
  }
  if (alone) {
    // The common case in structured collectives: nobody shares its links, so nothing else
    // changes and its rate is its slowest link.
    g.rate = rate;
    if (g.token == 0) {
      g.lazy = true;
      g.finish =
          now_ + SimTime::from_ns(static_cast<std::int64_t>(g.remaining / g.rate * 1e9 + 0.5));
      ++g.version;
      schedule_delivery(id, g.finish + g.latency);
    } else {
      schedule_finish(id, g);  // a blocking send must hear when its transfer ends
    }
    return;
  }
  reallocate(g.links.begin(), g.links.end());
}

void Network::schedule_delivery(int id, SimTime at) {
  const Flow& f = flows_[static_cast<std::size_t>(id)];
  queue_.schedule(
      at, Event{&Network::deliver_event, this, (static_cast<std::uint64_t>(id) << 32) | f.version});
}

void Network::FlowList::push_back(int id) {
  if (count_ < kInline) {
    inline_[count_++] = id;
    return;
  }
  if (count_ == kInline) heap_.assign(inline_, inline_ + kInline);
  heap_.push_back(id);
  ++count_;
}

void Network::FlowList::remove(int id) {
  int* data = count_ <= kInline ? inline_ : heap_.data();
  int* it = std::find(data, data + count_, id);
  *it = data[count_ - 1];
  if (count_ <= kInline) {
    --count_;
    return;
  }
  heap_.pop_back();
  if (--count_ == kInline) std::copy(heap_.begin(), heap_.end(), inline_);
}

void Network::leave_links(int id) {
  Flow& f = flows_[static_cast<std::size_t>(id)];
  for (int l : f.links) links_[static_cast<std::size_t>(l)].flows.remove(id);
  f.transferring = false;
}

void Network::settle_lazy(int l) {
  auto& list = links_[static_cast<std::size_t>(l)].flows;
  for (std::size_t i = 0; i < list.size();) {
    const int fid = list[i];
    Flow& f = flows_[static_cast<std::size_t>(fid)];
    if (!f.lazy) {
      ++i;
      continue;
    }
    f.lazy = false;
    if (f.finish <= now_) {
      leave_links(fid);  // done transferring; its delivery event stands (removes list[i])
      continue;
    }
    // Still sending: from now on it shares, so it needs an ordinary transfer-end event.
    f.remaining = std::max(0.0, f.remaining - f.rate * (now_ - f.last_update).seconds());
    f.last_update = now_;
    f.finish = SimTime::from_ns(-1);
    ++f.version;  // supersedes its delivery event
    ++i;
  }
}

void Network::schedule_finish(int id, Flow& f) {
  if (!(f.rate > 0)) throw std::logic_error("network: a flow got no bandwidth (a link of 0 B/s?)");
  const SimTime finish = now_ + SimTime::from_seconds(f.remaining / f.rate);
  if (finish == f.finish) return;  // its pending event is still right
  ++f.version;
  f.finish = finish;
  queue_.schedule(finish, Event{&Network::flow_event, this,
                                (static_cast<std::uint64_t>(id) << 32) | f.version});
}

void Network::flow_event(void* self, std::uint64_t arg) {
  auto* net = static_cast<Network*>(self);
  const int id = static_cast<int>(arg >> 32);
  const auto version = static_cast<std::uint32_t>(arg);
  Flow& f = net->flows_[static_cast<std::size_t>(id)];
  if (!f.transferring || f.lazy || f.version != version) return;  // superseded
  net->finish_transfer(id);
}

void Network::finish_transfer(int id) {
  Flow& f = flows_[static_cast<std::size_t>(id)];
  if (f.transferring) {
    f.remaining = 0;
    leave_links(id);
    bool shared = false;
    for (int l : f.links) shared = shared || !links_[static_cast<std::size_t>(l)].flows.empty();
    // Only flows that shared a link with this one can speed up.
    if (shared) reallocate(f.links.begin(), f.links.end());
  }
  const Flow& done = flows_[static_cast<std::size_t>(id)];
  if (sent_ && done.token != 0) sent_(done.token);
  schedule_delivery(id, now_ + flows_[static_cast<std::size_t>(id)].latency);
}

void Network::deliver_event(void* self, std::uint64_t arg) {
  auto* net = static_cast<Network*>(self);
  const int id = static_cast<int>(arg >> 32);
  Flow& f = net->flows_[static_cast<std::size_t>(id)];
  if (f.version != static_cast<std::uint32_t>(arg)) return;  // it joined others: re-timed
  if (f.lazy) {
    f.lazy = false;
    net->leave_links(id);
  }
  Message m = std::move(f.msg);
  const SimTime sent = f.sent;
  f.msg = Message{};
  net->free_flows_.push_back(id);
  --net->active_;
  net->deliver_(std::move(m), sent);
}

void Network::reallocate(const int* seed_begin, const int* seed_end) {
  // 1. The connected component: links and flows reachable through shared links.
  ++epoch_;
  comp_flows_.clear();
  comp_links_.clear();
  for (const int* it = seed_begin; it != seed_end; ++it) {
    const int l = *it;
    LinkState& ls = links_[static_cast<std::size_t>(l)];
    if (ls.mark != epoch_) {
      ls.mark = epoch_;
      settle_lazy(l);
      comp_links_.push_back(l);
    }
  }
  for (std::size_t li = 0; li < comp_links_.size(); ++li) {
    for (int fid : links_[static_cast<std::size_t>(comp_links_[li])].flows) {
      Flow& f = flows_[static_cast<std::size_t>(fid)];
      if (f.mark == epoch_) continue;
      f.mark = epoch_;
      comp_flows_.push_back(fid);
      for (int l : f.links) {
        LinkState& ls = links_[static_cast<std::size_t>(l)];
        if (ls.mark != epoch_) {
          ls.mark = epoch_;
          settle_lazy(l);
          comp_links_.push_back(l);
        }
      }
    }
  }
  if (comp_flows_.empty()) return;

  // 2. Settle each flow's progress at its old rate.
  for (int fid : comp_flows_) {
    Flow& f = flows_[static_cast<std::size_t>(fid)];
    f.remaining = std::max(0.0, f.remaining - f.rate * (now_ - f.last_update).seconds());
    f.last_update = now_;
    f.fixed = false;
  }

  // 3. Progressive filling: repeatedly saturate the link with the smallest fair share.
  for (int l : comp_links_) {
    LinkState& ls = links_[static_cast<std::size_t>(l)];
    ls.left = ls.capacity;
    ls.unfixed = static_cast<int>(ls.flows.size());
  }
  std::size_t unfixed = comp_flows_.size();
  while (unfixed > 0) {
    double best = std::numeric_limits<double>::infinity();
    int best_link = -1;
    for (int l : comp_links_) {
      const LinkState& ls = links_[static_cast<std::size_t>(l)];
      if (ls.unfixed == 0) continue;
      const double share = std::max(0.0, ls.left) / ls.unfixed;
      if (share < best) {
        best = share;
        best_link = l;
      }
    }
    for (int fid : links_[static_cast<std::size_t>(best_link)].flows) {
      Flow& f = flows_[static_cast<std::size_t>(fid)];
      if (f.fixed) continue;
      f.fixed = true;
      --unfixed;
      f.rate = best;
      for (int l : f.links) {
        LinkState& ls = links_[static_cast<std::size_t>(l)];
        ls.left -= best;
        --ls.unfixed;
      }
    }
  }

  // 4. New finish times; a changed one supersedes the flow's pending event.
  for (int fid : comp_flows_) schedule_finish(fid, flows_[static_cast<std::size_t>(fid)]);
}

std::vector<double> Network::link_rates(int link) const {
  std::vector<double> rates;
  for (int fid : links_[static_cast<std::size_t>(link)].flows) {
    rates.push_back(flows_[static_cast<std::size_t>(fid)].rate);
  }
  return rates;
}

}  // namespace dtsim
