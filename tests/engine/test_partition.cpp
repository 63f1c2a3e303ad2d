#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "engine/data/partition.hpp"
#include "engine/errors.hpp"

namespace dtsim {
namespace {

// A classification dataset whose sample i has label labels[i] and features
// (i, i + 0.125, i + 0.25, ...), so a row can be recognised after it moves.
Dataset labelled(const std::vector<std::int32_t>& labels, int classes, int features = 3) {
  Dataset d;
  d.name = "test";
  d.task = LearningTask::kClassification;
  d.features = features;
  d.width = features;
  d.classes = classes;
  d.outputs = classes;
  d.labels = labels;
  const auto f = static_cast<std::size_t>(features);
  d.x.resize(labels.size() * f);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    for (std::size_t j = 0; j < f; ++j) {
      d.x[i * f + j] = static_cast<float>(i) + 0.125f * static_cast<float>(j);
    }
  }
  return d;
}

// `classes` classes with `per_class` samples each, labels interleaved 0, 1, ..., 0, 1, ...
Dataset balanced(int classes, int per_class, int features = 3) {
  std::vector<std::int32_t> labels(static_cast<std::size_t>(classes * per_class));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    labels[i] = static_cast<std::int32_t>(i % static_cast<std::size_t>(classes));
  }
  return labelled(labels, classes, features);
}

Dataset regression(std::size_t samples, int features, int outputs) {
  Dataset d;
  d.name = "reg";
  d.task = LearningTask::kRegression;
  d.features = features;
  d.width = features;
  d.outputs = outputs;
  d.x.resize(samples * static_cast<std::size_t>(features));
  d.targets.resize(samples * static_cast<std::size_t>(outputs));
  for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = static_cast<float>(i);
  for (std::size_t i = 0; i < d.targets.size(); ++i) d.targets[i] = -static_cast<float>(i);
  return d;
}

PartitionConfig rows(SplitKind split, double alpha = 0.5) {
  PartitionConfig c;
  c.kind = PartitionKind::kRows;
  c.split = split;
  c.alpha = alpha;
  return c;
}

PartitionConfig of_kind(PartitionKind kind) {
  PartitionConfig c;
  c.kind = kind;
  return c;
}

// How many shards hold each row.
std::vector<int> row_counts(const std::vector<Shard>& shards, std::size_t samples) {
  std::vector<int> counts(samples, 0);
  for (const Shard& s : shards) {
    for (const std::uint32_t r : s.rows) {
      REQUIRE(r < samples);
      ++counts[r];
    }
  }
  return counts;
}

// Per-class sample counts of one shard.
std::vector<int> histogram(const Dataset& d, const Shard& s) {
  std::vector<int> h(static_cast<std::size_t>(d.classes), 0);
  for (const std::uint32_t r : s.rows) ++h[static_cast<std::size_t>(d.labels[r])];
  return h;
}

void check_input_error(const std::function<void()>& f, const std::string& key,
                       const std::vector<std::string>& phrases) {
  try {
    f();
    FAIL("expected an InputError for " << key);
  } catch (const InputError& e) {
    CHECK(e.key() == key);
    const std::string what = e.what();
    for (const std::string& p : phrases) CHECK_MESSAGE(what.find(p) != std::string::npos, what);
  }
}

TEST_CASE("row partitions assign every row to exactly one worker") {
  const Dataset d = balanced(10, 100);
  PartitionConfig c;
  SUBCASE("iid") { c = rows(SplitKind::kIid); }
  SUBCASE("dirichlet") { c = rows(SplitKind::kDirichlet, 0.5); }
  SUBCASE("by label") { c = rows(SplitKind::kByLabel); }
  const std::vector<Shard> shards = partition(d, 7, c, 42);
  REQUIRE(shards.size() == 7);
  for (const int n : row_counts(shards, d.samples())) CHECK(n == 1);
  for (const Shard& s : shards) {
    CHECK(s.col_begin == 0);
    CHECK(s.col_end == 3);
  }
}

TEST_CASE("iid row shards differ in size by at most one and are shuffled") {
  const Dataset d = balanced(10, 100);
  SUBCASE("7 workers") {
    const std::vector<Shard> shards = partition(d, 7, rows(SplitKind::kIid), 1);
    // 1000 = 6 * 143 + 142: the first 1000 mod 7 = 6 shards get one more.
    for (std::size_t w = 0; w < 7; ++w) CHECK(shards[w].rows.size() == (w < 6 ? 143u : 142u));
    CHECK_FALSE(std::is_sorted(shards[0].rows.begin(), shards[0].rows.end()));
  }
  SUBCASE("one worker per sample") {
    const std::vector<Shard> shards = partition(d, 1000, rows(SplitKind::kIid), 1);
    for (const Shard& s : shards) CHECK(s.rows.size() == 1);
  }
  SUBCASE("one worker") {
    const std::vector<Shard> shards = partition(d, 1, rows(SplitKind::kIid), 1);
    CHECK(shards[0].rows.size() == 1000);
  }
}

TEST_CASE("the seed determines a random partition") {
  const Dataset d = balanced(10, 100, 8);
  PartitionConfig c;
  SUBCASE("iid") { c = rows(SplitKind::kIid); }
  SUBCASE("dirichlet") { c = rows(SplitKind::kDirichlet, 0.5); }
  SUBCASE("blocks") { c = of_kind(PartitionKind::kBlocks); }
  const auto a = partition(d, 4, c, 100);
  const auto b = partition(d, 4, c, 100);
  const auto other = partition(d, 4, c, 101);
  bool all_equal = true;
  bool any_differs = false;
  for (std::size_t w = 0; w < 4; ++w) {
    all_equal = all_equal && a[w].rows == b[w].rows && a[w].col_begin == b[w].col_begin &&
                a[w].col_end == b[w].col_end;
    any_differs = any_differs || a[w].rows != other[w].rows;
  }
  CHECK(all_equal);
  CHECK(any_differs);
}

TEST_CASE("dirichlet with a huge alpha gives every worker a near-uniform class mix") {
  const Dataset d = balanced(10, 1000);
  const auto shards = partition(d, 10, rows(SplitKind::kDirichlet, 1e6), 3);
  for (const Shard& s : shards) {
    // Proportions are 0.1 +- 0.0003; floor at the cuts moves a sample or two.
    for (const int n : histogram(d, s)) CHECK(std::abs(n - 100) <= 2);
  }
}

TEST_CASE("dirichlet with a tiny alpha gives most workers one dominant class") {
  const Dataset d = balanced(10, 1000);
  PartitionConfig c = rows(SplitKind::kDirichlet, 0.01);
  SUBCASE("min_samples 10") { c.min_samples = 10; }
  SUBCASE("min_samples 500") { c.min_samples = 500; }
  CAPTURE(c.min_samples);
  // Counted over several seeds: per partition the dominated share varies (a worker one sample
  // short of its fair share can still take a second whole class), around 0.68 on average.
  int dominated = 0;
  int workers = 0;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    for (const Shard& s : partition(d, 10, c, seed)) {
      CHECK(s.rows.size() >= c.min_samples);
      const std::vector<int> h = histogram(d, s);
      const int top = *std::max_element(h.begin(), h.end());
      if (top > 0.9 * static_cast<double>(s.rows.size())) ++dominated;
      ++workers;
    }
  }
  CHECK(dominated > workers / 2);
}

TEST_CASE("dirichlet shuffles each worker's samples") {
  const Dataset d = balanced(10, 100);
  const auto shards = partition(d, 3, rows(SplitKind::kDirichlet, 100.0), 8);
  for (const Shard& s : shards) {
    // Unshuffled, a shard would list class 0's samples first, then class 1's, ...
    std::vector<std::int32_t> labels;
    for (const std::uint32_t r : s.rows) labels.push_back(d.labels[r]);
    CHECK_FALSE(std::is_sorted(labels.begin(), labels.end()));
  }
}

TEST_CASE("by-label gives each worker one class when workers equal balanced classes") {
  const Dataset d = balanced(10, 50);
  const auto shards = partition(d, 10, rows(SplitKind::kByLabel), 0);
  for (std::size_t w = 0; w < 10; ++w) {
    REQUIRE(shards[w].rows.size() == 50);
    for (const std::uint32_t r : shards[w].rows) CHECK(d.labels[r] == static_cast<std::int32_t>(w));
  }
}

TEST_CASE("by-label gives each worker at most two classes with 5 workers and 10 classes") {
  const Dataset d = balanced(10, 50);
  const auto shards = partition(d, 5, rows(SplitKind::kByLabel), 0);
  for (std::size_t w = 0; w < 5; ++w) {
    const std::vector<int> h = histogram(d, shards[w]);
    CHECK(h[2 * w] == 50);
    CHECK(h[2 * w + 1] == 50);
  }
}

TEST_CASE("column partitions give every worker all rows and cover the features once") {
  const Dataset d = balanced(4, 5, 10);
  int workers = 0;
  std::vector<std::pair<int, int>> expected;
  SUBCASE("3 workers") {
    workers = 3;
    expected = {{0, 4}, {4, 7}, {7, 10}};
  }
  SUBCASE("one worker per feature") {
    workers = 10;
    for (int j = 0; j < 10; ++j) expected.push_back({j, j + 1});
  }
  const auto shards = partition(d, workers, of_kind(PartitionKind::kColumns), 9);
  REQUIRE(shards.size() == expected.size());
  std::vector<std::uint32_t> all(d.samples());
  for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  for (std::size_t w = 0; w < shards.size(); ++w) {
    CHECK(shards[w].rows == all);
    CHECK(shards[w].col_begin == expected[w].first);
    CHECK(shards[w].col_end == expected[w].second);
  }
}

TEST_CASE("block partitions hold every (row, feature) cell exactly once") {
  const Dataset d = balanced(3, 7, 11);  // 21 samples, 11 features
  int workers = 0;
  std::size_t row_groups = 0;
  std::size_t col_groups = 0;
  SUBCASE("4 workers: 2 x 2") {
    workers = 4;
    row_groups = 2;
    col_groups = 2;
  }
  SUBCASE("6 workers: 3 row groups x 2 column groups") {
    workers = 6;
    row_groups = 3;
    col_groups = 2;
  }
  SUBCASE("7 workers: 7 x 1") {
    workers = 7;
    row_groups = 7;
    col_groups = 1;
  }
  const auto shards = partition(d, workers, of_kind(PartitionKind::kBlocks), 4);
  REQUIRE(shards.size() == static_cast<std::size_t>(workers));

  std::vector<int> cells(d.samples() * 11, 0);
  for (const Shard& s : shards) {
    for (const std::uint32_t r : s.rows) {
      for (int j = s.col_begin; j < s.col_end; ++j) ++cells[r * 11 + static_cast<std::size_t>(j)];
    }
  }
  for (const int n : cells) CHECK(n == 1);

  // Worker w holds row group w / G and column group w % G.
  std::set<std::pair<int, int>> ranges;
  std::set<std::vector<std::uint32_t>> groups;
  for (std::size_t w = 0; w < shards.size(); ++w) {
    ranges.insert({shards[w].col_begin, shards[w].col_end});
    groups.insert(shards[w].rows);
    CHECK(shards[w].rows == shards[(w / col_groups) * col_groups].rows);
    CHECK(shards[w].col_begin == shards[w % col_groups].col_begin);
  }
  CHECK(ranges.size() == col_groups);
  CHECK(groups.size() == row_groups);
}

TEST_CASE("partition rejects impossible requests with the key to fix") {
  const Dataset d = balanced(2, 5, 4);  // 10 samples, 4 features
  SUBCASE("no workers") {
    check_input_error([&] { partition(d, 0, PartitionConfig{}, 1); }, "cluster.workers",
                      {"at least 1 worker, found 0"});
  }
  SUBCASE("more workers than samples") {
    check_input_error([&] { partition(d, 11, PartitionConfig{}, 1); }, "cluster.workers",
                      {"at most 10 workers", "found 11"});
  }
  SUBCASE("more workers than features") {
    check_input_error([&] { partition(d, 5, of_kind(PartitionKind::kColumns), 1); },
                      "cluster.workers", {"at most 4 workers", "feature", "found 5"});
  }
  SUBCASE("blocks with more row groups than samples") {
    const Dataset tiny = balanced(2, 1, 4);  // 2 samples
    check_input_error([&] { partition(tiny, 3, of_kind(PartitionKind::kBlocks), 1); },
                      "cluster.workers", {"at most 2 row groups", "3 row groups x 1 column"});
  }
  SUBCASE("blocks with more column groups than features") {
    const Dataset narrow = balanced(2, 10, 2);  // 2 features
    check_input_error([&] { partition(narrow, 9, of_kind(PartitionKind::kBlocks), 1); },
                      "cluster.workers", {"at most 2 column groups", "found 3"});
  }
  SUBCASE("label splits on a regression dataset") {
    const Dataset reg = regression(20, 3, 1);
    check_input_error([&] { partition(reg, 2, rows(SplitKind::kDirichlet), 1); }, "data.split",
                      {"regression"});
    check_input_error([&] { partition(reg, 2, rows(SplitKind::kByLabel), 1); }, "data.split",
                      {"regression"});
  }
  SUBCASE("non-iid split for columns and blocks") {
    PartitionConfig c = of_kind(PartitionKind::kColumns);
    c.split = SplitKind::kDirichlet;
    check_input_error([&] { partition(d, 2, c, 1); }, "data.split", {"expected split = iid"});
    c.kind = PartitionKind::kBlocks;
    c.split = SplitKind::kByLabel;
    check_input_error([&] { partition(d, 2, c, 1); }, "data.split", {"expected split = iid"});
  }
  SUBCASE("alpha not positive") {
    for (const double alpha : {0.0, -1.0, static_cast<double>(NAN)}) {
      check_input_error([&] { partition(d, 2, rows(SplitKind::kDirichlet, alpha), 1); },
                        "data.alpha", {"expected alpha > 0"});
    }
  }
  SUBCASE("min_samples that no partition can meet") {
    PartitionConfig c = rows(SplitKind::kDirichlet);
    c.min_samples = 6;
    check_input_error([&] { partition(d, 2, c, 1); }, "cluster.workers",
                      {"need 12 samples", "has 10"});
  }
  SUBCASE("no attempts allowed") {
    PartitionConfig c = rows(SplitKind::kDirichlet);
    c.max_tries = 0;
    CHECK_THROWS_AS(partition(d, 2, c, 1), std::invalid_argument);
  }
}

TEST_CASE("dirichlet gives up after max_tries and says what to change") {
  // Tiny alpha sends each class almost whole to one worker: 10 classes cannot feed 20 workers.
  const Dataset d = balanced(10, 100);
  PartitionConfig c = rows(SplitKind::kDirichlet, 0.01);
  c.max_tries = 5;
  check_input_error([&] { partition(d, 20, c, 1); }, "data.alpha",
                    {"fewer than 10 samples", "5 attempts", "raise data.alpha"});
}

TEST_CASE("select_rows copies the chosen rows with their labels or targets") {
  SUBCASE("classification") {
    Dataset d = balanced(3, 4, 2);
    d.channels = 1;
    d.height = 2;
    d.width = 1;
    const std::vector<std::uint32_t> pick = {5, 0, 5};
    const Dataset s = select_rows(d, pick);
    CHECK(s.samples() == 3);
    CHECK(s.x == std::vector<float>{d.x[10], d.x[11], d.x[0], d.x[1], d.x[10], d.x[11]});
    CHECK(s.labels == std::vector<std::int32_t>{2, 0, 2});
    CHECK(s.targets.empty());
    CHECK(s.name == d.name);
    CHECK(s.features == 2);
    CHECK(s.height == 2);
    CHECK(s.width == 1);
    CHECK(s.classes == 3);
  }
  SUBCASE("regression") {
    const Dataset d = regression(4, 2, 2);
    const std::vector<std::uint32_t> pick = {3, 1};
    const Dataset s = select_rows(d, pick);
    CHECK(s.task == LearningTask::kRegression);
    CHECK(s.x == std::vector<float>{6, 7, 2, 3});
    CHECK(s.targets == std::vector<float>{-6, -7, -2, -3});
    CHECK(s.labels.empty());
    CHECK(s.outputs == 2);
  }
}

TEST_CASE("shuffle_and_take keeps a seeded random subset of the samples") {
  const Dataset original = balanced(10, 10);  // 100 samples; x[i * 3] == i
  const auto row_ids = [](const Dataset& d) {
    std::vector<std::uint32_t> ids;
    for (std::size_t i = 0; i < d.samples(); ++i) {
      ids.push_back(static_cast<std::uint32_t>(d.x[i * 3]));
    }
    return ids;
  };

  SUBCASE("takes n distinct original rows, labels attached") {
    Dataset d = original;
    shuffle_and_take(d, 30, 7, 0);
    const std::vector<std::uint32_t> ids = row_ids(d);
    REQUIRE(ids.size() == 30);
    CHECK(std::set<std::uint32_t>(ids.begin(), ids.end()).size() == 30);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      REQUIRE(ids[i] < 100);
      CHECK(d.labels[i] == original.labels[ids[i]]);
      CHECK(d.x[i * 3 + 2] == original.x[ids[i] * 3 + 2]);
    }
    CHECK_FALSE(std::is_sorted(ids.begin(), ids.end()));
  }
  SUBCASE("n = 0 or n >= samples keeps a permutation of all rows") {
    for (const std::size_t n : {std::size_t{0}, std::size_t{100}, std::size_t{500}}) {
      Dataset d = original;
      shuffle_and_take(d, n, 7, 0);
      std::vector<std::uint32_t> ids = row_ids(d);
      CHECK_FALSE(std::is_sorted(ids.begin(), ids.end()));
      std::sort(ids.begin(), ids.end());
      CHECK(ids == row_ids(original));
    }
  }
  SUBCASE("seed and stream determine the subset") {
    Dataset a = original;
    Dataset b = original;
    Dataset other_seed = original;
    Dataset other_stream = original;
    shuffle_and_take(a, 20, 7, 0);
    shuffle_and_take(b, 20, 7, 0);
    shuffle_and_take(other_seed, 20, 8, 0);
    shuffle_and_take(other_stream, 20, 7, 1);
    CHECK(row_ids(a) == row_ids(b));
    CHECK(row_ids(a) != row_ids(other_seed));
    CHECK(row_ids(a) != row_ids(other_stream));
  }
}

}  // namespace
}  // namespace dtsim
