// report.html: one self-contained page a person wants to read, that works offline.
//
// Built from reports/report_template.html with the chart library (Chart.js, from the npm
// registry, pinned in reports/web/package-lock.json) compiled in. The run's data goes into the
// page as JSON and is put on screen with textContent only, so any text from the scenario is
// inert; the only text placed into HTML directly (the title) is escaped.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "reports/html_escape.hpp"
#include "reports/timeline.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

// &, <, >, " and ' as HTML entities.

// The plain-language account of where the time went, one sentence each.
std::vector<std::string> time_account(const Scenario& scenario, const RunResult& result);
// The run's result in a sentence or two, at the top of report.html: accuracy against the
// target, virtual time, whether computation or communication limits it, staleness, faults.
std::string run_finding(const Scenario& scenario, const RunResult& result);

// `timeline` (may be empty): the first steps' compute spans, drawn node by node.
std::string report_html(const Scenario& scenario, const RunResult& result,
                        const std::vector<TimelineSpan>& timeline = {});
void write_report_html(const std::filesystem::path& dir, const Scenario& scenario,
                       const RunResult& result, const std::vector<TimelineSpan>& timeline = {});

}  // namespace dtsim
