#include "reports/run_writer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace dtsim {
namespace {

std::string num(double v) { return std::isfinite(v) ? fmt::format("{}", v) : std::string(); }

nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

std::string metrics_csv_header() {
  return "step,epoch,virtual_time_s,samples,train_loss,test_loss,test_accuracy,bytes_sent,"
         "mean_staleness,max_staleness\n";
}

std::string metrics_csv_row(const EvalPoint& p) {
  return fmt::format("{},{},{},{},{},{},{},{},{},{}\n", p.step, num(p.epoch), num(p.virtual_time_s),
                     p.samples, num(p.train_loss), num(p.test_loss), num(p.test_accuracy),
                     p.bytes_sent, num(p.mean_staleness), p.max_staleness);
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
      "node,role,compute_flops_per_s,compute_s,comm_s,idle_s,bytes_sent,bytes_received,steps\n";
  for (const NodeStats& n : result.nodes) {
    text += fmt::format("{},{},{},{},{},{},{},{},{}\n", n.node, n.role, num(n.compute_flops_per_s),
                        num(n.compute_s), num(n.comm_s), num(n.idle_s), n.bytes_sent,
                        n.bytes_received, n.steps);
  }
  return text;
}

std::string summary_json(const Scenario& scenario, const RunResult& result) {
  double best = std::numeric_limits<double>::quiet_NaN();
  for (const EvalPoint& p : result.evals) {
    if (std::isfinite(p.test_accuracy) && !(p.test_accuracy <= best)) best = p.test_accuracy;
  }
  const EvalPoint last = result.evals.empty() ? EvalPoint{} : result.evals.back();
  std::uint64_t bytes = 0;
  for (const NodeStats& n : result.nodes) bytes += n.bytes_sent;
  nlohmann::ordered_json j;
  j["name"] = scenario.name;
  j["description"] = scenario.description;
  j["scenario_file"] = scenario.file;
  j["seed"] = scenario.seed;
  j["model"] = result.model_summary;
  j["final_test_accuracy"] = json_number(last.test_accuracy);
  j["best_test_accuracy"] = json_number(best);
  j["final_test_loss"] = json_number(last.test_loss);
  j["virtual_time_s"] = result.virtual_time_s;
  j["time_to_target_s"] =
      result.time_to_target_s ? nlohmann::json(*result.time_to_target_s) : nlohmann::json(nullptr);
  j["target_accuracy"] = scenario.train.target_accuracy
                             ? nlohmann::json(*scenario.train.target_accuracy)
                             : nlohmann::json(nullptr);
  j["steps"] = result.steps;
  j["samples"] = result.samples;
  j["throughput_samples_per_s"] =
      result.virtual_time_s > 0
          ? json_number(static_cast<double>(result.samples) / result.virtual_time_s)
          : nlohmann::json(nullptr);
  j["bytes_sent_total"] = bytes;
  j["mean_staleness"] = last.mean_staleness;
  j["max_staleness"] = last.max_staleness;
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
