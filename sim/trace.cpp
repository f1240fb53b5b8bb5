#include "sim/trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"

namespace preflight::sim {

namespace {

std::string span_name(const Span& s) {
  if (s.pass == 'D') return s.stage >= 0 ? detail::concat("DP grad sync stage ", s.stage) : "DP param all-gather";
  if (s.pass == 'P')
    return detail::concat("F", s.microbatch, "/s", s.stage, " & X", s.microbatch2, "/s", s.stage2);
  return detail::concat(s.pass, s.microbatch, "/s", s.stage);
}

// Colours as in the DualPipe / zero-bubble figures: forward blue, input-gradient green,
// weight-gradient purple, full backward teal, overlapped pair orange, DP grey.
const char* colour(char pass) {
  switch (pass) {
    case 'F': return "#4e79a7";
    case 'B': return "#59a14f";
    case 'W': return "#b07aa1";
    case 'X': return "#76b7b2";
    case 'P': return "#f28e2b";
    default: return "#9c9c9c";
  }
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace

std::string chrome_trace_json(const SimReport& r) {
  if (r.spans.empty()) fail("no spans recorded: simulate with keep_spans to write a trace");
  nlohmann::json events = nlohmann::json::array();
  int32_t ranks = 0;
  for (const Span& s : r.spans) ranks = std::max(ranks, s.rank + 1);
  for (int32_t rank = 0; rank < ranks; ++rank) {
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", rank}, {"args", {{"name", detail::concat("pipeline rank ", rank)}}}});
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", rank}, {"tid", 0}, {"args", {{"name", "compute"}}}});
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", rank}, {"tid", 1}, {"args", {{"name", "data-parallel comm"}}}});
  }
  for (const Span& s : r.spans) {
    // Chrome traces count microseconds; three decimals keep nanoseconds.
    const double ts_us = std::round(s.start_s * 1e9) / 1e3;
    const double dur_us = std::round((s.end_s - s.start_s) * 1e9) / 1e3;
    events.push_back({{"name", span_name(s)},
                      {"cat", std::string(1, s.pass)},
                      {"ph", "X"},
                      {"pid", s.rank},
                      {"tid", s.stream},
                      {"ts", ts_us},
                      {"dur", dur_us},
                      {"args", {{"microbatch", s.microbatch}, {"stage", s.stage}}}});
  }
  nlohmann::json j = {{"traceEvents", events},
                      {"displayTimeUnit", "ms"},
                      {"otherData", {{"model", r.model}, {"cluster", r.cluster}, {"layout", r.layout},
                                     {"step_time_s", r.step_time_s}}}};
  return j.dump() + "\n";
}

std::string pipeline_svg(const SimReport& r) {
  if (r.spans.empty()) fail("no spans recorded: simulate with keep_spans to draw a pipeline");
  int32_t ranks = 0;
  for (const Span& s : r.spans) ranks = std::max(ranks, s.rank + 1);
  const double width_px = 1600, left_px = 90, row_px = 26, top_px = 50, gap_px = 4;
  const double scale = (width_px - left_px - 20) / r.step_time_s;  // px per second
  const double height_px = top_px + ranks * row_px + 70;
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                width_px, height_px);
  out += buf;
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.0f\" y=\"20\" font-size=\"14\">%s on %s, layout %s (%s): step %.3f s, bubble %.1f%%, "
                "MFU %.1f%%</text>\n",
                left_px, xml_escape(r.model).c_str(), xml_escape(r.cluster).c_str(), xml_escape(r.layout).c_str(), r.schedule.c_str(), r.step_time_s,
                100 * r.bubble_fraction, 100 * r.mfu);
  out += buf;
  for (int32_t rank = 0; rank < ranks; ++rank) {
    const double y = top_px + rank * row_px;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"8\" y=\"%.1f\">rank %d</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                  "fill=\"#f4f4f4\"/>\n",
                  y + row_px * 0.65, rank, left_px, y, r.step_time_s * scale, row_px - gap_px);
    out += buf;
  }
  for (const Span& s : r.spans) {
    const double y = top_px + s.rank * row_px + (s.stream == 1 ? (row_px - gap_px) * 0.7 : 0);
    const double h = s.stream == 1 ? (row_px - gap_px) * 0.3 : (row_px - gap_px) * (s.pass == 'D' ? 0.3 : 1.0);
    const double x = left_px + s.start_s * scale;
    const double w = std::max(0.5, (s.end_s - s.start_s) * scale);
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"white\" "
                  "stroke-width=\"0.3\"><title>%s %.3f-%.3f ms</title></rect>\n",
                  x, y, w, h, colour(s.pass), xml_escape(span_name(s)).c_str(), s.start_s * 1e3, s.end_s * 1e3);
    out += buf;
    if (w > 14 && s.stream == 0 && s.pass != 'D') {
      std::snprintf(buf, sizeof buf, "<text x=\"%.2f\" y=\"%.2f\" fill=\"white\" font-size=\"9\">%d</text>\n", x + 2,
                    y + (row_px - gap_px) * 0.65, s.microbatch);
      out += buf;
    }
  }
  // Legend and time axis.
  const double ly = top_px + ranks * row_px + 25;
  const std::pair<char, const char*> legend[] = {{'F', "forward"},          {'B', "input grad (B)"},
                                                 {'W', "weight grad (W)"},  {'X', "full backward (B+W)"},
                                                 {'P', "overlapped F&amp;B pair"}, {'D', "DP sync / all-gather"}};
  double lx = left_px;
  for (const auto& [pass, label] : legend) {
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"12\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                  lx, ly, colour(pass), lx + 18, ly + 10, label);
    out += buf;
    lx += 190;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"%.0f\">0 s</text><text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3f s</text>\n",
                left_px, ly + 32, left_px + r.step_time_s * scale, ly + 32, r.step_time_s);
  out += buf;
  out += "</svg>\n";
  return out;
}

}  // namespace preflight::sim
