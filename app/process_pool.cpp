#include "app/process_pool.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace dtsim::app {
namespace {

pid_t start(const Job& job) {
  std::vector<std::string> args = job.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  if (!job.log.empty()) {
    posix_spawn_file_actions_addopen(&files, 1, job.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
  }
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, job.program.c_str(), &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (rc != 0)
    throw std::runtime_error(fmt::format("cannot start a process: {}", std::strerror(rc)));
  return pid;
}

}  // namespace

void run_jobs(const std::vector<Job>& jobs, int parallel,
              const std::function<void(std::size_t, JobEnd)>& done) {
  std::vector<pid_t> pids(jobs.size(), 0);
  std::size_t next = 0;
  std::size_t running = 0;
  std::size_t finished = 0;
  while (finished < jobs.size()) {
    while (running < static_cast<std::size_t>(parallel) && next < jobs.size()) {
      pids[next] = start(jobs[next]);
      ++next;
      ++running;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (pids[i] != pid) continue;
      --running;
      ++finished;
      JobEnd end;
      end.signaled = WIFSIGNALED(status);
      end.code = end.signaled ? WTERMSIG(status) : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      done(i, end);
    }
  }
}

}  // namespace dtsim::app
