// The headline numbers of a run: what summary.json reports and what [expect] checks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/scenario/scenario.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

// The names of the summary values, in summary.json's order.
const std::vector<std::string_view>& summary_keys();

// The value of summary key `key` for `result`; nullopt where it is not defined (no accuracy
// for a regression task, a target never reached). Precondition: key is in summary_keys().
std::optional<double> summary_value(const RunResult& result, std::string_view key);

// The [expect] checks of `scenario` that `result` fails, one line each: the check, the value
// found, and where the check is written.
std::vector<std::string> failed_expectations(const Scenario& scenario, const RunResult& result);

}  // namespace dtsim
