#include "engine/data/dataset.hpp"

#include <stdexcept>
#include <string>

namespace dtsim {

Dataset select_rows(const Dataset& source, std::span<const std::uint32_t> rows) {
  Dataset out;
  out.name = source.name;
  out.task = source.task;
  out.features = source.features;
  out.channels = source.channels;
  out.height = source.height;
  out.width = source.width;
  out.classes = source.classes;
  out.outputs = source.outputs;

  const std::size_t n = source.samples();
  const auto features = static_cast<std::size_t>(source.features);
  const auto outputs = static_cast<std::size_t>(source.outputs);
  const bool has_labels = !source.labels.empty();
  const bool has_targets = !source.targets.empty();
  out.x.reserve(rows.size() * features);
  if (has_labels) out.labels.reserve(rows.size());
  if (has_targets) out.targets.reserve(rows.size() * outputs);

  for (const std::uint32_t r : rows) {
    // A bad index is a caller bug, not bad input; fail loudly instead of reading past the end.
    if (r >= n) {
      throw std::out_of_range("select_rows: row " + std::to_string(r) + " of a dataset with " +
                              std::to_string(n) + " samples");
    }
    const auto x_begin = source.x.begin() + static_cast<std::ptrdiff_t>(r * features);
    out.x.insert(out.x.end(), x_begin, x_begin + static_cast<std::ptrdiff_t>(features));
    if (has_labels) out.labels.push_back(source.labels[r]);
    if (has_targets) {
      const auto t_begin = source.targets.begin() + static_cast<std::ptrdiff_t>(r * outputs);
      out.targets.insert(out.targets.end(), t_begin,
                         t_begin + static_cast<std::ptrdiff_t>(outputs));
    }
  }
  return out;
}

}  // namespace dtsim
