// Optimizers over flat parameter buffers, and global-norm gradient clipping.
//
// Conventions follow PyTorch's, so results can be checked against it:
//   g' = g + weight_decay * w                          (L2 weight decay, all optimizers)
//   sgd:       w -= lr * g'
//   momentum:  v = mu * v + g';           w -= lr * v
//   nesterov:  v = mu * v + g';           w -= lr * (g' + mu * v)
//   adam:      m = b1 m + (1-b1) g';  s = b2 s + (1-b2) g'^2;
//              w -= lr * (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps)
// Velocity and moments start at zero. An Optimizer owns its state (flat buffers of the
// parameter count) and is used by one thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/names.hpp"

namespace dtsim {

enum class OptimizerKind { kSgd, kMomentum, kNesterov, kAdam };

inline NameTable<OptimizerKind> optimizer_names() {
  static constexpr Named<OptimizerKind> kNames[] = {
      {"sgd", OptimizerKind::kSgd},
      {"momentum", OptimizerKind::kMomentum},
      {"nesterov", OptimizerKind::kNesterov},
      {"adam", OptimizerKind::kAdam},
  };
  return kNames;
}
inline const char* to_string(OptimizerKind kind) { return name_of(optimizer_names(), kind); }

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kMomentum;
  double momentum = 0.9;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, std::size_t num_params);

  // One update of `params` with gradient `grads` at learning rate `lr`.
  void step(std::span<float> params, std::span<const float> grads, double lr);

  std::uint64_t steps() const { return steps_; }
  // FLOPs of one step over n parameters (what the simulator charges for it).
  double step_flops(std::size_t n) const;
  const OptimizerConfig& config() const { return config_; }

 private:
  OptimizerConfig config_;
  std::vector<float> first_;   // momentum velocity, or Adam's first moment
  std::vector<float> second_;  // Adam's second moment
  std::uint64_t steps_ = 0;
};

// FLOPs of one update of n parameters by an optimizer of this kind (what the simulator charges
// for it; the same with or without numerics).
double optimizer_step_flops(OptimizerKind kind, std::size_t n);

// Scales `grads` so that its L2 norm is at most max_norm (no-op when max_norm <= 0 or the
// norm is already within it). Returns the norm before clipping. Sums in double, in order.
double clip_global_norm(std::span<float> grads, double max_norm);

}  // namespace dtsim
