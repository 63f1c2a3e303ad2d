// compare.html: several finished runs side by side (a sweep's points, or `dtsim compare`).
//
// Reads each run's summary.json and metrics.csv back from its folder, overlays the curves and
// tabulates final accuracy, time-to-target, throughput, bytes (in all and per training
// sample, which means the same in every sync mode) and speed-up against the first run, each
// row linked to its run's report.html; opens with the scenario's description and a finding
// in plain words. Self-contained and offline like report.html; scenario text is inert data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sim/train/run_result.hpp"

namespace dtsim {

struct FinishedRun {
  std::filesystem::path dir;
  std::string label;  // what tells it apart (a sweep point's label, or its name and folder)
  std::string name;
  std::string description;  // the scenario's
  // A demo's [teaching] table (lesson 0: none).
  int lesson = 0;
  std::vector<std::string> look_at;
  std::vector<std::string> questions;
  std::vector<EvalPoint> evals;
  double final_test_accuracy = 0;  // NaN if not defined
  double best_test_accuracy = 0;
  double virtual_time_s = 0;
  double time_to_target_s = 0;  // NaN if never reached
  double throughput_samples_per_s = 0;
  double bytes_sent_total = 0;
  double steps = 0;
  double samples = 0;         // training samples processed
  double mean_staleness = 0;  // NaN without a global version (local SGD, gossip)
  bool diverged = false;
  std::string health = "ok";  // summary.json's health (ok when absent: older runs)
  std::string failed;         // not empty: the run did not finish (a sweep point that failed)
};

// Reads a run folder written by `dtsim run`. Throws InputError naming the file that is
// missing or malformed.
FinishedRun read_finished_run(const std::filesystem::path& dir);

// `page_dir`: the folder the page is written to, for the links to each run's report.html
// (relative, so the folder can be moved as a whole); empty: no links.
std::string compare_html(const std::vector<FinishedRun>& runs, const std::string& title,
                         const std::filesystem::path& page_dir = {});
void write_compare_html(const std::filesystem::path& path, const std::vector<FinishedRun>& runs,
                        const std::string& title);

// The comparison's finding in plain words: which run reached the target first and how much
// sooner, which ended most accurate, and which did not get there.
std::string compare_finding(const std::vector<FinishedRun>& runs);

}  // namespace dtsim
