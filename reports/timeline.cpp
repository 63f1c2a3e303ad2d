#include "reports/timeline.hpp"

#include <string_view>

namespace dtsim {

void TimelineRecorder::on_compute(int node, const char* what, SimTime start, SimTime end) {
  if (done_ || spans_.size() >= max_spans_) return;
  const std::string_view w = what;
  std::string kind = "other";
  for (const char* k : {"forward", "backward", "gradient", "update"}) {
    if (w.starts_with(k)) kind = k;
  }
  spans_.push_back({node, kind, std::string(w), start.seconds(), end.seconds()});
}

}  // namespace dtsim
