#include "sim/des/simulation.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace dtsim {

Simulation::Simulation(Topology topology, int threads)
    : network_(std::move(topology), queue_, now_), jobs_(threads) {
  const auto n = static_cast<std::size_t>(network_.topology().nodes());
  nodes_.resize(n);
  network_.on_deliver(&Simulation::deliver, this);
  network_.on_sent(
      [](void* self, std::uint64_t token) {
        auto* sim = static_cast<Simulation*>(self);
        auto* awaiter = reinterpret_cast<SendAwaiter*>(token);
        sim->waited(awaiter->msg.src, awaiter->since);
        sim->schedule_resume(sim->now_, awaiter->handle);
      },
      this);
}

Simulation::~Simulation() {
  // Jobs still in flight (a run stopped by an exception) use the programs' frames and their
  // data: stop them before anything is destroyed.
  jobs_.cancel_and_wait();
}

void Simulation::resume_event(void* address, std::uint64_t) {
  std::coroutine_handle<>::from_address(address).resume();
}

void Simulation::schedule_resume(SimTime t, std::coroutine_handle<> h) {
  queue_.schedule(t, Event{&Simulation::resume_event, h.address(), 0});
}

void Simulation::spawn(Task<> program) {
  schedule_resume(now_, program.handle());
  programs_.push_back(std::move(program));
}

void Simulation::run() {
  while (!queue_.empty()) {
    if (queue_.size() == background_pending_ && programs_done()) break;
    const Event e = queue_.pop(now_);
    e.fn(e.target, e.arg);
  }
  for (const Task<>& p : programs_) {
    if (p.done() && p.handle().promise().error) std::rethrow_exception(p.handle().promise().error);
  }
  std::size_t waiting = 0;
  for (const Task<>& p : programs_) waiting += p.done() ? 0 : 1;
  if (waiting > 0) {
    throw std::runtime_error(fmt::format(
        "simulation deadlock: {} node programs still wait at t = {} s with nothing left to happen",
        waiting, now_.seconds()));
  }
}

void Simulation::schedule_background(SimTime t, Event e) {
  background_.push_back(e);
  ++background_pending_;
  queue_.schedule(t, Event{&Simulation::background_event, this, background_.size() - 1});
}

void Simulation::background_event(void* self, std::uint64_t index) {
  auto* sim = static_cast<Simulation*>(self);
  --sim->background_pending_;
  const Event e = sim->background_[index];
  e.fn(e.target, e.arg);
}

bool Simulation::programs_done() const {
  for (const Task<>& p : programs_) {
    if (!p.done()) return false;
  }
  return true;
}

void Simulation::ComputeAwaiter::await_suspend(std::coroutine_handle<> h) {
  handle = h;
  if (work && !small) job = sim.jobs_.start(std::move(work));
  sim.nodes_[static_cast<std::size_t>(node)].account.compute += cost;
  sim.queue_.schedule(sim.now_ + cost, Event{&ComputeAwaiter::done, this, 0});
}

void Simulation::ComputeAwaiter::done(void* self, std::uint64_t) {
  auto* a = static_cast<ComputeAwaiter*>(self);
  if (a->job) {
    a->sim.jobs_.join(*a->job);
  } else if (a->work) {
    a->work();
  }
  for (EventObserver* o : a->sim.observers_)
    o->on_compute(a->node, a->what, a->sim.now_ - a->cost, a->sim.now_);
  a->handle.resume();
}

void Simulation::wait_observed(int node, SimTime since) {
  for (EventObserver* o : observers_) o->on_wait(node, since, now_);
}

bool Simulation::take_pending(RecvAwaiter& w) {
  auto& pending = nodes_[static_cast<std::size_t>(w.node)].pending;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (w.matches(pending[i])) {
      w.result = std::move(pending[i]);
      if (i + 1 == pending.size()) {
        pending.pop_back();
      } else {
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
      }
      return true;
    }
  }
  return false;
}

void Simulation::release_rendezvous(NodeState& box, const RecvAwaiter& w) {
  for (std::size_t i = 0; i < box.ready_to_send.size(); ++i) {
    if (w.matches(box.ready_to_send[i].msg)) {
      NodeState::Ready r = std::move(box.ready_to_send[i]);
      box.ready_to_send.erase(box.ready_to_send.begin() + static_cast<std::ptrdiff_t>(i));
      network_.send(std::move(r.msg), r.token);
      return;
    }
  }
}

void Simulation::start_send(Message&& m, std::uint64_t token, bool rendezvous) {
  if (rendezvous) {
    NodeState& box = nodes_[static_cast<std::size_t>(m.dst)];
    bool posted = false;
    for (const RecvAwaiter* w = box.waiting_head; w != nullptr; w = w->next_waiting) {
      posted = posted || w->matches(m);
    }
    if (!posted) {
      box.ready_to_send.push_back({std::move(m), token});
      return;
    }
  }
  network_.send(std::move(m), token);
}

void Simulation::notify(Message&& m) { hand_over(std::move(m)); }

void Simulation::hand_over(Message&& m) {
  NodeState& box = nodes_[static_cast<std::size_t>(m.dst)];
  for (RecvAwaiter *w = box.waiting_head, *before = nullptr; w != nullptr;
       before = w, w = w->next_waiting) {
    if (w->matches(m)) {
      (before != nullptr ? before->next_waiting : box.waiting_head) = w->next_waiting;
      if (box.waiting_tail == w) box.waiting_tail = before;
      w->result = std::move(m);
      if (w->accounted) waited(w->node, w->since);
      // Safe to resume right here: the network has finished with this message's flow, and
      // the receiver runs as part of this delivery event (deterministically, in event order).
      w->handle.resume();
      return;
    }
  }
  box.pending.push_back(std::move(m));
}

void Simulation::deliver(void* self, Message& m, SimTime sent) {
  auto* sim = static_cast<Simulation*>(self);
  sim->nodes_[static_cast<std::size_t>(m.dst)].account.bytes_received += m.bytes;
  for (EventObserver* o : sim->observers_) o->on_message(m, sent, sim->now_);
  sim->hand_over(std::move(m));
}

void Simulation::SendAwaiter::await_suspend(std::coroutine_handle<> h) {
  handle = h;
  since = sim.now_;
  sim.nodes_[static_cast<std::size_t>(msg.src)].account.bytes_sent += msg.bytes;
  const int src = msg.src;
  Message m = std::move(msg);
  msg.src = src;  // read again by the on_sent callback
  sim.start_send(std::move(m), reinterpret_cast<std::uint64_t>(this), rendezvous);
}

}  // namespace dtsim
