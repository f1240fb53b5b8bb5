#include "sim/trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"
#include "sim/units.hpp"

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

namespace {

// "0-5", "0, 2, 7-9": the ranks that do not fit, for the title.
std::string rank_list(const std::vector<int64_t>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += j > i ? detail::concat(ranks[i], "-", ranks[j]) : detail::concat(ranks[i]);
    i = j + 1;
  }
  return out;
}

// Hatching per chunk / direction: chunk 0 plain, then "/", "\", cross, dots.
const char* hatch_id(int32_t chunk) {
  switch (chunk) {
    case 1: return "h1";
    case 2: return "h2";
    case 3: return "h3";
    default: return chunk >= 4 ? "h4" : nullptr;
  }
}

const char* kHatchDefs =
    "<defs>\n"
    "<pattern id=\"h1\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\">"
    "<rect width=\"2.4\" height=\"6\" fill=\"white\" fill-opacity=\"0.6\"/></pattern>\n"
    "<pattern id=\"h2\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(-45)\">"
    "<rect width=\"2.4\" height=\"6\" fill=\"black\" fill-opacity=\"0.35\"/></pattern>\n"
    "<pattern id=\"h3\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\">"
    "<rect width=\"6\" height=\"1.8\" fill=\"white\" fill-opacity=\"0.6\"/><rect width=\"1.8\" height=\"6\" fill=\"white\" "
    "fill-opacity=\"0.6\"/></pattern>\n"
    "<pattern id=\"h4\" patternUnits=\"userSpaceOnUse\" width=\"5\" height=\"5\">"
    "<circle cx=\"2.5\" cy=\"2.5\" r=\"1.2\" fill=\"white\" fill-opacity=\"0.7\"/></pattern>\n"
    "</defs>\n";

}  // namespace

std::string pipeline_svg(const SimReport& r) {
  if (r.spans.empty()) fail("no spans recorded: simulate with keep_spans to draw a pipeline");
  int32_t ranks = 0, chunks = 0;
  for (const Span& s : r.spans) {
    ranks = std::max(ranks, s.rank + 1);
    chunks = std::max({chunks, s.chunk + 1, s.chunk2 + 1});
  }
  const double width_px = 1600, left_px = 70, right_px = 30, row_px = 26, top_px = 58, gap_px = 4;
  const double plot_px = width_px - left_px - right_px;
  const double scale = plot_px / r.step_time_s;  // px per second
  const double rows_bottom = top_px + ranks * row_px;
  std::string out;
  char buf[1024];
  auto add = [&](const std::string& text) { out += text; };

  // --- legend entries (laid out below the axis, wrapping) ---
  struct Entry {
    const char* colour;   // fill
    int32_t chunk = -1;   // hatching of this chunk / direction (-1: plain)
    bool split = false;   // half F, half X: the overlapped pair
    std::string label;
  };
  std::vector<Entry> legend = {{colour('F'), -1, false, "forward (F)"},
                               {colour('B'), -1, false, "input gradient (B)"},
                               {colour('W'), -1, false, "weight gradient (W)"},
                               {colour('X'), -1, false, "full backward (B+W)"},
                               {nullptr, -1, true, "overlapped F&B pair: top F, bottom backward"},
                               {colour('D'), -1, false, "DP gradient sync / parameter all-gather (thin bar)"}};
  const bool dualpipe = r.schedule == "dualpipe", vshape = r.schedule == "dualpipev";
  for (int32_t k = 0; k < chunks; ++k) {
    std::string label = dualpipe ? (k == 0 ? "direction 0: enters at rank 0" : "direction 1: enters at the last rank")
                        : vshape ? (k == 0 ? "V leg 0 (stages 0..p-1)" : "V leg 1 (stages p..2p-1)")
                                 : detail::concat("chunk ", k, k == 0 ? " (first model chunk of the rank)" : "");
    legend.push_back({"#8c8c8c", k, false, (k == 0 ? "plain: " : "hatched: ") + label});
  }
  const double char_px = 6.3, swatch_px = 16, legend_row_px = 18;
  std::vector<std::pair<double, double>> legend_xy;
  {
    double x = left_px, row = 0;
    for (const Entry& e : legend) {
      const double w = swatch_px + 6 + char_px * static_cast<double>(e.label.size()) + 22;
      if (x + w > width_px - right_px && x > left_px) {
        x = left_px;
        row += 1;
      }
      legend_xy.emplace_back(x, row);
      x += w;
    }
  }
  const double axis_y = rows_bottom + 6;
  const double legend_top = axis_y + 44;
  const double legend_rows = legend_xy.empty() ? 0 : legend_xy.back().second + 1;
  const double height_px = legend_top + legend_rows * legend_row_px + 10;

  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                width_px, height_px, width_px, height_px);
  add(buf);
  add(kHatchDefs);

  // --- title: what, the headline numbers, and OOM ---
  std::snprintf(buf, sizeof buf, "%s on %s, layout %s (%s): step %.3f s, bubble %.1f%%, MFU %.1f%%",
                xml_escape(r.model).c_str(), xml_escape(r.cluster).c_str(), xml_escape(r.layout).c_str(),
                xml_escape(r.schedule).c_str(), r.step_time_s, 100 * r.bubble_fraction, 100 * r.mfu);
  add(detail::concat("<text x=\"", left_px, "\" y=\"22\" font-size=\"14\">", buf));
  std::vector<int64_t> oom;
  double worst = 0, capacity = 0;
  for (const StageMemory& m : r.memory)
    if (!m.fits) {
      oom.push_back(m.stage);
      worst = std::max(worst, m.total_bytes);
      capacity = m.capacity_bytes;
    }
  if (!oom.empty()) {
    std::snprintf(buf, sizeof buf, " | OUT OF MEMORY on rank%s %s: up to %s of %s", oom.size() > 1 ? "s" : "",
                  rank_list(oom).c_str(), format_gib(worst).c_str(), format_gib(capacity).c_str());
    add(detail::concat("<tspan fill=\"#c00000\" font-weight=\"bold\">", buf, "</tspan>"));
  } else if (!r.memory.empty()) {
    add(" | every rank fits in memory");
  }
  add("</text>\n");
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.0f\" y=\"40\" fill=\"#555\">PP %lld, %lld chunk%s per rank, %lld micro-batches; one row per "
                "pipeline rank, time from the start of the step</text>\n",
                left_px, static_cast<long long>(r.pp), static_cast<long long>(r.vpp), r.vpp > 1 ? "s" : "",
                static_cast<long long>(r.microbatches));
  add(buf);

  // --- rows, grid lines, spans ---
  const std::vector<double> ticks = nice_ticks(0, r.step_time_s, 10);
  for (int32_t rank = 0; rank < ranks; ++rank) {
    const double y = top_px + rank * row_px;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">rank %d</text>\n<rect x=\"%.1f\" y=\"%.1f\" "
                  "width=\"%.1f\" height=\"%.1f\" fill=\"#f4f4f4\"/>\n",
                  left_px - 6, y + row_px * 0.6, rank, left_px, y, r.step_time_s * scale, row_px - gap_px);
    add(buf);
  }
  for (double t : ticks) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#d0d0d0\" stroke-width=\"0.6\"/>\n",
                  left_px + t * scale, top_px, left_px + t * scale, rows_bottom);
    add(buf);
  }
  auto block = [&](double x, double y, double w, double h, const char* fill, int32_t chunk) {
    std::snprintf(buf, sizeof buf, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>", x, y, w, h,
                  fill);
    add(buf);
    if (const char* id = hatch_id(chunk)) {
      std::snprintf(buf, sizeof buf, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"url(#%s)\"/>", x,
                    y, w, h, id);
      add(buf);
    }
  };
  for (const Span& s : r.spans) {
    const double full_h = row_px - gap_px;
    const double y = top_px + s.rank * row_px + (s.stream == 1 ? full_h * 0.7 : 0);
    const double h = s.stream == 1 || s.pass == 'D' ? full_h * 0.3 : full_h;
    const double x = left_px + s.start_s * scale;
    const double w = std::max(0.5, (s.end_s - s.start_s) * scale);
    add("<g>");
    if (s.pass == 'P') {
      block(x, y, w, h / 2, colour('F'), s.chunk);
      block(x, y + h / 2, w, h / 2, colour('X'), s.chunk2);
    } else {
      block(x, y, w, h, colour(s.pass), s.chunk);
    }
    // A hair-line separator so that neighbouring blocks of one colour stay apart.
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"white\" "
                  "stroke-width=\"0.4\"/><title>%s, %.3f-%.3f ms</title></g>\n",
                  x, y, w, h, xml_escape(span_name(s)).c_str(), s.start_s * 1e3, s.end_s * 1e3);
    add(buf);
    if (s.stream == 0 && s.pass != 'D') {
      const std::string label =
          s.pass == 'P' ? detail::concat(s.microbatch, "/", s.microbatch2) : detail::concat(s.microbatch);
      if (w > 5.6 * static_cast<double>(label.size()) + 3) {
        std::snprintf(buf, sizeof buf,
                      "<text x=\"%.2f\" y=\"%.2f\" fill=\"white\" font-size=\"9\" stroke=\"black\" stroke-width=\"1.6\" "
                      "stroke-opacity=\"0.45\" paint-order=\"stroke\">%s</text>\n",
                      x + 1.5, y + h * 0.62, label.c_str());
        add(buf);
      }
    }
  }

  // --- time axis with ticks and unit ---
  std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left_px,
                axis_y, left_px + r.step_time_s * scale, axis_y);
  add(buf);
  for (double t : ticks) {
    const double x = left_px + t * scale;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"black\"/><text x=\"%.2f\" y=\"%.1f\" "
                  "text-anchor=\"middle\">%s</text>\n",
                  x, axis_y, x, axis_y + 4, x, axis_y + 16, tick_label(t).c_str());
    add(buf);
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time within the optimizer step (s); step ends at "
                "%.3f s</text>\n",
                left_px + plot_px / 2, axis_y + 32, r.step_time_s);
  add(buf);

  // --- legend ---
  for (size_t i = 0; i < legend.size(); ++i) {
    const Entry& e = legend[i];
    const double x = legend_xy[i].first, y = legend_top + legend_xy[i].second * legend_row_px;
    if (e.split) {
      block(x, y, swatch_px, 6, colour('F'), -1);
      block(x, y + 6, swatch_px, 6, colour('X'), -1);
    } else {
      block(x, y, swatch_px, 12, e.colour, e.chunk);
    }
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + swatch_px + 6, y + 10,
                  xml_escape(e.label).c_str());
    add(buf);
  }
  add("</svg>\n");
  return out;
}

}  // namespace preflight::sim
