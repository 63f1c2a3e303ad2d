#include "sim/train/health.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "sim/scenario/scenario.hpp"
#include "sim/strategies/registry.hpp"

namespace dtsim {

const char* to_string(Health h) {
  switch (h) {
    case Health::kOk:
      return "ok";
    case Health::kExploded:
      return "exploded";
    case Health::kCollapsed:
      return "collapsed";
    case Health::kNonFinite:
      return "non-finite";
  }
  return "?";
}

std::string health_advice(Health h) {
  switch (h) {
    case Health::kOk:
      return "";
    case Health::kExploded:
    case Health::kNonFinite:
      return "Lower train.lr, set train.clip_norm (1 to 5 is usual), or warm up "
             "(train.warmup_steps); with asp, ssp or delayed, set strategy.staleness_lr or use "
             "fewer workers per update.";
    case Health::kCollapsed:
      return "The model stopped learning, often after one step too large (dead ReLUs): lower "
             "train.lr or train.momentum, or set train.clip_norm; with asp or delayed every "
             "worker's gradient is applied whole, p times BSP's step: divide the lr by the "
             "workers or set strategy.staleness_lr.";
  }
  return "";
}

std::vector<std::string> stability_warnings(const Scenario& s) {
  std::vector<std::string> out;
  const StrategyConfig& st = s.strategy;
  const int p = s.cluster.workers;
  const double lr = s.train.schedule.lr;
  // Modes whose server applies each gradient as it comes are the ones with a staleness-aware
  // lr (their rows read staleness_lr); a bound or delay, where there is one, is `staleness`.
  const StrategyEntry* mode = find_strategy(st.architecture, st.sync);
  const bool async = mode != nullptr && mode->reads("staleness_lr");
  const OptimizerConfig& opt = s.train.optimizer;
  const double adam = opt.kind == OptimizerKind::kAdam ? 0.01 : 1.0;
  // (ssp applies a clock's gradients as one averaged step, so its step is bsp's.)
  const bool whole = async && st.sync != SyncMode::kSsp;
  if (whole && p >= 4 && !st.staleness_lr && lr * p >= 0.2 * adam) {
    out.push_back(fmt::format(
        "sync = \"{}\" applies each of the {} workers' gradients whole: at lr {:g} that is "
        "about {:g} per BSP-sized step; set strategy.staleness_lr = true or divide train.lr "
        "by the workers",
        to_string(st.sync), p, lr, lr * p));
  }
  const double beta = opt.kind == OptimizerKind::kAdam  ? opt.beta1
                      : opt.kind == OptimizerKind::kSgd ? 0.0
                                                        : opt.momentum;
  int staleness = async ? p - 1 : 0;  // p workers taking turns
  if (async && mode->reads("staleness") && st.staleness) staleness = *st.staleness;
  if (beta >= 0.9 && staleness >= 8) {
    out.push_back(fmt::format(
        "momentum {:g} with gradients about {} updates stale: staleness acts as extra momentum "
        "(Mitliagkas et al. 2016); lower train.momentum (e.g. to 0.5) or the staleness",
        beta, staleness));
  }
  if (lr >= adam && s.train.clip_norm <= 0 && !st.time_only) {
    out.push_back(fmt::format(
        "train.lr = {:g} without clipping: one large gradient can blow the weights up; set "
        "train.clip_norm (1 to 5 is usual) or lower the lr",
        lr));
  }
  return out;
}

Health HealthMonitor::classify(const EvalPoint& p, double lr, std::string& reason) {
  if (initial_loss_ < 0 && std::isfinite(p.test_loss)) initial_loss_ = p.test_loss;
  if (first_grad_norm_ < 0 && std::isfinite(p.grad_norm) && p.grad_norm > 0) {
    first_grad_norm_ = p.grad_norm;
  }
  const double chance = classes_ > 0 ? 1.0 / classes_ : 0.0;
  const bool at_chance = classes_ > 0 && std::isfinite(p.test_accuracy) &&
                         p.test_accuracy <= chance + HealthRules::kChanceMargin &&
                         p.test_loss >= HealthRules::kChanceLoss * std::log(classes_);
  const double best_before = best_accuracy_;
  if (std::isfinite(p.test_accuracy)) best_accuracy_ = std::max(best_accuracy_, p.test_accuracy);

  if (initial_loss_ > 0 && std::isfinite(p.train_loss) &&
      p.train_loss > HealthRules::kExplodedLoss * initial_loss_) {
    reason = fmt::format(
        "the training loss reached {:.4g} by step {}, {:.3g}x the initial model's test loss "
        "{:.4g} (lr {:g})",
        p.train_loss, p.step, p.train_loss / initial_loss_, initial_loss_, lr);
    return Health::kExploded;
  }
  if (first_grad_norm_ > 0 && p.grad_norm > HealthRules::kExplodedGradNorm * first_grad_norm_) {
    reason = fmt::format(
        "the gradient norm reached {:.4g} by step {}, {:.3g}x its first measured value {:.4g} "
        "(lr {:g})",
        p.grad_norm, p.step, p.grad_norm / first_grad_norm_, first_grad_norm_, lr);
    return Health::kExploded;
  }
  // What both kinds of collapse report about the loss.
  const auto guess_loss = [&] {
    return fmt::format("test loss {:.4g}, ln({}) = {:.4g} (lr {:g})", p.test_loss, classes_,
                       std::log(classes_), lr);
  };
  if (at_chance && best_before >= chance + HealthRules::kLeftChance) {
    reason = fmt::format(
        "test accuracy fell back to chance ({:.4f}, chance {:g}) at step {} after "
        "reaching {:.4f}; {}",
        p.test_accuracy, chance, p.step, best_before, guess_loss());
    return Health::kCollapsed;
  }
  if (at_chance && best_accuracy_ < chance + HealthRules::kLeftChance && total_updates_ > 0 &&
      static_cast<double>(p.step) >=
          HealthRules::kNeverLeftShare * static_cast<double>(total_updates_)) {
    reason =
        fmt::format("test accuracy is still at chance ({:.4f}, chance {:g}) at step {} of {}; {}",
                    p.test_accuracy, chance, p.step, total_updates_, guess_loss());
    return Health::kCollapsed;
  }
  return Health::kOk;
}

}  // namespace dtsim
