#include "sim/net/network.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/rng.hpp"

namespace dtsim {

namespace {

std::vector<double> capacities(const Topology& topology) {
  std::vector<double> c(topology.num_links());
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = topology.link(static_cast<int>(i)).bandwidth;
  return c;
}

}  // namespace

Network::Network(Topology topology, EventQueue& queue, const SimTime& now)
    : topology_(std::move(topology)),
      queue_(queue),
      now_(now),
      sharing_(queue, now, capacities(topology_)) {
  sharing_.on_end(&Network::sharing_end, this);
  links_.resize(topology_.num_links());
  for (std::size_t i = 0; i < links_.size(); ++i) {
    links_[i].capacity = topology_.link(static_cast<int>(i)).bandwidth;
    links_[i].latency = topology_.link(static_cast<int>(i)).latency;
    // (Inputs are checked when scenarios are read; this guards what lazy flows rely on.)
    if (links_[i].latency < SimTime()) throw std::logic_error("network: a negative latency");
  }
}

int Network::new_flow() {
  flows_.emplace_back();
  return static_cast<int>(flows_.size() - 1);
}

void Network::start(int id, std::uint64_t token) {
  ++flows_started_;
  ++active_;
  Flow& f = flows_[static_cast<std::size_t>(id)];
  const Message& m = f.msg;
  LinkList& links = f.links;
  links.count = 0;
  if (m.src != m.dst) {
    links.count = topology_.short_route(m.src, m.dst, links.inline_links);
    if (links.count < 0) {
      route_.clear();
      topology_.route(m.src, m.dst, route_);
      links.spill = route_;
      links.count = static_cast<int>(route_.size());
    }
  }
  f.sent = now_;
  f.token = token;
  f.next_in_pair = -1;
  f.waiting = false;
  if (links.count > 0) {
    // Behind an earlier message between the same two nodes that is still transferring, it
    // waits its turn. (Nothing to look up while the pair has nothing waiting and the first
    // link, which only this sender's messages use, is free: the common case.)
    const LinkState& first = links_[static_cast<std::size_t>(*links.begin())];
    if (!pair_tail_.empty() || first.ordinary > 0 || lazy_live(first)) {
      const int pred = pair_predecessor(m, first);
      if (pred >= 0) {
        f.waiting = true;
        f.transferring = false;
        f.lazy = false;
        ++f.version;
        pair_tail_[pair_key(m)] = id;
        Flow& p = flows_[static_cast<std::size_t>(pred)];
        p.next_in_pair = id;
        if (p.lazy && p.transferring) schedule_pair_start(id, p.finish);
        return;
      }
    }
  }
  begin_transfer(id);
}

int Network::pair_predecessor(const Message& m, const LinkState& first) {
  if (!pair_tail_.empty()) {
    const auto it = pair_tail_.find(pair_key(m));
    if (it != pair_tail_.end()) {
      const Flow& p = flows_[static_cast<std::size_t>(it->second)];
      // (The entry may be stale: a tail that ended lazily, its id perhaps reused since.)
      if (p.msg.src == m.src && p.msg.dst == m.dst && in_flight(p)) return it->second;
      pair_tail_.erase(it);
    }
  }
  if (lazy_live(first)) {
    const Flow& p = flows_[static_cast<std::size_t>(first.lazy_flow)];
    if (p.msg.src == m.src && p.msg.dst == m.dst) return first.lazy_flow;
  }
  return -1;
}

void Network::pair_start_event(void* self, std::uint64_t arg) {
  auto* net = static_cast<Network*>(self);
  const int id = static_cast<int>(arg >> 32);
  const Flow& f = net->flows_[static_cast<std::size_t>(id)];
  // Superseded when its predecessor stopped being lazy: that one starts it when it ends.
  if (!f.waiting || f.version != static_cast<std::uint32_t>(arg)) return;
  net->begin_transfer(id);
}

void Network::begin_transfer(int id) {
  Flow& f = flows_[static_cast<std::size_t>(id)];
  const Message& m = f.msg;
  const LinkList& links = f.links;
  const std::uint64_t token = f.token;
  f.waiting = false;
  SimTime latency;
  bool alone = true;  // no other flow transfers over its links
  double rate = std::numeric_limits<double>::infinity();
  for (int l : links) {
    const LinkState& ls = links_[static_cast<std::size_t>(l)];
    latency += ls.latency;
    alone = alone && ls.ordinary == 0 && !lazy_live(ls);
    rate = std::min(rate, ls.capacity);
  }
  f.latency = latency;
  ++f.version;
  const auto bytes = static_cast<double>(m.bytes);
  f.lost = false;
  if (lossy_links_ > 0 && bytes > 0 && links.count > 0) f.lost = draw_loss(f, f.retry_after);
  // (A rate of 0: a link is down; the flow waits in its links' lists for it to come back.)
  if (alone && token == 0 && bytes > 0 && links.count > 0 && rate > 0 && !f.lost) {
    // The common case in structured collectives: nobody shares its links, so nothing else
    // changes, its rate is its slowest link's, and its delivery is its only event. (Its
    // remaining bytes are worked out if it ever has to share: see make_ordinary.)
    f.transferring = true;
    f.lazy = true;
    f.rate = rate;
    f.last_update = now_;  // when its transfer began (after f.sent if it waited its turn)
    if (bytes != last_bytes_ || rate != last_rate_) {
      last_bytes_ = bytes;
      last_rate_ = rate;
      last_transfer_ = SimTime::from_ns(static_cast<std::int64_t>(bytes / rate * 1e9 + 0.5));
    }
    f.finish = now_ + last_transfer_;
    for (int l : links) {
      LinkState& ls = links_[static_cast<std::size_t>(l)];
      ls.lazy_flow = id;
      ls.lazy_until = f.finish;
    }
    schedule_delivery(id, f.finish + latency);
    if (f.next_in_pair >= 0) schedule_pair_start(f.next_in_pair, f.finish);
    return;
  }
  f.lazy = false;
  if (links.count == 0 || bytes == 0) {
    // Nothing to transfer: the message only pays its path latency.
    f.transferring = false;
    f.finish = now_;
    finish_transfer(id);
    return;
  }
  f.transferring = true;
  note_pair_tail(id);
  for (int l : links) {
    const LinkState& ls = links_[static_cast<std::size_t>(l)];
    if (lazy_live(ls)) make_ordinary(ls.lazy_flow);
  }
  // (make_ordinary does not move flows_, so f is still valid. Alone on its path, a blocking
  // send gets its slowest link's rate at once, and hears when its transfer ends.)
  share(id, bytes);
}

void Network::note_pair_tail(int id) {
  // Its pair's messages sent after it must find it (those before it have been sent), unless
  // one of them already waits behind it.
  const Message& m = flows_[static_cast<std::size_t>(id)].msg;
  const auto [it, added] = pair_tail_.try_emplace(pair_key(m), id);
  if (!added) {
    const Flow& tail = flows_[static_cast<std::size_t>(it->second)];
    if (tail.msg.src != m.src || tail.msg.dst != m.dst || !in_flight(tail)) it->second = id;
  }
}

void Network::share(int id, double bytes) {
  const LinkList& links = flows_[static_cast<std::size_t>(id)].links;
  for (int l : links) ++links_[static_cast<std::size_t>(l)].ordinary;
  sharing_.add(id, links.begin(), links.end(), bytes);
}

void Network::make_ordinary(int id) {
  Flow& f = flows_[static_cast<std::size_t>(id)];
  f.lazy = false;
  const double remaining =
      std::max(0.0, static_cast<double>(f.msg.bytes) - f.rate * (now_ - f.last_update).seconds());
  f.finish = SimTime::from_ns(-1);
  ++f.version;  // supersedes its delivery event
  // Its successor on the pair now starts when its transfer really ends (finish_transfer).
  if (f.next_in_pair >= 0) ++flows_[static_cast<std::size_t>(f.next_in_pair)].version;
  for (int l : f.links) {
    LinkState& ls = links_[static_cast<std::size_t>(l)];
    if (ls.lazy_flow == id) {
      ls.lazy_flow = -1;
      ls.lazy_until = SimTime::from_ns(-1);
    }
  }
  // (Its links no longer name it: its pair's next message must find it by its pair.)
  note_pair_tail(id);
  share(id, remaining);
}

void Network::finish_transfer(int id) {
  Flow& f = flows_[static_cast<std::size_t>(id)];
  if (f.transferring) {  // (the sharing model has let it go)
    f.transferring = false;
    for (int l : f.links) --links_[static_cast<std::size_t>(l)].ordinary;
  }
  if (flows_[static_cast<std::size_t>(id)].lost) {
    // Lost on the way: sent again after the timeout, still ahead of its pair's later messages.
    Flow& lost = flows_[static_cast<std::size_t>(id)];
    lost.lost = false;
    lost.waiting = true;
    ++retransmissions_;
    retransmitted_bytes_ += lost.msg.bytes;
    ++lost.version;
    pair_tail_.try_emplace(pair_key(lost.msg), id);  // (its pair's next message finds it)
    schedule_pair_start(id, now_ + lost.retry_after);
    return;
  }
  const Flow& done = flows_[static_cast<std::size_t>(id)];
  if (sent_ != nullptr && done.token != 0) sent_(sent_context_, done.token);
  Flow& ended = flows_[static_cast<std::size_t>(id)];  // (sent_ may have grown flows_)
  schedule_delivery(id, now_ + ended.latency);
  const int next = ended.next_in_pair;
  ended.next_in_pair = -1;
  if (next >= 0) {
    begin_transfer(next);
  } else if (!pair_tail_.empty()) {
    const auto it = pair_tail_.find(pair_key(ended.msg));
    if (it != pair_tail_.end() && it->second == id) pair_tail_.erase(it);
  }
}

void Network::deliver_event(void* self, std::uint64_t arg) {
  auto* net = static_cast<Network*>(self);
  const int id = static_cast<int>(arg >> 32);
  Flow& f = net->flows_[static_cast<std::size_t>(id)];
  if (f.version != static_cast<std::uint32_t>(arg)) return;  // it joined others: re-timed
  // A lazy flow's links still name it, but only until its transfer end, which has passed
  // (latencies are >= 0), so they will not mistake the next flow given this id for it.
  f.lazy = false;
  f.transferring = false;
  f.next_in_pair = -1;  // (a lazy flow's successor was started by its own event)
  net->free_flows_.push_back(id);
  --net->active_;
  net->deliver_(net->deliver_context_, f.msg, f.sent);
}

void Network::set_capacity(int link, double bytes_per_s) {
  LinkState& ls = links_[static_cast<std::size_t>(link)];
  if (lazy_live(ls)) make_ordinary(ls.lazy_flow);
  ls.capacity = bytes_per_s;
  sharing_.set_capacity(link, bytes_per_s);
  last_rate_ = -1;  // (the cached transfer time may have used the old capacity)
}

void Network::set_loss(int link, double probability, SimTime timeout, std::uint64_t seed) {
  if (loss_.empty()) loss_.resize(links_.size());
  LinkLoss& l = loss_[static_cast<std::size_t>(link)];
  lossy_links_ += (probability > 0 ? 1 : 0) - (l.probability > 0 ? 1 : 0);
  l.probability = probability;
  l.timeout = timeout;
  loss_seed_ = seed;
}

bool Network::draw_loss(const Flow& f, SimTime& timeout) {
  timeout = SimTime();
  double kept = 1;  // the chance that every link of its path carries it
  for (int l : f.links) {
    const LinkLoss& ll = loss_[static_cast<std::size_t>(l)];
    if (ll.probability <= 0) continue;
    kept *= 1 - ll.probability;
    timeout = std::max(timeout, ll.timeout);
  }
  if (kept >= 1) return false;
  CounterRng rng({loss_seed_, RngPurpose::kLoss, 0, loss_draws_++});
  if (rng.uniform() < kept) return false;
  for (int l : f.links) {
    LinkLoss& ll = loss_[static_cast<std::size_t>(l)];
    if (ll.probability <= 0) continue;
    ++ll.lost;
    ll.lost_bytes += f.msg.bytes;
    break;
  }
  return true;
}

std::size_t Network::flows_on(int link) const {
  const LinkState& ls = links_[static_cast<std::size_t>(link)];
  return sharing_.flows_on(link) + (lazy_live(ls) ? 1 : 0);
}

std::vector<double> Network::link_rates(int link) const {
  std::vector<double> rates = sharing_.link_rates(link);
  const LinkState& ls = links_[static_cast<std::size_t>(link)];
  if (lazy_live(ls)) rates.push_back(flows_[static_cast<std::size_t>(ls.lazy_flow)].rate);
  return rates;
}

}  // namespace dtsim
