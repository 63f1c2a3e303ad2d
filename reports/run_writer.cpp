#include "reports/run_writer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "sim/train/health.hpp"
#include "sim/train/summary.hpp"

namespace dtsim {
namespace {

std::string num(double v) { return std::isfinite(v) ? fmt::format("{}", v) : std::string(); }

}  // namespace

std::string metrics_csv_header() {
  return "step,epoch,virtual_time_s,samples,train_loss,test_loss,test_accuracy,bytes_sent,"
         "mean_staleness,max_staleness,consensus_distance,grad_norm,health\n";
}

std::string metrics_csv_row(const EvalPoint& p) {
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", p.step, num(p.epoch),
                     num(p.virtual_time_s), p.samples, num(p.train_loss), num(p.test_loss),
                     num(p.test_accuracy), p.bytes_sent, num(p.mean_staleness),
                     std::isfinite(p.mean_staleness) ? fmt::format("{}", p.max_staleness) : "",
                     num(p.consensus_distance), num(p.grad_norm), to_string(p.health));
}

std::string layers_csv(const RunResult& result) {
  std::string text = "step,layer,grad_norm\n";
  for (const EvalPoint& p : result.evals) {
    for (std::size_t t = 0; t < p.layer_grad_norms.size(); ++t) {
      text += fmt::format("{},{},{}\n", p.step, result.layer_names[t], num(p.layer_grad_norms[t]));
    }
  }
  return text;
}

void write_layers_csv(const std::filesystem::path& dir, const RunResult& result) {
  write_file_atomically(dir / "layers.csv", layers_csv(result));
}

MetricsCsvWriter::MetricsCsvWriter(const std::filesystem::path& dir) : file_(dir / "metrics.csv") {
  file_.write(metrics_csv_header());
  file_.flush();
}

void MetricsCsvWriter::append(const EvalPoint& point) {
  file_.write(metrics_csv_row(point));
  file_.flush();
}

std::string nodes_csv(const RunResult& result) {
  std::string text =
      "node,role,compute_flops_per_s,compute_s,comm_s,idle_s,bytes_sent,bytes_received,steps,"
      "dropped\n";
  for (const NodeStats& n : result.nodes) {
    text += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", n.node, n.role,
                        num(n.compute_flops_per_s), num(n.compute_s), num(n.comm_s), num(n.idle_s),
                        n.bytes_sent, n.bytes_received, n.steps, n.dropped);
  }
  return text;
}

std::string summary_json(const Scenario& scenario, const RunResult& result) {
  nlohmann::ordered_json j;
  j["name"] = scenario.name;
  j["description"] = scenario.description;
  j["scenario_file"] = scenario.file;
  j["seed"] = scenario.seed;
  j["model"] = result.model_summary;
  for (std::string_view key : summary_keys()) {
    const std::optional<double> v = summary_value(result, key);
    nlohmann::json value = nullptr;
    if (v) {
      // Counts are integers in JSON; the rest are numbers.
      const bool count =
          key == "steps" || key == "samples" || key == "bytes_sent_total" || key == "max_staleness";
      value = count ? nlohmann::json(static_cast<std::uint64_t>(*v)) : nlohmann::json(*v);
    }
    j[std::string(key)] = value;
    if (key == "time_to_target_s") {
      j["target_accuracy"] = scenario.train.target_accuracy
                                 ? nlohmann::json(*scenario.train.target_accuracy)
                                 : nlohmann::json(nullptr);
    }
  }
  nlohmann::json histogram = nlohmann::json::array();
  for (const auto& [staleness, updates] : result.staleness_histogram) {
    histogram.push_back({staleness, updates});
  }
  j["staleness_histogram"] = histogram;
  if (result.model_parallel) {
    const ModelParallelStats& mp = *result.model_parallel;
    j["model_parallel"] = {{"kind", mp.kind},
                           {"stages", mp.stages},
                           {"micro_batches", mp.micro_batches},
                           {"tensor_parallel", mp.tensor_parallel},
                           {"data_parallel", mp.data_parallel},
                           {"stage_layers", mp.stage_blocks},
                           {"bubble_fraction", mp.bubble_fraction},
                           {"stage_bubble", mp.stage_bubble},
                           {"peak_in_flight", mp.peak_in_flight},
                           {"activation_bytes", mp.activation_bytes},
                           {"activation_bytes_per_step", mp.activation_bytes_per_step}};
  }
  if (result.emulation) {
    const EmulationStats& e = *result.emulation;
    const auto number = [](double x) {
      return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x);
    };
    j["emulation"] = {{"ranks", e.ranks},
                      {"exchange", e.exchange},
                      {"steps", e.steps},
                      {"measured_step_s", e.measured_step_s},
                      {"simulated_step_s", e.simulated_step_s},
                      {"measured_compute_share", e.measured_compute_share},
                      {"simulated_compute_share", e.simulated_compute_share},
                      {"measured_comm_share", e.measured_comm_share},
                      {"simulated_comm_share", e.simulated_comm_share},
                      {"measured_accuracy", number(e.measured_accuracy)},
                      {"simulated_accuracy", number(e.simulated_accuracy)},
                      {"params_identical", e.params_identical},
                      {"max_abs_diff", number(e.max_abs_diff)},
                      {"relative_diff", number(e.relative_diff)}};
  }
  if (scenario.teaching.lesson > 0) {  // a demo's narrative, for compare.html too
    j["teaching"] = {{"lesson", scenario.teaching.lesson},
                     {"look_at", scenario.teaching.look_at},
                     {"questions", scenario.teaching.questions}};
  }
  if (scenario.strategy.checkpoint_every > 0) {
    j["checkpoints"] = {{"every", scenario.strategy.checkpoint_every},
                        {"taken", result.checkpoints},
                        {"time_s", result.checkpoint_s}};
  }
  if (!result.faults.empty()) {
    const auto time = [](double t) {
      return std::isnan(t) ? nlohmann::json(nullptr) : nlohmann::json(t);
    };
    nlohmann::json faults = nlohmann::json::array();
    for (const FaultRecord& f : result.faults) {
      faults.push_back({{"kind", f.kind},
                        {"node", f.node},
                        {"what", f.what},
                        {"at_s", f.at_s},
                        {"end_s", time(f.end_s)},
                        {"detected_s", time(f.detected_s)},
                        {"rejoined_s", time(f.rejoined_s)},
                        {"cost_s", f.cost_s},
                        {"lost_compute_s", f.lost_compute_s},
                        {"lost_gradients", f.lost_gradients},
                        {"lost_updates", f.lost_updates},
                        {"paused_transfers", f.paused_transfers},
                        {"retransmissions", f.retransmissions},
                        {"retransmitted_bytes", f.retransmitted_bytes}});
    }
    j["faults"] = faults;
  }
  j["health"] = to_string(result.health);
  j["health_reason"] =
      result.health == Health::kOk ? nlohmann::json(nullptr) : nlohmann::json(result.health_reason);
  j["health_step"] =
      result.health == Health::kOk ? nlohmann::json(nullptr) : nlohmann::json(result.health_step);
  j["diverged"] = result.diverged;
  j["diverged_reason"] =
      result.diverged ? nlohmann::json(result.diverged_reason) : nlohmann::json(nullptr);
  j["wall"] = {{"wall_time_s", result.wall_time_s},    {"load_s", result.load_wall_s},
               {"simulate_s", result.simulate_wall_s}, {"eval_s", result.eval_wall_s},
               {"jobs_s", result.jobs_wall_s},         {"threads", result.threads}};
  return j.dump(2) + "\n";
}

void write_nodes_csv(const std::filesystem::path& dir, const RunResult& result) {
  write_file_atomically(dir / "nodes.csv", nodes_csv(result));
}

void write_summary_json(const std::filesystem::path& dir, const Scenario& scenario,
                        const RunResult& result) {
  write_file_atomically(dir / "summary.json", summary_json(scenario, result));
}

}  // namespace dtsim
