#include "sim/train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/data/idx_reader.hpp"
#include "engine/data/partition.hpp"
#include "engine/data/synthetic.hpp"
#include "engine/errors.hpp"
#include "engine/rng.hpp"
#include "engine/schedule.hpp"
#include "sim/strategies/registry.hpp"
#include "sim/train/training_run.hpp"

namespace dtsim {

namespace {
constexpr std::size_t kSyntheticTrain = 4000;
constexpr std::size_t kSyntheticTest = 1000;
}  // namespace

DatasetPair load_data(const Scenario& s) {
  const DataConfig& d = s.data;
  if (d.dataset == "fashion-mnist") {
    // A seeded shuffle of each set, keeping train_samples and test_samples (all: 0); only the
    // samples kept are converted.
    const auto take = [&s](const char* key, std::size_t asked, std::uint32_t stream) {
      return [&s, key, asked, stream](std::size_t have) {
        if (asked > have) {
          throw InputError({}, key,
                           fmt::format("asks for {} samples, but the dataset has {}", asked, have));
        }
        return shuffled_subset(have, asked, s.seed, stream);
      };
    };
    return load_fashion_mnist(d.path, take("data.train_samples", d.train_samples, 0),
                              take("data.test_samples", d.test_samples, 1));
  }
  const std::size_t train = d.train_samples > 0 ? d.train_samples : kSyntheticTrain;
  const std::size_t test = d.test_samples > 0 ? d.test_samples : kSyntheticTest;
  if (d.dataset == "blobs") {
    BlobsConfig c = d.blobs;
    c.train_samples = train;
    c.test_samples = test;
    return make_blobs(c, s.seed);
  }
  LinregConfig c = d.linreg;
  c.train_samples = train;
  c.test_samples = test;
  return make_linreg(c, s.seed).data;
}

TrainingRun::TrainingRun(const Scenario& s, const DatasetPair& data, int threads)
    : core_(s, data, threads) {
  strategy_ = strategy_of(s.strategy).make(core_);
  core_.attach(*strategy_);
}

class Training::Run : public TrainingRun {
 public:
  using TrainingRun::TrainingRun;
};

Training::Training(const Scenario& scenario, const DatasetPair& data, int threads)
    : run_(std::make_unique<Run>(scenario, data, threads)) {}

Training::~Training() = default;

RunResult Training::run(const std::vector<SimObserver*>& observers) {
  for (SimObserver* o : observers) run_->add_observer(o);
  return run_->run();
}

std::vector<float> Training::global_params() { return run_->global_params(); }

RunResult run_training(const Scenario& scenario, const DatasetPair& data, int threads,
                       const std::vector<SimObserver*>& observers) {
  return Training(scenario, data, threads).run(observers);
}

}  // namespace dtsim
