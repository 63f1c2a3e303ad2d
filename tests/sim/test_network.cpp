#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/rng.hpp"
#include "sim/des/simulation.hpp"
#include "tests/test_support.hpp"

using namespace dtsim;

namespace {

constexpr double kBw = 1e9;  // bytes/s
const SimTime kLat = SimTime::from_ns(1000);

NetworkConfig star() {
  NetworkConfig c;
  c.link = {kBw, kLat};
  return c;
}

void record(void* target, std::uint64_t arg) {
  static_cast<std::vector<std::uint64_t>*>(target)->push_back(arg);
}

Task<> receive_two(Simulation& sim, int node, int a, int b, std::vector<double>& times) {
  co_await sim.recv(node, a, 1);
  times.push_back(sim.now().seconds());
  co_await sim.recv(node, b, 1);
  times.push_back(sim.now().seconds());
}

Task<> send_at_start(Simulation& sim, int src, int dst, std::uint64_t bytes) {
  sim.send(src, dst, 1, bytes);
  co_return;
}

}  // namespace

TEST_CASE("events run in (time, scheduling order)") {
  EventQueue q;
  std::vector<std::uint64_t> order;
  q.schedule(SimTime::from_ns(20), {record, &order, 1});
  q.schedule(SimTime::from_ns(10), {record, &order, 2});
  q.schedule(SimTime::from_ns(20), {record, &order, 3});
  q.schedule(SimTime::from_ns(10), {record, &order, 4});
  SimTime t;
  std::vector<std::int64_t> times;
  while (!q.empty()) {
    const Event e = q.pop(t);
    times.push_back(t.ns());
    if (e.arg == 2) q.schedule(t, {record, &order, 5});  // same time, scheduled while running
    e.fn(e.target, e.arg);
  }
  CHECK(order == std::vector<std::uint64_t>{2, 4, 5, 1, 3});
  CHECK(times == std::vector<std::int64_t>{10, 10, 10, 20, 20});
}

TEST_CASE("an event scheduled before the current time is refused") {
  EventQueue q;
  std::vector<std::uint64_t> order;
  q.schedule(SimTime::from_ns(10), {record, &order, 1});
  q.schedule(SimTime::from_ns(10), {record, &order, 2});
  SimTime t;
  q.pop(t);
  CHECK_THROWS_AS(q.schedule(SimTime::from_ns(9), {record, &order, 3}), std::logic_error);
  q.schedule(SimTime::from_ns(10), {record, &order, 4});  // now is fine
  CHECK(q.pop(t).arg == 2);
  CHECK(q.pop(t).arg == 4);
  CHECK(q.empty());
}

TEST_CASE("routes follow the shortest path") {
  SUBCASE("star: up link of the sender, down link of the receiver") {
    Topology t(star(), 4);
    std::vector<int> links;
    t.route(1, 3, links);
    CHECK(links == std::vector<int>{2, 7});
    CHECK(t.path_latency(1, 3) == kLat * 2);
  }
  SUBCASE("ring: the shorter way round") {
    NetworkConfig c = star();
    c.topology = TopologyKind::kRing;
    Topology t(c, 6);
    std::vector<int> links;
    t.route(1, 3, links);  // clockwise 1->2->3
    CHECK(links == std::vector<int>{1, 2});
    links.clear();
    t.route(1, 5, links);  // counter-clockwise 1->0->5
    CHECK(links == std::vector<int>{6 + 0, 6 + 5});
    CHECK(t.path_latency(0, 3) == kLat * 3);
  }
  SUBCASE("hierarchical: two intra links inside a machine, plus two NIC links across") {
    NetworkConfig c = star();
    c.topology = TopologyKind::kHierarchical;
    c.nodes_per_machine = 2;
    c.intra = {10 * kBw, SimTime::from_ns(100)};
    Topology t(c, 4);
    CHECK(t.path_latency(0, 1) == SimTime::from_ns(200));
    CHECK(t.path_latency(0, 3) == SimTime::from_ns(200) + kLat * 2);
  }
  SUBCASE("full: one direct link") {
    NetworkConfig c = star();
    c.topology = TopologyKind::kFull;
    Topology t(c, 5);
    CHECK(t.path_latency(4, 2) == kLat);
  }
}

TEST_CASE("two flows on one link each get half; the one left alone speeds up") {
  Simulation sim(Topology(star(), 3), 1);
  std::vector<double> times;
  sim.spawn(receive_two(sim, 2, 0, 1, times));
  sim.spawn(send_at_start(sim, 0, 2, 1'000'000));
  sim.spawn(send_at_start(sim, 1, 2, 2'000'000));
  sim.run();
  REQUIRE(times.size() == 2);
  // Both at B/2 until the first megabyte of each is through (2 ms); then the second alone at B.
  CHECK(times[0] == doctest::Approx(2e-3 + 2e-6).epsilon(1e-12));
  CHECK(times[1] == doctest::Approx(3e-3 + 2e-6).epsilon(1e-12));
}

TEST_CASE("max-min fair rates with different bottlenecks") {
  // A: 0->2, B: 1->2, C: 1->3, with node 3's links at B/4. C is held to B/4 by node 3's link;
  // A and B split node 2's down link; B's up link (shared with C) has room to spare.
  Topology topo(star(), 4);
  topo.set_node_links(3, {kBw / 4, kLat});
  Simulation sim(std::move(topo), 1);
  sim.spawn(send_at_start(sim, 0, 2, 1'000'000));
  sim.spawn(send_at_start(sim, 1, 2, 1'000'000));
  sim.spawn(send_at_start(sim, 1, 3, 1'000'000));
  // Run only the three starts, then look at the rates.
  struct Probe {
    static void fn(void* self, std::uint64_t) {
      auto& s = *static_cast<Simulation*>(self);
      CHECK(s.network().link_rates(2 * 2 + 1) ==
            std::vector<double>{kBw / 2, kBw / 2});                              // down link of 2
      CHECK(s.network().link_rates(2 * 3 + 1) == std::vector<double>{kBw / 4});  // down link of 3
      const auto up1 = s.network().link_rates(2 * 1);
      REQUIRE(up1.size() == 2);
      CHECK(up1[0] + up1[1] == doctest::Approx(0.75 * kBw));
    }
  };
  sim.schedule(SimTime::from_ns(1), {Probe::fn, &sim, 0});
  sim.run();
}

TEST_CASE("compute charges its cost and runs its work") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    Simulation sim(Topology(star(), 2), threads);
    std::vector<int> results(2, 0);
    auto program = [](Simulation& s, int node, int& out) -> Task<> {
      co_await s.compute(node, SimTime::from_ns(500), [&out, node] { out = 10 + node; });
      co_await s.compute(node, SimTime::from_ns(250));
    };
    sim.spawn(program(sim, 0, results[0]));
    sim.spawn(program(sim, 1, results[1]));
    sim.run();
    CHECK(results == std::vector<int>{10, 11});
    CHECK(sim.now() == SimTime::from_ns(750));
    CHECK(sim.account(1).compute == SimTime::from_ns(750));
  }
}

TEST_CASE("compute_small runs its work on the event loop's thread at its end time") {
  Simulation sim(Topology(star(), 1), 2);
  const std::thread::id loop = std::this_thread::get_id();
  std::thread::id ran_on;
  SimTime ran_at = SimTime::from_ns(-1);
  auto program = [&](Simulation& s) -> Task<> {
    co_await s.compute_small(
        0, SimTime::from_ns(300),
        [&] {
          ran_on = std::this_thread::get_id();
          ran_at = s.now();
        },
        "reduce");
  };
  sim.spawn(program(sim));
  sim.run();
  CHECK(ran_on == loop);
  CHECK(ran_at == SimTime::from_ns(300));  // (a job's result is due at its end)
  CHECK(sim.account(0).compute == SimTime::from_ns(300));
}

TEST_CASE("an exception in a job surfaces from run()") {
  Simulation sim(Topology(star(), 1), 2);
  auto program = [](Simulation& s) -> Task<> {
    co_await s.compute(0, SimTime::from_ns(1), [] { throw std::runtime_error("job failed"); });
  };
  sim.spawn(program(sim));
  CHECK_THROWS_WITH_AS(sim.run(), "job failed", std::runtime_error);
}

TEST_CASE("a program waiting for a message that never comes is a deadlock") {
  Simulation sim(Topology(star(), 2), 1);
  auto program = [](Simulation& s) -> Task<> { co_await s.recv(0, 1, 7); };
  sim.spawn(program(sim));
  try {
    sim.run();
    FAIL("expected a deadlock error");
  } catch (const std::runtime_error& e) {
    CHECK_CONTAINS(e.what(), "deadlock");
  }
}

TEST_CASE("communication time is accounted to the waiting node") {
  Simulation sim(Topology(star(), 2), 1);
  std::vector<double> times;
  auto receiver = [](Simulation& s) -> Task<> { co_await s.recv(1, 0, 1); };
  sim.spawn(receiver(sim));
  sim.spawn(send_at_start(sim, 0, 1, 1'000'000));
  sim.run();
  CHECK(sim.account(1).comm == SimTime::from_ns(1'000'000 + 2'000));
  CHECK(sim.account(0).bytes_sent == 1'000'000);
  CHECK(sim.account(1).bytes_received == 1'000'000);
}

TEST_CASE("a link is free again once a transfer ends, before its message arrives") {
  // A: 0 -> 2, 1 MB at t = 0: its transfer ends at 1 ms and it arrives at 1 ms + 2 us.
  // B: 1 -> 2, 1 MB at 1 ms + 1 us, while A's last bytes are still in flight: B has node 2's
  // down link to itself, so it takes 1 ms and arrives at 2 ms + 3 us.
  Simulation sim(Topology(star(), 3), 1);
  std::vector<double> times;
  sim.spawn(receive_two(sim, 2, 0, 1, times));
  sim.spawn(send_at_start(sim, 0, 2, 1'000'000));
  auto late = [](Simulation& s) -> Task<> {
    co_await s.delay(SimTime::from_ns(1'001'000));
    s.send(1, 2, 1, 1'000'000);
  };
  sim.spawn(late(sim));
  sim.run();
  REQUIRE(times.size() == 2);
  CHECK(times[0] == doctest::Approx(1e-3 + 2e-6).epsilon(1e-12));
  CHECK(times[1] == doctest::Approx(2e-3 + 3e-6).epsilon(1e-12));
}

TEST_CASE("a flow that joins mid-transfer slows the first one down from then on") {
  // A: 0 -> 2, 2 MB at t = 0, alone for 1 ms (1 MB done); B: 1 -> 2, 1 MB at 1 ms. Both at
  // B/2 until B is done at 3 ms (A has 0 MB left then too): both arrive at 3 ms + 2 us.
  Simulation sim(Topology(star(), 3), 1);
  std::vector<double> times;
  sim.spawn(receive_two(sim, 2, 0, 1, times));
  sim.spawn(send_at_start(sim, 0, 2, 2'000'000));
  auto late = [](Simulation& s) -> Task<> {
    co_await s.delay(SimTime::from_ns(1'000'000));
    s.send(1, 2, 1, 1'000'000);
  };
  sim.spawn(late(sim));
  sim.run();
  REQUIRE(times.size() == 2);
  CHECK(times[0] == doctest::Approx(3e-3 + 2e-6).epsilon(1e-12));
  CHECK(times[1] == doctest::Approx(3e-3 + 2e-6).epsilon(1e-12));
}

TEST_CASE("posted receives are matched by source and tag, whatever the order they are met in") {
  // Node 3 posts three receives at t = 0, in this order: (from 0, tag 7), (from 1, tag 7),
  // (from anyone, tag 8). Messages of 1 kB (1 us, plus 2 us of latency) arrive, 10 us apart,
  // in the order: 1's tag 7, 2's tag 8, 0's tag 7. Each must wake the receive it matches:
  // the middle one, then the last, then the first. A fourth receive, posted once none is
  // left, still gets its message.
  Simulation sim(Topology(star(), 4), 1);
  struct Got {
    int program;
    int src;
    std::uint64_t tag;
    double at;
  };
  std::vector<Got> got;
  auto receiver = [](Simulation& s, int program, int src, std::uint64_t tag,
                     std::vector<Got>& out) -> Task<> {
    const Message m = co_await s.recv(3, src, tag);
    out.push_back({program, m.src, m.tag, s.now().seconds()});
    if (program == 0) {
      const Message again = co_await s.recv(3, 0, 9);
      out.push_back({program, again.src, again.tag, s.now().seconds()});
    }
  };
  sim.spawn(receiver(sim, 0, 0, 7, got));
  sim.spawn(receiver(sim, 1, 1, 7, got));
  sim.spawn(receiver(sim, 2, kAnySource, 8, got));
  auto sender = [](Simulation& s) -> Task<> {
    co_await s.delay(SimTime::from_ns(1'000));
    s.send(1, 3, 7, 1'000);  // arrives at 1 + 1 + 2 = 4 us
    co_await s.delay(SimTime::from_ns(10'000));
    s.send(2, 3, 8, 1'000);  // at 11 us: arrives at 14 us
    co_await s.delay(SimTime::from_ns(10'000));
    s.send(0, 3, 7, 1'000);  // at 21 us: arrives at 24 us
    co_await s.delay(SimTime::from_ns(10'000));
    s.send(0, 3, 9, 1'000);  // at 31 us: arrives at 34 us
  };
  sim.spawn(sender(sim));
  sim.run();
  REQUIRE(got.size() == 4);
  CHECK(got[0].program == 1);
  CHECK(got[0].src == 1);
  CHECK(got[0].at == doctest::Approx(4e-6).epsilon(1e-9));
  CHECK(got[1].program == 2);
  CHECK(got[1].src == 2);
  CHECK(got[1].tag == 8);
  CHECK(got[1].at == doctest::Approx(14e-6).epsilon(1e-9));
  CHECK(got[2].program == 0);
  CHECK(got[2].src == 0);
  CHECK(got[2].tag == 7);
  CHECK(got[2].at == doctest::Approx(24e-6).epsilon(1e-9));
  CHECK(got[3].program == 0);
  CHECK(got[3].tag == 9);
  CHECK(got[3].at == doctest::Approx(34e-6).epsilon(1e-9));
}

namespace {

// Receives one message from each of `sources` at `node` (tag 1), in any order, noting each
// arrival time by source.
Task<> receive_each(Simulation& sim, int node, int source, std::vector<double>& at) {
  co_await sim.recv(node, source, 1);
  at[static_cast<std::size_t>(source)] = sim.now().seconds();
}

}  // namespace

TEST_CASE("two flows sharing one link get exactly half of it each") {
  Simulation sim(Topology(star(), 3), 1);
  sim.spawn(send_at_start(sim, 0, 2, 1'000'000));
  sim.spawn(send_at_start(sim, 1, 2, 1'000'000));
  struct Probe {
    static void fn(void* self, std::uint64_t) {
      auto& s = *static_cast<Simulation*>(self);
      CHECK(s.network().link_rates(2 * 2 + 1) == std::vector<double>{kBw / 2, kBw / 2});
      CHECK(s.network().link_rates(2 * 0) == std::vector<double>{kBw / 2});
    }
  };
  sim.schedule(SimTime::from_ns(1), {Probe::fn, &sim, 0});
  sim.run();
  // Both at B/2: 1 MB takes 2 ms, plus two links of latency.
  CHECK(sim.now() == SimTime::from_ns(2'000'000 + 2'000));
}

TEST_CASE("a flow limited elsewhere leaves the rest of a shared link to the others") {
  // A: 0 -> 3 and B: 1 -> 3 share node 3's down link (B); C: 2 -> 3 too, but node 2's up link
  // is B/10. C gets B/10, A and B split what is left: 0.45 B each, so their 900 kB take 2 ms.
  // C keeps its B/10 when they end (its own up link holds it there): 1 MB takes 10 ms.
  Topology topo(star(), 4);
  topo.set_node_links(2, {kBw / 10, kLat});
  Simulation sim(std::move(topo), 1);
  std::vector<double> at(3, 0.0);
  for (int s = 0; s < 3; ++s) sim.spawn(receive_each(sim, 3, s, at));
  sim.spawn(send_at_start(sim, 0, 3, 900'000));
  sim.spawn(send_at_start(sim, 1, 3, 900'000));
  sim.spawn(send_at_start(sim, 2, 3, 1'000'000));
  sim.run();
  CHECK(at[0] == doctest::Approx(2e-3 + 2e-6).epsilon(1e-12));
  CHECK(at[1] == doctest::Approx(2e-3 + 2e-6).epsilon(1e-12));
  // Node 2's links have latency kLat too: 10 ms of transfer, then 2 us.
  CHECK(at[2] == doctest::Approx(10e-3 + 2e-6).epsilon(1e-12));
}

TEST_CASE("flows that end at the same time leave their link to the one still sending") {
  // A, B: 1 MB and C: 2 MB from nodes 0, 1, 2 to node 3, all at t = 0: each at B/3 until A and
  // B end together at 3 ms (C has 1 MB left), then C alone at B until 4 ms.
  Simulation sim(Topology(star(), 4), 1);
  std::vector<double> at(3, 0.0);
  for (int s = 0; s < 3; ++s) sim.spawn(receive_each(sim, 3, s, at));
  sim.spawn(send_at_start(sim, 0, 3, 1'000'000));
  sim.spawn(send_at_start(sim, 1, 3, 1'000'000));
  sim.spawn(send_at_start(sim, 2, 3, 2'000'000));
  sim.run();
  CHECK(at[0] == doctest::Approx(3e-3 + 2e-6).epsilon(1e-12));
  CHECK(at[1] == at[0]);
  CHECK(at[2] == doctest::Approx(4e-3 + 2e-6).epsilon(1e-12));
  // Rates were worked out when the three started and when two ended, not once per flow.
  CHECK(sim.network().reallocations() == 2);
}

TEST_CASE("a flow joining mid-transfer takes its share from then on, and gives it back") {
  // A: 0 -> 2, 3 MB at t = 0, alone for 1 ms (1 MB done); B: 1 -> 2, 0.5 MB at 1 ms. Both at
  // B/2 until B is done at 2 ms (A has 1.5 MB left), then A alone at B until 3.5 ms.
  Simulation sim(Topology(star(), 3), 1);
  std::vector<double> times;
  sim.spawn(receive_two(sim, 2, 1, 0, times));
  sim.spawn(send_at_start(sim, 0, 2, 3'000'000));
  auto late = [](Simulation& s) -> Task<> {
    co_await s.delay(SimTime::from_ns(1'000'000));
    s.send(1, 2, 1, 500'000);
  };
  sim.spawn(late(sim));
  sim.run();
  REQUIRE(times.size() == 2);
  CHECK(times[0] == doctest::Approx(2e-3 + 2e-6).epsilon(1e-12));    // B
  CHECK(times[1] == doctest::Approx(3.5e-3 + 2e-6).epsilon(1e-12));  // A
}

TEST_CASE("an incast costs a few events per message, however many flows share the link") {
  // n senders, one receiver, all at t = 0: recomputing the rates at every start would
  // re-time every flow each time (about n^2 / 2 events).
  for (int n : {16, 256}) {
    CAPTURE(n);
    Simulation sim(Topology(star(), n + 1), 1);
    std::vector<double> at(static_cast<std::size_t>(n), 0.0);
    for (int s = 0; s < n; ++s) sim.spawn(receive_each(sim, n, s, at));
    for (int s = 0; s < n; ++s) sim.spawn(send_at_start(sim, s, n, 100'000));
    sim.run();
    // All at B/n: n * 100 kB at B, then the latency of two links.
    for (double t : at) CHECK(t == doctest::Approx(n * 1e-4 + 2e-6).epsilon(1e-12));
    CHECK(sim.events_run() <= 4 * static_cast<std::uint64_t>(n) + 8);
    CHECK(sim.network().reallocations() == 1);
  }
}

namespace {

Task<> receive_noting_order(Simulation& sim, int node, int source, std::vector<int>& order) {
  co_await sim.recv(node, source, 1);
  order.push_back(node * 100 + source);
}

}  // namespace

TEST_CASE("messages whose transfers end together arrive in the order they were sent") {
  SUBCASE("one sender to three") {
    Simulation sim(Topology(star(), 4), 1);
    std::vector<int> order;
    for (int d : {2, 0, 1}) sim.spawn(receive_noting_order(sim, d, 3, order));
    for (int d : {0, 1, 2}) sim.spawn(send_at_start(sim, 3, d, 900));
    sim.run();
    CHECK(order == std::vector<int>{3, 103, 203});
  }
  SUBCASE("three senders to one") {
    Simulation sim(Topology(star(), 4), 1);
    std::vector<int> order;
    for (int s : {1, 2, 0}) sim.spawn(receive_noting_order(sim, 3, s, order));
    for (int s : {2, 0, 1}) sim.spawn(send_at_start(sim, s, 3, 900));
    sim.run();
    CHECK(order == std::vector<int>{302, 300, 301});
  }
}

namespace {

// A reference for the network's contended answers: the flows' fluid progress under max-min
// fair rates, worked out from scratch (progressive filling over every link) at every start and
// end, in doubles. Each flow crosses its route's links; messages of the same (src, dst) pair
// go one after another.
struct RefFlow {
  int src = 0;
  int dst = 0;
  double start = 0;  // s
  double bytes = 0;
};

std::vector<double> reference_transfer_ends(const std::vector<RefFlow>& flows,
                                            const Topology& topo) {
  const std::size_t n = flows.size();
  std::vector<std::vector<int>> route(n);
  for (std::size_t i = 0; i < n; ++i) topo.route(flows[i].src, flows[i].dst, route[i]);
  std::vector<double> capacity(topo.num_links());
  for (std::size_t l = 0; l < capacity.size(); ++l) {
    capacity[l] = topo.link(static_cast<int>(l)).bandwidth;
  }
  std::vector<double> left(n), end(n, -1);
  for (std::size_t i = 0; i < n; ++i) left[i] = flows[i].bytes;
  auto previous_of_pair = [&](std::size_t i) -> std::ptrdiff_t {
    for (std::size_t j = i; j-- > 0;) {
      if (flows[j].src == flows[i].src && flows[j].dst == flows[i].dst) {
        return static_cast<std::ptrdiff_t>(j);
      }
    }
    return -1;
  };
  double now = 0;
  for (;;) {
    // Transferring: started, its pair's previous message done, not itself done.
    std::vector<std::size_t> active;
    double next_start = 1e300;
    for (std::size_t i = 0; i < n; ++i) {
      if (end[i] >= 0) continue;
      const std::ptrdiff_t p = previous_of_pair(i);
      if (p >= 0 && end[static_cast<std::size_t>(p)] < 0) continue;
      const double can = std::max(flows[i].start, p < 0 ? 0.0 : end[static_cast<std::size_t>(p)]);
      if (can <= now + 1e-15) {
        active.push_back(i);
      } else {
        next_start = std::min(next_start, can);
      }
    }
    if (active.empty() && next_start >= 1e300) break;
    // Progressive filling over all links.
    std::vector<double> rate(n, 0), cap = capacity;
    std::vector<int> count(capacity.size(), 0);
    std::vector<bool> fixed(n, false);
    for (std::size_t i : active) {
      for (int l : route[i]) ++count[static_cast<std::size_t>(l)];
    }
    for (std::size_t fixed_count = 0; fixed_count < active.size();) {
      double best = 1e300;
      int best_link = 0;
      for (std::size_t l = 0; l < cap.size(); ++l) {
        if (count[l] > 0 && cap[l] / count[l] < best) {
          best = cap[l] / count[l];
          best_link = static_cast<int>(l);
        }
      }
      for (std::size_t i : active) {
        if (fixed[i] || std::find(route[i].begin(), route[i].end(), best_link) == route[i].end()) {
          continue;
        }
        fixed[i] = true;
        ++fixed_count;
        rate[i] = best;
        for (int l : route[i]) {
          cap[static_cast<std::size_t>(l)] -= best;
          --count[static_cast<std::size_t>(l)];
        }
      }
    }
    double dt = next_start - now;
    for (std::size_t i : active) dt = std::min(dt, left[i] / rate[i]);
    now += dt;
    for (std::size_t i : active) {
      left[i] -= rate[i] * dt;
      if (left[i] <= 1e-6 * flows[i].bytes) end[i] = now;
    }
  }
  return end;
}

Task<> send_at(Simulation& sim, RefFlow f, int tag) {
  co_await sim.delay(SimTime::from_seconds(f.start));
  sim.send(f.src, f.dst, static_cast<std::uint64_t>(tag), static_cast<std::uint64_t>(f.bytes));
}

Task<> receive_at(Simulation& sim, RefFlow f, int tag, double& at) {
  co_await sim.recv(f.dst, f.src, static_cast<std::uint64_t>(tag));
  at = sim.now().seconds();
}

}  // namespace

TEST_CASE("contended transfers end when max-min fair sharing worked out from scratch says") {
  // Random flows between nodes whose links differ in bandwidth, starting at random times
  // with random sizes: incasts, outcasts, flows limited elsewhere, joins and leaves, and
  // messages that queue behind one of their pair's; on a star, on machines of 4 nodes sharing
  // a NIC, and on a ring of 12 (routes of up to 6 hops, several flows per link). Each message
  // arrives at its reference transfer end plus its path's latency, to the rounding of finish times
  // to the nanosecond. (This test found that a message sent while its pair's last one was being
  // made to share its links overtook it.)
  for (const TopologyKind kind :
       {TopologyKind::kStar, TopologyKind::kHierarchical, TopologyKind::kRing}) {
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      CAPTURE(static_cast<int>(kind));
      CAPTURE(seed);
      CounterRng rng({seed, RngPurpose::kLoss, 0, 0});
      const int nodes = kind == TopologyKind::kRing ? 12 : 8;
      NetworkConfig c = star();
      c.topology = kind;
      c.intra = {4 * kBw, kLat};
      Topology topo(c, nodes);
      for (int v = 0; v < nodes; ++v) {
        if (rng.uniform() < 0.3) topo.set_node_links(v, {kBw * (0.25 + rng.uniform()), kLat});
      }
      std::vector<RefFlow> flows;
      const int count = 4 + static_cast<int>(rng.uniform() * 40);
      for (int i = 0; i < count; ++i) {
        RefFlow f;
        f.src = static_cast<int>(rng.uniform() * nodes);
        f.dst = (f.src + 1 + static_cast<int>(rng.uniform() * (nodes - 1))) % nodes;
        // Starts on a 10 us grid (so that some coincide), 1 kB to 1 MB.
        f.start = 1e-5 * static_cast<int>(rng.uniform() * 100);
        f.bytes = static_cast<double>(static_cast<int>(1000 + rng.uniform() * 999'000));
        flows.push_back(f);
      }
      std::stable_sort(flows.begin(), flows.end(),
                       [](const RefFlow& a, const RefFlow& b) { return a.start < b.start; });
      const std::vector<double> ends = reference_transfer_ends(flows, topo);
      std::vector<double> latency(flows.size());
      for (std::size_t i = 0; i < flows.size(); ++i) {
        latency[i] = topo.path_latency(flows[i].src, flows[i].dst).seconds();
      }
      Simulation sim(std::move(topo), 1);
      std::vector<double> at(flows.size(), -1);
      for (std::size_t i = 0; i < flows.size(); ++i) {
        sim.spawn(receive_at(sim, flows[i], static_cast<int>(i), at[i]));
        sim.spawn(send_at(sim, flows[i], static_cast<int>(i)));
      }
      sim.run();
      for (std::size_t i = 0; i < flows.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(at[i] - (ends[i] + latency[i])) <=
              static_cast<double>(2 * flows.size()) * 1e-9);
      }
    }
  }
}

TEST_CASE("a staggered incast costs a few events per message, however many flows share the link") {
  // n senders to one receiver, each starting 1 us after the last with the same size, so that
  // they end one by one: re-timing every flow at each start and end would cost about n^2
  // events. The answers are the reference's.
  for (int n : {64, 512}) {
    CAPTURE(n);
    std::vector<RefFlow> flows;
    for (int s = 0; s < n; ++s) flows.push_back({s, n, 1e-6 * s, 100'000});
    Topology topo(star(), n + 1);
    const std::vector<double> ends = reference_transfer_ends(flows, topo);
    Simulation sim(std::move(topo), 1);
    std::vector<double> at(flows.size(), -1);
    for (std::size_t i = 0; i < flows.size(); ++i) {
      sim.spawn(receive_at(sim, flows[i], static_cast<int>(i), at[i]));
      sim.spawn(send_at(sim, flows[i], static_cast<int>(i)));
    }
    sim.run();
    for (std::size_t i = 0; i < flows.size(); ++i) {
      CHECK(std::abs(at[i] - (ends[i] + 2e-6)) <= static_cast<double>(2 * n) * 1e-9);
    }
    CHECK(sim.events_run() <= 10 * static_cast<std::uint64_t>(n));
  }
}
