// Aggregation rules: how the contributions of p workers become one update, where they meet
// (the parameter server, or every worker after an allgather). Reference: the EPFL
// ByzantineMomentum aggregators; definitions, requirements and test vectors in
// docs/compression.md.
//
//   mean           (1/p) sum g_i
//   weighted-mean  sum n_i g_i / sum n_i, n_i the samples behind g_i
//   max            element-wise maximum. Not robust, and biased: a single worker decides
//   median         coordinate-wise; for an even count the mean of the two middle values
//                  (numpy's median, not torch's lower median)
//   trimmed-mean   coordinate-wise: drop the f smallest and f largest, average the rest
//                  (needs p >= 2f + 1)
//   krum           the g_i with the lowest score, score(i) = sum of the squared L2 distances
//                  to its p - f - 2 nearest other contributions (needs p >= 2f + 3); ties go
//                  to the lower index
//   multi-krum     the mean of the m lowest-score contributions (m = 1: krum); m is at most
//                  p - f - 2 (the scenario checks it)
//   sign-vote      sign of the sum of the contributions (signSGD's majority vote); a tie
//                  gives 0, so that coordinate does not move
#pragma once

#include <span>
#include <vector>

#include "engine/names.hpp"

namespace dtsim {

enum class AggregationKind {
  kMean,
  kWeightedMean,
  kMax,
  kMedian,
  kTrimmedMean,
  kKrum,
  kMultiKrum,
  kSignVote
};

struct AggregationConfig {
  AggregationKind kind = AggregationKind::kMean;
  int f = 0;  // trimmed-mean: per side; krum / multi-krum: Byzantine workers tolerated
  int m = 0;  // multi-krum: how many to average; 0 means p - f - 2
};

// The rules a scenario can choose (sign-vote comes with codec = "sign").
inline NameTable<AggregationKind> aggregation_names() {
  static constexpr Named<AggregationKind> kNames[] = {
      {"mean", AggregationKind::kMean},
      {"weighted-mean", AggregationKind::kWeightedMean},
      {"max", AggregationKind::kMax},
      {"median", AggregationKind::kMedian},
      {"trimmed-mean", AggregationKind::kTrimmedMean},
      {"krum", AggregationKind::kKrum},
      {"multi-krum", AggregationKind::kMultiKrum},
  };
  return kNames;
}
inline const char* to_string(AggregationKind kind) {
  return kind == AggregationKind::kSignVote ? "sign-vote" : name_of(aggregation_names(), kind);
}
// The fewest contributions the rule works with for this f ("" if any number works), as a
// requirement to print: e.g. "at least 2f + 3 = 5 workers".
int min_contributions(const AggregationConfig& c);

// Aggregates `inputs` (each of out.size() floats) into `out`. `weights` are the samples behind
// each input (weighted-mean only; may be empty otherwise). Throws std::invalid_argument when
// there are too few inputs for the rule.
void aggregate(const AggregationConfig& c, std::span<const std::span<const float>> inputs,
               std::span<const double> weights, std::span<float> out);

// Krum's scores (for tests and reports).
std::vector<double> krum_scores(std::span<const std::span<const float>> inputs, int f);

// FLOPs of aggregating p vectors of n elements (what the simulator charges).
double aggregate_flops(const AggregationConfig& c, int p, std::size_t n);

}  // namespace dtsim
