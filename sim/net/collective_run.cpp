#include "sim/net/collective_run.hpp"

#include <chrono>
#include <numeric>

namespace dtsim {

CollectiveRun run_collective(const CollectiveSpec& spec, std::vector<std::vector<float>>* data) {
  const auto wall_start = std::chrono::steady_clock::now();
  const int p = spec.nodes;
  const int k = spec.op == CollectiveOp::kPs ? spec.servers : 0;
  Simulation sim(Topology(spec.network, p + k), spec.threads);
  std::vector<int> group(static_cast<std::size_t>(p));
  std::iota(group.begin(), group.end(), 0);
  std::vector<int> servers(static_cast<std::size_t>(k));
  std::iota(servers.begin(), servers.end(), p);
  const std::uint64_t elements =
      data != nullptr ? (*data)[0].size() : (spec.bytes + sizeof(float) - 1) / sizeof(float);
  std::vector<std::vector<float>> sums(static_cast<std::size_t>(k));

  for (int r = 0; r < p; ++r) {
    const CollBuf buf = data != nullptr ? CollBuf::real((*data)[static_cast<std::size_t>(r)])
                                        : CollBuf::sized(elements);
    const CollContext ctx{&sim, group, r, 1, spec.reduce_flops_per_s};
    switch (spec.op) {
      case CollectiveOp::kAllreduce:
        sim.spawn(allreduce(ctx, buf, spec.algo, spec.network.nodes_per_machine));
        break;
      case CollectiveOp::kAllgather:
        sim.spawn(allgather(ctx, buf));
        break;
      case CollectiveOp::kReduceScatter:
        sim.spawn(reduce_scatter(ctx, buf));
        break;
      case CollectiveOp::kBroadcast:
        sim.spawn(broadcast(ctx, buf, 0));
        break;
      case CollectiveOp::kPs:
        sim.spawn(ps_push_pull(ctx, buf, servers));
        break;
    }
  }
  for (int s = 0; s < k; ++s) {
    const auto [b, e] = part_range(elements, k, s);
    if (data != nullptr) sums[static_cast<std::size_t>(s)].resize(e - b);
    PsServerStep step{&sim, p + s, group, s, k, elements, 1, 0.0, data != nullptr};
    sim.spawn(ps_serve_step(step, sums[static_cast<std::size_t>(s)], {}));
  }
  sim.run();

  CollectiveRun run;
  run.simulated_time_s = sim.now().seconds();
  for (int r = 0; r < p; ++r) {
    run.bytes_sent_per_node = std::max(run.bytes_sent_per_node, sim.account(r).bytes_sent);
  }
  for (int r = 0; r < p + k; ++r) run.bytes_sent_total += sim.account(r).bytes_sent;
  run.messages = sim.network().flows_started();
  run.events = sim.events_run();
  run.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return run;
}

}  // namespace dtsim
