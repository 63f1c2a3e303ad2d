// What an emulated run's ranks exchange, and how: point-to-point messages of floats between
// ranks, a few collectives of MPI's, and a wall clock. `dtsim emulate` gives it MPI
// (app/mpi_transport.hpp); the tests give it threads in one process.
//
// Every call blocks until its part is done (a send until the data may be reused). Tags are
// small non-negative integers; messages between one pair with one tag arrive in order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dtsim {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual void send(int to, int tag, std::span<const float> data) = 0;
  // Receives a message of exactly out.size() floats.
  virtual void recv(int from, int tag, std::span<float> out) = 0;
  // Sends to `to` and receives from `from` at once (a ring's step: no rank waits for its
  // neighbour to receive first).
  virtual void send_recv(int to, std::span<const float> data, int from, std::span<float> out,
                         int tag) = 0;
  // Receives the next message with `tag` from any rank, of at most out.size() floats; returns
  // its sender, and its length in `count`.
  virtual int recv_any(int tag, std::span<float> out, std::size_t& count) = 0;

  // MPI_Allreduce with MPI_SUM over every rank (the library's own algorithm and order).
  virtual void allreduce_sum(std::span<float> data) = 0;
  // Every rank's `mine` (of any lengths) at `root`, in rank order; empty elsewhere.
  virtual std::vector<std::vector<double>> gather(std::span<const double> mine, int root) = 0;
  virtual void barrier() = 0;
  // A wall clock in seconds (MPI_Wtime).
  virtual double now() const = 0;
};

}  // namespace dtsim
