#include "sim/des/units.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace dtsim {
namespace {

using UnitTable = std::vector<std::pair<std::string_view, double>>;

std::string accepted(const UnitTable& table) {
  std::string list;
  for (const auto& [name, factor] : table) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

double parse_with(std::string_view text, const UnitTable& table, const char* what,
                  double min_positive = 0, double max = 1e30, const char* limits = "") {
  const auto fail = [&](const std::string& why) {
    return UnitError(fmt::format("'{}' is not a valid {}: {} (expected a number and one of: {})",
                                 text, what, why, accepted(table)));
  };
  std::size_t pos = 0;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  double value = 0;
  const char* begin = text.data() + pos;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
  if (ec != std::errc() || end == begin) throw fail("it does not start with a number");
  std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  while (!unit.empty() && unit.back() == ' ') unit.remove_suffix(1);
  if (unit.empty()) throw fail("the unit is missing");
  if (!std::isfinite(value) || value < 0) throw fail("it must be a finite, non-negative number");
  for (const auto& [name, factor] : table) {
    if (unit != name) continue;
    const double v = value * factor;
    if ((min_positive > 0 && v < min_positive) || v > max) throw fail(limits);
    return v;
  }
  throw fail(fmt::format("unknown unit '{}'", unit));
}

}  // namespace

SimTime parse_duration(std::string_view text) {
  static const UnitTable table = {{"ns", 1e-9}, {"us", 1e-6},  {"µs", 1e-6}, {"ms", 1e-3},
                                  {"s", 1.0},   {"min", 60.0}, {"h", 3600.0}};
  return SimTime::from_seconds(
      parse_with(text, table, "duration", 0, 1e9, "it must be at most 1e9 s (about 31 years)"));
}

double parse_flops(std::string_view text) {
  static const UnitTable table = {{"FLOPS", 1.0},  {"KFLOPS", 1e3},  {"MFLOPS", 1e6},
                                  {"GFLOPS", 1e9}, {"TFLOPS", 1e12}, {"PFLOPS", 1e15},
                                  {"FLOP/s", 1.0}, {"GFLOP/s", 1e9}, {"TFLOP/s", 1e12}};
  return parse_with(text, table, "compute speed", 1.0, 1e24,
                    "it must be between 1 FLOPS and 1e24 FLOPS");
}

double parse_bandwidth(std::string_view text) {
  static const UnitTable table = {{"bps", 1.0 / 8},        {"Kbps", 1e3 / 8},
                                  {"Mbps", 1e6 / 8},       {"Gbps", 1e9 / 8},
                                  {"Tbps", 1e12 / 8},      {"B/s", 1.0},
                                  {"KB/s", 1e3},           {"MB/s", 1e6},
                                  {"GB/s", 1e9},           {"TB/s", 1e12},
                                  {"KiB/s", 1024.0},       {"MiB/s", 1048576.0},
                                  {"GiB/s", 1073741824.0}, {"TiB/s", 1099511627776.0}};
  return parse_with(text, table, "bandwidth", 1.0 / 8, 1e18,
                    "it must be between 1 bps and 1e18 B/s");
}

double parse_bytes(std::string_view text) {
  static const UnitTable table = {
      {"B", 1.0},         {"KB", 1e3},           {"MB", 1e6},
      {"GB", 1e9},        {"TB", 1e12},          {"KiB", 1024.0},
      {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  return parse_with(text, table, "size", 0, 1152921504606846976.0, "it must be at most 1 EiB");
}

std::string with_prefix(double v, std::string_view unit) {
  static constexpr std::pair<double, const char*> kPrefixes[] = {
      {1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}};
  for (const auto& [scale, prefix] : kPrefixes) {
    if (v >= scale) return fmt::format("{:.4g} {}{}", v / scale, prefix, unit);
  }
  return fmt::format("{:.4g} {}", v, unit);
}

}  // namespace dtsim
