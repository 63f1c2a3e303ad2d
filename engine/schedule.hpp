// Learning-rate schedules, with optional linear warm-up.
//
//   warm-up (step < warmup_steps): lr * (step + 1) / warmup_steps
//   constant: lr
//   step:     lr * decay_factor ^ floor(step / decay_every)
//   cosine:   lr_min + (lr - lr_min) * (1 + cos(pi * t / T)) / 2, with t = step - warmup_steps,
//             T = total_steps - warmup_steps (lr_min = final_lr_fraction * lr)
// `step` counts from 0. Pure functions: every worker computes the same value.
#pragma once

#include <cstdint>

#include "engine/names.hpp"

namespace dtsim {

enum class ScheduleKind { kConstant, kStep, kCosine };

inline NameTable<ScheduleKind> schedule_names() {
  static constexpr Named<ScheduleKind> kNames[] = {
      {"constant", ScheduleKind::kConstant},
      {"step", ScheduleKind::kStep},
      {"cosine", ScheduleKind::kCosine},
  };
  return kNames;
}
inline const char* to_string(ScheduleKind kind) { return name_of(schedule_names(), kind); }

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kConstant;
  double lr = 0.05;
  std::uint64_t warmup_steps = 0;
  std::uint64_t decay_every = 0;   // step schedule; 0 means total_steps / 3
  double decay_factor = 0.1;       // step schedule
  double final_lr_fraction = 0.0;  // cosine
};

double learning_rate(const ScheduleConfig& config, std::uint64_t step, std::uint64_t total_steps);

}  // namespace dtsim
