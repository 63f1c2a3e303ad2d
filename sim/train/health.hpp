// The health of a training run, judged at every evaluation: ok, or one of the ways training
// fails, each with a documented rule (docs/outputs.md, "health"):
//
//   non-finite  the training loss became NaN or infinite (the run stops; RunCore reports it)
//   exploded    the point's training loss is above kExplodedLoss times the initial model's
//               test loss, or the mean gradient norm above kExplodedGradNorm times the first
//               one measured
//   collapsed   (classification) test accuracy within kChanceMargin of chance (1 / classes)
//               and test loss at least kChanceLoss x ln(classes): after the accuracy had been
//               kLeftChance above chance, or, never having left chance, once kNeverLeftShare
//               of the run's updates are done
//
// The thresholds are far from what healthy runs show (measured on the shipped scenarios: the
// largest train loss is under 1.1x the initial test loss, gradient norms grow at most 6x), so
// that a healthy run is never flagged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/train/run_result.hpp"

namespace dtsim {

struct HealthRules {
  static constexpr double kExplodedLoss = 10;
  static constexpr double kExplodedGradNorm = 100;
  static constexpr double kChanceMargin = 0.02;
  static constexpr double kChanceLoss = 0.9;
  static constexpr double kLeftChance = 0.1;
  static constexpr double kNeverLeftShare = 0.5;
};

// "ok", "exploded", "collapsed", "non-finite".
const char* to_string(Health h);
// What usually fixes it, in a sentence naming the scenario keys.
std::string health_advice(Health h);

struct Scenario;

// Settings known to make training unstable, each a sentence naming the keys and the fix
// (`dtsim validate` and `dtsim explain` print them; they never stop a run):
//   - asp, ssp or delayed with p >= 4 workers, no staleness_lr and p x lr >= 0.2 (0.002 with
//     Adam): every gradient is applied whole, so the step is about p times BSP's at the same
//     lr (scenarios/teaching/sync-vs-async.toml: 8 asp workers at BSP's lr 0.1 end near
//     0.35 test accuracy where BSP passes 0.85);
//   - momentum (or Adam's beta1) of 0.9 or more with staleness of 8 or more (an asp run's
//     staleness is about p - 1): the delays act as extra momentum (Mitliagkas et al. 2016);
//   - a learning rate of 1 or more (0.01 with Adam) without train.clip_norm.
std::vector<std::string> stability_warnings(const Scenario& s);

class HealthMonitor {
 public:
  // Before the first point. `classes`: 0 for a regression task (which cannot collapse to
  // chance); `total_updates`: the run's length in the points' steps.
  void start(int classes, std::uint64_t total_updates) {
    classes_ = classes;
    total_updates_ = total_updates;
  }
  // The health at point `p` (the points before it were given in order), and why if not ok.
  Health classify(const EvalPoint& p, double lr, std::string& reason);

 private:
  int classes_ = 0;
  std::uint64_t total_updates_ = 0;
  double initial_loss_ = -1;     // the test loss of the first point
  double first_grad_norm_ = -1;  // the first measured gradient norm
  double best_accuracy_ = 0;
};

}  // namespace dtsim
