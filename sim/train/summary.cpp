#include "sim/train/summary.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace dtsim {
namespace {

std::optional<double> defined(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::string where(const SourcePlace& p) {
  if (p.file.empty()) return "";
  if (p.line == 0) return fmt::format(" ({})", p.file);
  return fmt::format(" ({}:{}:{})", p.file, p.line, p.column);
}

}  // namespace

const std::vector<std::string_view>& summary_keys() {
  static const std::vector<std::string_view> keys = {"final_test_accuracy",
                                                     "best_test_accuracy",
                                                     "final_test_loss",
                                                     "virtual_time_s",
                                                     "time_to_target_s",
                                                     "steps",
                                                     "samples",
                                                     "throughput_samples_per_s",
                                                     "bytes_sent_total",
                                                     "mean_staleness",
                                                     "max_staleness"};
  return keys;
}

std::optional<double> summary_value(const RunResult& r, std::string_view key) {
  const EvalPoint last = r.evals.empty() ? EvalPoint{} : r.evals.back();
  if (key == "final_test_accuracy") return defined(last.test_accuracy);
  if (key == "best_test_accuracy") {
    std::optional<double> best;
    for (const EvalPoint& p : r.evals) {
      if (std::isfinite(p.test_accuracy) && (!best || p.test_accuracy > *best))
        best = p.test_accuracy;
    }
    return best;
  }
  if (key == "final_test_loss") return defined(last.test_loss);
  if (key == "virtual_time_s") return r.virtual_time_s;
  if (key == "time_to_target_s") return r.time_to_target_s;
  if (key == "steps") return static_cast<double>(r.steps);
  if (key == "samples") return static_cast<double>(r.samples);
  if (key == "throughput_samples_per_s") {
    return r.virtual_time_s > 0 ? defined(static_cast<double>(r.samples) / r.virtual_time_s)
                                : std::nullopt;
  }
  if (key == "bytes_sent_total") {
    std::uint64_t bytes = 0;
    for (const NodeStats& n : r.nodes) bytes += n.bytes_sent;
    return static_cast<double>(bytes);
  }
  if (key == "mean_staleness" || key == "max_staleness") {
    if (r.staleness_histogram.empty()) return std::nullopt;
    double sum = 0;
    double count = 0;
    for (const auto& [staleness, updates] : r.staleness_histogram) {
      sum += static_cast<double>(staleness) * static_cast<double>(updates);
      count += static_cast<double>(updates);
    }
    return key == "mean_staleness" ? sum / count
                                   : static_cast<double>(r.staleness_histogram.back().first);
  }
  throw std::invalid_argument(fmt::format("summary_value: unknown key {}", key));
}

std::vector<std::string> failed_expectations(const Scenario& scenario, const RunResult& result) {
  std::vector<std::string> failures;
  for (const Expectation& e : scenario.expect) {
    const std::optional<double> v = summary_value(result, e.key);
    if (!v) {
      failures.push_back(
          fmt::format("expect {} {}: it has no value (never reached or not "
                      "defined for this run){}",
                      e.key, e.text, where(e.place)));
      continue;
    }
    if (!e.holds(*v)) {
      failures.push_back(
          fmt::format("expect {} {}: found {}{}", e.key, e.text, *v, where(e.place)));
    }
  }
  return failures;
}

}  // namespace dtsim
