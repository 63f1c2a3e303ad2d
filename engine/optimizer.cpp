#include "engine/optimizer.hpp"

#include <cmath>

namespace dtsim {

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t num_params) : config_(config) {
  if (config.kind != OptimizerKind::kSgd) first_.assign(num_params, 0.0f);
  if (config.kind == OptimizerKind::kAdam) second_.assign(num_params, 0.0f);
}

void Optimizer::step(std::span<float> params, std::span<const float> grads, double lr) {
  ++steps_;
  const std::size_t n = params.size();
  const auto wd = static_cast<float>(config_.weight_decay);
  const auto rate = static_cast<float>(lr);
  const auto mu = static_cast<float>(config_.momentum);
  float* w = params.data();
  const float* g = grads.data();
  switch (config_.kind) {
    case OptimizerKind::kSgd:
      for (std::size_t i = 0; i < n; ++i) w[i] -= rate * (g[i] + wd * w[i]);
      break;
    case OptimizerKind::kMomentum: {
      float* v = first_.data();
      for (std::size_t i = 0; i < n; ++i) {
        v[i] = mu * v[i] + (g[i] + wd * w[i]);
        w[i] -= rate * v[i];
      }
      break;
    }
    case OptimizerKind::kNesterov: {
      float* v = first_.data();
      for (std::size_t i = 0; i < n; ++i) {
        const float gi = g[i] + wd * w[i];
        v[i] = mu * v[i] + gi;
        w[i] -= rate * (gi + mu * v[i]);
      }
      break;
    }
    case OptimizerKind::kAdam: {
      float* m = first_.data();
      float* s = second_.data();
      const auto b1 = static_cast<float>(config_.beta1);
      const auto b2 = static_cast<float>(config_.beta2);
      const double t = static_cast<double>(steps_);
      const auto c1 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta1, t)));
      const auto c2 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta2, t)));
      const auto eps = static_cast<float>(config_.epsilon);
      for (std::size_t i = 0; i < n; ++i) {
        const float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        s[i] = b2 * s[i] + (1.0f - b2) * gi * gi;
        w[i] -= rate * (m[i] * c1) / (std::sqrt(s[i] * c2) + eps);
      }
      break;
    }
  }
}

double optimizer_step_flops(OptimizerKind kind, std::size_t n) {
  const double per = kind == OptimizerKind::kSgd        ? 4.0
                     : kind == OptimizerKind::kMomentum ? 5.0
                     : kind == OptimizerKind::kNesterov ? 7.0
                                                        : 14.0;
  return per * static_cast<double>(n);
}

double Optimizer::step_flops(std::size_t n) const { return optimizer_step_flops(config_.kind, n); }

double clip_global_norm(std::span<float> grads, double max_norm) {
  double sum = 0;
  for (float g : grads) sum += static_cast<double>(g) * g;
  const double norm = std::sqrt(sum);
  if (max_norm > 0 && norm > max_norm) {
    const auto scale = static_cast<float>(max_norm / norm);
    for (float& g : grads) g *= scale;
  }
  return norm;
}

}  // namespace dtsim
