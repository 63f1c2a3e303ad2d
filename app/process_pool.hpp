// Runs commands as child processes, a bounded number at a time, each with its output to a
// log file: how a sweep's points run side by side.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace dtsim::app {

struct Job {
  std::string program;            // the file to run
  std::vector<std::string> argv;  // its arguments, argv[0] first
  std::string log;                // stdout and stderr go here (empty: this program's)
};

struct JobEnd {
  int code = 0;  // the exit code, or the signal's number with `signaled`
  bool signaled = false;
};

// Runs `jobs` with at most `parallel` at once (starting them in order) and calls `done(i, end)`
// as each one ends. Throws std::runtime_error when a process cannot be started.
void run_jobs(const std::vector<Job>& jobs, int parallel,
              const std::function<void(std::size_t, JobEnd)>& done);

}  // namespace dtsim::app
