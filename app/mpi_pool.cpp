#include "app/mpi_pool.hpp"

#include "engine/errors.hpp"

#ifdef DTSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace dtsim::app {

#ifdef DTSIM_HAVE_MPI

namespace {

constexpr int kWorkTag = 1;  // rank 0 -> a rank: the job's index, or -1: no more
constexpr int kDoneTag = 2;  // a rank -> rank 0: {index, exit code, signaled}

}  // namespace

bool have_mpi() { return true; }

MpiSession::MpiSession() {
  MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

void mpi_run_jobs(const MpiSession& mpi, const std::vector<Job>& jobs,
                  const std::function<void(std::size_t, JobEnd)>& done) {
  if (mpi.size() == 1) {
    run_jobs(jobs, 1, done);
    return;
  }
  if (mpi.rank() != 0) {
    while (true) {
      int index = -1;
      MPI_Recv(&index, 1, MPI_INT, 0, kWorkTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (index < 0) return;
      JobEnd end;
      run_jobs({jobs[static_cast<std::size_t>(index)]}, 1,
               [&end](std::size_t, JobEnd e) { end = e; });
      const int report[3] = {index, end.code, end.signaled ? 1 : 0};
      MPI_Send(report, 3, MPI_INT, 0, kDoneTag, MPI_COMM_WORLD);
    }
  }
  // Rank 0: one job to each rank, then the next to whichever reports back.
  int next = 0;
  const int count = static_cast<int>(jobs.size());
  int busy = 0;
  for (int r = 1; r < mpi.size(); ++r) {
    const int index = next < count ? next++ : -1;
    MPI_Send(&index, 1, MPI_INT, r, kWorkTag, MPI_COMM_WORLD);
    busy += index >= 0 ? 1 : 0;
  }
  while (busy > 0) {
    int report[3] = {0, 0, 0};
    MPI_Status status;
    MPI_Recv(report, 3, MPI_INT, MPI_ANY_SOURCE, kDoneTag, MPI_COMM_WORLD, &status);
    --busy;
    done(static_cast<std::size_t>(report[0]), JobEnd{report[1], report[2] != 0});
    const int index = next < count ? next++ : -1;
    MPI_Send(&index, 1, MPI_INT, status.MPI_SOURCE, kWorkTag, MPI_COMM_WORLD);
    busy += index >= 0 ? 1 : 0;
  }
}

#else

bool have_mpi() { return false; }

MpiSession::MpiSession() {
  throw InputError({}, "--mpi",
                   "this dtsim was built without MPI: install libopenmpi-dev and openmpi-bin "
                   "(scripts/setup does) and rebuild; CMake finds MPI by itself");
}

MpiSession::~MpiSession() = default;

void MpiSession::barrier() const {}

void mpi_run_jobs(const MpiSession&, const std::vector<Job>&,
                  const std::function<void(std::size_t, JobEnd)>&) {}

#endif

}  // namespace dtsim::app
