#include "reports/html_report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "reports/atomic_file.hpp"
#include "reports/page.hpp"
#include "sim/train/health.hpp"
#include "sim/train/summary.hpp"

namespace dtsim::embedded {
extern const unsigned char report_template[];
extern const std::size_t report_template_size;
}  // namespace dtsim::embedded

namespace dtsim {
namespace {

using page::bytes;
using page::number_or_null;
using page::seconds;

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Where the workers' time went, who computed longest, and what limits the run.
static void where_time_went(const RunResult& r, const std::vector<const NodeStats*>& workers,
                            std::vector<std::string>& out) {
  const double total = r.virtual_time_s;
  double compute = 0, comm = 0, idle = 0;
  for (const NodeStats* w : workers) {
    compute += w->compute_s;
    comm += w->comm_s;
    idle += w->idle_s;
  }
  const double k = 100.0 / (total * static_cast<double>(workers.size()));
  out.push_back(fmt::format(
      "{} ran for {} of virtual time ({} steps, {} samples). On average a worker spent {:.0f}% "
      "of it computing, {:.0f}% communicating and {:.0f}% idle.",
      workers.size() == 1 ? "The single worker" : fmt::format("The {} workers", workers.size()),
      seconds(total), r.steps, r.samples, compute * k, comm * k, idle * k));
  const auto [slow, fast] = std::minmax_element(
      workers.begin(), workers.end(),
      [](const NodeStats* a, const NodeStats* b) { return a->compute_s > b->compute_s; });
  if (workers.size() > 1 && (*slow)->compute_s > 1.05 * (*fast)->compute_s) {
    out.push_back(fmt::format("Worker {} computed longest ({}), {:.1f}x worker {} ({}).",
                              (*slow)->node, seconds((*slow)->compute_s),
                              (*slow)->compute_s / (*fast)->compute_s, (*fast)->node,
                              seconds((*fast)->compute_s)));
  }
  if (comm * k > 50) {
    out.push_back(
        "Communication is the bottleneck: workers wait on the network more than they compute. "
        "A faster network, fewer bytes per step (larger batches, compression) or a different "
        "collective would speed this run up.");
  } else if (compute * k > 80) {
    out.push_back("Computation dominates: the network is not what limits this run.");
  }
}

// The run's result in a sentence or two, for the top of the page: accuracy (and the target),
// virtual time, what limited it, staleness, faults.
std::string run_finding(const Scenario& s, const RunResult& r) {
  std::vector<std::string> parts;
  if (r.health != Health::kOk) {
    parts.push_back(fmt::format("The run is {} (see the banner).", to_string(r.health)));
  }
  if (!s.strategy.time_only && !r.evals.empty() && std::isfinite(r.evals.back().test_accuracy)) {
    const double final_acc = r.evals.back().test_accuracy;
    std::string line = fmt::format("It ended at test accuracy {:.4f} after {} of virtual time",
                                   final_acc, seconds(r.virtual_time_s));
    if (s.train.target_accuracy) {
      line += r.time_to_target_s
                  ? fmt::format(", and reached the target {:.2f} after {} ({:.0f}% of the run)",
                                *s.train.target_accuracy, seconds(*r.time_to_target_s),
                                100 * *r.time_to_target_s / r.virtual_time_s)
                  : fmt::format(", without reaching the target {:.2f}", *s.train.target_accuracy);
    }
    parts.push_back(line + ".");
  } else {
    parts.push_back(
        fmt::format("It ran {} steps in {} of virtual time.", r.steps, seconds(r.virtual_time_s)));
  }
  double compute = 0, comm = 0, count = 0;
  for (const NodeStats& n : r.nodes) {
    if (n.role != "worker") continue;
    compute += n.compute_s;
    comm += n.comm_s;
    ++count;
  }
  if (count > 0 && r.virtual_time_s > 0) {
    const double k = 100.0 / (r.virtual_time_s * count);
    parts.push_back(
        fmt::format("{} ({:.0f}% of a worker's time computing, {:.0f}% communicating).",
                    comm > compute ? "Communication limits it" : "Computation limits it",
                    compute * k, comm * k));
  }
  if (const auto mean = summary_value(r, "mean_staleness"); mean && *mean > 0) {
    parts.push_back(fmt::format("Its gradients were {:.1f} updates stale on average.", *mean));
  }
  // The faults that began before the run ended, and the work they lost.
  std::size_t hit = 0;
  std::uint64_t lost = 0, undone = 0;
  for (const FaultRecord& f : r.faults) {
    if (f.at_s >= r.virtual_time_s) continue;
    ++hit;
    lost += f.lost_gradients;
    undone += f.lost_updates;
  }
  if (hit > 0) {
    std::string line = fmt::format("{} fault{} hit it ({} gradient{} lost", hit,
                                   hit == 1 ? "" : "s", lost, lost == 1 ? "" : "s");
    if (undone > 0) {
      line += fmt::format(", {} server update{} undone", undone, undone == 1 ? "" : "s");
    }
    parts.push_back(line + ").");
  }
  return fmt::format("{}", fmt::join(parts, " "));
}

// One sentence per fault: what happened and what it cost (docs/faults.md).
void fault_account(const RunResult& r, std::vector<std::string>& out) {
  for (const FaultRecord& f : r.faults) {
    const std::string who =
        fmt::format("{} {}", r.nodes[static_cast<std::size_t>(f.node)].role, f.node);
    std::string line;
    const bool shard = r.nodes[static_cast<std::size_t>(f.node)].role == "server";
    if (shard && (f.kind == "crash" || f.kind == "restart")) {
      line = fmt::format("Fault: {} went down at {}", who, seconds(f.at_s));
      line += std::isnan(f.rejoined_s)
                  ? " (the run ended before it was needed again)."
                  : fmt::format(
                        "; {} resumed from its last checkpoint at {}, undoing {} update{} of its "
                        "part of the model; its workers waited {} for it.",
                        f.kind == "crash" ? "a spare" : "it", seconds(f.rejoined_s), f.lost_updates,
                        f.lost_updates == 1 ? "" : "s", seconds(f.cost_s));
    } else if (f.kind == "crash" || f.kind == "restart") {
      line = fmt::format("Fault: {} went down at {}", who, seconds(f.at_s));
      line += std::isnan(f.detected_s)
                  ? " (the run ended before the others noticed)"
                  : fmt::format("; the others noticed at {}", seconds(f.detected_s));
      if (!std::isnan(f.rejoined_s))
        line += fmt::format(" and it rejoined at {}", seconds(f.rejoined_s));
      line += fmt::format(". It lost {} gradient{} ({} of compute); the others waited {} for it.",
                          f.lost_gradients, f.lost_gradients == 1 ? "" : "s",
                          seconds(f.lost_compute_s), seconds(f.cost_s));
    } else if (f.kind == "slow") {
      line = fmt::format("Fault: {} computed slower from {} ({}): {} of extra compute.", who,
                         seconds(f.at_s), f.what, seconds(f.cost_s));
    } else if (f.kind == "link-down") {
      line = fmt::format(
          "Fault: {}'s links were down from {} to {}; {} transfer{} waited "
          "(nothing was lost).",
          who, seconds(f.at_s), seconds(f.end_s), f.paused_transfers,
          f.paused_transfers == 1 ? "" : "s");
    } else if (f.kind == "loss") {
      line = fmt::format(
          "Fault: {}'s links lost {} transfer{} ({}), each sent again after its "
          "timeout: {} of timeouts in all.",
          who, f.retransmissions, f.retransmissions == 1 ? "" : "s",
          bytes(static_cast<double>(f.retransmitted_bytes)), seconds(f.cost_s));
    }
    if (!line.empty()) out.push_back(line);
  }
}

std::vector<std::string> time_account(const Scenario& s, const RunResult& r) {
  std::vector<std::string> out;
  const double total = r.virtual_time_s;
  if (r.health != Health::kOk) {
    out.push_back(fmt::format("The run's health is {}: {}.", to_string(r.health), r.health_reason));
  }
  if (s.strategy.time_only) {
    out.push_back(
        "A time-only run: data sizes travel but no numerics run, so there is no loss or "
        "accuracy to chart, only time and bytes.");
  }
  std::vector<const NodeStats*> workers;
  for (const NodeStats& n : r.nodes) {
    if (n.role == "worker") workers.push_back(&n);
  }
  if (total > 0 && !workers.empty()) where_time_went(r, workers, out);
  if (r.checkpoints > 0) {
    out.push_back(fmt::format(
        "The server shards took {} checkpoint{} (every {} updates), {} of virtual time in all.",
        r.checkpoints, r.checkpoints == 1 ? "" : "s", s.strategy.checkpoint_every,
        seconds(r.checkpoint_s)));
  }
  fault_account(r, out);
  std::uint64_t dropped = 0;
  std::uint64_t computed = 0;
  for (const NodeStats* w : workers) {
    dropped += w->dropped;
    computed += w->steps;
  }
  if (dropped > 0) {
    out.push_back(fmt::format(
        "{} of the {} gradients computed were dropped (backup workers: each step used only the "
        "first to arrive); their compute time was wasted.",
        dropped, computed));
  }
  if (const auto mean = summary_value(r, "mean_staleness"); mean && *mean > 0) {
    out.push_back(fmt::format(
        "Updates were applied {:.2f} versions late on average (at most {}): each gradient was "
        "computed on parameters that other workers' updates had since changed.",
        *mean, r.staleness_histogram.back().first));
  }
  if (!r.evals.empty() && std::isfinite(r.evals.back().consensus_distance)) {
    double widest = 0;
    for (const EvalPoint& p : r.evals) {
      if (std::isfinite(p.consensus_distance)) widest = std::max(widest, p.consensus_distance);
    }
    out.push_back(fmt::format(
        "The workers keep their own replicas; the model evaluated is their average. The "
        "replicas' spread (consensus distance) was at most {:.3g}, and {:.3g} at the end.",
        widest, r.evals.back().consensus_distance));
  }
  std::uint64_t sent = 0;
  for (const NodeStats& n : r.nodes) sent += n.bytes_sent;
  if (sent > 0 && r.steps > 0) {
    out.push_back(fmt::format("{} crossed the network in all: {} per step.",
                              bytes(static_cast<double>(sent)),
                              bytes(static_cast<double>(sent) / static_cast<double>(r.steps))));
  }
  if (s.train.target_accuracy) {
    out.push_back(
        r.time_to_target_s
            ? fmt::format("Test accuracy reached the target {} after {} of virtual time.",
                          *s.train.target_accuracy, seconds(*r.time_to_target_s))
            : fmt::format("Test accuracy never reached the target {}.", *s.train.target_accuracy));
  }
  return out;
}

std::string report_html(const Scenario& s, const RunResult& r,
                        const std::vector<TimelineSpan>& timeline) {
  nlohmann::ordered_json d;
  d["name"] = s.name;
  d["description"] = s.description;
  d["finding"] = run_finding(s, r);
  d["footer"] = fmt::format("dtsim · {} · scenario {} · seed {}", r.model_summary, s.file, s.seed);
  nlohmann::json headline = nlohmann::json::array();
  const auto card = [&](const std::string& label, const std::string& value) {
    headline.push_back({label, value});
  };
  const auto fmt_opt = [](std::optional<double> v, auto f) { return v ? f(*v) : std::string("—"); };
  card("final test accuracy", fmt_opt(summary_value(r, "final_test_accuracy"),
                                      [](double v) { return fmt::format("{:.4f}", v); }));
  card("best test accuracy", fmt_opt(summary_value(r, "best_test_accuracy"),
                                     [](double v) { return fmt::format("{:.4f}", v); }));
  card("final test loss", fmt_opt(summary_value(r, "final_test_loss"),
                                  [](double v) { return fmt::format("{:.4f}", v); }));
  card("virtual time", seconds(r.virtual_time_s));
  card("time to target", fmt_opt(r.time_to_target_s, seconds));
  card("throughput", fmt_opt(summary_value(r, "throughput_samples_per_s"), [](double v) {
         if (v >= 1e6) return fmt::format("{:.3g} M samples/s", v / 1e6);
         if (v >= 1e3) return fmt::format("{:.3g} k samples/s", v / 1e3);
         return fmt::format("{:.3g} samples/s", v);
       }));
  card("bytes sent", bytes(*summary_value(r, "bytes_sent_total")));
  card("steps", fmt::format("{}", r.steps));
  d["headline"] = headline;
  d["account"] = time_account(s, r);
  d["teaching"] = {{"lesson", s.teaching.lesson},
                   {"look_at", s.teaching.look_at},
                   {"questions", s.teaching.questions}};
  d["health"] = {{"state", to_string(r.health)},
                 {"reason", r.health_reason},
                 {"where", r.health == Health::kOk
                               ? std::string()
                               : fmt::format("At step {}, {} of virtual time; metrics.csv's health "
                                             "column and layers.csv show the run point by point.",
                                             r.health_step, seconds(r.health_time_s))},
                 {"advice", health_advice(r.health)}};
  nlohmann::json settings = nlohmann::json::array();
  for (const auto& [k, v] : resolved_settings(s)) settings.push_back({k, v});
  d["settings"] = settings;

  nlohmann::json step = nlohmann::json::array(), time = nlohmann::json::array(),
                 acc = nlohmann::json::array(), test_loss = nlohmann::json::array(),
                 train_loss = nlohmann::json::array(), sent = nlohmann::json::array();
  for (const EvalPoint& p : r.evals) {
    step.push_back(p.step);
    time.push_back(p.virtual_time_s);
    acc.push_back(number_or_null(p.test_accuracy));
    test_loss.push_back(number_or_null(p.test_loss));
    train_loss.push_back(number_or_null(p.train_loss));
    sent.push_back(p.bytes_sent);
  }
  d["evals"] = {{"step", step},
                {"time", time},
                {"accuracy", acc},
                {"test_loss", test_loss},
                {"train_loss", train_loss},
                {"bytes", sent}};
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodeStats& n : r.nodes) {
    nodes.push_back({{"name", fmt::format("{} {}", n.role, n.node)},
                     {"compute_s", n.compute_s},
                     {"comm_s", n.comm_s},
                     {"idle_s", n.idle_s},
                     {"bytes_sent", n.bytes_sent}});
  }
  d["nodes"] = nodes;
  // The staleness histogram; strategies with replicas instead of a global version (local
  // SGD, gossip) chart the replicas' spread.
  nlohmann::json labels = nlohmann::json::array(), counts = nlohmann::json::array(),
                 spread = nlohmann::json::array();
  for (const auto& [staleness, updates] : r.staleness_histogram) {
    labels.push_back(fmt::format("{}", staleness));
    counts.push_back(updates);
  }
  for (const EvalPoint& p : r.evals) spread.push_back(number_or_null(p.consensus_distance));
  d["staleness"] = {{"labels", labels}, {"counts", counts}};
  d["evals"]["consensus"] = spread;
  nlohmann::json spans = nlohmann::json::array();
  for (const TimelineSpan& t : timeline) {
    const NodeStats& n = r.nodes[static_cast<std::size_t>(t.node)];
    spans.push_back({{"node", fmt::format("{} {}", n.role, n.node)},
                     {"kind", t.kind},
                     {"label", t.label},
                     {"start", t.start_s},
                     {"end", t.end_s}});
  }
  d["timeline"] = spans;
  nlohmann::json faults = nlohmann::json::array();
  for (const FaultRecord& f : r.faults) {
    const NodeStats& n = r.nodes[static_cast<std::size_t>(f.node)];
    // Its span: the window, or from the fault to when it rejoined, was noticed, or the end.
    double end = f.end_s;
    if (std::isnan(end)) end = std::isnan(f.rejoined_s) ? f.detected_s : f.rejoined_s;
    // (A crashed worker is gone for good; a crashed shard's spare took over when it rejoined.)
    if (std::isnan(end) || (f.kind == "crash" && std::isnan(f.rejoined_s))) end = r.virtual_time_s;
    faults.push_back(
        {{"node", fmt::format("{} {}", n.role, n.node)},
         {"kind", f.kind},
         {"what", f.what},
         {"start", f.at_s},
         {"end", std::max(end, f.at_s)},
         {"cost", seconds(f.cost_s)},
         {"lost",
          f.lost_updates > 0
              ? fmt::format("{} update{}", f.lost_updates, f.lost_updates == 1 ? "" : "s")
              : fmt::format("{} gradient{}", f.lost_gradients, f.lost_gradients == 1 ? "" : "s")}});
  }
  d["faults"] = faults;
  if (r.emulation) {  // (absent otherwise, so a simulated run's page is unchanged)
    const EmulationStats& e = *r.emulation;
    const auto share = [](double x) { return fmt::format("{:.1f}%", 100 * x); };
    const auto accuracy = [](double x) {
      return std::isnan(x) ? std::string("—") : fmt::format("{:.4f}", x);
    };
    nlohmann::json rows = nlohmann::json::array();
    rows.push_back({"time per step", seconds(e.measured_step_s), seconds(e.simulated_step_s)});
    rows.push_back({"workers' compute share", share(e.measured_compute_share),
                    share(e.simulated_compute_share)});
    rows.push_back({"workers' communication share", share(e.measured_comm_share),
                    share(e.simulated_comm_share)});
    rows.push_back(
        {"final test accuracy", accuracy(e.measured_accuracy), accuracy(e.simulated_accuracy)});
    d["emulation"] = {
        {"summary",
         fmt::format("{} processes ({}) ran {} steps; simulated / measured time per step = {:.2f}.",
                     e.ranks, e.exchange, e.steps,
                     e.measured_step_s > 0 ? e.simulated_step_s / e.measured_step_s : 0.0)},
        {"params", e.params_identical
                       ? std::string("The final parameters are the simulation's, bit for bit.")
                       : fmt::format("The final parameters differ from the simulation's: relative "
                                     "difference {:.3g} (L2), largest {:.3g}.",
                                     e.relative_diff, e.max_abs_diff)},
        {"rows", rows}};
  }

  return page::render(page::text(embedded::report_template, embedded::report_template_size), s.name,
                      d);
}

void write_report_html(const std::filesystem::path& dir, const Scenario& scenario,
                       const RunResult& result, const std::vector<TimelineSpan>& timeline) {
  write_file_atomically(dir / "report.html", report_html(scenario, result, timeline));
}

}  // namespace dtsim
