// Progress of a run on stderr: on a terminal, a bar with an ETA redrawn in place (at most ten
// times a second) and a line per evaluation; elsewhere, plain lines, one per evaluation.
#pragma once

#include <chrono>
#include <string>

#include "sim/train/observer.hpp"

namespace dtsim::app {

class ProgressPrinter : public SimObserver {
 public:
  ProgressPrinter();
  void on_run_start(std::uint64_t total_steps) override { total_ = total_steps; }
  void on_step_end(std::uint64_t step, SimTime t) override;
  void on_evaluation(const EvalPoint& p) override;

 private:
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::uint64_t total_ = 0;
  bool bar_shown_ = false;
};

// A metric for people: "n/a" where it is not defined (NaN).
std::string shown(double value, int width, int precision);

}  // namespace dtsim::app
