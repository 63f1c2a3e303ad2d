#include "engine/data/synthetic.hpp"

#include <fmt/format.h>

#include "engine/errors.hpp"
#include "engine/rng.hpp"

namespace dtsim {
namespace {

// Stream (RngKey::node) per part of a synthetic dataset; see synthetic.hpp.
constexpr std::uint32_t kTruthStream = 0;
constexpr std::uint32_t kTrainStream = 1;
constexpr std::uint32_t kTestStream = 2;

CounterRng stream(std::uint64_t seed, std::uint32_t node) {
  return CounterRng(RngKey{seed, RngPurpose::kSynthetic, node, 0});
}

void require_at_least(const char* key, long long value, long long minimum) {
  if (value < minimum) {
    throw InputError({}, key, fmt::format("expected at least {}, found {}", minimum, value));
  }
}

void require_non_negative(const char* key, double value) {
  // Written so that NaN fails too.
  if (!(value >= 0.0)) {
    throw InputError({}, key, fmt::format("expected a number >= 0, found {}", value));
  }
}

void require_samples(const char* key, std::size_t value) {
  if (value == 0) throw InputError({}, key, "expected at least 1 sample, found 0");
}

Dataset empty_dataset(const char* name, LearningTask task, int features, int classes, int outputs) {
  Dataset d;
  d.name = name;
  d.task = task;
  d.features = features;
  d.width = features;
  d.classes = classes;
  d.outputs = outputs;
  return d;
}

Dataset draw_blobs(const BlobsConfig& c, const std::vector<double>& centres, std::size_t samples,
                   CounterRng rng) {
  Dataset d =
      empty_dataset("blobs", LearningTask::kClassification, c.features, c.classes, c.classes);
  const auto f = static_cast<std::size_t>(c.features);
  d.x.resize(samples * f);
  d.labels.resize(samples);
  for (std::size_t i = 0; i < samples; ++i) {
    const auto label =
        static_cast<std::size_t>(rng.uniform_int(static_cast<std::uint64_t>(c.classes)));
    d.labels[i] = static_cast<std::int32_t>(label);
    for (std::size_t j = 0; j < f; ++j) {
      d.x[i * f + j] = static_cast<float>(centres[label * f + j] + c.spread * rng.normal());
    }
  }
  return d;
}

Dataset draw_linreg(const LinregConfig& c, const std::vector<float>& w, const std::vector<float>& b,
                    std::size_t samples, CounterRng rng) {
  Dataset d = empty_dataset("linreg", LearningTask::kRegression, c.features, 0, c.outputs);
  const auto f = static_cast<std::size_t>(c.features);
  const auto o = static_cast<std::size_t>(c.outputs);
  d.x.resize(samples * f);
  d.targets.resize(samples * o);
  for (std::size_t i = 0; i < samples; ++i) {
    float* x = d.x.data() + i * f;
    for (std::size_t j = 0; j < f; ++j) x[j] = static_cast<float>(rng.normal());
    for (std::size_t k = 0; k < o; ++k) {
      double y = b[k];
      for (std::size_t j = 0; j < f; ++j) y += double{w[k * f + j]} * x[j];
      d.targets[i * o + k] = static_cast<float>(y + c.noise * rng.normal());
    }
  }
  return d;
}

}  // namespace

DatasetPair make_blobs(const BlobsConfig& config, std::uint64_t seed) {
  require_at_least("data.classes", config.classes, 2);
  require_at_least("data.features", config.features, 1);
  require_non_negative("data.spread", config.spread);
  require_non_negative("data.separation", config.separation);
  require_samples("data.train_samples", config.train_samples);
  require_samples("data.test_samples", config.test_samples);

  CounterRng truth = stream(seed, kTruthStream);
  std::vector<double> centres(static_cast<std::size_t>(config.classes) *
                              static_cast<std::size_t>(config.features));
  for (double& v : centres) v = config.separation * truth.normal();
  return {draw_blobs(config, centres, config.train_samples, stream(seed, kTrainStream)),
          draw_blobs(config, centres, config.test_samples, stream(seed, kTestStream))};
}

LinregData make_linreg(const LinregConfig& config, std::uint64_t seed) {
  require_at_least("data.features", config.features, 1);
  require_at_least("data.outputs", config.outputs, 1);
  require_non_negative("data.noise", config.noise);
  require_samples("data.train_samples", config.train_samples);
  require_samples("data.test_samples", config.test_samples);

  CounterRng truth = stream(seed, kTruthStream);
  LinregData out;
  out.true_weights.resize(static_cast<std::size_t>(config.outputs) *
                          static_cast<std::size_t>(config.features));
  out.true_bias.resize(static_cast<std::size_t>(config.outputs));
  for (float& v : out.true_weights) v = static_cast<float>(truth.normal());
  for (float& v : out.true_bias) v = static_cast<float>(truth.normal());
  out.data = {draw_linreg(config, out.true_weights, out.true_bias, config.train_samples,
                          stream(seed, kTrainStream)),
              draw_linreg(config, out.true_weights, out.true_bias, config.test_samples,
                          stream(seed, kTestStream))};
  return out;
}

}  // namespace dtsim
