// libFuzzer target: the scenario loader on arbitrary text. Built by scripts/fuzz (clang with
// -fsanitize=fuzzer,address,undefined); any crash, hang or sanitizer report is a bug. Bad input
// may only be refused with a ScenarioError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/scenario/scenario.hpp"
#include "sim/train/health.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const dtsim::Scenario s = dtsim::parse_scenario(text, "fuzz.toml", {}, true);
    (void)dtsim::resolved_settings(s);
    (void)dtsim::stability_warnings(s);
    // A sweep's points, as `dtsim sweep` loads them (the first few: a grid may be huge).
    int n = 0;
    for (const dtsim::SweepPoint& p : dtsim::expand_sweep(s)) {
      if (++n > 8) break;
      try {
        (void)dtsim::parse_scenario(text, "fuzz.toml", p.overrides);
      } catch (const dtsim::ScenarioError&) {
      }
    }
  } catch (const dtsim::ScenarioError&) {
  }
  return 0;
}
