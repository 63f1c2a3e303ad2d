// dtsim collective: one collective on its own, in time-only mode: its simulated and wall time.
#include <fmt/format.h>

#include <map>
#include <memory>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "sim/des/units.hpp"
#include "sim/net/collective_run.hpp"

namespace dtsim::app {
namespace {

struct CollectiveOptions {
  std::string op = "allreduce";
  std::string algo = "ring";
  int nodes = 0;
  std::string bytes;
  std::string latency = "10us";
  std::string bandwidth = "25Gbps";
  std::string topology = "star";
  int servers = 1;
  int nodes_per_machine = 4;
  std::string intra_latency = "1us";
  std::string intra_bandwidth = "600 GB/s";
  bool json = false;
  CLI::Option* servers_option = nullptr;
};

CollectiveSpec spec_of(const CollectiveOptions& opt) {
  CollectiveSpec spec;
  if (opt.servers_option->count() > 0 && opt.op != "ps") {
    throw InputError({}, "--servers", "only --op ps has servers");
  }
  spec.op = *value_named(collective_op_names(), opt.op);
  spec.algo = *value_named(allreduce_algo_names(), opt.algo);
  spec.nodes = opt.nodes;
  spec.servers = opt.servers;
  spec.bytes = static_cast<std::uint64_t>(parse_option("--bytes", opt.bytes, parse_bytes));
  NetworkConfig& net = spec.network;
  net.topology = *value_named(topology_names(), opt.topology);
  net.link.latency = parse_option("--latency", opt.latency, parse_duration);
  net.link.bandwidth = parse_option("--bandwidth", opt.bandwidth, parse_bandwidth);
  net.intra.latency = parse_option("--intra-latency", opt.intra_latency, parse_duration);
  net.intra.bandwidth = parse_option("--intra-bandwidth", opt.intra_bandwidth, parse_bandwidth);
  net.nodes_per_machine = opt.nodes_per_machine;
  if (spec.op == CollectiveOp::kAllreduce) {
    const std::string problem = allreduce_problem(spec.algo, spec.nodes, net.nodes_per_machine,
                                                  "nodes", "--nodes-per-machine");
    if (!problem.empty()) throw InputError({}, "--nodes", problem);
  }
  // The network's own checks, named by this command's options.
  const int servers = spec.op == CollectiveOp::kPs ? spec.servers : 0;
  if (const auto problem = network_problem(net, spec.nodes + servers)) {
    static const std::map<std::string, std::string> options = {
        {"network.topology", "--topology"},
        {"network.bandwidth", "--bandwidth"},
        {"network.intra_bandwidth", "--intra-bandwidth"},
        {"network.nodes_per_machine", "--nodes-per-machine"},
        {"cluster.workers", "--nodes"}};
    const auto option = options.find(problem->key);
    throw InputError({}, option != options.end() ? option->second : problem->key, problem->message);
  }
  return spec;
}

int collective(const CollectiveOptions& opt) {
  const CollectiveSpec spec = spec_of(opt);
  const CollectiveRun r = run_collective(spec);
  const bool allreduce = spec.op == CollectiveOp::kAllreduce;
  if (opt.json) {
    fmt::print(
        "{{\"op\": \"{}\", \"algo\": \"{}\", \"nodes\": {}, \"bytes\": {}, "
        "\"simulated_time_s\": {}, \"wall_time_s\": {:.6f}, \"bytes_sent_per_node\": {}, "
        "\"bytes_sent_total\": {}, \"messages\": {}, \"events\": {}}}\n",
        opt.op, allreduce ? opt.algo : std::string("-"), spec.nodes, spec.bytes, r.simulated_time_s,
        r.wall_time_s, r.bytes_sent_per_node, r.bytes_sent_total, r.messages, r.events);
    return kExitOk;
  }
  fmt::print("{}{} of {} bytes over {} nodes, {} topology\n", opt.op,
             allreduce ? " (" + opt.algo + ")" : std::string(), spec.bytes, spec.nodes,
             opt.topology);
  fmt::print("simulated time   {:.9f} s\n", r.simulated_time_s);
  fmt::print("wall time        {:.3f} s ({} messages, {} events)\n", r.wall_time_s, r.messages,
             r.events);
  // (The busiest node: in a broadcast the root sends to each of its children, the leaves
  // nothing; in the symmetric collectives every node sends the same.)
  fmt::print("bytes sent       {} by the busiest node, {} in all\n",
             with_prefix(static_cast<double>(r.bytes_sent_per_node), "B"),
             with_prefix(static_cast<double>(r.bytes_sent_total), "B"));
  return kExitOk;
}

}  // namespace

Command add_collective_command(CLI::App& app) {
  auto opt = std::make_shared<CollectiveOptions>();
  CLI::App* cmd = app.add_subcommand(
      "collective",
      "Simulate one collective in time-only mode and print its simulated and wall time");
  add_choice(cmd, "--op", opt->op, collective_op_names(), "Operation");
  add_choice(cmd, "--algo", opt->algo, allreduce_algo_names(), "Allreduce algorithm");
  cmd->add_option("--nodes", opt->nodes, "Participants (workers for --op ps)")
      ->required()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--bytes", opt->bytes,
                  "Vector size per node, with a unit (\"100MB\", \"64 MiB\")")
      ->required();
  cmd->add_option("--latency", opt->latency, "Per-link latency (default 10us)");
  cmd->add_option("--bandwidth", opt->bandwidth,
                  "Per-link bandwidth, each direction (default 25Gbps)");
  add_choice(cmd, "--topology", opt->topology, topology_names(), "Topology");
  opt->servers_option = cmd->add_option("--servers", opt->servers, "Server shards for --op ps")
                            ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--nodes-per-machine", opt->nodes_per_machine,
                  "Machine size: of the hierarchical topology and of the hierarchical algorithm")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--intra-latency", opt->intra_latency, "hierarchical: latency inside a machine");
  cmd->add_option("--intra-bandwidth", opt->intra_bandwidth,
                  "hierarchical: bandwidth inside a machine");
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  return {cmd, [opt] { return collective(*opt); }};
}

}  // namespace dtsim::app
