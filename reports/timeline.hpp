// The first steps of a run as a timeline, for report.html: each node's compute spans, by kind
// (forward, backward, gradient, update, other), recorded as the run goes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/train/observer.hpp"

namespace dtsim {

struct TimelineSpan {
  int node = 0;
  std::string kind;   // "forward", "backward", "gradient", "update" or "other"
  std::string label;  // the span's own ("forward 3")
  double start_s = 0;
  double end_s = 0;
};

// Records the compute spans of the run's first `steps` global steps (at most `max_spans`).
class TimelineRecorder : public SimObserver {
 public:
  explicit TimelineRecorder(std::uint64_t steps = 2, std::size_t max_spans = 4000)
      : steps_(steps), max_spans_(max_spans) {}
  void on_compute(int node, const char* what, SimTime start, SimTime end) override;
  void on_step_end(std::uint64_t step, SimTime /*t*/) override {
    if (step >= steps_) done_ = true;
  }
  const std::vector<TimelineSpan>& spans() const { return spans_; }

 private:
  std::uint64_t steps_;
  std::size_t max_spans_;
  bool done_ = false;
  std::vector<TimelineSpan> spans_;
};

}  // namespace dtsim
