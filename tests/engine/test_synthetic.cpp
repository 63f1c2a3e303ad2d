#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/data/synthetic.hpp"
#include "engine/errors.hpp"

namespace dtsim {
namespace {

// Per-class mean feature vectors (classes x features, row-major).
std::vector<double> class_means(const Dataset& d) {
  const auto f = static_cast<std::size_t>(d.features);
  std::vector<double> sums(static_cast<std::size_t>(d.classes) * f, 0.0);
  std::vector<double> counts(static_cast<std::size_t>(d.classes), 0.0);
  for (std::size_t i = 0; i < d.samples(); ++i) {
    const auto k = static_cast<std::size_t>(d.labels[i]);
    counts[k] += 1;
    for (std::size_t j = 0; j < f; ++j) sums[k * f + j] += d.x[i * f + j];
  }
  for (std::size_t k = 0; k < counts.size(); ++k) {
    for (std::size_t j = 0; j < f; ++j) sums[k * f + j] /= counts[k];
  }
  return sums;
}

void check_input_error(const std::function<void()>& f, const std::string& key,
                       const std::string& phrase) {
  try {
    f();
    FAIL("expected an InputError for " << key);
  } catch (const InputError& e) {
    CHECK(e.key() == key);
    CHECK_MESSAGE(std::string(e.what()).find(phrase) != std::string::npos, e.what());
  }
}

TEST_CASE("make_blobs produces datasets of the configured shape") {
  BlobsConfig c;
  c.classes = 5;
  c.features = 7;
  c.train_samples = 300;
  c.test_samples = 120;
  const DatasetPair p = make_blobs(c, 1);
  for (const Dataset* d : {&p.train, &p.test}) {
    CHECK(d->name == "blobs");
    CHECK(d->task == LearningTask::kClassification);
    CHECK(d->features == 7);
    CHECK(d->width == 7);
    CHECK(d->height == 1);
    CHECK(d->channels == 1);
    CHECK(d->classes == 5);
    CHECK(d->outputs == 5);
    CHECK(d->targets.empty());
    CHECK(d->labels.size() == d->samples());
    for (const std::int32_t l : d->labels) {
      CHECK(l >= 0);
      CHECK(l < 5);
    }
  }
  CHECK(p.train.samples() == 300);
  CHECK(p.test.samples() == 120);
}

TEST_CASE("make_blobs draws labels uniformly") {
  BlobsConfig c;  // 4 classes, 4000 training samples: 1000 +- 27 per class
  const DatasetPair p = make_blobs(c, 7);
  std::vector<int> counts(4, 0);
  for (const std::int32_t l : p.train.labels) ++counts[static_cast<std::size_t>(l)];
  for (const int n : counts) CHECK(std::abs(n - 1000) < 120);
}

TEST_CASE("make_blobs classes are separable blobs of the configured spread") {
  BlobsConfig c;  // separation 3, spread 1, 20 features
  SUBCASE("spread 1") { c.spread = 1.0; }
  SUBCASE("spread 0.5") { c.spread = 0.5; }
  CAPTURE(c.spread);
  const DatasetPair p = make_blobs(c, 11);
  const auto f = static_cast<std::size_t>(c.features);
  const std::vector<double> means = class_means(p.train);

  // Spread: per-feature variance around the class mean is spread^2.
  double squares = 0;
  for (std::size_t i = 0; i < p.train.samples(); ++i) {
    const auto k = static_cast<std::size_t>(p.train.labels[i]);
    for (std::size_t j = 0; j < f; ++j) {
      const double diff = p.train.x[i * f + j] - means[k * f + j];
      squares += diff * diff;
    }
  }
  const double variance = squares / static_cast<double>(p.train.samples() * f);
  CHECK(std::sqrt(variance) == doctest::Approx(c.spread).epsilon(0.03));

  // Train and test share their centres: test class means sit near the training ones.
  const std::vector<double> test_means = class_means(p.test);
  for (std::size_t i = 0; i < means.size(); ++i) {
    CHECK(std::abs(test_means[i] - means[i]) < 0.5 * c.spread);
  }

  // A nearest-centre classifier fitted on train classifies test well.
  std::size_t correct = 0;
  for (std::size_t i = 0; i < p.test.samples(); ++i) {
    double best = INFINITY;
    std::int32_t guess = -1;
    for (std::size_t k = 0; k < static_cast<std::size_t>(c.classes); ++k) {
      double dist = 0;
      for (std::size_t j = 0; j < f; ++j) {
        const double diff = p.test.x[i * f + j] - means[k * f + j];
        dist += diff * diff;
      }
      if (dist < best) {
        best = dist;
        guess = static_cast<std::int32_t>(k);
      }
    }
    if (guess == p.test.labels[i]) ++correct;
  }
  CHECK(static_cast<double>(correct) / static_cast<double>(p.test.samples()) > 0.9);
}

TEST_CASE("make_blobs is determined by the seed") {
  BlobsConfig c;
  c.train_samples = 200;
  c.test_samples = 50;
  const DatasetPair a = make_blobs(c, 3);
  const DatasetPair b = make_blobs(c, 3);
  const DatasetPair other = make_blobs(c, 4);
  CHECK(a.train.x == b.train.x);
  CHECK(a.train.labels == b.train.labels);
  CHECK(a.test.x == b.test.x);
  CHECK(a.train.x != other.train.x);
  CHECK(a.test.x != other.test.x);
  // Train and test are different draws, not copies.
  CHECK(!std::equal(a.test.x.begin(), a.test.x.end(), a.train.x.begin()));
}

TEST_CASE("make_blobs rejects invalid configurations") {
  BlobsConfig c;
  std::string key;
  std::string phrase;
  SUBCASE("one class") {
    c.classes = 1;
    key = "data.classes";
    phrase = "at least 2, found 1";
  }
  SUBCASE("no features") {
    c.features = 0;
    key = "data.features";
    phrase = "at least 1, found 0";
  }
  SUBCASE("negative spread") {
    c.spread = -1;
    key = "data.spread";
    phrase = ">= 0, found -1";
  }
  SUBCASE("NaN spread") {
    c.spread = NAN;
    key = "data.spread";
    phrase = ">= 0";
  }
  SUBCASE("negative separation") {
    c.separation = -2;
    key = "data.separation";
    phrase = "found -2";
  }
  SUBCASE("no training samples") {
    c.train_samples = 0;
    key = "data.train_samples";
    phrase = "found 0";
  }
  SUBCASE("no test samples") {
    c.test_samples = 0;
    key = "data.test_samples";
    phrase = "found 0";
  }
  check_input_error([&] { make_blobs(c, 1); }, key, phrase);
}

// Least squares with an intercept, by the normal equations in double:
// returns outputs x (features + 1) coefficients, the bias last in each row.
std::vector<double> least_squares(const Dataset& d) {
  const auto f = static_cast<std::size_t>(d.features);
  const auto o = static_cast<std::size_t>(d.outputs);
  const std::size_t m = f + 1;
  // A = [X 1]^T [X 1] (m x m), B = [X 1]^T Y (m x o).
  std::vector<double> a(m * m, 0.0);
  std::vector<double> b(m * o, 0.0);
  std::vector<double> row(m, 1.0);
  for (std::size_t i = 0; i < d.samples(); ++i) {
    for (std::size_t j = 0; j < f; ++j) row[j] = d.x[i * f + j];
    for (std::size_t r = 0; r < m; ++r) {
      for (std::size_t s = 0; s < m; ++s) a[r * m + s] += row[r] * row[s];
      for (std::size_t k = 0; k < o; ++k) b[r * o + k] += row[r] * d.targets[i * o + k];
    }
  }
  // Gauss-Jordan elimination with partial pivoting.
  for (std::size_t col = 0; col < m; ++col) {
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < m; ++r) {
      if (std::abs(a[r * m + col]) > std::abs(a[pivot * m + col])) pivot = r;
    }
    for (std::size_t s = 0; s < m; ++s) std::swap(a[col * m + s], a[pivot * m + s]);
    for (std::size_t k = 0; k < o; ++k) std::swap(b[col * o + k], b[pivot * o + k]);
    for (std::size_t r = 0; r < m; ++r) {
      if (r == col) continue;
      const double factor = a[r * m + col] / a[col * m + col];
      for (std::size_t s = 0; s < m; ++s) a[r * m + s] -= factor * a[col * m + s];
      for (std::size_t k = 0; k < o; ++k) b[r * o + k] -= factor * b[col * o + k];
    }
  }
  std::vector<double> coef(o * m);
  for (std::size_t k = 0; k < o; ++k) {
    for (std::size_t r = 0; r < m; ++r) coef[k * m + r] = b[r * o + k] / a[r * m + r];
  }
  return coef;
}

TEST_CASE("make_linreg produces regression datasets of the configured shape") {
  LinregConfig c;
  c.features = 6;
  c.outputs = 3;
  c.train_samples = 100;
  c.test_samples = 40;
  const LinregData l = make_linreg(c, 1);
  CHECK(l.true_weights.size() == 18);
  CHECK(l.true_bias.size() == 3);
  for (const Dataset* d : {&l.data.train, &l.data.test}) {
    CHECK(d->name == "linreg");
    CHECK(d->task == LearningTask::kRegression);
    CHECK(d->features == 6);
    CHECK(d->width == 6);
    CHECK(d->classes == 0);
    CHECK(d->outputs == 3);
    CHECK(d->labels.empty());
    CHECK(d->targets.size() == d->samples() * 3);
  }
  CHECK(l.data.train.samples() == 100);
  CHECK(l.data.test.samples() == 40);
}

TEST_CASE("make_linreg training data determine the true weights up to the noise") {
  LinregConfig c;  // 20 features, 4000 samples
  double tolerance = 0;
  SUBCASE("noise 0.1, one output") {
    c.noise = 0.1;
    // Standard error of each coefficient is about noise / sqrt(samples) = 0.0016.
    tolerance = 6 * c.noise / std::sqrt(static_cast<double>(c.train_samples));
  }
  SUBCASE("no noise, three outputs") {
    c.noise = 0.0;
    c.outputs = 3;
    tolerance = 1e-4;  // only float rounding of x and y is left
  }
  CAPTURE(c.noise);
  const LinregData l = make_linreg(c, 5);
  const std::vector<double> coef = least_squares(l.data.train);
  const auto f = static_cast<std::size_t>(c.features);
  for (std::size_t k = 0; k < static_cast<std::size_t>(c.outputs); ++k) {
    for (std::size_t j = 0; j < f; ++j) {
      CHECK(std::abs(coef[k * (f + 1) + j] - l.true_weights[k * f + j]) < tolerance);
    }
    CHECK(std::abs(coef[k * (f + 1) + f] - l.true_bias[k]) < tolerance);
  }
}

TEST_CASE("make_linreg test targets follow the same map with the configured noise") {
  LinregConfig c;
  c.noise = 0.3;
  const LinregData l = make_linreg(c, 9);
  const Dataset& t = l.data.test;
  const auto f = static_cast<std::size_t>(c.features);
  double squares = 0;
  for (std::size_t i = 0; i < t.samples(); ++i) {
    double y = l.true_bias[0];
    for (std::size_t j = 0; j < f; ++j) y += double{l.true_weights[j]} * t.x[i * f + j];
    squares += (t.targets[i] - y) * (t.targets[i] - y);
  }
  // 1000 residuals: the sample std-dev is within a few percent of the noise level.
  CHECK(std::sqrt(squares / static_cast<double>(t.samples())) == doctest::Approx(0.3).epsilon(0.1));
}

TEST_CASE("make_linreg is determined by the seed") {
  LinregConfig c;
  c.train_samples = 100;
  c.test_samples = 10;
  const LinregData a = make_linreg(c, 21);
  const LinregData b = make_linreg(c, 21);
  const LinregData other = make_linreg(c, 22);
  CHECK(a.true_weights == b.true_weights);
  CHECK(a.data.train.x == b.data.train.x);
  CHECK(a.data.train.targets == b.data.train.targets);
  CHECK(a.true_weights != other.true_weights);
  CHECK(a.data.train.x != other.data.train.x);
}

TEST_CASE("make_linreg rejects invalid configurations") {
  LinregConfig c;
  std::string key;
  std::string phrase;
  SUBCASE("no features") {
    c.features = 0;
    key = "data.features";
    phrase = "at least 1, found 0";
  }
  SUBCASE("no outputs") {
    c.outputs = 0;
    key = "data.outputs";
    phrase = "at least 1, found 0";
  }
  SUBCASE("negative noise") {
    c.noise = -0.5;
    key = "data.noise";
    phrase = ">= 0, found -0.5";
  }
  SUBCASE("no training samples") {
    c.train_samples = 0;
    key = "data.train_samples";
    phrase = "found 0";
  }
  SUBCASE("no test samples") {
    c.test_samples = 0;
    key = "data.test_samples";
    phrase = "found 0";
  }
  check_input_error([&] { make_linreg(c, 1); }, key, phrase);
}

}  // namespace
}  // namespace dtsim
