#include "sim/des/job_runner.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

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
  job_ns_->fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count(),
      std::memory_order_relaxed);
  work_ = nullptr;
  state_.store(kDone, std::memory_order_release);
  state_.notify_all();
  return true;
}

void JobRunner::Job::cancel() {
  int expected = kPending;
  if (state_.compare_exchange_strong(expected, kDone, std::memory_order_acq_rel)) {
    work_ = nullptr;
    state_.notify_all();
  }
}

void JobRunner::Job::wait_done() {
  int s = state_.load(std::memory_order_acquire);
  while (s != kDone) {
    state_.wait(s, std::memory_order_acquire);
    s = state_.load(std::memory_order_acquire);
  }
}

// Helpers for ThreadSanitizer builds: a queue under a mutex, which TSan can see.
class JobRunner::ThreadPool {
 public:
  explicit ThreadPool(int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          std::shared_ptr<Job> job;
          {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;
            job = std::move(queue_.front());
            queue_.pop_front();
          }
          job->try_run();
        }
      });
    }
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::shared_ptr<Job> job) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mutex_
  bool stop_ = false;                       // guarded by mutex_
  std::vector<std::thread> threads_;
};

JobRunner::JobRunner(int threads) : threads_(threads < 1 ? 1 : threads) {
  if (threads_ > 1) {
#if defined(__SANITIZE_THREAD__)
    pool_ = std::make_unique<ThreadPool>(threads_ - 1);
#else
    // No slot is reserved for the event loop's thread, which never enters the arena: all
    // threads_ - 1 slots are helpers. TBB caps its workers at the core count unless told
    // otherwise; asking for more threads than cores is the user's choice.
    parallelism_ = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads_));
    arena_ = std::make_unique<tbb::task_arena>(threads_ - 1, 0);
#endif
  }
}

JobRunner::~JobRunner() {
  cancel_and_wait();
  pool_.reset();
  int n = outstanding_->load(std::memory_order_acquire);
  while (n != 0) {
    outstanding_->wait(n, std::memory_order_acquire);
    n = outstanding_->load(std::memory_order_acquire);
  }
}

std::shared_ptr<JobRunner::Job> JobRunner::start(std::function<void()> work) {
  while (!started_.empty() && started_.front()->done()) started_.pop_front();
  auto job = std::make_shared<Job>(std::move(work), job_ns_);
  if (pool_) {
    pool_->submit(job);
    started_.push_back(job);
  } else if (arena_) {
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

bool JobRunner::help_one() {
  for (auto it = started_.begin(); it != started_.end();) {
    if ((*it)->done()) {
      it = started_.erase(it);
      continue;
    }
    if ((*it)->try_run()) {
      started_.erase(it);
      return true;
    }
    ++it;  // running on a helper: keep it, so cancel_and_wait() can wait for it
  }
  return false;
}

void JobRunner::join(Job& job) {
  // While a helper runs it, run other started jobs rather than wait (jobs are pure, so who
  // runs which does not change any result).
  while (!job.try_run() && !job.done()) {
    if (!help_one()) {
      job.wait_done();
      break;
    }
  }
  if (job.error()) std::rethrow_exception(job.error());
}

void JobRunner::cancel_and_wait() {
  for (auto& job : started_) job->cancel();
  for (auto& job : started_) job->wait_done();
  started_.clear();
}

void JobRunner::run_all(std::vector<std::function<void()>> work) {
  std::vector<std::shared_ptr<Job>> jobs;
  jobs.reserve(work.size());
  for (auto& w : work) jobs.push_back(start(std::move(w)));
  for (auto& j : jobs) join(*j);
}

}  // namespace dtsim
