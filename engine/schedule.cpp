#include "engine/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dtsim {

double learning_rate(const ScheduleConfig& config, std::uint64_t step, std::uint64_t total_steps) {
  if (step < config.warmup_steps) {
    return config.lr * static_cast<double>(step + 1) / static_cast<double>(config.warmup_steps);
  }
  switch (config.kind) {
    case ScheduleKind::kConstant:
      return config.lr;
    case ScheduleKind::kStep: {
      const std::uint64_t every =
          config.decay_every > 0 ? config.decay_every : std::max<std::uint64_t>(1, total_steps / 3);
      return config.lr * std::pow(config.decay_factor, static_cast<double>(step / every));
    }
    case ScheduleKind::kCosine: {
      const double span = static_cast<double>(
          total_steps > config.warmup_steps ? total_steps - config.warmup_steps : 1);
      const double t = std::min(static_cast<double>(step - config.warmup_steps), span);
      const double low = config.final_lr_fraction * config.lr;
      return low + (config.lr - low) * 0.5 * (1.0 + std::cos(std::numbers::pi * t / span));
    }
  }
  return config.lr;
}

}  // namespace dtsim
