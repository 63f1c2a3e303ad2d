#include "sim/job_runner.hpp"

#include <chrono>

#include "engine/float_env.hpp"

namespace dtsim {

bool JobRunner::Job::try_run() {
  int expected = kPending;
  if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) return false;
  flush_denormals_to_zero();
  const auto start = std::chrono::steady_clock::now();
  try {
    work_();
  } catch (...) {
    error_ = std::current_exception();
  }
  job_ns_->fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count(),
                     std::memory_order_relaxed);
  work_ = nullptr;
  state_.store(kDone, std::memory_order_release);
  state_.notify_all();
  return true;
}

void JobRunner::Job::wait_done() {
  int s = state_.load(std::memory_order_acquire);
  while (s != kDone) {
    state_.wait(s, std::memory_order_acquire);
    s = state_.load(std::memory_order_acquire);
  }
}

JobRunner::JobRunner(int threads) : threads_(threads < 1 ? 1 : threads) {
  if (threads_ > 1) {
    // One slot is reserved for a master thread that never joins: all threads_ - 1 helpers work.
    arena_ = std::make_unique<tbb::task_arena>(threads_ - 1, 0);
  }
}

JobRunner::~JobRunner() {
  int n = outstanding_->load(std::memory_order_acquire);
  while (n != 0) {
    outstanding_->wait(n, std::memory_order_acquire);
    n = outstanding_->load(std::memory_order_acquire);
  }
}

std::shared_ptr<JobRunner::Job> JobRunner::start(std::function<void()> work) {
  auto job = std::make_shared<Job>(std::move(work), job_ns_);
  if (arena_) {
    outstanding_->fetch_add(1, std::memory_order_relaxed);
    arena_->enqueue([job, outstanding = outstanding_] {
      job->try_run();
      outstanding->fetch_sub(1, std::memory_order_acq_rel);
      outstanding->notify_all();
    });
    started_.push_back(job);
  }
  return job;
}

void JobRunner::join(Job& job) {
  while (!job.try_run() && !job.done()) {
    // A helper has it: run another started job rather than wait (jobs are pure, so who runs
    // which does not change any result).
    bool helped = false;
    while (!started_.empty() && !helped) {
      std::shared_ptr<Job> other = std::move(started_.front());
      started_.pop_front();
      helped = other->try_run();
    }
    if (!helped) {
      job.wait_done();
      break;
    }
  }
  if (job.error()) std::rethrow_exception(job.error());
}

}  // namespace dtsim
