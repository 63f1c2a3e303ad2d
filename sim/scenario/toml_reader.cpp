#include "sim/scenario/toml_reader.hpp"

#include <algorithm>
#include <cmath>

namespace dtsim {

std::string_view nearest(std::string_view word, const std::vector<std::string_view>& candidates,
                         std::size_t max_distance) {
  const auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1);
    std::vector<std::size_t> cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string_view best;
  std::size_t best_distance = max_distance;
  for (std::string_view candidate : candidates) {
    const std::size_t d = distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string toml_quote(const std::string& text) {
  std::string quoted = "\"";
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      quoted += '\\';
      quoted += ch;
    } else if (u < 0x20 || u == 0x7f) {
      quoted += fmt::format("\\u{:04X}", u);  // control characters, escaped as TOML wants
    } else {
      quoted += ch;
    }
  }
  return quoted + "\"";
}

std::vector<InputError> TomlReader::sorted_errors() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const InputError& a, const InputError& b) {
    return std::pair(a.place().line, a.place().column) <
           std::pair(b.place().line, b.place().column);
  });
  return std::move(errors_);
}

SourcePlace TomlReader::place(const toml::node* node) const {
  if (node == nullptr) return {file_, 0, 0};
  const auto& src = node->source();
  // A value given with --set is placed on the command line, not in the file.
  if (src.path && *src.path != file_) return {*src.path, 0, 0};
  return {file_, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column)};
}

void TomlReader::error(const toml::node* node, std::string key, std::string message) {
  errors_.emplace_back(place(node), std::move(key), std::move(message));
}

void TomlReader::error_at_key(const toml::key& where, std::string key, std::string message,
                              const toml::node* value) {
  if (!where.source().path || *where.source().path != file_) {
    // A key given with --set has no place in the file: its value knows which --set it was.
    errors_.emplace_back(value != nullptr ? place(value) : SourcePlace{"--set", 0, 0},
                         std::move(key), std::move(message));
    return;
  }
  const auto& begin = where.source().begin;
  errors_.emplace_back(
      SourcePlace{file_, static_cast<int>(begin.line), static_cast<int>(begin.column)},
      std::move(key), std::move(message));
}

void TomlReader::check_keys(const toml::table& table, const std::string& prefix,
                            const std::vector<std::string_view>& allowed) {
  for (auto&& [key, value] : table) {
    const std::string_view k = key.str();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string message = "unknown key";
    if (const std::string_view best = nearest(k, allowed); !best.empty()) {
      message += fmt::format(" (did you mean '{}'?)", best);
    }
    message += fmt::format("; expected one of: {}", fmt::join(allowed, ", "));
    error_at_key(key, join(prefix, k), message, &value);
  }
}

const toml::table* TomlReader::table(const toml::table& parent, const std::string& prefix,
                                     std::string_view key) {
  const toml::node* node = parent.get(key);
  if (node == nullptr) return nullptr;
  if (const auto* t = node->as_table()) return t;
  error(node, join(prefix, key),
        fmt::format("expected a table [{}], found {}", key, type_of(*node)));
  return nullptr;
}

void TomlReader::get_string(const toml::table& t, const std::string& prefix, std::string_view key,
                            std::string& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  if (const auto* v = node->as_string()) {
    out = v->get();
  } else {
    error(node, join(prefix, key), fmt::format("expected a string, found {}", type_of(*node)));
  }
}

void TomlReader::get_bool(const toml::table& t, const std::string& prefix, std::string_view key,
                          bool& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  if (const auto* b = node->as_boolean()) {
    out = b->get();
  } else {
    error(node, join(prefix, key), "expected true or false");
  }
}

void TomlReader::get_double(const toml::table& t, const std::string& prefix, std::string_view key,
                            double& out, double min, double max) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  double value = 0;
  if (const auto* f = node->as_floating_point()) {
    value = f->get();
  } else if (const auto* i = node->as_integer()) {
    value = static_cast<double>(i->get());
  } else {
    error(node, join(prefix, key), fmt::format("expected a number, found {}", type_of(*node)));
    return;
  }
  if (!std::isfinite(value)) {
    error(node, join(prefix, key), fmt::format("expected a finite number, found {}", value));
    return;
  }
  if (!(value >= min && value <= max)) {
    error(node, join(prefix, key), range_message(value, min, max));
    return;
  }
  out = value;
}

void TomlReader::get_int_list(const toml::table& t, const std::string& prefix, std::string_view key,
                              std::vector<int>& out, bool allow_empty) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const auto* arr = node->as_array();
  if (arr == nullptr) {
    error(node, join(prefix, key),
          fmt::format("expected a list of positive integers such as [256, 128], found {}",
                      type_of(*node)));
    return;
  }
  std::vector<int> values;
  for (const auto& item : *arr) {
    const auto* v = item.as_integer();
    if (v == nullptr || v->get() < 1 || v->get() > 1'000'000) {
      error(&item, join(prefix, key),
            "expected a list of positive integers (at most 1000000) such as [256, 128]");
      return;
    }
    values.push_back(static_cast<int>(v->get()));
  }
  if (values.empty() && !allow_empty) {
    error(node, join(prefix, key), "expected at least one value");
    return;
  }
  out = std::move(values);
}

void TomlReader::get_string_list(const toml::table& t, const std::string& prefix,
                                 std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const auto* arr = node->as_array();
  std::vector<std::string> values;
  for (std::size_t i = 0; arr != nullptr && i < arr->size(); ++i) {
    const auto* v = (*arr)[i].as_string();
    if (v == nullptr) break;
    values.emplace_back(v->get());
  }
  if (arr == nullptr || values.size() != arr->size()) {
    error(node, join(prefix, key), "expected a list of strings such as [\"...\", \"...\"]");
    return;
  }
  out = std::move(values);
}

std::string TomlReader::unit_choices(const std::string& unit_error) const {
  // The unit parsers end their messages with "... one of: a, b, c)".
  std::string units = unit_error;
  units = units.substr(units.find("one of:") + 8);
  units.pop_back();
  return units;
}

std::string TomlReader::type_of(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "a list";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

}  // namespace dtsim
