// Collective times against the alpha-beta formulas (reference sheet D.1, D.3, D.4), and
// collective results against plain sums.
//
// How the topology maps to alpha and beta: on a star every path crosses two links (the
// sender's up link and the receiver's down link), so alpha = 2 x link latency and
// beta = 1 / link bandwidth (full duplex, so a node's sending and receiving do not compete).
// Sizes are cut into whole floats, so when n/p is not a whole number of floats each step
// carries up to one float more than n/p: the tolerance allows 4 bytes and 1 ns per message
// on the critical path.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "sim/net/collective_run.hpp"

using namespace dtsim;

namespace {

constexpr double kLatency = 5e-6;        // per link
constexpr double kBandwidth = 10e9 / 8;  // 10 Gbps per link, bytes/s
constexpr double kAlpha = 2 * kLatency;
constexpr double kBeta = 1 / kBandwidth;

NetworkConfig star() {
  NetworkConfig c;
  c.topology = TopologyKind::kStar;
  c.link = {kBandwidth, SimTime::from_seconds(kLatency)};
  return c;
}

double simulate(CollectiveOp op, AllreduceAlgo algo, int p, double bytes,
                NetworkConfig net = star(), int servers = 1) {
  CollectiveSpec spec;
  spec.op = op;
  spec.algo = algo;
  spec.nodes = p;
  spec.servers = servers;
  spec.bytes = static_cast<std::uint64_t>(bytes);
  spec.network = net;
  return run_collective(spec).simulated_time_s;
}

int ceil_log2(int p) {
  int l = 0;
  while ((1 << l) < p) ++l;
  return l;
}

// Tolerance for `messages` messages on the critical path.
double slack(int messages, double beta = kBeta) { return messages * (4 * beta + 1e-9) + 1e-12; }

const int kNodes[] = {2, 3, 4, 7, 8, 16, 64};
const double kSizes[] = {1024.0, 1024.0 * 1024, 64.0 * 1024 * 1024, 1024.0 * 1024 * 1024};

}  // namespace

TEST_CASE("ring allreduce takes 2(p-1)a + 2((p-1)/p) n b") {
  for (int p : kNodes) {
    for (double n : kSizes) {
      CAPTURE(p);
      CAPTURE(n);
      const double expected = 2 * (p - 1) * kAlpha + 2.0 * (p - 1) / p * n * kBeta;
      const double t = simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kRing, p, n);
      CHECK(std::abs(t - expected) <= slack(2 * (p - 1)));
    }
  }
}

TEST_CASE("the reference sheet's worked example (D.5)") {
  // p = 4, n = 100 MB, alpha = 5 us, B = 10 GB/s: ring 0.015030 s, Rabenseifner 0.015020 s.
  NetworkConfig net;
  net.link = {10e9, SimTime::from_seconds(2.5e-6)};  // two links per path: alpha = 5 us
  CHECK(simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kRing, 4, 1e8, net) ==
        doctest::Approx(0.015030).epsilon(1e-9));
  CHECK(simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kHalvingDoubling, 4, 1e8, net) ==
        doctest::Approx(0.015020).epsilon(1e-9));
}

TEST_CASE("recursive halving-doubling (Rabenseifner) allreduce") {
  // Power of two: 2 lg p a + 2((p-1)/p) n b. Otherwise MPICH folds the first 2r ranks
  // (r = p - p', p' the largest power of two below p) in pairs before and after, adding
  // 2(a + n b) to the time of p' ranks. (The MPICH comment writes that as
  // (2 floor(lg p) + 2) a + (2(p-1)/p + 2) n b, using p where the schedule has p'.)
  for (int p : kNodes) {
    for (double n : kSizes) {
      CAPTURE(p);
      CAPTURE(n);
      int pof2 = 1;
      while (pof2 * 2 <= p) pof2 *= 2;
      const int lg = ceil_log2(pof2);
      double expected = 2 * lg * kAlpha + 2.0 * (pof2 - 1) / pof2 * n * kBeta;
      if (pof2 != p) expected += 2 * (kAlpha + n * kBeta);
      const double t = simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kHalvingDoubling, p, n);
      CHECK(std::abs(t - expected) <= slack(2 * lg + 2));
    }
  }
}

// Binomial trees use blocking rendezvous sends (the MPI protocol for large messages), so a
// node's sends do not overlap. ceil(lg p)(a + n b) is exact for a power of two. Otherwise it
// is the critical-path bound and the schedule ends one a earlier: the last level is fed by
// the root's back-to-back sends, which pay their latency only once.
bool power_of_two(int p) { return (p & (p - 1)) == 0; }

TEST_CASE("tree allreduce: binomial reduce then binomial broadcast, 2 ceil(lg p)(a + n b)") {
  for (int p : kNodes) {
    for (double n : kSizes) {
      CAPTURE(p);
      CAPTURE(n);
      const double expected =
          2 * ceil_log2(p) * (kAlpha + n * kBeta) - (power_of_two(p) ? 0 : kAlpha);
      const double t = simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kTree, p, n);
      CHECK(std::abs(t - expected) <= slack(2 * ceil_log2(p)));
    }
  }
}

TEST_CASE("allgather, reduce-scatter and broadcast") {
  for (int p : kNodes) {
    for (double n : kSizes) {
      CAPTURE(p);
      CAPTURE(n);
      const double ring = (p - 1) * kAlpha + (p - 1.0) / p * n * kBeta;
      CHECK(std::abs(simulate(CollectiveOp::kAllgather, AllreduceAlgo::kRing, p, n) - ring) <=
            slack(p - 1));
      CHECK(std::abs(simulate(CollectiveOp::kReduceScatter, AllreduceAlgo::kRing, p, n) - ring) <=
            slack(p - 1));
      const double bcast = ceil_log2(p) * (kAlpha + n * kBeta) - (power_of_two(p) ? 0 : kAlpha);
      CHECK(std::abs(simulate(CollectiveOp::kBroadcast, AllreduceAlgo::kRing, p, n) - bcast) <=
            slack(ceil_log2(p)));
    }
  }
}

TEST_CASE("p = 1 costs nothing") {
  for (auto algo : {AllreduceAlgo::kRing, AllreduceAlgo::kTree, AllreduceAlgo::kHalvingDoubling}) {
    CHECK(simulate(CollectiveOp::kAllreduce, algo, 1, 1e6) == 0.0);
  }
}

TEST_CASE("hierarchical allreduce (D.3) with one NIC per machine") {
  // N machines of g nodes. Inside a machine a path crosses two intra links:
  // a1 = 2 x intra latency, b1 = 1 / intra bandwidth. Across machines a path crosses
  // intra up, NIC up, NIC down, intra down: a2 = 2 (intra + NIC latency); the g parallel
  // inter-machine rings share each NIC, so b2_eff = g / NIC bandwidth:
  //   T = 2[(g-1) a1 + ((g-1)/g) n b1] + 2(N-1) a2 + 2((N-1)/N) n b2.
  const double intra_lat = 1e-6, intra_bw = 100e9, nic_lat = 5e-6, nic_bw = 10e9 / 8;
  NetworkConfig net;
  net.topology = TopologyKind::kHierarchical;
  net.link = {nic_bw, SimTime::from_seconds(nic_lat)};
  net.intra = {intra_bw, SimTime::from_seconds(intra_lat)};
  for (int g : {2, 4, 8}) {
    for (int machines : {2, 3, 4, 8}) {
      for (double n : {1024.0 * 1024, 256.0 * 1024 * 1024}) {
        CAPTURE(g);
        CAPTURE(machines);
        CAPTURE(n);
        net.nodes_per_machine = g;
        const double a1 = 2 * intra_lat, b1 = 1 / intra_bw;
        const double a2 = 2 * (intra_lat + nic_lat), b2 = 1 / nic_bw;
        const double expected = 2 * ((g - 1) * a1 + (g - 1.0) / g * n * b1) +
                                2 * (machines - 1) * a2 + 2.0 * (machines - 1) / machines * n * b2;
        const double t =
            simulate(CollectiveOp::kAllreduce, AllreduceAlgo::kHierarchical, g * machines, n, net);
        CHECK(std::abs(t - expected) <= slack(2 * (g - 1) + 2 * (machines - 1), g * b2));
      }
    }
  }
}

TEST_CASE("parameter server with k shards (D.4)") {
  // Each worker sends its k parts at once and each server receives p parts at once, so a
  // part's rate is min(B/k, B/p): push takes a + max(n, p n / k) / B, and pull the same.
  // (The sheet's k a_msg counts the k parts as sequential messages; here they overlap.)
  for (int p : {2, 4, 8, 16}) {
    for (int k : {1, 2, 4}) {
      for (double n : {1024.0 * 1024, 64.0 * 1024 * 1024}) {
        CAPTURE(p);
        CAPTURE(k);
        CAPTURE(n);
        const double expected = 2 * (kAlpha + std::max(n, p * n / k) * kBeta);
        const double t = simulate(CollectiveOp::kPs, AllreduceAlgo::kRing, p, n, star(), k);
        CHECK(std::abs(t - expected) <= slack(2 * p));
      }
    }
  }
}

TEST_CASE("allreduce results equal the plain sum") {
  for (auto algo : {AllreduceAlgo::kRing, AllreduceAlgo::kTree, AllreduceAlgo::kHalvingDoubling,
                    AllreduceAlgo::kHierarchical}) {
    for (int p : {2, 3, 4, 6, 7, 8}) {
      if (algo == AllreduceAlgo::kHierarchical && p % 2 != 0) continue;
      CAPTURE(to_string(algo));
      CAPTURE(p);
      const std::size_t n = 37;  // not a multiple of any p: uneven parts
      std::vector<std::vector<float>> data(static_cast<std::size_t>(p), std::vector<float>(n));
      std::vector<float> expected(n, 0.0f);
      for (int r = 0; r < p; ++r) {
        for (std::size_t i = 0; i < n; ++i) {
          // Integer values: every summation order gives the exact same result.
          data[static_cast<std::size_t>(r)][i] =
              static_cast<float>((r + 1) * 100 + static_cast<int>(i));
          expected[i] += data[static_cast<std::size_t>(r)][i];
        }
      }
      CollectiveSpec spec;
      spec.algo = algo;
      spec.nodes = p;
      spec.network = star();
      if (algo == AllreduceAlgo::kHierarchical) {
        spec.network.topology = TopologyKind::kHierarchical;
        spec.network.nodes_per_machine = 2;
      }
      run_collective(spec, &data);
      for (int r = 0; r < p; ++r) CHECK(data[static_cast<std::size_t>(r)] == expected);
    }
  }
}

TEST_CASE("allgather and broadcast move the real data") {
  const int p = 5;
  const std::size_t n = 13;
  std::vector<std::vector<float>> data(p, std::vector<float>(n, -1.0f));
  for (int r = 0; r < p; ++r) {
    const auto [b, e] = part_range(n, p, r);
    for (auto i = b; i < e; ++i) data[static_cast<std::size_t>(r)][i] = static_cast<float>(i);
  }
  CollectiveSpec spec;
  spec.op = CollectiveOp::kAllgather;
  spec.nodes = p;
  run_collective(spec, &data);
  std::vector<float> all(n);
  std::iota(all.begin(), all.end(), 0.0f);
  for (const auto& d : data) CHECK(d == all);

  std::vector<std::vector<float>> b(p, std::vector<float>(n, 0.0f));
  b[0] = all;
  spec.op = CollectiveOp::kBroadcast;
  run_collective(spec, &b);
  for (const auto& d : b) CHECK(d == all);
}

TEST_CASE("parameter-server shards cover the vector exactly once") {
  for (std::uint64_t n : {1ULL, 7ULL, 100ULL, 235146ULL}) {
    for (int k : {1, 2, 3, 4, 7}) {
      std::uint64_t next = 0;
      for (int s = 0; s < k; ++s) {
        const auto [b, e] = part_range(n, k, s);
        CHECK(b == next);
        CHECK(e - b >= n / k);
        CHECK(e - b <= n / k + 1);
        next = e;
      }
      CHECK(next == n);
    }
  }
  // And through the servers: every worker gets back the sum of all workers' vectors.
  const int p = 3;
  std::vector<std::vector<float>> data(p, std::vector<float>(10));
  for (int r = 0; r < p; ++r)
    std::iota(data[static_cast<std::size_t>(r)].begin(), data[static_cast<std::size_t>(r)].end(),
              static_cast<float>(r));
  CollectiveSpec spec;
  spec.op = CollectiveOp::kPs;
  spec.nodes = p;
  spec.servers = 3;
  run_collective(spec, &data);
  for (const auto& d : data) {
    for (int i = 0; i < 10; ++i)
      CHECK(d[static_cast<std::size_t>(i)] == static_cast<float>(3 * i + 3));
  }
}

TEST_CASE("a ring whose parts differ by a float keeps to its slowest part's time") {
  // Regression (issue 13): parts of 57 and 58 floats. A 57-float part gains 4 bytes' time on
  // the 58-float part ahead of it at every hop; over 2(p - 1) hops it catches up, and its
  // rank then has two messages for the same neighbour at once. When those shared the link
  // instead of leaving in order, the jam they formed moved as one block, slower with every
  // part it caught: the time drifted past the formula and the events grew as p^3 (a 4,096-
  // worker training step never ended). Here the drift exceeds a step within p = 256: tiny
  // latency, slow links. Each message pays 2 latencies plus its 58 floats, rounded to the ns.
  const int p = 256;
  NetworkConfig net;
  net.topology = TopologyKind::kStar;
  net.link = {1e9 / 8, SimTime::from_ns(20)};
  CollectiveSpec spec;
  spec.nodes = p;
  spec.bytes = 4 * (57 * p + 102);  // 102 parts of 58 floats, the rest of 57
  spec.network = net;
  const CollectiveRun run = run_collective(spec);
  const SimTime step = SimTime::from_ns(40) + SimTime::from_seconds(58 * 4 / net.link.bandwidth);
  CHECK(run.simulated_time_s == (step * (2 * (p - 1))).seconds());
  CHECK(run.events <= run.messages * 3 / 2);

  // A training run charges each sum at the node's speed. At 5 TFLOPS a 58-float sum rounds to
  // no time: the same answer, and no event for it (a 4,096-worker step's events halve).
  spec.reduce_flops_per_s = 5e12;
  const CollectiveRun fast = run_collective(spec);
  CHECK(fast.simulated_time_s == run.simulated_time_s);
  CHECK(fast.events == run.events);
  // At 1 GFLOPS it takes 57 or 58 ns and an event per received part (a few network events
  // fewer: the sums stagger the sends), and adds time on every hop.
  spec.reduce_flops_per_s = 1e9;
  const CollectiveRun slow = run_collective(spec);
  CHECK(slow.simulated_time_s > run.simulated_time_s + (p - 1) * 57e-9);
  CHECK(slow.events > run.events + run.messages * 3 / 4);
}
