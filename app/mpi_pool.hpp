// Runs a sweep's point processes over MPI ranks (`dtsim sweep --mpi`, under mpirun or srun):
// rank 0 hands the jobs out one at a time to whichever rank is free, so slow points do not
// hold up the rest; every other rank runs the jobs it is given (each a child process, as a
// local sweep runs them) and reports its exit code. With one rank, rank 0 runs them itself.
// The jobs write to a file system every rank sees (their folders, made by rank 0 first).
//
// Built only when CMake finds MPI (DTSIM_HAVE_MPI); otherwise MpiSession's constructor
// throws an InputError that says how to enable it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <vector>

#include "app/process_pool.hpp"

namespace dtsim::app {

// Whether this dtsim was built with MPI.
bool have_mpi();

// MPI_Init on construction, MPI_Finalize on destruction.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Every rank waits here until all have come.
  void barrier() const;
  // Ends every rank of the job (MPI_Abort) with `code`.
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0;
  int size_ = 1;
};

// Runs `jobs` over the ranks as above. On rank 0, `done(i, end)` is called as each job ends
// (on the others, never). Every rank must call it with the same jobs.
//
// With `gather` (for ranks without a shared file system), job i writes into `local(i)`, a
// folder of the rank that runs it, and its files (flat: no subfolders) are sent to rank 0,
// which writes them into `gather(i)` before calling done; the rank then deletes its copy.
struct Gather {
  std::function<std::filesystem::path(std::size_t)> local;   // where the job writes
  std::function<std::filesystem::path(std::size_t)> target;  // where rank 0 puts the files
};
void mpi_run_jobs(const MpiSession& mpi, const std::vector<Job>& jobs,
                  const std::function<void(std::size_t, JobEnd)>& done,
                  const Gather* gather = nullptr);

}  // namespace dtsim::app
