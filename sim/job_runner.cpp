#include "sim/job_runner.hpp"

#include "engine/float_env.hpp"

namespace dtsim {

bool JobRunner::Job::try_run() {
  int expected = kPending;
  if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) return false;
  flush_denormals_to_zero();
  try {
    work_();
  } catch (...) {
    error_ = std::current_exception();
  }
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
  auto job = std::make_shared<Job>(std::move(work));
  if (arena_) {
    outstanding_->fetch_add(1, std::memory_order_relaxed);
    arena_->enqueue([job, outstanding = outstanding_] {
      job->try_run();
      outstanding->fetch_sub(1, std::memory_order_acq_rel);
      outstanding->notify_all();
    });
  }
  return job;
}

void JobRunner::join(Job& job) {
  if (!job.try_run()) job.wait_done();
  if (job.error()) std::rethrow_exception(job.error());
}

}  // namespace dtsim
