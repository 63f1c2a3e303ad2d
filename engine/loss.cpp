#include "engine/loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace dtsim {

double softmax_cross_entropy(const float* logits, const std::int32_t* labels, int batch,
                             int classes, float* dlogits) {
  double total = 0;
  const float inv_batch = 1.0f / static_cast<float>(batch);
  for (int n = 0; n < batch; ++n) {
    const float* z = logits + static_cast<std::size_t>(n) * classes;
    const float zmax = *std::max_element(z, z + classes);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c] - zmax));
    const double log_sum = std::log(sum);
    total += log_sum - (z[labels[n]] - zmax);
    if (dlogits != nullptr) {
      float* d = dlogits + static_cast<std::size_t>(n) * classes;
      for (int c = 0; c < classes; ++c) {
        const double p = std::exp(static_cast<double>(z[c] - zmax) - log_sum);
        d[c] = static_cast<float>(p) * inv_batch;
      }
      d[labels[n]] -= inv_batch;
    }
  }
  return total / batch;
}

double half_squared_error(const float* y, const float* targets, int batch, int outputs, float* dy) {
  double total = 0;
  const float inv_batch = 1.0f / static_cast<float>(batch);
  const std::size_t n = static_cast<std::size_t>(batch) * outputs;
  for (std::size_t i = 0; i < n; ++i) {
    const float diff = y[i] - targets[i];
    total += 0.5 * static_cast<double>(diff) * diff;
    if (dy != nullptr) dy[i] = diff * inv_batch;
  }
  return total / batch;
}

int argmax(const float* row, int n) {
  return static_cast<int>(std::max_element(row, row + n) - row);
}

}  // namespace dtsim
