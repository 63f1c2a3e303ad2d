#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/rng.hpp"

using namespace dtsim;

TEST_CASE("a stream is a pure function of its key") {
  CounterRng a({7, RngPurpose::kInit, 3, 11});
  CounterRng b({7, RngPurpose::kInit, 3, 11});
  for (int i = 0; i < 100; ++i) CHECK(a.next_u64() == b.next_u64());
  SUBCASE("any key field changes the stream") {
    const std::uint64_t first = CounterRng({7, RngPurpose::kInit, 3, 11}).next_u64();
    CHECK(CounterRng({8, RngPurpose::kInit, 3, 11}).next_u64() != first);
    CHECK(CounterRng({7, RngPurpose::kShuffle, 3, 11}).next_u64() != first);
    CHECK(CounterRng({7, RngPurpose::kInit, 4, 11}).next_u64() != first);
    CHECK(CounterRng({7, RngPurpose::kInit, 3, 12}).next_u64() != first);
  }
}

TEST_CASE("uniform and normal draws have the right moments") {
  CounterRng rng({1, RngPurpose::kTest, 0, 0});
  const int n = 200000;
  double sum = 0, sum_sq = 0, usum = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
    const double u = rng.uniform();
    CHECK_UNARY(u >= 0.0);
    CHECK_UNARY(u < 1.0);
    usum += u;
  }
  CHECK(sum / n == doctest::Approx(0.0).epsilon(0.01).scale(1));
  CHECK(sum_sq / n == doctest::Approx(1.0).epsilon(0.01));
  CHECK(usum / n == doctest::Approx(0.5).epsilon(0.01));
}

TEST_CASE("uniform_int covers its range evenly") {
  CounterRng rng({2, RngPurpose::kTest, 0, 0});
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[rng.uniform_int(7)];
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);
}

TEST_CASE("gamma draws have mean equal to the shape") {
  for (double shape : {0.1, 0.5, 1.0, 3.0}) {
    CAPTURE(shape);
    CounterRng rng({3, RngPurpose::kTest, 0, 0});
    double sum = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) sum += rng.gamma(shape);
    CHECK(sum / n == doctest::Approx(shape).epsilon(0.03));
  }
}

TEST_CASE("shuffle is a seeded permutation") {
  std::vector<int> a(50), b(50);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 0);
  CounterRng({5, RngPurpose::kShuffle, 0, 0}).shuffle(std::span<int>(a));
  CounterRng({5, RngPurpose::kShuffle, 0, 0}).shuffle(std::span<int>(b));
  CHECK(a == b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) CHECK(sorted[i] == i);
  int fixed = 0;
  for (int i = 0; i < 50; ++i) fixed += a[i] == i;
  CHECK(fixed < 10);
}
