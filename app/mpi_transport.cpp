#include "app/mpi_transport.hpp"

#ifdef DTSIM_HAVE_MPI

#include <fmt/format.h>
#include <mpi.h>

#include <climits>
#include <numeric>
#include <stdexcept>

namespace dtsim::app {
namespace {

// MPI counts are ints: a longer vector is an error, not a silent truncation.
int count_of(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw std::runtime_error(
        "emulate: a message of more than 2^31 values does not fit MPI's count");
  }
  return static_cast<int>(n);
}

}  // namespace

MpiTransport::MpiTransport() {
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

void MpiTransport::send(int to, int tag, std::span<const float> data) {
  MPI_Send(data.data(), count_of(data.size()), MPI_FLOAT, to, tag, MPI_COMM_WORLD);
}

void MpiTransport::recv(int from, int tag, std::span<float> out) {
  MPI_Status status;
  MPI_Recv(out.data(), count_of(out.size()), MPI_FLOAT, from, tag, MPI_COMM_WORLD, &status);
  int got = 0;
  MPI_Get_count(&status, MPI_FLOAT, &got);
  if (static_cast<std::size_t>(got) != out.size()) {
    throw std::logic_error("emulate: a message does not have the length its receiver expects");
  }
}

void MpiTransport::send_recv(int to, std::span<const float> data, int from, std::span<float> out,
                             int tag) {
  MPI_Sendrecv(data.data(), count_of(data.size()), MPI_FLOAT, to, tag, out.data(),
               count_of(out.size()), MPI_FLOAT, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

int MpiTransport::recv_any(int tag, std::span<float> out, std::size_t& count) {
  MPI_Status status;
  MPI_Recv(out.data(), count_of(out.size()), MPI_FLOAT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD,
           &status);
  int got = 0;
  MPI_Get_count(&status, MPI_FLOAT, &got);
  count = static_cast<std::size_t>(got);
  return status.MPI_SOURCE;
}

void MpiTransport::allreduce_sum(std::span<float> data) {
  MPI_Allreduce(MPI_IN_PLACE, data.data(), count_of(data.size()), MPI_FLOAT, MPI_SUM,
                MPI_COMM_WORLD);
}

std::vector<std::vector<double>> MpiTransport::gather(std::span<const double> mine, int root) {
  const int length = count_of(mine.size());
  std::vector<int> lengths(rank_ == root ? static_cast<std::size_t>(size_) : 0);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, MPI_COMM_WORLD);
  std::vector<int> offsets(lengths.size(), 0);
  std::vector<double> all;
  if (rank_ == root) {
    std::exclusive_scan(lengths.begin(), lengths.end(), offsets.begin(), 0);
    all.resize(static_cast<std::size_t>(offsets.back() + lengths.back()));
  }
  MPI_Gatherv(mine.data(), length, MPI_DOUBLE, all.data(), lengths.data(), offsets.data(),
              MPI_DOUBLE, root, MPI_COMM_WORLD);
  std::vector<std::vector<double>> out;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    out.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + lengths[r]);
  }
  return out;
}

void MpiTransport::barrier() { MPI_Barrier(MPI_COMM_WORLD); }

double MpiTransport::now() const { return MPI_Wtime(); }

bool some_rank_failed(MpiTransport& t, const std::string& error) {
  std::vector<float> failed = {error.empty() ? 0.0f : 1.0f};
  std::vector<float> lead_failed = {t.rank() == 0 && !error.empty() ? 1.0f : 0.0f};
  t.allreduce_sum(failed);
  t.allreduce_sum(lead_failed);
  if (failed[0] == 0) return false;
  if (!error.empty() && (t.rank() == 0 || lead_failed[0] == 0)) {
    fmt::print(stderr, "{}{}\n", t.rank() == 0 ? "" : fmt::format("rank {}: ", t.rank()), error);
  }
  t.barrier();
  return true;
}

}  // namespace dtsim::app

#endif  // DTSIM_HAVE_MPI
