#include "app/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace dtsim::app {

std::string shown(double value, int width, int precision) {
  if (std::isnan(value)) return fmt::format("{:>{}}", "n/a", width);
  return fmt::format("{:{}.{}f}", value, width, precision);
}

ProgressPrinter::ProgressPrinter()
    : terminal_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

void ProgressPrinter::on_step_end(std::uint64_t step, SimTime t) {
  if (!terminal_ || total_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double done = static_cast<double>(step) / static_cast<double>(total_);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = done > 0 ? elapsed * (1 - done) / done : 0;
  const int width = 30;
  const int filled = static_cast<int>(done * width);
  fmt::print(stderr, "\r  [{}{}] {:3.0f}%  step {}/{}  virtual {:.3f} s  ETA {:.0f} s   ",
             std::string(static_cast<std::size_t>(filled), '#'),
             std::string(static_cast<std::size_t>(width - filled), ' '), done * 100, step, total_,
             t.seconds(), eta);
  bar_shown_ = true;
}

void ProgressPrinter::on_evaluation(const EvalPoint& p) {
  if (bar_shown_) fmt::print(stderr, "\r\033[K");
  fmt::print(stderr,
             "  step {:>7}  epoch {:6.2f}  virtual {:9.3f} s  train loss {}  test loss {}  "
             "test acc {}\n",
             p.step, p.epoch, p.virtual_time_s, shown(p.train_loss, 8, 4), shown(p.test_loss, 8, 4),
             shown(p.test_accuracy, 6, 4));
  bar_shown_ = false;
}

}  // namespace dtsim::app
