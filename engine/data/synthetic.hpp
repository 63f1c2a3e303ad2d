// Synthetic datasets with known ground truth: Gaussian blobs (classification) and a noisy
// linear map (regression).
//
// Generation is deterministic in (config, seed) and uses CounterRng streams with purpose
// kSynthetic: node 0 for the ground truth (centres, weights), node 1 for the training
// samples, node 2 for the test samples. Train and test therefore share the ground truth but
// never share samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/data/dataset.hpp"

namespace dtsim {

// Isotropic Gaussian classes in `features` dimensions.
struct BlobsConfig {
  int classes = 4;                   // >= 2
  int features = 20;                 // >= 1
  double spread = 1.0;               // std-dev of each sample around its class centre, >= 0
  double separation = 3.0;           // std-dev of the class centres around the origin, >= 0
  std::size_t train_samples = 4000;  // >= 1
  std::size_t test_samples = 1000;   // >= 1
};

// Class centres c_k ~ N(0, separation^2 I). Each sample draws its label uniformly from
// [0, classes) and x = c_label + spread * N(0, I). Both datasets are named "blobs", with
// task kClassification, width = features (1 x 1 x features), outputs = classes.
//
// Throws InputError (key "data.classes", "data.features", "data.spread", "data.separation",
// "data.train_samples" or "data.test_samples") when a field is outside the range above.
DatasetPair make_blobs(const BlobsConfig& config, std::uint64_t seed);

// A noisy linear map y = W x + b + noise * e.
struct LinregConfig {
  int features = 20;                 // >= 1
  int outputs = 1;                   // >= 1
  double noise = 0.1;                // std-dev of the additive Gaussian noise e, >= 0
  std::size_t train_samples = 4000;  // >= 1
  std::size_t test_samples = 1000;   // >= 1
};

struct LinregData {
  DatasetPair data;
  std::vector<float> true_weights;  // W: outputs x features, row-major
  std::vector<float> true_bias;     // b: outputs
};

// x ~ N(0, I), W and b entrywise ~ N(0, 1), e ~ N(0, I). Targets are computed in double from
// the float-rounded W, b and x, then rounded to float. Both datasets are named "linreg", with
// task kRegression, classes = 0, outputs = config.outputs, targets filled and labels empty.
//
// Throws InputError (key "data.features", "data.outputs", "data.noise", "data.train_samples"
// or "data.test_samples") when a field is outside the range above.
LinregData make_linreg(const LinregConfig& config, std::uint64_t seed);

}  // namespace dtsim
