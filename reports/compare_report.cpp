#include "reports/compare_report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "engine/errors.hpp"
#include "reports/atomic_file.hpp"
#include "reports/page.hpp"

namespace dtsim::embedded {
extern const unsigned char compare_template[];
extern const std::size_t compare_template_size;
}  // namespace dtsim::embedded

namespace dtsim {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError({path.string()}, "", "missing: not a folder written by dtsim run?");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : kNaN;
}

// A metrics.csv cell: empty means not defined.
double cell(const std::string& text) { return text.empty() ? kNaN : std::stod(text); }

}  // namespace

FinishedRun read_finished_run(const std::filesystem::path& dir) {
  FinishedRun run;
  run.dir = dir;
  const std::filesystem::path summary_path = dir / "summary.json";
  nlohmann::json summary;
  try {
    summary = nlohmann::json::parse(read_text(summary_path));
    if (!summary.is_object()) throw std::invalid_argument("not an object");
    run.name = summary.contains("name") && summary["name"].is_string()
                   ? summary["name"].get<std::string>()
                   : "";
    run.diverged = summary.contains("diverged") && summary["diverged"].is_boolean() &&
                   summary["diverged"].get<bool>();
    if (summary.contains("health") && summary["health"].is_string()) {
      run.health = summary["health"].get<std::string>();
    }
  } catch (const std::exception& e) {
    throw InputError({summary_path.string()}, "",
                     fmt::format("not a dtsim summary.json: {}", e.what()));
  }
  run.label = run.name;
  if (summary.contains("description") && summary["description"].is_string()) {
    run.description = summary["description"].get<std::string>();
  }
  if (const auto t = summary.find("teaching"); t != summary.end() && t->is_object()) {
    try {
      if (!t->at("lesson").is_number_integer()) throw std::invalid_argument("lesson: a number");
      run.lesson = t->at("lesson").get<int>();
      run.look_at = t->at("look_at").get<std::vector<std::string>>();
      run.questions = t->at("questions").get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      throw InputError({summary_path.string()}, "teaching",
                       fmt::format("expected lesson, look_at and questions: {}", e.what()));
    }
  }
  run.final_test_accuracy = number(summary, "final_test_accuracy");
  run.best_test_accuracy = number(summary, "best_test_accuracy");
  run.virtual_time_s = number(summary, "virtual_time_s");
  run.time_to_target_s = number(summary, "time_to_target_s");
  run.throughput_samples_per_s = number(summary, "throughput_samples_per_s");
  run.bytes_sent_total = number(summary, "bytes_sent_total");
  run.steps = number(summary, "steps");
  run.samples = number(summary, "samples");
  run.mean_staleness = number(summary, "mean_staleness");

  const std::filesystem::path metrics_path = dir / "metrics.csv";
  std::istringstream lines(read_text(metrics_path));
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line_no == 1) {
      if (line.rfind(
              "step,epoch,virtual_time_s,samples,train_loss,test_loss,test_accuracy,bytes_sent",
              0) != 0) {
        throw InputError({metrics_path.string(), 1, 1}, "", "not a dtsim metrics.csv header");
      }
      continue;
    }
    std::vector<std::string> cells;
    std::string c;
    std::istringstream row(line);
    while (std::getline(row, c, ',')) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    try {
      if (cells.size() < 8) throw std::invalid_argument("short row");
      EvalPoint p;
      p.step = std::stoull(cells[0]);
      p.epoch = cell(cells[1]);
      p.virtual_time_s = cell(cells[2]);
      p.samples = std::stoull(cells[3]);
      p.train_loss = cell(cells[4]);
      p.test_loss = cell(cells[5]);
      p.test_accuracy = cell(cells[6]);
      p.bytes_sent = std::stoull(cells[7]);
      run.evals.push_back(p);
    } catch (const std::exception&) {
      throw InputError({metrics_path.string(), line_no, 1}, "",
                       "expected a row of numbers as written by dtsim run");
    }
  }
  return run;
}

std::string compare_finding(const std::vector<FinishedRun>& runs) {
  std::vector<const FinishedRun*> done;
  for (const FinishedRun& r : runs) {
    if (r.failed.empty() && !r.diverged) done.push_back(&r);
  }
  if (done.empty()) return "No run finished healthy.";
  std::vector<std::string> parts;
  const FinishedRun* fastest = nullptr;
  const FinishedRun* slowest = nullptr;
  std::vector<std::string> missed;
  for (const FinishedRun* r : done) {
    if (!std::isfinite(r->time_to_target_s)) {
      missed.push_back(r->label);
      continue;
    }
    if (fastest == nullptr || r->time_to_target_s < fastest->time_to_target_s) fastest = r;
    if (slowest == nullptr || r->time_to_target_s > slowest->time_to_target_s) slowest = r;
  }
  if (fastest != nullptr) {
    std::string line = fmt::format("{} reached the target accuracy first, in {} of virtual time",
                                   fastest->label, page::seconds(fastest->time_to_target_s));
    if (slowest != fastest) {
      line += fmt::format(", {:.1f}x sooner than {} ({})",
                          slowest->time_to_target_s / fastest->time_to_target_s, slowest->label,
                          page::seconds(slowest->time_to_target_s));
    }
    parts.push_back(line + ".");
  }
  double best = -1;
  for (const FinishedRun* r : done) best = std::max(best, r->final_test_accuracy);
  std::vector<std::string> most;  // (ties, at the accuracy as printed)
  for (const FinishedRun* r : done) {
    if (fmt::format("{:.4f}", r->final_test_accuracy) == fmt::format("{:.4f}", best)) {
      most.push_back(r->label);
    }
  }
  if (std::isfinite(best) && best >= 0) {
    if (most.size() == done.size() && done.size() > 1) {
      parts.push_back(fmt::format("All ended at the same accuracy, {:.4f}.", best));
    } else {
      parts.push_back(
          fmt::format("{} ended the most accurate, at {:.4f}.", fmt::join(most, " and "), best));
    }
  }
  if (fastest != nullptr && !missed.empty()) {
    parts.push_back(fmt::format("{} did not reach the target.", fmt::join(missed, ", ")));
  }
  if (fastest == nullptr) {
    const FinishedRun* quickest = done.front();
    for (const FinishedRun* r : done) {
      if (r->virtual_time_s < quickest->virtual_time_s) quickest = r;
    }
    parts.push_back(fmt::format("The shortest run was {}, {} of virtual time.", quickest->label,
                                page::seconds(quickest->virtual_time_s)));
  }
  const std::size_t unhealthy = runs.size() - done.size();
  if (unhealthy > 0) parts.push_back(fmt::format("{} run(s) failed or diverged.", unhealthy));
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string compare_html(const std::vector<FinishedRun>& runs, const std::string& title,
                         const std::filesystem::path& page_dir) {
  nlohmann::ordered_json d;
  d["title"] = title;
  // The runs' description, when they share one (a sweep's points do).
  std::string description = runs.empty() ? "" : runs.front().description;
  for (const FinishedRun& r : runs) {
    if (r.failed.empty() && r.description != description) description.clear();
  }
  d["description"] = description;
  // A demo's narrative, when every run is of the same lesson (a demo's sweep).
  auto demo =
      std::find_if(runs.begin(), runs.end(), [](const FinishedRun& r) { return r.lesson > 0; });
  for (const FinishedRun& r : runs) {
    if (demo != runs.end() && r.failed.empty() && r.lesson != demo->lesson) demo = runs.end();
  }
  d["teaching"] = {
      {"lesson", demo == runs.end() ? 0 : demo->lesson},
      {"look_at", demo == runs.end() ? std::vector<std::string>{} : demo->look_at},
      {"questions", demo == runs.end() ? std::vector<std::string>{} : demo->questions}};
  d["finding"] = compare_finding(runs);
  d["subtitle"] = fmt::format(
      "{} runs compared. Speed-up is against the first run ({}): in time to the target "
      "accuracy when both reached it, else in virtual time. Bytes per sample: all the bytes the "
      "run sent over the training samples it processed, the same measure in every sync mode.",
      runs.size(), runs.empty() ? "" : runs.front().label);
  d["columns"] = {"run",
                  "final accuracy",
                  "best accuracy",
                  "time to target",
                  "virtual time",
                  "throughput (samples/s)",
                  "bytes sent",
                  "bytes per sample",
                  "mean staleness",
                  "speed-up"};
  nlohmann::json rows = nlohmann::json::array();
  nlohmann::json links = nlohmann::json::array();
  nlohmann::json curves = nlohmann::json::array();
  for (const FinishedRun& r : runs) {
    const FinishedRun& first = runs.front();
    // Speed-up in time-to-target when both reached it, else in virtual time.
    std::string speedup = "—";
    std::string link;
    if (!page_dir.empty() && r.failed.empty() && !r.dir.empty()) {
      // ("./" first: a folder named like "javascript:..." stays a path.)
      link = "./" + (r.dir / "report.html").lexically_proximate(page_dir).generic_string();
    }
    links.push_back(link);
    if (!r.failed.empty()) {
      rows.push_back({r.label, "—", "—", "—", "—", "—", "—", "—", "—", r.failed});
      continue;
    }
    if (r.diverged) {
      speedup = "diverged (health: non-finite)";
    } else if (first.diverged || !first.failed.empty()) {
      speedup = "—";
    } else if (std::isfinite(first.time_to_target_s) && std::isfinite(r.time_to_target_s) &&
               r.time_to_target_s > 0) {
      speedup = fmt::format("{:.2f}x (to target)", first.time_to_target_s / r.time_to_target_s);
    } else if (std::isfinite(first.time_to_target_s)) {
      speedup = "— (did not reach the target)";
    } else if (std::isfinite(r.time_to_target_s)) {
      speedup = "— (the first run did not reach the target)";
    } else if (r.virtual_time_s > 0) {
      speedup = fmt::format("{:.2f}x (run time)", first.virtual_time_s / r.virtual_time_s);
    }
    if (!r.diverged && r.health != "ok") speedup += fmt::format(" — health: {}", r.health);
    const auto acc = [](double v) {
      return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("—");
    };
    rows.push_back({r.label, acc(r.final_test_accuracy), acc(r.best_test_accuracy),
                    page::seconds(r.time_to_target_s), page::seconds(r.virtual_time_s),
                    std::isfinite(r.throughput_samples_per_s)
                        ? fmt::format("{:.0f}", r.throughput_samples_per_s)
                        : "—",
                    page::bytes(r.bytes_sent_total),
                    r.samples > 0 ? page::bytes(r.bytes_sent_total / r.samples) : "—",
                    std::isfinite(r.mean_staleness) ? fmt::format("{:.2f}", r.mean_staleness) : "—",
                    speedup});
    nlohmann::json step = nlohmann::json::array(), time = nlohmann::json::array(),
                   accuracy = nlohmann::json::array(), loss = nlohmann::json::array(),
                   sent = nlohmann::json::array();
    for (const EvalPoint& p : r.evals) {
      step.push_back(p.step);
      time.push_back(p.virtual_time_s);
      accuracy.push_back(page::number_or_null(p.test_accuracy));
      loss.push_back(page::number_or_null(p.test_loss));
      sent.push_back(p.bytes_sent);
    }
    curves.push_back({{"label", r.label},
                      {"step", step},
                      {"time", time},
                      {"accuracy", accuracy},
                      {"test_loss", loss},
                      {"bytes", sent}});
  }
  d["rows"] = rows;
  d["links"] = links;
  d["runs"] = curves;
  return page::render(page::text(embedded::compare_template, embedded::compare_template_size),
                      title, d);
}

void write_compare_html(const std::filesystem::path& path, const std::vector<FinishedRun>& runs,
                        const std::string& title) {
  const std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  std::vector<FinishedRun> absolute = runs;
  for (FinishedRun& r : absolute) {
    if (!r.dir.empty()) r.dir = std::filesystem::absolute(r.dir);  // (a failed point has none)
  }
  write_file_atomically(path, compare_html(absolute, title, dir));
}

}  // namespace dtsim
