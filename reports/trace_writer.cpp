#include "reports/trace_writer.hpp"

#include <fmt/format.h>

#include <cmath>

namespace dtsim {
namespace {

// Virtual nanoseconds as trace-event microseconds, exactly.
std::string us(SimTime t) { return fmt::format("{}", static_cast<double>(t.ns()) / 1000.0); }

}  // namespace

TraceWriter::TraceWriter(const std::filesystem::path& dir, int nodes, int workers,
                         std::uint64_t max_events)
    : file_(dir / "trace.json"), max_events_(max_events) {
  file_.write("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n");
  file_.write(
      R"j({"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "dtsim (virtual time)"}})j");
  for (int n = 0; n < nodes; ++n) {
    const std::string name =
        n < workers ? fmt::format("worker {}", n) : fmt::format("server {}", n - workers);
    file_.write(
        fmt::format(",\n{{\"ph\": \"M\", \"pid\": 1, \"tid\": {}, \"name\": \"thread_name\", "
                    "\"args\": {{\"name\": \"{}\"}}}}",
                    n, name));
    file_.write(
        fmt::format(",\n{{\"ph\": \"M\", \"pid\": 1, \"tid\": {}, \"name\": \"thread_sort_index\", "
                    "\"args\": {{\"sort_index\": {}}}}}",
                    n, n));
  }
}

bool TraceWriter::admit(SimTime at) {
  if (truncated_) return false;
  if (events_ >= max_events_) {
    truncated_ = true;
    truncated_at_ = at;
    return false;
  }
  ++events_;
  return true;
}

void TraceWriter::event(const std::string& json) {
  file_.write(",\n");
  file_.write(json);
}

void TraceWriter::on_compute(int node, const char* what, SimTime start, SimTime end) {
  if (!admit(start)) return;
  event(fmt::format(
      R"j({{"ph": "X", "pid": 1, "tid": {}, "cat": "compute", "name": "{}", "ts": {}, "dur": {}}})j",
      node, what, us(start), us(end - start)));
}

void TraceWriter::on_wait(int node, SimTime start, SimTime end) {
  if (!admit(start)) return;
  event(fmt::format(
      R"j({{"ph": "X", "pid": 1, "tid": {}, "cat": "wait", "name": "wait", "ts": {}, "dur": {}}})j",
      node, us(start), us(end - start)));
}

void TraceWriter::on_message(const Message& m, SimTime sent, SimTime arrived) {
  if (!admit(sent)) return;
  const std::uint64_t id = ++message_id_;
  event(fmt::format(
      R"j({{"ph": "b", "pid": 1, "tid": {}, "cat": "message", "id": {}, "name": "→ node {}", "ts": {}, "args": {{"bytes": {}, "to": {}}}}})j",
      m.src, id, m.dst, us(sent), m.bytes, m.dst));
  event(fmt::format(
      R"j({{"ph": "e", "pid": 1, "tid": {}, "cat": "message", "id": {}, "name": "→ node {}", "ts": {}}})j",
      m.src, id, m.dst, us(arrived)));
}

void TraceWriter::on_faults(const std::vector<FaultRecord>& faults) {
  const auto at = [](double seconds) { return us(SimTime::from_seconds(seconds)); };
  for (const FaultRecord& f : faults) {
    double end = f.end_s;
    if (f.kind == "restart" && !std::isnan(f.rejoined_s)) end = f.rejoined_s;
    if (std::isnan(end)) {
      event(fmt::format(
          R"j({{"ph": "i", "s": "t", "pid": 1, "tid": {}, "cat": "fault", "name": "{}", "ts": {}, "args": {{"what": "{}"}}}})j",
          f.node, f.kind, at(f.at_s), f.what));
    } else {
      event(fmt::format(
          R"j({{"ph": "X", "pid": 1, "tid": {}, "cat": "fault", "name": "{}", "ts": {}, "dur": {}, "args": {{"what": "{}"}}}})j",
          f.node, f.kind, at(f.at_s),
          us(SimTime::from_seconds(end) - SimTime::from_seconds(f.at_s)), f.what));
    }
    if (!std::isnan(f.detected_s)) {
      event(fmt::format(
          R"j({{"ph": "i", "s": "t", "pid": 1, "tid": {}, "cat": "fault", "name": "{} noticed", "ts": {}}})j",
          f.node, f.kind, at(f.detected_s)));
    }
  }
}

void TraceWriter::commit() {
  file_.write("\n],\n\"metadata\": {");
  file_.write(fmt::format("\"events\": {}, \"max_events\": {}, \"trace_truncated_at_s\": {}",
                          events_, max_events_,
                          truncated_ ? fmt::format("{}", truncated_at_.seconds()) : "null"));
  file_.write("}}\n");
  file_.commit();
}

}  // namespace dtsim
