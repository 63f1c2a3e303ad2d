// Runs jobs (pure numerical work) on oneTBB threads while the event loop goes on.
//
// start() hands a job to a task arena at once; join() is called when the event loop reaches
// the job's virtual end time. If no thread has picked the job up by then, join() runs it on
// the calling thread; if a helper is running it, join() runs other started jobs meanwhile,
// and waits only when none is left. With one thread, every job runs inside join(),
// in event order. A job must be a pure function of its inputs (it may write only its own
// outputs), so results never depend on which thread ran it. Exceptions thrown by a job
// surface from join(). Every job runs with denormals flushed to zero.
//
// Helpers are a oneTBB task arena. In ThreadSanitizer builds they are plain std::threads
// instead: Debian's oneTBB is not built with TSan, which then cannot see TBB's internal
// synchronisation and would report every hand-off of a job as a race. The jobs, and so
// everything TSan should check, are the same in both.
#pragma once

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

namespace dtsim {

class JobRunner {
 public:
  // `threads` >= 1 counts the event loop's thread: threads - 1 helpers run jobs.
  explicit JobRunner(int threads);
  ~JobRunner();

  class Job;
  std::shared_ptr<Job> start(std::function<void()> work);
  void join(Job& job);
  // Runs every item as a job, in parallel where threads allow, and returns when all are done.
  void run_all(std::vector<std::function<void()>> work);
  // Drops the jobs nobody has started and waits for the running ones. Called before anything
  // a job may use is destroyed (e.g. when the simulation stops on an exception).
  void cancel_and_wait();
  int threads() const { return threads_; }
  // Wall-clock seconds spent inside jobs so far, summed over threads.
  double job_seconds() const { return static_cast<double>(job_ns_->load()) * 1e-9; }

 private:
  class ThreadPool;
  // Runs one started job that nobody has claimed; false if there is none.
  bool help_one();

  int threads_;
  std::unique_ptr<tbb::global_control> parallelism_;  // lets the arena have threads_ - 1 helpers
  std::unique_ptr<tbb::task_arena> arena_;
  std::unique_ptr<ThreadPool> pool_;          // ThreadSanitizer builds
  std::deque<std::shared_ptr<Job>> started_;  // jobs the event loop's thread may help with
  std::shared_ptr<std::atomic<std::int64_t>> job_ns_ =
      std::make_shared<std::atomic<std::int64_t>>(0);
  // Arena tasks not yet finished; the destructor waits for them (they hold only the Job).
  std::shared_ptr<std::atomic<int>> outstanding_ = std::make_shared<std::atomic<int>>(0);
};

class JobRunner::Job {
 public:
  Job(std::function<void()> work, std::shared_ptr<std::atomic<std::int64_t>> job_ns)
      : work_(std::move(work)), job_ns_(std::move(job_ns)) {}
  // Runs the job if nobody has claimed it yet; returns whether this call ran it.
  bool try_run();
  // Marks a job nobody has claimed as done without running it.
  void cancel();
  void wait_done();
  bool done() const { return state_.load(std::memory_order_acquire) == kDone; }
  std::exception_ptr error() const { return error_; }

 private:
  enum State : int { kPending, kRunning, kDone };
  std::function<void()> work_;
  std::shared_ptr<std::atomic<std::int64_t>> job_ns_;
  std::atomic<int> state_{kPending};
  std::exception_ptr error_;
};

}  // namespace dtsim
