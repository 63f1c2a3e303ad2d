// dtsim list: what a scenario can choose, from the same name tables the scenario reader uses.
#include <fmt/format.h>

#include <algorithm>

#include "app/commands.hpp"
#include "app/exit_codes.hpp"
#include "sim/net/collective_run.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/summary.hpp"

namespace dtsim::app {
namespace {

template <typename Enum>
std::string names(NameTable<Enum> table) {
  return joined_names(table, ", ");
}

// "allreduce: bsp, local-sgd; ps: bsp, asp, ssp, delayed; gossip: d-psgd, ad-psgd".
std::string sync_modes() {
  std::string out;
  for (const Named<Architecture>& a : architecture_names()) {
    std::vector<std::string> modes;
    for (const StrategyEntry& e : strategy_table()) {
      if (e.architecture == a.value) modes.emplace_back(e.name);
    }
    out += fmt::format("{}{}: {}", out.empty() ? "" : "; ", a.name, fmt::join(modes, ", "));
  }
  return out + fmt::format("; {} also with backup_workers",
                           fmt::join(modes_reading("backup_workers"), ", "));
}

int list() {
  fmt::print("models         {}\n", names(model_names()));
  fmt::print("activations    {}\n", names(activation_names()));
  fmt::print("optimizers     {}\n", names(optimizer_names()));
  fmt::print("schedules      {} (with warmup_steps)\n", names(schedule_names()));
  fmt::print("datasets       {}\n", fmt::join(kDatasetNames, ", "));
  fmt::print("partitions     {} (rows: split {}; columns, blocks: architecture tensor)\n",
             names(partition_names()), joined_names(split_names(), " | "));
  fmt::print("topologies     {}\n", names(topology_names()));
  fmt::print("architectures  {}\n", names(architecture_names()));
  fmt::print("sync modes     {}\n", sync_modes());
  fmt::print("collectives    allreduce algorithms: {}; operations (dtsim collective --op): {}\n",
             names(allreduce_algo_names()), names(collective_op_names()));
  fmt::print("codecs         {}\n", names(codec_names()));
  fmt::print("aggregations   {}\n", names(aggregation_names()));
  fmt::print("faults         {} (byzantine modes: {})\n", names(fault_kind_names()),
             names(byzantine_mode_names()));
  fmt::print("expect keys    {}\n", fmt::join(summary_keys(), ", "));
  return kExitOk;
}

}  // namespace

Command add_list_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("list",
                                     "What a scenario can choose: models, datasets, topologies, "
                                     "strategies, collectives, codecs, aggregation rules, faults");
  return {cmd, [] { return list(); }};
}

}  // namespace dtsim::app
