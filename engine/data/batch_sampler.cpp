#include "engine/data/batch_sampler.hpp"

#include <stdexcept>

#include "engine/rng.hpp"

namespace dtsim {

BatchSampler::BatchSampler(std::vector<std::uint32_t> rows, int batch, std::uint64_t seed,
                           std::uint32_t worker)
    : rows_(std::move(rows)), batch_(batch), seed_(seed), worker_(worker) {
  if (rows_.empty() || batch < 1) throw std::invalid_argument("BatchSampler: no rows or no batch");
  start_epoch(0);
}

void BatchSampler::start_epoch(std::uint64_t epoch) {
  epoch_ = epoch;
  order_ = rows_;
  CounterRng rng({seed_, RngPurpose::kBatch, worker_, epoch});
  rng.shuffle(std::span<std::uint32_t>(order_));
  pos_ = 0;
}

void BatchSampler::next(std::vector<std::uint32_t>& out) {
  out.resize(static_cast<std::size_t>(batch_));
  for (auto& row : out) {
    if (pos_ == order_.size()) start_epoch(epoch_ + 1);
    row = order_[pos_++];
  }
  ++drawn_;
}

}  // namespace dtsim
