#include "engine/data/partition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/errors.hpp"
#include "engine/rng.hpp"

namespace dtsim {
namespace {

[[noreturn]] void fail(const char* key, const std::string& message) {
  throw InputError({}, key, message);
}

std::vector<std::uint32_t> iota_rows(std::size_t n) {
  std::vector<std::uint32_t> rows(n);
  std::iota(rows.begin(), rows.end(), std::uint32_t{0});
  return rows;
}

// [begin, end) of piece `i` when `n` items are cut evenly into `parts` pieces.
std::pair<std::size_t, std::size_t> piece(std::size_t n, std::size_t parts, std::size_t i) {
  const std::size_t base = n / parts;
  const std::size_t extra = n % parts;
  const std::size_t begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

std::vector<std::vector<std::uint32_t>> cut_evenly(const std::vector<std::uint32_t>& order,
                                                   std::size_t parts) {
  std::vector<std::vector<std::uint32_t>> pieces(parts);
  for (std::size_t i = 0; i < parts; ++i) {
    const auto [begin, end] = piece(order.size(), parts, i);
    pieces[i].assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                     order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return pieces;
}

std::vector<std::uint32_t> shuffled_rows(std::size_t n, CounterRng rng) {
  std::vector<std::uint32_t> rows = iota_rows(n);
  rng.shuffle(std::span<std::uint32_t>(rows));
  return rows;
}

CounterRng partition_rng(std::uint64_t seed, std::uint64_t step) {
  return CounterRng(RngKey{seed, RngPurpose::kPartition, 0, step});
}

// Sample indices grouped by label, ascending within each class.
std::vector<std::vector<std::uint32_t>> by_class(const Dataset& d) {
  std::vector<std::vector<std::uint32_t>> classes(static_cast<std::size_t>(d.classes));
  for (std::size_t i = 0; i < d.labels.size(); ++i) {
    const std::int32_t label = d.labels[i];
    if (label < 0 || label >= d.classes) {
      throw std::invalid_argument(fmt::format("dataset {}: label {} of sample {} outside [0, {})",
                                              d.name, label, i, d.classes));
    }
    classes[static_cast<std::size_t>(label)].push_back(static_cast<std::uint32_t>(i));
  }
  return classes;
}

// Dirichlet(alpha) over the workers not masked out, as probabilities (masked ones get 0).
// Works on log Gamma variates: for alpha < 1, Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha)
// underflows to 0 for tiny alpha, and an all-zero draw cannot be normalised.
std::vector<double> dirichlet(CounterRng& rng, double alpha, const std::vector<bool>& masked) {
  std::vector<double> logs(masked.size());
  for (double& l : logs) {
    if (alpha < 1.0) {
      l = std::log(rng.gamma(alpha + 1.0)) + std::log(std::max(rng.uniform(), 1e-300)) / alpha;
    } else {
      l = std::log(rng.gamma(alpha));
    }
  }
  double top = -INFINITY;
  for (std::size_t j = 0; j < logs.size(); ++j) {
    if (!masked[j]) top = std::max(top, logs[j]);
  }
  std::vector<double> p(logs.size(), 0.0);
  double sum = 0;
  for (std::size_t j = 0; j < logs.size(); ++j) {
    if (!masked[j]) sum += p[j] = std::exp(logs[j] - top);
  }
  for (double& v : p) v /= sum;
  return p;
}

std::vector<std::vector<std::uint32_t>> dirichlet_split(const Dataset& d, std::size_t workers,
                                                        const PartitionConfig& c,
                                                        std::uint64_t seed) {
  const std::size_t n = d.samples();
  const std::vector<std::vector<std::uint32_t>> classes = by_class(d);
  for (int attempt = 0; attempt < c.max_tries; ++attempt) {
    CounterRng rng = partition_rng(seed, static_cast<std::uint64_t>(attempt));
    std::vector<std::vector<std::uint32_t>> lists(workers);
    for (std::vector<std::uint32_t> members : classes) {
      if (members.empty()) continue;
      rng.shuffle(std::span<std::uint32_t>(members));
      // NIID-Bench's balancing step: a worker already at its fair share N / workers gets no
      // more. Some worker is always below it while samples remain, so the mask never covers all.
      std::vector<bool> full(workers);
      for (std::size_t j = 0; j < workers; ++j) full[j] = lists[j].size() * workers >= n;
      const std::vector<double> p = dirichlet(rng, c.alpha, full);
      double cumulative = 0;
      std::size_t begin = 0;
      for (std::size_t j = 0; j < workers; ++j) {
        cumulative += p[j];
        const std::size_t end =
            j + 1 == workers
                ? members.size()
                : std::min(members.size(), static_cast<std::size_t>(
                                               cumulative * static_cast<double>(members.size())));
        lists[j].insert(lists[j].end(), members.begin() + static_cast<std::ptrdiff_t>(begin),
                        members.begin() + static_cast<std::ptrdiff_t>(end));
        begin = std::max(begin, end);
      }
    }
    const bool accepted = std::all_of(lists.begin(), lists.end(),
                                      [&](const auto& l) { return l.size() >= c.min_samples; });
    if (accepted) {
      for (auto& l : lists) rng.shuffle(std::span<std::uint32_t>(l));
      return lists;
    }
  }
  fail(
      "data.alpha",
      fmt::format("Dirichlet partition with alpha = {} over {} workers left some worker with fewer "
                  "than {} samples in all {} attempts; raise data.alpha or use fewer workers",
                  c.alpha, workers, c.min_samples, c.max_tries));
}

std::vector<std::vector<std::uint32_t>> by_label_split(const Dataset& d, std::size_t workers) {
  std::vector<std::uint32_t> order;
  order.reserve(d.samples());
  for (const auto& members : by_class(d)) order.insert(order.end(), members.begin(), members.end());
  return cut_evenly(order, workers);
}

// `parts` pieces of something that has only `available` samples or features.
void check_fits(std::size_t parts, std::size_t available, const std::string& parts_name,
                const char* unit) {
  if (parts > available) {
    fail("cluster.workers",
         fmt::format("expected at most {} {}, one per {} of the dataset; found {}", available,
                     parts_name, unit, parts));
  }
}

}  // namespace

std::vector<Shard> partition(const Dataset& d, int workers, const PartitionConfig& c,
                             std::uint64_t seed) {
  if (workers < 1) {
    fail("cluster.workers", fmt::format("expected at least 1 worker, found {}", workers));
  }
  const auto w = static_cast<std::size_t>(workers);
  const std::size_t n = d.samples();
  const auto features = static_cast<std::size_t>(d.features);

  if (c.kind != PartitionKind::kRows && c.split != SplitKind::kIid) {
    fail("data.split", "column and block partitions split rows IID only; expected split = iid");
  }
  if (c.split != SplitKind::kIid && d.task != LearningTask::kClassification) {
    fail("data.split", fmt::format("dirichlet and by-label splits need class labels, but dataset "
                                   "{} is a regression dataset; expected split = iid",
                                   d.name));
  }

  std::vector<Shard> shards(w);
  if (c.kind == PartitionKind::kColumns) {
    check_fits(w, features, "workers", "feature");
    const std::vector<std::uint32_t> all = iota_rows(n);
    for (std::size_t i = 0; i < w; ++i) {
      const auto [begin, end] = piece(features, w, i);
      shards[i] = {all, static_cast<int>(begin), static_cast<int>(end)};
    }
    return shards;
  }

  if (c.kind == PartitionKind::kBlocks) {
    std::size_t col_groups = 1;
    for (std::size_t g = 1; g * g <= w; ++g) {
      if (w % g == 0) col_groups = g;
    }
    const std::size_t row_groups = w / col_groups;
    const std::string grid = fmt::format(
        "(blocks: {} workers form {} row groups x {} column groups)", w, row_groups, col_groups);
    check_fits(row_groups, n, "row groups " + grid, "sample");
    check_fits(col_groups, features, "column groups " + grid, "feature");
    const auto row_pieces = cut_evenly(shuffled_rows(n, partition_rng(seed, 0)), row_groups);
    for (std::size_t i = 0; i < w; ++i) {
      const auto [begin, end] = piece(features, col_groups, i % col_groups);
      shards[i] = {row_pieces[i / col_groups], static_cast<int>(begin), static_cast<int>(end)};
    }
    return shards;
  }

  check_fits(w, n, "workers", "sample");
  std::vector<std::vector<std::uint32_t>> lists;
  switch (c.split) {
    case SplitKind::kIid:
      lists = cut_evenly(shuffled_rows(n, partition_rng(seed, 0)), w);
      break;
    case SplitKind::kDirichlet:
      if (!(c.alpha > 0)) fail("data.alpha", fmt::format("expected alpha > 0, found {}", c.alpha));
      if (c.max_tries < 1) {
        // Not a scenario key: the caller's configuration is wrong.
        throw std::invalid_argument(
            fmt::format("partition: max_tries must be at least 1, found {}", c.max_tries));
      }
      if (c.min_samples * w > n) {
        fail("cluster.workers",
             fmt::format("{} workers with at least {} samples each need {} samples, the dataset "
                         "has {}; use fewer workers or more data.train_samples",
                         w, c.min_samples, c.min_samples * w, n));
      }
      lists = dirichlet_split(d, w, c, seed);
      break;
    case SplitKind::kByLabel:
      lists = by_label_split(d, w);
      break;
  }
  for (std::size_t i = 0; i < w; ++i) shards[i] = {std::move(lists[i]), 0, d.features};
  return shards;
}

std::vector<std::uint32_t> shuffled_subset(std::size_t samples, std::size_t n, std::uint64_t seed,
                                           std::uint32_t stream) {
  std::vector<std::uint32_t> rows =
      shuffled_rows(samples, CounterRng(RngKey{seed, RngPurpose::kShuffle, stream, 0}));
  if (n != 0 && n < rows.size()) rows.resize(n);
  return rows;
}

void shuffle_and_take(Dataset& d, std::size_t n, std::uint64_t seed, std::uint32_t stream) {
  d = select_rows(d, shuffled_subset(d.samples(), n, seed, stream));
}

}  // namespace dtsim
