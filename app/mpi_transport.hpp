// The emulation's Transport over MPI's world communicator (`dtsim emulate` under mpirun or
// srun). Built only with MPI (DTSIM_HAVE_MPI); needs an MpiSession alive.
#pragma once

#include <string>

#include "sim/emulate/transport.hpp"

namespace dtsim::app {

class MpiTransport : public Transport {
 public:
  MpiTransport();
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int to, int tag, std::span<const float> data) override;
  void recv(int from, int tag, std::span<float> out) override;
  void send_recv(int to, std::span<const float> data, int from, std::span<float> out,
                 int tag) override;
  int recv_any(int tag, std::span<float> out, std::size_t& count) override;
  void allreduce_sum(std::span<float> data) override;
  std::vector<std::vector<double>> gather(std::span<const double> mine, int root) override;
  void barrier() override;
  double now() const override;

 private:
  int rank_ = 0;
  int size_ = 1;
};

// Every rank calls it after a phase that may fail on bad input, with its error ("" if none).
// If any rank failed, rank 0 says why (or each failed rank does, when rank 0 did not fail),
// all ranks wait for that, and it returns true on every rank; they should then exit, all
// alike (mpirun cuts the others short when one exits with an error first).
bool some_rank_failed(MpiTransport& t, const std::string& error);

}  // namespace dtsim::app
