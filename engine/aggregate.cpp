#include "engine/aggregate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace dtsim {

int min_contributions(const AggregationConfig& c) {
  switch (c.kind) {
    case AggregationKind::kTrimmedMean:
      return 2 * c.f + 1;
    case AggregationKind::kKrum:
    case AggregationKind::kMultiKrum:
      return 2 * c.f + 3;
    default:
      return 1;
  }
}

std::vector<double> krum_scores(std::span<const std::span<const float>> inputs, int f) {
  const std::size_t p = inputs.size();
  std::vector<std::vector<double>> d(p, std::vector<double>(p, 0.0));
  for (std::size_t i = 0; i < p; ++i) {
    for (std::size_t j = i + 1; j < p; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < inputs[i].size(); ++k) {
        const double x = static_cast<double>(inputs[i][k]) - inputs[j][k];
        s += x * x;
      }
      d[i][j] = d[j][i] = s;
    }
  }
  const std::size_t nearest = p - static_cast<std::size_t>(f) - 2;
  std::vector<double> scores(p, 0.0);
  for (std::size_t i = 0; i < p; ++i) {
    std::vector<double> others;
    for (std::size_t j = 0; j < p; ++j) {
      if (j != i) others.push_back(d[i][j]);
    }
    std::sort(others.begin(), others.end());
    scores[i] =
        std::accumulate(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(nearest), 0.0);
  }
  return scores;
}

namespace {

// Median or trimmed mean, coordinate by coordinate.
void coordinate_wise(const AggregationConfig& c, std::span<const std::span<const float>> inputs,
                     std::span<float> out) {
  const std::size_t p = inputs.size();
  std::vector<float> col(p);
  const auto f = static_cast<std::size_t>(c.kind == AggregationKind::kTrimmedMean ? c.f : 0);
  for (std::size_t k = 0; k < out.size(); ++k) {
    for (std::size_t i = 0; i < p; ++i) col[i] = inputs[i][k];
    std::sort(col.begin(), col.end());
    if (c.kind == AggregationKind::kMedian) {
      out[k] = p % 2 == 1 ? col[p / 2] : 0.5f * (col[p / 2 - 1] + col[p / 2]);
    } else {
      double s = 0;
      for (std::size_t i = f; i < p - f; ++i) s += col[i];
      out[k] = static_cast<float>(s / static_cast<double>(p - 2 * f));
    }
  }
}

// Krum's choice (multi-Krum's m choices), in worker order.
std::vector<std::size_t> krum_selection(const AggregationConfig& c,
                                        std::span<const std::span<const float>> inputs) {
  const std::size_t p = inputs.size();
  const std::vector<double> scores = krum_scores(inputs, c.f);
  std::vector<std::size_t> order(p);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  std::size_t m = 1;
  if (c.kind == AggregationKind::kMultiKrum) {
    m = c.m > 0 ? static_cast<std::size_t>(c.m) : p - static_cast<std::size_t>(c.f) - 2;
    m = std::clamp<std::size_t>(m, 1, p);
  }
  order.resize(m);
  std::sort(order.begin(), order.end());  // sum in worker order
  return order;
}

}  // namespace

void aggregate(const AggregationConfig& c, std::span<const std::span<const float>> inputs,
               std::span<const double> weights, std::span<float> out) {
  const std::size_t p = inputs.size();
  const std::size_t n = out.size();
  if (p == 0) throw std::invalid_argument("aggregate: no inputs");
  if (static_cast<int>(p) < min_contributions(c)) {
    throw std::invalid_argument(fmt::format("{} needs at least {} contributions for f = {}, got {}",
                                            to_string(c.kind), min_contributions(c), c.f, p));
  }
  for (const auto& in : inputs) {
    if (in.size() != n) throw std::invalid_argument("aggregate: inputs of different sizes");
  }
  const auto mean_of = [&](const std::vector<std::size_t>& which) {
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t i : which) {
      for (std::size_t k = 0; k < n; ++k) out[k] += inputs[i][k];
    }
    const float inv = 1.0f / static_cast<float>(which.size());
    for (float& v : out) v *= inv;
  };
  std::vector<std::size_t> all(p);
  std::iota(all.begin(), all.end(), 0);
  switch (c.kind) {
    case AggregationKind::kMean:
      mean_of(all);
      return;
    case AggregationKind::kWeightedMean: {
      if (weights.size() != p) throw std::invalid_argument("weighted-mean: one weight per input");
      const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
      for (std::size_t k = 0; k < n; ++k) {
        double s = 0;
        for (std::size_t i = 0; i < p; ++i) s += weights[i] * inputs[i][k];
        out[k] = static_cast<float>(s / total);
      }
      return;
    }
    case AggregationKind::kMax:
      for (std::size_t k = 0; k < n; ++k) {
        float m = inputs[0][k];
        for (std::size_t i = 1; i < p; ++i) m = std::max(m, inputs[i][k]);
        out[k] = m;
      }
      return;
    case AggregationKind::kMedian:
    case AggregationKind::kTrimmedMean:
      coordinate_wise(c, inputs, out);
      return;
    case AggregationKind::kKrum:
    case AggregationKind::kMultiKrum:
      mean_of(krum_selection(c, inputs));
      return;
    case AggregationKind::kSignVote:
      for (std::size_t k = 0; k < n; ++k) {
        double s = 0;
        for (std::size_t i = 0; i < p; ++i) s += inputs[i][k];
        out[k] = s > 0 ? 1.0f : (s < 0 ? -1.0f : 0.0f);
      }
      return;
  }
}

double aggregate_flops(const AggregationConfig& c, int p, std::size_t n) {
  const double pn = static_cast<double>(p) * static_cast<double>(n);
  switch (c.kind) {
    case AggregationKind::kMedian:
    case AggregationKind::kTrimmedMean:
      return pn * std::max(1.0, std::log2(static_cast<double>(p)));  // a sort per coordinate
    case AggregationKind::kKrum:
    case AggregationKind::kMultiKrum:
      return 1.5 * static_cast<double>(p) * pn;  // pairwise distances
    default:
      return pn;
  }
}

}  // namespace dtsim
