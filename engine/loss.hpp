// Losses at the end of a network: they turn the last layer's outputs into a mean loss over
// the batch and its gradient.
#pragma once

#include <cstdint>

namespace dtsim {

// Softmax cross-entropy. logits: [batch, classes]; labels in [0, classes).
// Returns the mean over the batch of -log softmax(logits)[label]; if dlogits is not null,
// writes dLoss/dlogits = (softmax - onehot) / batch. Numerically stable (max-shifted).
double softmax_cross_entropy(const float* logits, const std::int32_t* labels, int batch,
                             int classes, float* dlogits);

// Half mean squared error: mean over the batch of 0.5 * sum_j (y_j - t_j)^2.
// If dy is not null, writes (y - t) / batch.
double half_squared_error(const float* y, const float* targets, int batch, int outputs, float* dy);

// Index of the largest logit of each row (the first one on ties).
int argmax(const float* row, int n);

}  // namespace dtsim
