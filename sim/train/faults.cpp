#include "sim/train/faults.hpp"

#include <limits>

namespace dtsim {

FaultSchedule::FaultSchedule(const Scenario& s, Simulation& sim, std::function<void(int)> lost)
    : s_(s), sim_(sim), lost_(std::move(lost)) {
  const auto nodes = static_cast<std::size_t>(sim.nodes());
  slow_.assign(nodes, 1.0);
  slow_fault_.assign(nodes, -1);
  stop_.assign(nodes, -1);
  loss_base_.assign(s.faults.size(), 0);
  loss_bytes_base_.assign(s.faults.size(), 0);
  ended_.assign(s.faults.size(), false);
  for (std::size_t i = 0; i < s.faults.size(); ++i) {
    const FaultConfig& f = s.faults[i];
    FaultRecord r;
    r.kind = to_string(f.kind);
    r.node = f.node;
    r.what = describe_fault(f);
    r.at_s = f.at.seconds();
    if (f.duration) r.end_s = (f.at + *f.duration).seconds();
    records_.push_back(r);
    if (f.kind == FaultKind::kCrash || f.kind == FaultKind::kRestart) {
      stop_[static_cast<std::size_t>(f.node)] = static_cast<int>(i);
    }
  }
}

void FaultSchedule::start() {
  for (std::size_t i = 0; i < s_.faults.size(); ++i) {
    const FaultConfig& f = s_.faults[i];
    switch (f.kind) {
      case FaultKind::kByzantine:
        break;  // the gradient's (RunCore::gradient)
      case FaultKind::kCrash:
      case FaultKind::kRestart:
        sim_.schedule_background(f.at + s_.strategy.failure_timeout,
                                 Event{&FaultSchedule::lost_event, this, i});
        break;
      case FaultKind::kSlow:
      case FaultKind::kLinkDown:
      case FaultKind::kLoss:
        sim_.schedule_background(f.at, Event{&FaultSchedule::begin_event, this, i});
        if (f.duration)
          sim_.schedule_background(f.at + *f.duration, Event{&FaultSchedule::end_event, this, i});
        break;
    }
  }
}

std::vector<int> FaultSchedule::links_of(const FaultConfig& f) const {
  return sim_.network().topology().node_links(f.node, f.links != FaultLinks::kDown,
                                              f.links != FaultLinks::kUp);
}

void FaultSchedule::begin_event(void* self, std::uint64_t index) {
  auto* fs = static_cast<FaultSchedule*>(self);
  const FaultConfig& f = fs->s_.faults[index];
  Network& net = fs->sim_.network();
  const auto node = static_cast<std::size_t>(f.node);
  switch (f.kind) {
    case FaultKind::kSlow:
      fs->slow_[node] = f.factor;
      fs->slow_fault_[node] = static_cast<int>(index);
      break;
    case FaultKind::kLinkDown:
      for (int l : fs->links_of(f)) net.set_capacity(l, 0);
      break;
    case FaultKind::kLoss:
      for (int l : fs->links_of(f)) {
        fs->loss_base_[index] += net.lost_on(l);
        fs->loss_bytes_base_[index] += net.lost_bytes_on(l);
        net.set_loss(l, f.probability, f.timeout, fs->s_.seed);
      }
      break;
    default:
      break;
  }
}

void FaultSchedule::end_event(void* self, std::uint64_t index) {
  auto* fs = static_cast<FaultSchedule*>(self);
  const FaultConfig& f = fs->s_.faults[index];
  FaultRecord& r = fs->records_[index];
  Network& net = fs->sim_.network();
  const auto node = static_cast<std::size_t>(f.node);
  fs->ended_[index] = true;
  switch (f.kind) {
    case FaultKind::kSlow:
      if (fs->slow_fault_[node] == static_cast<int>(index)) {
        fs->slow_[node] = 1.0;
        fs->slow_fault_[node] = -1;
      }
      break;
    case FaultKind::kLinkDown: {
      const Topology& topo = net.topology();
      for (int l : fs->links_of(f)) {
        r.paused_transfers += net.flows_on(l);
        net.set_capacity(l, topo.link(l).bandwidth);
      }
      if (r.paused_transfers > 0) r.cost_s = f.duration->seconds();
      break;
    }
    case FaultKind::kLoss:
      for (int l : fs->links_of(f)) {
        r.retransmissions += net.lost_on(l);
        r.retransmitted_bytes += net.lost_bytes_on(l);
        net.set_loss(l, 0, f.timeout, fs->s_.seed);
      }
      r.retransmissions -= fs->loss_base_[index];
      r.retransmitted_bytes -= fs->loss_bytes_base_[index];
      r.cost_s = static_cast<double>(r.retransmissions) * f.timeout.seconds();
      break;
    default:
      break;
  }
}

void FaultSchedule::lost_event(void* self, std::uint64_t index) {
  auto* fs = static_cast<FaultSchedule*>(self);
  const FaultConfig& f = fs->s_.faults[index];
  fs->records_[index].detected_s = fs->sim_.now().seconds();
  if (f.node < fs->s_.cluster.workers) fs->lost_(f.node);
}

double FaultSchedule::slow_factor(int node, SimTime base) {
  const auto n = static_cast<std::size_t>(node);
  if (slow_fault_.empty() || slow_fault_[n] < 0) return 1.0;
  records_[static_cast<std::size_t>(slow_fault_[n])].cost_s += base.seconds() * (slow_[n] - 1);
  return slow_[n];
}

const FaultConfig* FaultSchedule::stop_of(int w) const {
  const int i = stop_[static_cast<std::size_t>(w)];
  return i < 0 ? nullptr : &s_.faults[static_cast<std::size_t>(i)];
}

bool FaultSchedule::down(int w) const {
  const FaultConfig* f = stop_of(w);
  return f != nullptr && sim_.now() >= f->at && sim_.now() < back_at(w);
}

SimTime FaultSchedule::back_at(int w) const {
  const FaultConfig* f = stop_of(w);
  if (f == nullptr) return SimTime();
  if (f->kind == FaultKind::kRestart) return f->at + *f->duration;
  return SimTime::from_ns(std::numeric_limits<std::int64_t>::max());
}

FaultRecord& FaultSchedule::record_of_stop(int w) {
  return records_[static_cast<std::size_t>(stop_[static_cast<std::size_t>(w)])];
}

void FaultSchedule::lost_gradient(int w, SimTime compute) {
  FaultRecord& r = record_of_stop(w);
  ++r.lost_gradients;
  r.lost_compute_s += compute.seconds();
}

void FaultSchedule::stalled(int w, SimTime t) { record_of_stop(w).cost_s += t.seconds(); }

void FaultSchedule::rejoined(int w, SimTime at) { record_of_stop(w).rejoined_s = at.seconds(); }

void FaultSchedule::shard_restored(int node, SimTime needed, SimTime at,
                                   std::uint64_t lost_updates) {
  FaultRecord& r = record_of_stop(node);
  r.rejoined_s = at.seconds();
  r.cost_s = (at - needed).seconds();
  r.lost_updates = lost_updates;
}

std::vector<FaultRecord> FaultSchedule::records() const {
  const Network& net = sim_.network();
  std::vector<FaultRecord> out = records_;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const FaultConfig& f = s_.faults[i];
    if (ended_[i] || f.kind != FaultKind::kLoss || sim_.now() < f.at) continue;
    // Lossy to the end of the run.
    FaultRecord& r = out[i];
    for (int l : links_of(f)) {
      r.retransmissions += net.lost_on(l);
      r.retransmitted_bytes += net.lost_bytes_on(l);
    }
    r.retransmissions -= loss_base_[i];
    r.retransmitted_bytes -= loss_bytes_base_[i];
    r.cost_s = static_cast<double>(r.retransmissions) * f.timeout.seconds();
  }
  return out;
}

}  // namespace dtsim
