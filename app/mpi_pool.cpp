#include "app/mpi_pool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/errors.hpp"
#include "reports/atomic_file.hpp"

#ifdef DTSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace dtsim::app {

#ifdef DTSIM_HAVE_MPI

namespace {

constexpr int kWorkTag = 1;  // rank 0 -> a rank: the job's index, or -1: no more
constexpr int kDoneTag = 2;  // a rank -> rank 0: {index, exit code, signaled, files}
constexpr int kFileTag = 3;  // then, per file: its name, then its bytes

void send_text(const std::string& text, int to) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::runtime_error(
        fmt::format("--gather: a file of {} bytes is over MPI's limit of "
                    "{} bytes per message",
                    text.size(), INT_MAX));
  }
  MPI_Send(text.data(), static_cast<int>(text.size()), MPI_BYTE, to, kFileTag, MPI_COMM_WORLD);
}

std::string receive_text(int from) {
  MPI_Status status;
  MPI_Probe(from, kFileTag, MPI_COMM_WORLD, &status);
  int size = 0;
  MPI_Get_count(&status, MPI_BYTE, &size);
  std::string text(static_cast<std::size_t>(size), '\0');
  MPI_Recv(text.data(), size, MPI_BYTE, from, kFileTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return text;
}

// The files of a job's folder that can be sent, in name order; false if one is too large for
// a message (it stays where it is, and the rank says so).
bool folder_files(const std::filesystem::path& dir, std::vector<std::filesystem::path>& files) {
  std::error_code ec;
  bool all = true;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    if (entry.file_size(ec) > static_cast<std::uintmax_t>(INT_MAX)) {
      fmt::print(stderr,
                 "dtsim: --gather: {} is over 2 GiB, more than an MPI message holds: "
                 "left where it is, on this rank's machine\n",
                 entry.path().string());
      all = false;
      continue;
    }
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return all;
}

}  // namespace

bool have_mpi() { return true; }

MpiSession::MpiSession() {
  MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // (MPI_Abort does not return)
}

void MpiSession::barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

void mpi_run_jobs(const MpiSession& mpi, const std::vector<Job>& jobs,
                  const std::function<void(std::size_t, JobEnd)>& done, const Gather* gather) {
  if (mpi.size() == 1) {
    run_jobs(jobs, 1, done);
    return;
  }
  if (mpi.rank() != 0) {
    while (true) {
      int index = -1;
      MPI_Recv(&index, 1, MPI_INT, 0, kWorkTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (index < 0) return;
      const auto i = static_cast<std::size_t>(index);
      if (gather != nullptr) std::filesystem::create_directories(gather->local(i));
      JobEnd end;
      run_jobs({jobs[i]}, 1, [&end](std::size_t, JobEnd e) { end = e; });
      std::vector<std::filesystem::path> files;
      const bool whole = gather == nullptr || folder_files(gather->local(i), files);
      const int count = static_cast<int>(files.size());
      const int report[4] = {index, end.code, end.signaled ? 1 : 0, count};
      MPI_Send(report, 4, MPI_INT, 0, kDoneTag, MPI_COMM_WORLD);
      for (const std::filesystem::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::stringstream bytes;
        bytes << in.rdbuf();
        send_text(f.filename().string(), 0);
        send_text(bytes.str(), 0);
      }
      if (gather != nullptr && whole) {
        std::error_code ec;
        std::filesystem::remove_all(gather->local(i), ec);
      }
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
    int report[4] = {0, 0, 0, 0};
    MPI_Status status;
    MPI_Recv(report, 4, MPI_INT, MPI_ANY_SOURCE, kDoneTag, MPI_COMM_WORLD, &status);
    for (int f = 0; f < report[3]; ++f) {
      const std::string name = receive_text(status.MPI_SOURCE);
      const std::string bytes = receive_text(status.MPI_SOURCE);
      write_file_atomically(gather->target(static_cast<std::size_t>(report[0])) / name, bytes);
    }
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

void MpiSession::abort(int /*code*/) const { std::abort(); }

void mpi_run_jobs(const MpiSession&, const std::vector<Job>&,
                  const std::function<void(std::size_t, JobEnd)>&, const Gather*) {}

#endif

}  // namespace dtsim::app
