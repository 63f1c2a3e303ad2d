// Internal helpers shared by the HTML pages (report.html, compare.html): filling a compiled-in
// template with a title, the chart library and the page's data.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "reports/html_escape.hpp"

namespace dtsim::embedded {
extern const unsigned char chart_js[];
extern const std::size_t chart_js_size;
}  // namespace dtsim::embedded

namespace dtsim::page {

inline std::string text(const unsigned char* bytes, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(bytes), size);
}

inline nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// JSON that is safe inside <script type="application/json">: no "<", ">" or "&" characters.
inline std::string script_safe_json(const nlohmann::json& j) {
  const std::string raw = j.dump();
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

// The template with {{TITLE}} (escaped), {{DATA_JSON}} and {{CHART_JS}} filled in, in one pass
// over the template: text put in is never scanned for placeholders again.
inline std::string render(const std::string& page, std::string_view title,
                          const nlohmann::json& data) {
  std::string out;
  out.reserve(page.size() + embedded::chart_js_size + 65536);
  std::size_t at = 0;
  while (at < page.size()) {
    const std::size_t open = page.find("{{", at);
    if (open == std::string::npos) {
      out.append(page, at, std::string::npos);
      break;
    }
    out.append(page, at, open - at);
    const std::string_view rest = std::string_view(page).substr(open);
    if (rest.starts_with("{{TITLE}}")) {
      out += html_escape(title);
      at = open + 9;
    } else if (rest.starts_with("{{DATA_JSON}}")) {
      out += script_safe_json(data);
      at = open + 13;
    } else if (rest.starts_with("{{CHART_JS}}")) {
      out += text(embedded::chart_js, embedded::chart_js_size);
      at = open + 12;
    } else {
      out += "{{";
      at = open + 2;
    }
  }
  return out;
}

inline std::string seconds(double s) {
  if (!std::isfinite(s)) return "—";
  if (s >= 1) return fmt::format("{:.3g} s", s);
  if (s >= 1e-3) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} µs", s * 1e6);
}

inline std::string bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.3g} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.3g} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.3g} kB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

}  // namespace dtsim::page
