// Splitting a dataset among simulated workers, and seeded subsampling.
//
// A partition says which samples (rows) and which features (columns) of one shared,
// read-only Dataset each worker holds; it copies no sample data. All randomness comes from
// CounterRng streams keyed by the caller's seed, so a partition is a pure function of
// (dataset, workers, config, seed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/data/dataset.hpp"
#include "engine/names.hpp"

namespace dtsim {

// What is divided among workers.
enum class PartitionKind {
  kRows,     // data parallelism: each worker holds some samples, all features
  kColumns,  // feature (vertical) partitioning: each worker holds all samples, some features
  kBlocks,   // both: workers form a grid of row groups x column groups (see partition())
};

// How samples are assigned to workers for kRows. kColumns and kBlocks accept only kIid.
enum class SplitKind {
  kIid,        // uniform random, equal sizes
  kDirichlet,  // label skew, class-wise Dirichlet(alpha) (see partition())
  kByLabel,    // samples sorted by label, then cut into equal pieces
};

inline NameTable<PartitionKind> partition_names() {
  static constexpr Named<PartitionKind> kNames[] = {
      {"rows", PartitionKind::kRows},
      {"columns", PartitionKind::kColumns},
      {"blocks", PartitionKind::kBlocks},
  };
  return kNames;
}
inline NameTable<SplitKind> split_names() {
  static constexpr Named<SplitKind> kNames[] = {
      {"iid", SplitKind::kIid},
      {"dirichlet", SplitKind::kDirichlet},
      {"by-label", SplitKind::kByLabel},
  };
  return kNames;
}
inline const char* to_string(PartitionKind kind) { return name_of(partition_names(), kind); }
inline const char* to_string(SplitKind kind) { return name_of(split_names(), kind); }

struct PartitionConfig {
  PartitionKind kind = PartitionKind::kRows;
  SplitKind split = SplitKind::kIid;
  double alpha = 0.5;            // Dirichlet concentration, > 0; smaller = more skewed
  std::size_t min_samples = 10;  // Dirichlet: every worker must get at least this many samples
  int max_tries = 1000;          // Dirichlet: resampling attempts before giving up, >= 1
};

// What one worker holds: samples `rows` (indices into the dataset) restricted to features
// [col_begin, col_end).
struct Shard {
  std::vector<std::uint32_t> rows;
  int col_begin = 0;
  int col_end = 0;
};

// Splits `d` among `workers` workers; returns one Shard per worker, indexed by worker.
// Precondition: d.samples() < 2^32.
//
// Whenever something is cut into `p` contiguous pieces "evenly", the first (n mod p) pieces
// get floor(n/p) + 1 items and the rest floor(n/p), so sizes differ by at most one.
//
// kRows + kIid: the sample indices are shuffled (Fisher-Yates, CounterRng key
//   {seed, kPartition, 0, 0}) and cut evenly into `workers` pieces. All features.
// kRows + kDirichlet: the class-wise label-skew procedure of Yurochkin et al. 2019
//   (arXiv 1905.12022) as implemented in NIID-Bench (Xtra-Computing/NIID-Bench utils.py,
//   partition "noniid-labeldir") and Flower's DirichletPartitioner; NOT the client-wise
//   scheme of Hsu et al. 2019. With N samples, attempt t (CounterRng key
//   {seed, kPartition, 0, t}, t = 0, 1, ...) does, for each class k in order:
//     shuffle the indices of class k; draw p ~ Dirichlet(alpha, ..., alpha) over workers;
//     balance: set p_j = 0 for every worker already holding >= N / workers samples;
//     renormalise; cut the shuffled class at floor(cumsum(p) * class size) and give
//     piece j to worker j.
//   An attempt is accepted when every worker holds >= min_samples; each worker's list is then
//   shuffled. Dirichlet draws are normalised Gamma(alpha) variates, computed in log space so
//   tiny alpha does not underflow to all zeros.
// kRows + kByLabel: indices sorted by (label, index), cut evenly into `workers` pieces in
//   that order, so each worker sees few classes. Lists stay in sorted order.
// kColumns: every worker holds all rows 0..n-1 in order; features are cut evenly into
//   contiguous ranges, worker w taking the w-th.
// kBlocks: the grid has G = the largest divisor of `workers` that is <= sqrt(workers) column
//   groups and R = workers / G row groups (4 -> 2 x 2, 6 -> 3 rows x 2 columns,
//   a prime p -> p x 1). Worker w holds row group w / G and column group w % G. Row groups
//   are an IID split as for kRows + kIid (R pieces); column groups are contiguous even
//   feature ranges. Every (row, feature) cell belongs to exactly one worker.
//
// Throws InputError with key
//   "cluster.workers"   workers < 1; more workers (kRows) or row groups (kBlocks) than
//                       samples; more workers (kColumns) or column groups (kBlocks) than
//                       features;
//   "data.split"        kDirichlet or kByLabel on a regression dataset, or a split other than
//                       kIid for kColumns / kBlocks;
//   "data.alpha"        kDirichlet with alpha <= 0 (or NaN), or no accepted attempt within
//                       max_tries;
//   "data.min_samples"  kDirichlet with workers * min_samples > samples (can never succeed);
//   "data.max_tries"    kDirichlet with max_tries < 1.
std::vector<Shard> partition(const Dataset& d, int workers, const PartitionConfig& c,
                             std::uint64_t seed);

// Shuffles the samples of `d` (Fisher-Yates, CounterRng key {seed, kShuffle, stream, 0}) and
// keeps the first `n`. n == 0 or n >= d.samples() keeps every sample, still shuffled.
// Used to train on a random subset of a large dataset; `stream` separates e.g. train from test.
void shuffle_and_take(Dataset& d, std::size_t n, std::uint64_t seed, std::uint32_t stream);
// The rows shuffle_and_take keeps of a dataset of `samples` samples, in their new order (so a
// loader can read just those: select_rows(d, these) equals shuffle_and_take).
std::vector<std::uint32_t> shuffled_subset(std::size_t samples, std::size_t n, std::uint64_t seed,
                                           std::uint32_t stream);

}  // namespace dtsim
