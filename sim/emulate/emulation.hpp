// Emulation: a scenario's workers (and parameter-server shards) as real processes, one per rank
// of a Transport (MPI under `dtsim emulate`), with real communication and a wall clock where
// the simulation has virtual time.
//
// Each rank does what its node does in the simulation, with the same training core: the same
// initial model, data partition, sampler seeds and sample order, the same gradient, clipping
// and optimizer, and the same exchange: the scenario's collective (ring or tree) as
// point-to-point messages with the same parts in the same order, so the sums match the
// simulation's bit for bit; or MPI_Allreduce (the library's algorithm and summation order).
// Ranks 0 .. p-1 are the workers, p .. p+k-1 the server shards, as the simulation numbers its
// nodes.
//
// Supported: allreduce + bsp, and ps + bsp or asp (ps asp hands out steps * p gradients to
// whichever worker asks next, as the simulation does). emulation_problem() names what else
// cannot be emulated.
//
// What is measured: every rank logs the wall time at the end of each of its steps (a worker's
// gradient and update, a shard's update), the time it spent computing (gradient, update) and
// communicating (sends, receives and the waits inside them, sums included), and the bytes it
// sent. The global model is copied at the points the simulation evaluates it (by step for bsp,
// by update at the shards for asp) and evaluated after the run, so evaluation takes no
// measured time, as it takes no virtual time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/data/dataset.hpp"
#include "sim/emulate/transport.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/train/run_result.hpp"

namespace dtsim {

struct EmulateOptions {
  // MPI_Allreduce instead of the scenario's collective over point-to-point messages.
  bool library_allreduce = false;
};

// The ranks a scenario needs: its workers and its server shards.
int emulation_ranks(const Scenario& s);

// Why `s` cannot be emulated on `ranks` ranks (empty: it can), naming the key and what would
// work.
std::string emulation_problem(const Scenario& s, int ranks, const EmulateOptions& options);

// How the exchange runs, in words ("ring allreduce over point-to-point messages").
std::string emulation_exchange(const Scenario& s, const EmulateOptions& options);

struct Emulated {
  RunResult run;                // rank 0: the measured run (evaluations, nodes); else empty
  std::vector<float> params;    // rank 0: the final global model
  std::uint64_t per_round = 1;  // updates in a lock-step round of p gradients (asp: p)
};

// Runs this rank's part of the scenario (every rank calls it; emulation_problem must be
// empty). Returns the run on rank 0.
Emulated emulate(const Scenario& s, const DatasetPair& data, Transport& transport,
                 const EmulateOptions& options);

// The comparison of a measured run with the simulated one (both over the same scenario), and
// of their final models.
// `per_round`: the runs' updates in a lock-step round of p gradients (1; asp: p); the times per
// step are each run's over the rounds it ran.
EmulationStats compare_runs(const RunResult& measured, const RunResult& simulated,
                            std::uint64_t per_round, std::span<const float> measured_params,
                            std::span<const float> simulated_params);

}  // namespace dtsim
