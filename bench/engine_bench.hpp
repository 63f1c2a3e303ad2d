// The training-core benchmark behind `dtsim bench engine`.
//
// Trains `threads` independent replicas of a model side by side (one job each on a JobRunner
// of `threads` threads, as the simulator runs jobs), each on its own synthetic batches, for at
// least `min_seconds` of wall time, and reports the total throughput. Also measures this machine's
// single-thread OpenBLAS sgemm speed as the reference peak.
#pragma once

#include <string>

#include "engine/model.hpp"

namespace dtsim {

struct EngineBenchConfig {
  ModelConfig model;  // default: 784-256-128-10 ReLU MLP
  Shape input = {1, 28, 28};
  int classes = 10;
  int batch = 64;
  int threads = 1;
  double min_seconds = 2.0;
};

struct EngineBenchResult {
  std::string model;  // Model::summary()
  int batch = 0;
  int threads = 0;
  double samples_per_s = 0;     // forward + backward + momentum update, all replicas together
  double gflops = 0;            // achieved, counting the model's FLOPs per sample
  double flops_per_sample = 0;  // forward + backward + update
  double blas_gflops = 0;       // one-thread sgemm 1024x1024x1024, best of several
  double wall_s = 0;
};

EngineBenchResult run_engine_bench(const EngineBenchConfig& config);

// One-thread sgemm speed in GFLOP/s for an n x n x n product (best of `repeats`).
double measure_sgemm_gflops(int n, int repeats);

}  // namespace dtsim
