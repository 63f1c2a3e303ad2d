// Writers for a run's output folder: metrics.csv (streamed), nodes.csv and summary.json.
//
// Columns and keys are those of docs/outputs.md. Numbers are printed in their shortest
// round-trip form, so the same run gives byte-identical files; NaN (e.g. the accuracy of a
// regression task, or the training loss before the first step) is an empty CSV cell and a
// JSON null. Wall-clock figures appear only in summary.json's "wall" object.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "reports/atomic_file.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/observer.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

// Streams metrics.csv: the header on construction, one flushed row per evaluation. An
// observer of the simulation, so rows are written as the run produces them.
class MetricsCsvWriter : public SimObserver {
 public:
  explicit MetricsCsvWriter(const std::filesystem::path& dir);
  void append(const EvalPoint& point);
  void on_evaluation(const EvalPoint& point) override { append(point); }
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
};

std::string metrics_csv_header();
std::string metrics_csv_row(const EvalPoint& point);
std::string nodes_csv(const RunResult& result);
// layers.csv: each evaluation's mean gradient norm per parameter tensor (step,layer,grad_norm).
std::string layers_csv(const RunResult& result);
std::string summary_json(const Scenario& scenario, const RunResult& result);

void write_nodes_csv(const std::filesystem::path& dir, const RunResult& result);
void write_layers_csv(const std::filesystem::path& dir, const RunResult& result);
void write_summary_json(const std::filesystem::path& dir, const Scenario& scenario,
                        const RunResult& result);

}  // namespace dtsim
