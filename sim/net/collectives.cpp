#include "sim/net/collectives.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "sim/net/tags.hpp"

namespace dtsim {
namespace {

// A collective's messages use tag + phase * kPhase + round (sim/net/tags.hpp).
constexpr std::uint64_t kPhase = tags::phase(0, 1);

int mod(int a, int p) { return ((a % p) + p) % p; }

// The parts of n elements cut into q, as in collectives.hpp (part i is
// [i*(n/q) + min(i, n%q), ...)), dividing once for many lookups.
class Parts {
 public:
  Parts(std::uint64_t n, int q)
      : base_(n / static_cast<std::uint64_t>(q)), extra_(n % static_cast<std::uint64_t>(q)) {}
  std::pair<std::uint64_t, std::uint64_t> range(int i) const {
    const auto ii = static_cast<std::uint64_t>(i);
    const std::uint64_t begin = ii * base_ + std::min(ii, extra_);
    return {begin, begin + base_ + (ii < extra_ ? 1 : 0)};
  }

 private:
  std::uint64_t base_;
  std::uint64_t extra_;
};

std::shared_ptr<const std::vector<float>> copy_part(const CollBuf& b, std::uint64_t begin,
                                                    std::uint64_t end) {
  if (!b.has_data()) return nullptr;
  return std::make_shared<const std::vector<float>>(
      b.data.begin() + static_cast<std::ptrdiff_t>(begin),
      b.data.begin() + static_cast<std::ptrdiff_t>(end));
}

// Writes (or adds) a received part into b[begin, end).
void take_part(const CollBuf& b, std::uint64_t begin, std::uint64_t end, const Message& m,
               bool add) {
  if (!b.has_data()) return;
  if (!m.data || m.data->size() != end - begin) {
    throw std::logic_error("collective: a message does not match the part it should fill");
  }
  float* out = b.data.data() + begin;
  const float* in = m.data->data();
  const std::uint64_t n = end - begin;
  if (add) {
    for (std::uint64_t i = 0; i < n; ++i) out[i] += in[i];
  } else {
    std::copy(in, in + n, out);
  }
}

// Sums or copies of fewer floats than this run on the event loop (Simulation::compute_small):
// a thousand-rank ring moves parts of a few hundred floats, two thousand times per rank.
constexpr std::uint64_t kSmallPart = 4096;

SimTime reduce_time(const CollContext& c, std::uint64_t elements) {
  return c.reduce_flops_per_s > 0
             ? SimTime::from_seconds(static_cast<double>(elements) / c.reduce_flops_per_s)
             : SimTime();
}

// Adds (or copies) a received part into b[begin, end): a job on `node`, charged one operation
// per float at `flops_per_s` (free, and done at once, when that is 0). The same charge with or
// without data, so time-only runs take the same virtual time.
Task<> absorb(Simulation* sim, int node, double flops_per_s, CollBuf b, std::uint64_t begin,
              std::uint64_t end, Message m, bool add) {
  const SimTime cost = flops_per_s > 0
                           ? SimTime::from_seconds(static_cast<double>(end - begin) / flops_per_s)
                           : SimTime();
  const char* what = add ? "reduce" : "copy";
  if (!b.has_data()) {
    if (cost > SimTime()) co_await sim->compute(node, cost, {}, what);
    co_return;
  }
  if (cost == SimTime()) {
    take_part(b, begin, end, m, add);
    co_return;
  }
  std::function<void()> work = [&] { take_part(b, begin, end, m, add); };
  if (end - begin < kSmallPart) {
    co_await sim->compute_small(node, cost, std::move(work), what);
  } else {
    co_await sim->compute(node, cost, std::move(work), what);
  }
}

// ring_pass (below) with real data.
Task<> ring_pass_data(CollContext c, CollBuf b, std::uint64_t tag, bool add, int first) {
  const int p = c.size();
  const int me = c.node(c.rank);
  const int next = c.node(mod(c.rank + 1, p));
  const int prev = c.node(mod(c.rank - 1, p));
  const Parts parts(b.elements, p);
  std::shared_ptr<const std::vector<float>> carry;
  int send_part = mod(first, p);
  for (int k = 0; k < p - 1; ++k) {
    const int recv_part = send_part == 0 ? p - 1 : send_part - 1;
    const auto [sb, se] = parts.range(send_part);
    if (k == 0) carry = copy_part(b, sb, se);
    c.sim->send(me, next, tag + static_cast<std::uint64_t>(k), (se - sb) * b.element_bytes,
                std::move(carry));
    const auto [rb, re] = parts.range(recv_part);
    Message m = co_await c.sim->recv(me, prev, tag + static_cast<std::uint64_t>(k));
    send_part = recv_part;
    if (!m.data || m.data->size() != re - rb) {
      throw std::logic_error("collective: a message does not match the part it should fill");
    }
    const bool last = k == p - 2;
    const bool small = re - rb < kSmallPart;
    // (Named locals: GCC 12 must not build these inside a co_await's operands.)
    std::function<void()> work;
    std::shared_ptr<std::vector<float>> sum;
    if (add) {
      sum = std::make_shared<std::vector<float>>(re - rb);
      work = [&, rb = rb, last] {
        const float* in = m.data->data();
        float* own = b.data.data() + rb;
        float* out = sum->data();  // (plain pointers: the loop vectorises)
        const std::size_t count = sum->size();
        for (std::size_t i = 0; i < count; ++i) out[i] = own[i] + in[i];
        if (last) std::copy(out, out + count, own);
      };
    } else {
      work = [&, rb = rb] { std::copy(m.data->begin(), m.data->end(), b.data.data() + rb); };
    }
    const SimTime cost = reduce_time(c, re - rb);
    const char* what = add ? "reduce" : "copy";
    if (cost == SimTime()) {
      work();  // (free: no event, as absorb does)
    } else if (small) {
      co_await c.sim->compute_small(me, cost, std::move(work), what);
    } else {
      co_await c.sim->compute(me, cost, std::move(work), what);
    }
    if (add) {
      carry = std::move(sum);
    } else {
      carry = std::move(m.data);
    }
  }
}

// ring_pass (below) in time-only mode: only sizes travel, and the sums and copies are charged
// as time. A coroutine of its own so that its frame is small: with thousands of ranks, the
// frames are most of the memory the event loop goes through.
Task<> ring_pass_sized(CollContext c, CollBuf b, std::uint64_t tag, bool add, int first) {
  const int p = c.size();
  const int me = c.node(c.rank);
  const int next = c.node(mod(c.rank + 1, p));
  const int prev = c.node(mod(c.rank - 1, p));
  const Parts parts(b.elements, p);
  int send_part = mod(first, p);
  for (int k = 0; k < p - 1; ++k) {
    const int recv_part = send_part == 0 ? p - 1 : send_part - 1;
    const auto [sb, se] = parts.range(send_part);
    c.sim->send(me, next, tag + static_cast<std::uint64_t>(k), (se - sb) * b.element_bytes);
    co_await c.sim->recv(me, prev, tag + static_cast<std::uint64_t>(k));
    const auto [rb, re] = parts.range(recv_part);
    const SimTime cost = reduce_time(c, re - rb);
    // (A sum that rounds to no time at all, e.g. 57 floats at 5 TFLOPS, costs no event.)
    if (cost > SimTime()) co_await c.sim->compute(me, cost, {}, add ? "reduce" : "copy");
    send_part = recv_part;
  }
}

// One ring pass of p - 1 steps: at step k, send part (first - k) mod p to the next rank and
// receive part (first - k - 1) mod p from the previous one, adding it to this rank's part
// (reduce-scatter) or taking it (allgather). What a rank sends at step k + 1 is what it just
// received (or summed), so that vector is forwarded as it is, without a copy. Sums and copies
// into the rank's buffer are jobs charged at reduce_flops_per_s (one operation per element),
// so they run on the job threads like any other local work.
Task<> ring_pass(CollContext c, CollBuf b, std::uint64_t tag, bool add, int first) {
  return b.has_data() ? ring_pass_data(c, b, tag, add, first)
                      : ring_pass_sized(c, b, tag, add, first);
}

Task<> tree_allreduce(CollContext c, CollBuf b) {
  const int p = c.size();
  const int r = c.rank;
  const std::uint64_t bytes = b.elements * b.element_bytes;
  // Binomial reduce to rank 0.
  for (int mask = 1; mask < p; mask <<= 1) {
    if (r & mask) {
      co_await c.sim->send_and_wait(c.node(r), c.node(r - mask),
                                    c.tag + static_cast<std::uint64_t>(mask), bytes,
                                    copy_part(b, 0, b.elements), /*rendezvous=*/true);
      break;
    }
    if (r + mask < p) {
      const Message m = co_await c.sim->recv(c.node(r), c.node(r + mask),
                                             c.tag + static_cast<std::uint64_t>(mask));
      co_await absorb(c.sim, c.node(r), c.reduce_flops_per_s, b, 0, b.elements, m, true);
    }
  }
  CollContext bc = c;
  bc.tag = c.tag + kPhase;
  co_await broadcast(bc, b, 0);
}

Task<> halving_doubling_allreduce(CollContext c, CollBuf b) {
  const int p = c.size();
  const int r = c.rank;
  int pof2 = 1;
  while (pof2 * 2 <= p) pof2 *= 2;
  const int rem = p - pof2;
  const std::uint64_t all_bytes = b.elements * b.element_bytes;
  // Fold the first 2*rem ranks in pairs so that pof2 ranks remain (MPICH's scheme).
  int newrank = -1;
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      c.sim->send(c.node(r), c.node(r + 1), c.tag, all_bytes, copy_part(b, 0, b.elements));
    } else {
      const Message m = co_await c.sim->recv(c.node(r), c.node(r - 1), c.tag);
      co_await absorb(c.sim, c.node(r), c.reduce_flops_per_s, b, 0, b.elements, m, true);
      newrank = r / 2;
    }
  } else {
    newrank = r - rem;
  }
  auto real_rank = [rem](int nr) { return nr < rem ? 2 * nr + 1 : nr + rem; };
  if (newrank >= 0) {
    // Reduce-scatter by recursive halving over pof2 parts.
    int lo = 0;
    int hi = pof2;
    int step = 0;
    for (int mask = pof2 / 2; mask >= 1; mask /= 2, ++step) {
      const int partner = real_rank(newrank ^ mask);
      const int mid = (lo + hi) / 2;
      const bool lower = (newrank & mask) == 0;
      const int send_lo = lower ? mid : lo;
      const int send_hi = lower ? hi : mid;
      const std::uint64_t sb = part_range(b.elements, pof2, send_lo).first;
      const std::uint64_t se = part_range(b.elements, pof2, send_hi - 1).second;
      const std::uint64_t tag = c.tag + kPhase + static_cast<std::uint64_t>(step);
      c.sim->send(c.node(r), c.node(partner), tag, (se - sb) * b.element_bytes,
                  copy_part(b, sb, se),
                  /*rendezvous=*/true);
      if (lower) {
        hi = mid;
      } else {
        lo = mid;
      }
      const std::uint64_t kb = part_range(b.elements, pof2, lo).first;
      const std::uint64_t ke = part_range(b.elements, pof2, hi - 1).second;
      const Message m = co_await c.sim->recv(c.node(r), c.node(partner), tag);
      co_await absorb(c.sim, c.node(r), c.reduce_flops_per_s, b, kb, ke, m, true);
    }
    // Allgather by recursive doubling: exchange the owned range with a partner, doubling it.
    step = 0;
    for (int mask = 1; mask < pof2; mask *= 2, ++step) {
      const int partner_new = newrank ^ mask;
      const int partner = real_rank(partner_new);
      const std::uint64_t sb = part_range(b.elements, pof2, lo).first;
      const std::uint64_t se = part_range(b.elements, pof2, hi - 1).second;
      const std::uint64_t tag = c.tag + 2 * kPhase + static_cast<std::uint64_t>(step);
      c.sim->send(c.node(r), c.node(partner), tag, (se - sb) * b.element_bytes,
                  copy_part(b, sb, se),
                  /*rendezvous=*/true);
      const int width = hi - lo;
      const int plo = (partner_new & mask) ? lo + width : lo - width;
      const std::uint64_t rb = part_range(b.elements, pof2, plo).first;
      const std::uint64_t re = part_range(b.elements, pof2, plo + width - 1).second;
      const Message m = co_await c.sim->recv(c.node(r), c.node(partner), tag);
      co_await absorb(c.sim, c.node(r), c.reduce_flops_per_s, b, rb, re, m, false);
      lo = std::min(lo, plo);
      hi = lo + 2 * width;
    }
  }
  // Unfold: the odd rank of each folded pair returns the result to its even partner.
  if (r < 2 * rem) {
    const std::uint64_t tag = c.tag + 3 * kPhase;
    if (r % 2 == 1) {
      c.sim->send(c.node(r), c.node(r - 1), tag, all_bytes, copy_part(b, 0, b.elements));
    } else {
      const Message m = co_await c.sim->recv(c.node(r), c.node(r + 1), tag);
      co_await absorb(c.sim, c.node(r), c.reduce_flops_per_s, b, 0, b.elements, m, false);
    }
  }
}

}  // namespace

std::string allreduce_problem(AllreduceAlgo algo, int ranks, int per_machine,
                              std::string_view ranks_are, std::string_view machine_size) {
  if (algo != AllreduceAlgo::kHierarchical || ranks <= 1 || per_machine < 1 ||
      ranks % per_machine == 0) {
    return {};
  }
  return fmt::format(
      "the hierarchical allreduce needs whole machines: {} {} are not a multiple "
      "of {} {}",
      ranks, ranks_are, machine_size, per_machine);
}

namespace {

Task<> hierarchical_allreduce(CollContext c, CollBuf b, int g) {
  const int p = c.size();
  if (g < 1 || p % g != 0) {
    throw std::logic_error(
        "hierarchical allreduce: the group size must be a multiple of the machine size");
  }
  const int machine = c.rank / g;
  const int local = c.rank % g;
  std::vector<int> intra(static_cast<std::size_t>(g));
  for (int i = 0; i < g; ++i) intra[static_cast<std::size_t>(i)] = c.node(machine * g + i);
  std::vector<int> inter(static_cast<std::size_t>(p / g));
  for (int m = 0; m < p / g; ++m) inter[static_cast<std::size_t>(m)] = c.node(m * g + local);

  CollContext ic = c;
  ic.group = intra;
  ic.rank = local;
  co_await ring_reduce_scatter(ic, b);
  // This rank now holds the machine's sum of part (local + 1) mod g; allreduce it across machines.
  const auto [pb, pe] = part_range(b.elements, g, mod(local + 1, g));
  CollBuf part = b.has_data() ? CollBuf::real(b.data.subspan(pb, pe - pb), b.element_bytes)
                              : CollBuf::sized(pe - pb, b.element_bytes);
  CollContext xc = c;
  xc.group = inter;
  xc.rank = machine;
  xc.tag = c.tag + 4 * kPhase;
  co_await allreduce(xc, part, AllreduceAlgo::kRing);
  ic.tag = c.tag + 8 * kPhase;
  co_await ring_allgather_after_rs(ic, b);
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> part_range(std::uint64_t n, int q, int i) {
  return Parts(n, q).range(i);
}

Task<> ring_reduce_scatter(CollContext c, CollBuf b) {
  const int p = c.size();
  if (p == 1) co_return;
  const int r = c.rank;
  co_await ring_pass(c, b, c.tag, true, r);
}

Task<> ring_allgather_after_rs(CollContext c, CollBuf b) {
  const int p = c.size();
  if (p == 1) co_return;
  const int r = c.rank;
  co_await ring_pass(c, b, c.tag + kPhase, false, r + 1);
}

Task<> allgather(CollContext c, CollBuf b) {
  const int p = c.size();
  if (p == 1) co_return;
  const int r = c.rank;
  co_await ring_pass(c, b, c.tag, false, r);
}

Task<> reduce_scatter(CollContext c, CollBuf b) {
  const int p = c.size();
  if (p == 1) co_return;
  const int r = c.rank;
  co_await ring_pass(c, b, c.tag, true, r - 1);
}

Task<> broadcast(CollContext c, CollBuf b, int root) {
  const int p = c.size();
  if (p == 1) co_return;
  const int vr = mod(c.rank - root, p);
  const std::uint64_t bytes = b.elements * b.element_bytes;
  int mask = 1;
  while (mask < p) {
    if (vr & mask) {
      const Message m = co_await c.sim->recv(c.node(c.rank), c.node(mod(vr - mask + root, p)),
                                             c.tag + static_cast<std::uint64_t>(mask));
      co_await absorb(c.sim, c.node(c.rank), c.reduce_flops_per_s, b, 0, b.elements, m, false);
      break;
    }
    mask <<= 1;
  }
  mask >>= 1;
  while (mask > 0) {
    if (vr + mask < p) {
      co_await c.sim->send_and_wait(c.node(c.rank), c.node(mod(vr + mask + root, p)),
                                    c.tag + static_cast<std::uint64_t>(mask), bytes,
                                    copy_part(b, 0, b.elements), /*rendezvous=*/true);
    }
    mask >>= 1;
  }
}

Task<> allreduce(CollContext c, CollBuf b, AllreduceAlgo algo, int per_machine) {
  if (c.size() == 1) co_return;
  switch (algo) {
    case AllreduceAlgo::kRing:
      co_await ring_reduce_scatter(c, b);
      co_await ring_allgather_after_rs(c, b);
      break;
    case AllreduceAlgo::kTree:
      co_await tree_allreduce(c, b);
      break;
    case AllreduceAlgo::kHalvingDoubling:
      co_await halving_doubling_allreduce(c, b);
      break;
    case AllreduceAlgo::kHierarchical:
      co_await hierarchical_allreduce(c, b, per_machine);
      break;
  }
}

Task<> ps_push_pull(CollContext c, CollBuf b, std::span<const int> servers) {
  const int k = static_cast<int>(servers.size());
  const int me = c.node(c.rank);
  for (int s = 0; s < k; ++s) {
    const auto [pb, pe] = part_range(b.elements, k, s);
    c.sim->send(me, servers[static_cast<std::size_t>(s)], c.tag, (pe - pb) * b.element_bytes,
                copy_part(b, pb, pe));
  }
  for (int s = 0; s < k; ++s) {
    const auto [pb, pe] = part_range(b.elements, k, s);
    const Message m =
        co_await c.sim->recv(me, servers[static_cast<std::size_t>(s)], c.tag + kPhase);
    co_await absorb(c.sim, me, c.reduce_flops_per_s, b, pb, pe, m, false);
  }
}

Task<> ps_serve_step(PsServerStep s, std::span<float> sum, std::function<Task<>()> update) {
  const auto [pb, pe] = part_range(s.total, s.shards, s.shard);
  const std::uint64_t n = pe - pb;
  const CollBuf out = s.numerics ? CollBuf::real(sum) : CollBuf::sized(n);
  if (s.numerics && sum.size() != n) throw std::logic_error("ps_serve_step: wrong buffer size");
  std::fill(sum.begin(), sum.end(), 0.0f);
  for (int w : s.workers) {
    const Message m = co_await s.sim->recv(s.node, w, s.tag);
    co_await absorb(s.sim, s.node, s.reduce_flops_per_s, out, 0, n, m, true);
  }
  if (update) co_await update();
  for (int w : s.workers) {
    s.sim->send(s.node, w, s.tag + kPhase, n * out.element_bytes, copy_part(out, 0, n));
  }
}

Task<> allgather_payloads(CollContext c, std::shared_ptr<const std::vector<std::uint8_t>> mine,
                          std::uint64_t bytes, Gathered& out) {
  const int p = c.size();
  out.payloads.assign(static_cast<std::size_t>(p), nullptr);
  out.bytes.assign(static_cast<std::size_t>(p), 0);
  out.payloads[static_cast<std::size_t>(c.rank)] = std::move(mine);
  out.bytes[static_cast<std::size_t>(c.rank)] = bytes;
  const int me = c.node(c.rank);
  const int next = c.node(mod(c.rank + 1, p));
  const int prev = c.node(mod(c.rank - 1, p));
  // Step k: pass on rank (r - k)'s payload, receive rank (r - k - 1)'s.
  for (int k = 0; k < p - 1; ++k) {
    const auto send_of = static_cast<std::size_t>(mod(c.rank - k, p));
    const auto recv_of = static_cast<std::size_t>(mod(c.rank - k - 1, p));
    Message m{me,      next,   c.tag + static_cast<std::uint64_t>(k), out.bytes[send_of],
              nullptr, nullptr};
    m.payload = out.payloads[send_of];
    c.sim->send(std::move(m));
    Message got = co_await c.sim->recv(me, prev, c.tag + static_cast<std::uint64_t>(k));
    out.payloads[recv_of] = std::move(got.payload);
    out.bytes[recv_of] = got.bytes;
  }
}

}  // namespace dtsim
