// In-memory datasets: a dense row-major feature matrix plus labels (classification) or
// targets (regression).
//
// A Dataset is plain data, built once (read from files or generated) and then shared
// read-only between jobs, which may read it from several threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dtsim {

enum class LearningTask { kClassification, kRegression };

struct Dataset {
  std::string name;  // "fashion-mnist", "blobs", "linreg"
  LearningTask task = LearningTask::kClassification;
  int features = 0;  // values per sample (= channels * height * width for images)
  int channels = 1;  // image shape when the features are an image; 1 x 1 x features otherwise
  int height = 1;
  int width = 0;
  int classes = 0;       // classification: labels in [0, classes); regression: 0
  int outputs = 0;       // regression: target values per sample; classification: classes
  std::vector<float> x;  // samples * features, row-major
  std::vector<std::int32_t> labels;  // classification: one per sample
  std::vector<float> targets;        // regression: samples * outputs

  std::size_t samples() const {
    return features > 0 ? x.size() / static_cast<std::size_t>(features) : 0;
  }
  std::span<const float> row(std::size_t i) const {
    return {x.data() + i * static_cast<std::size_t>(features), static_cast<std::size_t>(features)};
  }
};

// A training set and a test set drawn from the same source.
struct DatasetPair {
  Dataset train;
  Dataset test;
};

// Returns a dataset holding rows `rows` of `source`, in that order.
Dataset select_rows(const Dataset& source, std::span<const std::uint32_t> rows);

}  // namespace dtsim
