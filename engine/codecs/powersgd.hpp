// PowerSGD (Vogels et al. 2019) in PyTorch's powerSGD_hook semantics: a tensor n x m (its
// first dimension by the rest) with (n + m) r * 2 < n m is compressed to P = M Q (n x r) and
// Q = M^T P (m x r), each allreduced, with Q warm-started from the last step; the other
// elements (biases, small matrices) travel uncompressed in a third allreduce.
#pragma once

#include <cstddef>
#include <span>

namespace dtsim {

// Gram-Schmidt orthonormalisation of the r columns of a rows x r column-major matrix, each
// divided by (its norm + eps) (PyTorch's _orthogonalize_gram_schmidt; eps avoids 0 / 0).
void orthogonalize(std::span<float> m, std::size_t rows, std::size_t r, float eps = 1e-8f);

}  // namespace dtsim
