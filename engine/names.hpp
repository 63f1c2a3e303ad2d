// One table of names per enum, so that a name is written once: parsing a scenario, printing
// settings and reports, the command line's choices and `dtsim list` all read the same table.
//
//   inline NameTable<Color> color_names() {
//     static constexpr Named<Color> kNames[] = {{"red", Color::kRed}, {"blue", Color::kBlue}};
//     return kNames;
//   }
//   name_of(color_names(), Color::kRed)    // "red"
//   value_named(color_names(), "blue")     // Color::kBlue
//   joined_names(color_names(), " | ")     // "red | blue"
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dtsim {

template <typename Enum>
struct Named {
  const char* name;
  Enum value;
};

template <typename Enum>
using NameTable = std::span<const Named<Enum>>;

// The name of `value` ("?" when the table has none).
template <typename Enum>
const char* name_of(NameTable<Enum> table, Enum value) {
  for (const Named<Enum>& n : table) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// The value called `name`, if any.
template <typename Enum>
std::optional<Enum> value_named(NameTable<Enum> table, std::string_view name) {
  for (const Named<Enum>& n : table) {
    if (name == n.name) return n.value;
  }
  return std::nullopt;
}

// Every name, in table order (without repeats: two values may share a name).
template <typename Enum>
std::vector<std::string> names_of(NameTable<Enum> table) {
  std::vector<std::string> out;
  for (const Named<Enum>& n : table) {
    bool seen = false;
    for (const std::string& o : out) seen = seen || o == n.name;
    if (!seen) out.emplace_back(n.name);
  }
  return out;
}

// The names joined by `separator`, e.g. "ring | tree | halving-doubling".
template <typename Enum>
std::string joined_names(NameTable<Enum> table, std::string_view separator) {
  std::string out;
  for (const std::string& n : names_of(table)) {
    if (!out.empty()) out += separator;
    out += n;
  }
  return out;
}

}  // namespace dtsim
