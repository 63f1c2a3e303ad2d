// trace.json: the run's timeline in Chrome's trace-event format (opens in Perfetto or
// chrome://tracing), written as the run goes.
//
// One process "dtsim" with a track per node ("worker 3", "server 0"): compute spans named by
// what they computed (gradient, update, reduce, copy) and "wait" spans where the node was
// blocked on communication; each message is an async slice "→ node D" on its sender's track,
// from send to arrival, with its size; faults (category "fault") on the node they hit. Times
// are virtual microseconds.
//
// Bounded: after `max_events` events the trace stops recording and says so in its metadata
// (trace_truncated_at_s), so a long run still gives a file Perfetto opens quickly. Events
// arrive in event order, so the file is the same for any --threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "reports/atomic_file.hpp"
#include "sim/train/observer.hpp"

namespace dtsim {

class TraceWriter : public SimObserver {
 public:
  static constexpr std::uint64_t kDefaultMaxEvents = 200'000;

  // Nodes 0 .. workers-1 are workers, the rest servers.
  TraceWriter(const std::filesystem::path& dir, int nodes, int workers,
              std::uint64_t max_events = kDefaultMaxEvents);

  void on_compute(int node, const char* what, SimTime start, SimTime end) override;
  void on_message(const Message& m, SimTime sent, SimTime arrived) override;
  void on_wait(int node, SimTime start, SimTime end) override;
  // Each fault on its node's track, whatever the event limit: a span over its window (slow,
  // link-down, loss; a restart until it rejoined), or an instant (a crash), and an instant
  // where the others noticed a crash or restart.
  void on_faults(const std::vector<FaultRecord>& faults) override;

  // Closes the JSON and renames trace.json.partial to trace.json.
  void commit();
  std::uint64_t events() const { return events_; }
  bool truncated() const { return truncated_; }

 private:
  bool admit(SimTime at);
  void event(const std::string& json);

  AtomicFile file_;
  std::uint64_t max_events_;
  std::uint64_t events_ = 0;
  std::uint64_t message_id_ = 0;
  bool truncated_ = false;
  SimTime truncated_at_;
};

}  // namespace dtsim
