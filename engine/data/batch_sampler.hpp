// The order in which one worker visits its samples.
//
// Each epoch of a worker is a fresh seeded permutation of its rows (CounterRng key
// {seed, kBatch, worker, epoch}); batches are consecutive runs of `batch` positions through
// the concatenation of those permutations, so every batch is full and a batch may straddle
// two epochs. A pure function of (rows, batch, seed, worker): BatchSampler(...).batch(s) is the
// same however it is reached.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dtsim {

class BatchSampler {
 public:
  BatchSampler(std::vector<std::uint32_t> rows, int batch, std::uint64_t seed,
               std::uint32_t worker);

  // Writes the rows of the next batch into `out` (resized to the batch size).
  void next(std::vector<std::uint32_t>& out);
  std::uint64_t batches_drawn() const { return drawn_; }

 private:
  void start_epoch(std::uint64_t epoch);

  std::vector<std::uint32_t> rows_;
  std::vector<std::uint32_t> order_;
  int batch_;
  std::uint64_t seed_;
  std::uint32_t worker_;
  std::uint64_t epoch_ = 0;
  std::size_t pos_ = 0;
  std::uint64_t drawn_ = 0;
};

}  // namespace dtsim
