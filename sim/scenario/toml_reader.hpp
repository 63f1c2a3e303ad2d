// Reading typed values out of a parsed TOML document, recording every problem (with its file,
// line, column and key path) instead of stopping at the first. Internal to scenario loading.
#pragma once

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "engine/errors.hpp"
#include "engine/names.hpp"

namespace dtsim {

// The candidate nearest to `word` by edit distance, if it is within `max_distance - 1` edits;
// empty otherwise. For "did you mean ...?".
std::string_view nearest(std::string_view word, const std::vector<std::string_view>& candidates,
                         std::size_t max_distance = 3);

// `text` as a TOML basic string, quoted and escaped.
std::string toml_quote(const std::string& text);

class TomlReader {
 public:
  explicit TomlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  std::vector<InputError>& errors() { return errors_; }
  // Errors in file order (tables iterate in key order, not in the order they were written).
  std::vector<InputError> sorted_errors();

  // Where `node` is written: in the file, or on the command line for a --set value.
  SourcePlace place(const toml::node* node) const;
  void error(const toml::node* node, std::string key, std::string message);
  // An error placed at a key (not its value), e.g. an unknown key.
  void error_at_key(const toml::key& where, std::string key, std::string message,
                    const toml::node* value = nullptr);

  // Every key of `table` must be in `allowed`; an unknown one is an error that suggests the
  // nearest allowed key.
  void check_keys(const toml::table& table, const std::string& prefix,
                  const std::vector<std::string_view>& allowed);

  // The value of `key` in `t`, if present and of the right type; otherwise `out` is left as
  // it is (its default) and a wrong type or range is recorded as an error.
  const toml::table* table(const toml::table& parent, const std::string& prefix,
                           std::string_view key);
  void get_string(const toml::table& t, const std::string& prefix, std::string_view key,
                  std::string& out);
  void get_bool(const toml::table& t, const std::string& prefix, std::string_view key, bool& out);
  template <typename Enum>
  void get_choice(const toml::table& t, const std::string& prefix, std::string_view key,
                  NameTable<Enum> choices, Enum& out);
  template <typename Int>
  void get_int(const toml::table& t, const std::string& prefix, std::string_view key, Int& out,
               std::int64_t min, std::int64_t max = std::numeric_limits<std::int64_t>::max());
  void get_double(const toml::table& t, const std::string& prefix, std::string_view key,
                  double& out, double min, double max = std::numeric_limits<double>::infinity());
  void get_int_list(const toml::table& t, const std::string& prefix, std::string_view key,
                    std::vector<int>& out, bool allow_empty);
  void get_string_list(const toml::table& t, const std::string& prefix, std::string_view key,
                       std::vector<std::string>& out);
  // A quantity with a unit ("50us", "10Gbps"), converted by `parse` (sim/des/units.hpp).
  template <typename Value, typename Parse>
  void get_unit(const toml::table& t, const std::string& prefix, std::string_view key, Value& out,
                Parse parse);

  static std::string join(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }
  static std::string type_of(const toml::node& node);

 private:
  template <typename T>
  static std::string range_message(T value, T min, T max);
  std::string unit_choices(const std::string& unit_error) const;

  std::string file_;
  std::vector<InputError> errors_;
};

// ---- templates ----

template <typename T>
std::string TomlReader::range_message(T value, T min, T max) {
  if (max == std::numeric_limits<T>::max() || max == std::numeric_limits<T>::infinity()) {
    return fmt::format("expected a value >= {}, found {}", min, value);
  }
  return fmt::format("expected a value in [{}, {}], found {}", min, max, value);
}

template <typename Enum>
void TomlReader::get_choice(const toml::table& t, const std::string& prefix, std::string_view key,
                            NameTable<Enum> choices, Enum& out) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const std::string names = joined_names(choices, " | ");
  const auto* v = node->as_string();
  if (v == nullptr) {
    error(node, join(prefix, key),
          "expected one of the strings " + names + ", found " + type_of(*node));
    return;
  }
  if (const auto value = value_named(choices, v->get())) {
    out = *value;
    return;
  }
  error(node, join(prefix, key), "expected " + names + ", found \"" + v->get() + "\"");
}

template <typename Int>
void TomlReader::get_int(const toml::table& t, const std::string& prefix, std::string_view key,
                         Int& out, std::int64_t min, std::int64_t max) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const auto* v = node->as_integer();
  if (v == nullptr) {
    error(node, join(prefix, key), "expected an integer, found " + type_of(*node));
    return;
  }
  if (v->get() < min || v->get() > max) {
    error(node, join(prefix, key), range_message<std::int64_t>(v->get(), min, max));
    return;
  }
  out = static_cast<Int>(v->get());
}

template <typename Value, typename Parse>
void TomlReader::get_unit(const toml::table& t, const std::string& prefix, std::string_view key,
                          Value& out, Parse parse) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const auto* v = node->as_string();
  if (v == nullptr) {
    // The unit's own error lists the units it accepts.
    std::string units;
    try {
      parse("");
    } catch (const std::exception& e) {
      units = unit_choices(e.what());
    }
    error(node, join(prefix, key),
          "expected a string with a unit (one of: " + units + "), found " + type_of(*node));
    return;
  }
  try {
    out = parse(v->get());
  } catch (const std::exception& e) {
    error(node, join(prefix, key), e.what());
  }
}

}  // namespace dtsim
