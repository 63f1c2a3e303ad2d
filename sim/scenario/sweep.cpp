// [sweep]: the grid of a study, each value a --set override of the base scenario.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <sstream>

#include "sim/scenario/sections.hpp"

namespace dtsim {
namespace {

// A scalar as TOML text and as a label; false if it is not a scalar.
bool scalar(const toml::node& item, std::string& text, std::string& label) {
  if (const auto* str = item.as_string()) {
    text = toml_quote(str->get());
    label = str->get();
  } else if (const auto* i = item.as_integer()) {
    text = label = fmt::format("{}", i->get());
  } else if (const auto* f = item.as_floating_point()) {
    text = label = fmt::format("{}", f->get());
  } else if (const auto* b = item.as_boolean()) {
    text = label = b->get() ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

// A table value sets several keys of the section together: one point, not a grid. A quoted
// key with a dot ("train.batch_size") is a path from the scenario's root, so that one point
// can also set keys of other sections.
void read_table_value(TomlReader& r, const std::string& path, const toml::table& table,
                      SweepAxis& axis) {
  std::vector<std::string> overrides;
  std::vector<std::string> labels;
  // In the order written (a table iterates in key order).
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (auto&& [k, v] : table) entries.emplace_back(&k, &v);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto& pa = a.first->source().begin;
    const auto& pb = b.first->source().begin;
    return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
  });
  for (const auto& [kp, vp] : entries) {
    std::string text;
    std::string label;
    if (!scalar(*vp, text, label)) {
      r.error(vp, path + "." + std::string(kp->str()), "expected a string, number or boolean");
      continue;
    }
    const std::string key(kp->str());
    const bool from_root = key.find('.') != std::string::npos;
    overrides.push_back((from_root ? key : axis.key + "." + key) + "=" + text);
    labels.push_back(key.substr(key.rfind('.') + 1) + "=" + label);
  }
  axis.overrides.push_back(std::move(overrides));
  axis.labels.push_back(fmt::format("{}", fmt::join(labels, ",")));
}

// A list value (model.hidden = [[64], [256, 128]], or faults = [[], [{ kind = "crash", ... }]])
// as TOML text, and its label: the text, or for faults the kinds of its entries ("none").
void list_value(const std::string& key, const toml::array& list, std::string& text,
                std::string& label) {
  std::ostringstream os;
  os << toml::toml_formatter(list, toml::format_flags::none);
  text = os.str();
  std::replace(text.begin(), text.end(), '\n', ' ');
  label = text;
  if (key != "faults") return;
  std::vector<std::string> kinds;
  for (const auto& f : list) {
    const toml::table* t = f.as_table();
    const auto kind = t != nullptr ? (*t)["kind"].value<std::string>() : std::nullopt;
    const auto node = t != nullptr ? (*t)["node"].value<std::int64_t>() : std::nullopt;
    kinds.push_back(
        fmt::format("{}{}", kind.value_or("?"), node ? fmt::format("@{}", *node) : std::string()));
  }
  label = kinds.empty() ? "none" : fmt::format("{}", fmt::join(kinds, "+"));
}

}  // namespace

void read_sweep(TomlReader& r, const toml::table& t, std::vector<SweepAxis>& out) {
  for (auto&& [key, value] : t) {
    SweepAxis axis;
    axis.key = std::string(key.str());
    axis.place = r.place(&value);
    const std::string path = "sweep." + axis.key;
    const auto* arr = value.as_array();
    if (arr == nullptr || arr->empty()) {
      r.error(&value, path,
              "expected a non-empty list of values, such as [\"bsp\", \"asp\"] or [4, 8]");
      continue;
    }
    const std::string leaf = axis.key.substr(axis.key.rfind('.') + 1);
    for (const auto& item : *arr) {
      std::string text;
      std::string label;
      if (scalar(item, text, label)) {
        axis.overrides.push_back({axis.key + "=" + text});
        axis.labels.push_back(leaf + "=" + label);
      } else if (const auto* table = item.as_table(); table != nullptr && !table->empty()) {
        read_table_value(r, path, *table, axis);
      } else if (const auto* list = item.as_array()) {
        list_value(axis.key, *list, text, label);
        axis.overrides.push_back({axis.key + "=" + text});
        axis.labels.push_back(leaf + "=" + label);
      } else {
        r.error(&item, path,
                "expected strings, numbers, booleans, lists, or tables of them ({ sync = "
                "\"bsp\", backup_workers = 1 } under \"strategy\")");
      }
    }
    out.push_back(std::move(axis));
  }
  // Tables iterate in key order; the grid follows the order the axes are written in.
  std::stable_sort(out.begin(), out.end(), [](const SweepAxis& a, const SweepAxis& b) {
    return std::pair(a.place.line, a.place.column) < std::pair(b.place.line, b.place.column);
  });
}

std::vector<SweepPoint> expand_sweep(const Scenario& s) {
  std::vector<SweepPoint> points(1);
  for (const SweepAxis& axis : s.sweep) {
    std::vector<SweepPoint> next;
    for (const SweepPoint& p : points) {
      for (std::size_t i = 0; i < axis.overrides.size(); ++i) {
        SweepPoint q = p;
        q.overrides.insert(q.overrides.end(), axis.overrides[i].begin(), axis.overrides[i].end());
        q.label += (q.label.empty() ? "" : ",") + axis.labels[i];
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  return s.sweep.empty() ? std::vector<SweepPoint>{} : points;
}

}  // namespace dtsim
