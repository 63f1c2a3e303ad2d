// The discrete-event simulation: clock, event queue, network, job runner, node programs.
//
// A Simulation owns everything a run needs and nothing is global, so several can run in one
// process. The event loop runs on the thread that calls run(). Node programs are coroutines
// (Task<>) started with spawn(); they wait with the awaitables below, written as what they
// describe:
//
//   auto g = co_await sim.compute(node, cost, [&] { /* real numerics, on a oneTBB thread */ });
//   sim.send(node, peer, tag, bytes, data);               // non-blocking
//   co_await sim.send_and_wait(node, peer, tag, bytes, data);  // resumes when the bytes left
//   Message m = co_await sim.recv(node, peer, tag);
//   co_await sim.delay(d);
//
// compute() starts its work as a oneTBB job at once and resumes the program at now + cost,
// after joining the job; jobs of overlapping virtual intervals therefore run in parallel on
// real cores, and results never depend on which thread ran them. Each node's virtual time
// is accounted as compute (inside compute()), communication (blocked in recv or a blocking
// send) or idle (everything else).
#pragma once

#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sim/des/event_observer.hpp"
#include "sim/des/event_queue.hpp"
#include "sim/des/job_runner.hpp"
#include "sim/des/task.hpp"
#include "sim/net/network.hpp"

namespace dtsim {

// recv() from any sender.
inline constexpr int kAnySource = -1;

struct NodeAccount {
  SimTime compute;
  SimTime comm;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
};

class Simulation {
 public:
  // `threads` >= 1: threads for jobs, counting the event loop's own.
  Simulation(Topology topology, int threads);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  SimTime now() const { return now_; }
  int nodes() const { return network_.topology().nodes(); }
  Network& network() { return network_; }
  JobRunner& jobs() { return jobs_; }
  const NodeAccount& account(int node) const {
    return nodes_[static_cast<std::size_t>(node)].account;
  }
  std::uint64_t events_run() const { return queue_.events_run(); }

  // Observers are told about compute spans, messages and waits (not owned).
  void add_observer(EventObserver* observer) { observers_.push_back(observer); }

  // Starts a node program at the current time. The Simulation keeps it until destroyed.
  void spawn(Task<> program);
  // Runs events until none are left. Rethrows the first exception a program ended with;
  // throws std::runtime_error if programs are still waiting when nothing is left to happen
  // (a deadlock in the strategy).
  void run();

  // Schedules `fn(target, arg)` at time t (>= now).
  void schedule(SimTime t, Event e) { queue_.schedule(t, e); }
  // The same for an event that does not keep the run going (a fault's start or end): run()
  // ends when every program has finished and only such events are left.
  void schedule_background(SimTime t, Event e);
  void schedule_resume(SimTime t, std::coroutine_handle<> h);

  // ---- awaitables ----
  struct DelayAwaiter {
    Simulation& sim;
    SimTime duration;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { sim.schedule_resume(sim.now_ + duration, h); }
    void await_resume() const noexcept {}
  };
  DelayAwaiter delay(SimTime d) { return {*this, d}; }

  struct ComputeAwaiter {
    ComputeAwaiter(Simulation& s, int n, SimTime c, const char* w, std::function<void()>&& job_work)
        : sim(s), node(n), cost(c), what(w), work(std::move(job_work)) {}
    Simulation& sim;
    int node;
    SimTime cost;
    const char* what;
    std::function<void()> work;
    bool small = false;  // run `work` on the event loop's thread when it ends (no job)
    std::shared_ptr<JobRunner::Job> job;
    std::coroutine_handle<> handle;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
    static void done(void* self, std::uint64_t);
  };
  // Runs `work` (may be empty: time only) as a job and charges `cost` to `node`. `what` is a
  // static label for observers.
  ComputeAwaiter compute(int node, SimTime cost, std::function<void()> work = {},
                         const char* what = "compute") {
    return {*this, node, cost, what, std::move(work)};
  }
  // compute() for work too small to be worth a job (summing a few hundred floats costs less
  // than handing it to another thread): it runs on the event loop's thread when the event loop
  // reaches its virtual end time, which is where every job runs with one thread, so results
  // are the same.
  ComputeAwaiter compute_small(int node, SimTime cost, std::function<void()> work,
                               const char* what) {
    ComputeAwaiter a{*this, node, cost, what, std::move(work)};
    a.small = true;
    return a;
  }

  struct RecvAwaiter {
    // (A constructor: GCC zero-fills an aggregate-initialized awaiter with `rep stos`, a
    // measurable cost per message.) While posted, the awaiter is linked into its node's list,
    // so it lives in the waiting coroutine's frame and does not move.
    RecvAwaiter(Simulation& s, int n, int from, std::uint64_t t, bool acc)
        : sim(s), node(n), src(from), tag(t), accounted(acc) {}
    Simulation& sim;
    int node;
    int src;
    std::uint64_t tag;
    bool accounted;  // blocked time counts as the node's communication
    Message result;
    std::coroutine_handle<> handle;
    SimTime since;
    RecvAwaiter* next_waiting = nullptr;  // the node's posted receives form a list
    bool await_ready() {
      return !sim.nodes_[static_cast<std::size_t>(node)].pending.empty() && sim.take_pending(*this);
    }
    void await_suspend(std::coroutine_handle<> h) {
      handle = h;
      since = sim.now_;
      NodeState& box = sim.nodes_[static_cast<std::size_t>(node)];
      // Released first: if starting that transfer throws, this awaiter is not left linked.
      if (!box.ready_to_send.empty()) sim.release_rendezvous(box, *this);
      next_waiting = nullptr;
      (box.waiting_tail != nullptr ? box.waiting_tail->next_waiting : box.waiting_head) = this;
      box.waiting_tail = this;
    }
    Message await_resume() { return std::move(result); }
    bool matches(const Message& m) const {
      return (src == kAnySource || m.src == src) && m.tag == tag;
    }
  };
  // The next message from `src` (kAnySource: from anyone, in arrival order) with `tag` to
  // `node`.
  RecvAwaiter recv(int node, int src, std::uint64_t tag) { return {*this, node, src, tag, true}; }
  // A receive by a helper that waits beside the node's main program (a listener): its
  // waiting is not the node's communication time.
  RecvAwaiter listen(int node, int src, std::uint64_t tag) {
    return {*this, node, src, tag, false};
  }

  // Sends without waiting: the program goes on at once. An eager message starts its transfer
  // now. A rendezvous message (MPI's protocol for large messages) starts when the receiver
  // has posted the matching recv, and not before; the handshake itself costs no time here.
  void send(int src, int dst, std::uint64_t tag, std::uint64_t bytes,
            std::shared_ptr<const std::vector<float>> data = nullptr, bool rendezvous = false) {
    if (rendezvous) {
      send(Message{src, dst, tag, bytes, std::move(data), nullptr}, true);
      return;
    }
    nodes_[static_cast<std::size_t>(src)].account.bytes_sent += bytes;
    network_.send(src, dst, tag, bytes, std::move(data));
  }
  // Sends a message as it is (with a payload of bytes, say).
  // Hands `m` to its receiver now, without the network: no bytes, no time, no observer (a
  // failure detector's notice standing in for a message that will never come). Call it from
  // the event loop.
  void notify(Message&& m);
  void send(Message&& m, bool rendezvous = false) {
    nodes_[static_cast<std::size_t>(m.src)].account.bytes_sent += m.bytes;
    if (rendezvous) {
      start_send(std::move(m), 0, true);
    } else {
      network_.send(std::move(m));
    }
  }

  struct SendAwaiter {
    Simulation& sim;
    Message msg;
    bool rendezvous;
    std::coroutine_handle<> handle;
    SimTime since;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
  };
  // Sends and resumes when the transfer is over (the bytes have left; MPI's blocking send).
  SendAwaiter send_and_wait(int src, int dst, std::uint64_t tag, std::uint64_t bytes,
                            std::shared_ptr<const std::vector<float>> data = nullptr,
                            bool rendezvous = false) {
    return {
        *this, Message{src, dst, tag, bytes, std::move(data), nullptr}, rendezvous, nullptr, {}};
  }

 private:
  // Everything about one node, together: a message's receiver is usually the next sender.
  struct NodeState {
    NodeAccount account;
    std::vector<Message> pending;  // arrived, not yet received
    // Posted receives, in posting order (linked through the awaiters).
    RecvAwaiter* waiting_head = nullptr;
    RecvAwaiter* waiting_tail = nullptr;
    struct Ready {
      Message msg;
      std::uint64_t token;
    };
    std::vector<Ready> ready_to_send;  // rendezvous messages whose receive is not posted yet
  };
  // Starts the transfer of a message, or parks it until its receive is posted.
  void start_send(Message&& m, std::uint64_t token, bool rendezvous);
  // To the receive posted for it (first match, in posting order), which resumes now, or to the
  // node's pending messages.
  void hand_over(Message&& m);
  // await_ready's search of the messages that arrived before their receive (not empty).
  bool take_pending(RecvAwaiter& w);
  // Posting `w` releases the rendezvous message to `box` that waited for it, if any.
  void release_rendezvous(NodeState& box, const RecvAwaiter& w);
  static void resume_event(void* address, std::uint64_t);
  static void background_event(void* self, std::uint64_t index);
  bool programs_done() const;
  static void deliver(void* self, Message& m, SimTime sent);
  void waited(int node, SimTime since) {
    nodes_[static_cast<std::size_t>(node)].account.comm += now_ - since;
    if (now_ > since && !observers_.empty()) wait_observed(node, since);
  }
  void wait_observed(int node, SimTime since);

  SimTime now_;
  EventQueue queue_;
  Network network_;
  JobRunner jobs_;
  std::vector<Task<>> programs_;
  std::vector<NodeState> nodes_;
  std::vector<EventObserver*> observers_;
  std::vector<Event> background_;  // by index: the background events
  std::size_t background_pending_ = 0;
};

}  // namespace dtsim
