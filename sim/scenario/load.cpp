// Loading a scenario: the TOML document, --set overrides, the sections, the cross-checks and,
// for a sweep, every point of the grid.
#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/scenario/sections.hpp"

namespace dtsim {
namespace {

std::string join_errors(const std::vector<InputError>& errors) {
  std::string text;
  for (const auto& e : errors) {
    if (!text.empty()) text += '\n';
    text += e.what();
  }
  return text;
}

// "key.path" of an override, or empty when it is not one.
bool valid_key(const std::string& key) {
  bool ok = !key.empty() && key.front() != '.' && key.back() != '.' &&
            key.find("..") == std::string::npos;
  for (char ch : key) {
    ok =
        ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.');
  }
  return ok;
}

// Sets `key` (a dotted path) of `root` to `value`, creating sections on the way.
void set_path(TomlReader& r, toml::table& root, const std::string& key, const std::string& source,
              toml::node&& value) {
  toml::table* target = &root;
  std::string_view rest = key;
  for (auto dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
    const std::string part(rest.substr(0, dot));
    rest.remove_prefix(dot + 1);
    toml::node* next = target->get(part);
    if (next == nullptr) {
      target->insert(part, toml::table{});
      next = target->get(part);
    }
    target = next->as_table();
    if (target == nullptr) {
      r.errors().emplace_back(SourcePlace{source, 0, 0}, key,
                              fmt::format("'{}' is a value, not a section", part));
      return;
    }
  }
  target->insert_or_assign(std::string(rest), std::move(value));
}

// Every point of the grid must make a valid scenario: try each one now, so that a typo in the
// grid is reported before any point runs.
void check_sweep_points(TomlReader& r, const Scenario& s, const std::string& text,
                        const std::string& file, const std::vector<std::string>& overrides) {
  const bool one_axis = s.sweep.size() == 1;
  const std::string key = one_axis ? "sweep." + s.sweep[0].key : "sweep";
  const SourcePlace place = s.sweep[0].place;
  std::size_t failed = 0;
  const std::vector<SweepPoint> points = expand_sweep(s);
  for (const SweepPoint& point : points) {
    std::vector<std::string> with = overrides;
    with.insert(with.end(), point.overrides.begin(), point.overrides.end());
    try {
      parse_scenario(text, file, with, /*check_sweep=*/false);
    } catch (const ScenarioError& e) {
      if (++failed > 10) continue;
      for (const InputError& err : e.errors()) {
        r.errors().emplace_back(
            place, key,
            fmt::format("the {} {} does not work: {}", one_axis ? "value" : "point", point.label,
                        err.message()));
      }
    }
  }
  if (failed > 10) {
    r.errors().emplace_back(
        place, key,
        fmt::format("and {} more points of {} do not work", failed - 10, points.size()));
  }
}

}  // namespace

ScenarioError::ScenarioError(std::vector<InputError> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

void apply_overrides(TomlReader& r, toml::table& root, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const auto eq = o.find('=');
    const std::string key = eq == std::string::npos ? o : o.substr(0, eq);
    if (eq == std::string::npos || !valid_key(key)) {
      r.errors().emplace_back(SourcePlace{"--set " + o, 0, 0}, "--set",
                              "expected key.path=value, such as train.lr=0.1 or strategy.sync=bsp");
      continue;
    }
    const std::string value = o.substr(eq + 1);
    const std::string source = "--set " + o;
    if (value.find_first_of("\n\r") != std::string::npos) {
      r.errors().emplace_back(SourcePlace{source, 0, 0}, key, "expected a value on one line");
      continue;
    }
    toml::table parsed;
    try {
      parsed = toml::parse("v = " + value, source);
    } catch (const toml::parse_error&) {
      // Not a TOML value: take it as a string, so strategy.sync=bsp needs no quotes.
      try {
        parsed = toml::parse("v = " + toml_quote(value), source);
      } catch (const toml::parse_error& e) {
        r.errors().emplace_back(SourcePlace{source, 0, 0}, key,
                                fmt::format("not a value: {}", e.description()));
        continue;
      }
    }
    set_path(r, root, key, source, std::move(*parsed.get("v")));
  }
}

Scenario parse_scenario(const std::string& text, const std::string& file,
                        const std::vector<std::string>& overrides, bool check_sweep) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw ScenarioError(
        {InputError({file, static_cast<int>(begin.line), static_cast<int>(begin.column)}, "",
                    fmt::format("not valid TOML: {}", e.description()))});
  }
  TomlReader r(file);
  apply_overrides(r, root, overrides);
  Scenario s;
  s.file = file;
  r.check_keys(root, "",
               {"name", "description", "seed", "model", "data", "train", "cluster", "network",
                "strategy", "compression", "faults", "expect", "output", "sweep", "teaching"});
  if (root.get("name") == nullptr) {
    r.error(nullptr, "name", "missing: every scenario needs a name (name = \"...\")");
  }
  r.get_string(root, "", "name", s.name);
  r.get_string(root, "", "description", s.description);
  r.get_int(root, "", "seed", s.seed, 0);
  if (const auto* t = r.table(root, "", "model")) read_model(r, *t, s.model);
  if (const auto* t = r.table(root, "", "data")) read_data(r, *t, s.data);
  if (const auto* t = r.table(root, "", "train")) read_train(r, *t, s.train);
  if (const auto* t = r.table(root, "", "cluster")) read_cluster(r, *t, s.cluster);
  if (const auto* t = r.table(root, "", "network")) read_network(r, *t, s.network);
  if (const auto* t = r.table(root, "", "strategy")) read_strategy(r, *t, s.strategy);
  if (const auto* t = r.table(root, "", "compression")) read_compression(r, *t, s.compression);
  if (const toml::node* f = root.get("faults")) read_faults(r, *f, s.faults);
  if (const auto* t = r.table(root, "", "expect")) read_expect(r, *t, s.expect);
  if (const auto* t = r.table(root, "", "output")) {
    r.check_keys(*t, "output", {"trace"});
    r.get_bool(*t, "output", "trace", s.output.trace);
  }
  if (const auto* t = r.table(root, "", "sweep")) read_sweep(r, *t, s.sweep);
  if (const auto* t = r.table(root, "", "teaching")) {
    r.check_keys(*t, "teaching", {"lesson", "look_at", "questions"});
    r.get_int(*t, "teaching", "lesson", s.teaching.lesson, 1, 100);
    if (t->get("lesson") == nullptr) {
      r.error(t, "teaching.lesson", "missing: the lesson of docs/tutorial.md it belongs to");
    }
    r.get_string_list(*t, "teaching", "look_at", s.teaching.look_at);
    r.get_string_list(*t, "teaching", "questions", s.teaching.questions);
  }
  check_scenario(r, root, s);
  if (check_sweep && r.errors().empty() && !s.sweep.empty()) {
    check_sweep_points(r, s, text, file, overrides);
  }
  if (!r.errors().empty()) throw ScenarioError(r.sorted_errors());
  return s;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides,
                       bool check_sweep) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError({path, 0, 0}, "",
                     std::filesystem::exists(path, ec)
                         ? "not a file: expected a scenario (.toml) file"
                         : "no such file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError({path, 0, 0}, "", "cannot open the scenario file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_scenario(buffer.str(), path, overrides, check_sweep);
}

std::string scenario_point_text(const std::string& path,
                                const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(buffer.str(), path);
  } catch (const toml::parse_error& e) {
    throw ScenarioError(
        {InputError({path, 0, 0}, "", fmt::format("not valid TOML: {}", e.description()))});
  }
  TomlReader r(path);
  apply_overrides(r, root, overrides);
  if (!r.errors().empty()) throw ScenarioError(r.sorted_errors());
  root.erase("sweep");
  std::ostringstream out;
  out << "# A point of " << path << " (dtsim sweep --emit).\n" << root << "\n";
  return out.str();
}

SourcePlace locate_key(const std::string& path, const std::string& key) {
  try {
    const toml::table root = toml::parse_file(path);
    std::string prefix = key;
    while (!prefix.empty()) {
      if (const toml::node* node = root.at_path(prefix).node()) {
        const auto& begin = node->source().begin;
        return {path, static_cast<int>(begin.line), static_cast<int>(begin.column)};
      }
      const auto dot = prefix.rfind('.');
      prefix = dot == std::string::npos ? std::string() : prefix.substr(0, dot);
    }
  } catch (const std::exception&) {
    // An unreadable file: the place is just the file.
  }
  return {path, 0, 0};
}

}  // namespace dtsim
