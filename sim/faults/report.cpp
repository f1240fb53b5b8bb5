// Text, JSON and SVG reports of a fault Monte Carlo (report.hpp).
#include "sim/faults/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "sim/units.hpp"

namespace preflight::faults {

namespace {

using nlohmann::json;

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string duration(double s) {
  if (s < 120) return fmt("%.1f s", s);
  if (s < 7200) return fmt("%.1f min", s / 60);
  return fmt("%.2f h", s / 3600);
}

std::string bytes(double b) { return sim::format_gib(b); }

json dist_json(const Distribution& d) {
  return {{"mean", round6(d.mean)}, {"stddev", round6(d.stddev)}, {"p5", round6(d.p5)},
          {"p50", round6(d.p50)},   {"p95", round6(d.p95)},       {"min", round6(d.min)}, {"max", round6(d.max)}};
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else o += c;
  }
  return o;
}

// Colour per detection path, so the timeline groups like causes.
const char* colour(const FaultClass& c) {
  if (c.detection == Detection::planned) return "#7f7f7f";
  if (c.detection == Detection::cross_dp_check) return "#d62728";
  if (c.detection == Detection::loss_alert) return "#9467bd";
  if (c.detection == Detection::watchdog) return "#ff7f0e";
  if (c.replace_node) return "#1f77b4";
  return "#2ca02c";
}

}  // namespace

double round6(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return std::strtod(buf, nullptr);
}

std::string format_text(const FaultModel& m, const McSummary& s, const RunOrigin& o, const IntervalSweep* sw) {
  std::string out;
  auto line = [&](const std::string& l) { out += l + "\n"; };
  const CheckpointPlan& c = m.checkpoint;
  const RecoveryPlan& r = m.recovery;
  line("fault model " + m.name + ": " + std::to_string(m.job.gpus) + " GPUs (" + std::to_string(m.job.gpus / m.job.gpus_per_node) +
       " nodes), rates from " + std::to_string(m.reference_gpus) + " GPUs x " + fmt("%g", m.reference_days) + " days");
  std::string run = "run: " + fmt("%.2f", s.spec.work_s / 86400.0) + " days of failure-free training";
  if (o.tokens > 0 && o.step_time_s > 0)
    run += " (" + fmt("%.4g", o.tokens) + " tokens, " + fmt("%.4g", o.tokens_per_step) + " tokens/step, " + fmt("%.3f", o.step_time_s) + " s/step; " + o.throughput_source + ")";
  else if (!o.throughput_source.empty())
    run += " (" + o.throughput_source + ")";
  if (std::isfinite(s.spec.max_wall_s)) run += ", stopped at " + fmt("%.2f", s.spec.max_wall_s / 86400.0) + " wall-clock days";
  line(run);
  line("checkpoint: " + std::string(c.async ? "async" : "sync") + " every " + duration(c.interval_s) + ", " + bytes(c.size_bytes) + " (" +
       o.checkpoint_size_source + "), write " + duration(c.write_s()) + " at " + fmt("%g", c.write_GBps) + " GB/s, stall " +
       duration(c.stall_s()) + ", load " + duration(c.read_s()) + ", keep last " + std::to_string(c.keep_last) +
       (c.keep_every_n > 0 ? " + every " + std::to_string(c.keep_every_n) + "th" : ""));
  line("recovery: requeue " + duration(r.requeue_s) + " + rendezvous " + duration(r.rendezvous_s) + " + load + warm-up " +
       duration(r.warmup_s) + "; " + std::to_string(r.hot_spare_nodes) + " hot-spare nodes (swap " + duration(r.spare_swap_s) +
       "), repair " + fmt("%g", r.repair_h) + " h");
  line("detection: crash per class, NCCL watchdog " + duration(m.detection.watchdog_timeout_s) + ", cross-DP check every " +
       duration(m.detection.cross_dp_check_interval_s) + " (p = " + fmt("%g", m.detection.cross_dp_detect_probability) +
       "), loss alert " + fmt("%g", m.detection.loss_alert_steps) + " + " + fmt("%g", m.detection.loss_observe_steps) + " steps");
  line(std::to_string(s.trials) + " trials, seed " + std::to_string(s.seed));
  line("");
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-22s %10s %10s %10s %10s", "", "mean", "p5", "p50", "p95");
  line(buf);
  auto row = [&](const std::string& name, const Distribution& d, double scale, const char* f) {
    std::string l = name + std::string(22 - name.size(), ' ');
    for (double v : {d.mean, d.p5, d.p50, d.p95}) {
      const std::string cell = fmt(f, v * scale);
      l += " " + std::string(cell.size() < 10 ? 10 - cell.size() : 0, ' ') + cell;
    }
    line(l);
  };
  row("wall-clock days", s.wall_days, 1, "%.2f");
  row("goodput", s.goodput, 100, "%.2f%%");
  row("interruptions", s.interruptions, 1, "%.1f");
  line("");
  std::snprintf(buf, sizeof buf, "%-50s %12s %8s %14s %14s %14s", "class", "per GPU-h", "per day", "interruptions",
                "lost work GPU-h", "downtime GPU-h");
  line(buf);
  double lost_total = 0, down_total = 0, int_total = 0;
  for (const ClassSummary& cs : s.classes) {
    std::snprintf(buf, sizeof buf, "%-50s %12.3e %8.3f %14.2f %14.0f %14.0f", cs.label.substr(0, 50).c_str(), cs.rate_per_gpu_hour,
                  cs.rate_per_day, cs.interruptions_mean, cs.lost_work_gpu_h_mean, cs.downtime_gpu_h_mean);
    line(buf);
    lost_total += cs.lost_work_gpu_h_mean;
    down_total += cs.downtime_gpu_h_mean;
    int_total += cs.interruptions_mean;
  }
  std::snprintf(buf, sizeof buf, "%-50s %12s %8s %14.2f %14.0f %14.0f", "total", "", "", int_total, lost_total, down_total);
  line(buf);
  std::snprintf(buf, sizeof buf, "checkpoint stalls: %.0f GPU-h; all losses: %.0f GPU-h (%.2f days of the whole job)",
                s.checkpoint_stall_gpu_h_mean, lost_total + down_total + s.checkpoint_stall_gpu_h_mean,
                (lost_total + down_total + s.checkpoint_stall_gpu_h_mean) / static_cast<double>(s.gpus) / 24.0);
  line(buf);
  if (s.rollbacks_beyond_kept_mean > 0 || s.corrupted_at_end_fraction > 0) {
    std::snprintf(buf, sizeof buf, "corruption rollbacks past every kept checkpoint: %.3f per run; runs ending with undetected corruption: %.2f%%",
                  s.rollbacks_beyond_kept_mean, 100 * s.corrupted_at_end_fraction);
    line(buf);
  }
  if (s.unfinished_fraction > 0) {
    std::snprintf(buf, sizeof buf, "WARNING: %.2f%% of runs did not finish within 50x the failure-free time (rollbacks to the start?)",
                  100 * s.unfinished_fraction);
    line(buf);
  }
  if (sw) {
    line("");
    line("checkpoint interval sweep (" + std::to_string(sw->trials_per_point) + " trials per point, common random numbers):");
    std::snprintf(buf, sizeof buf, "  %12s %12s %10s %16s", "interval", "mean days", "goodput", "beyond-kept/run");
    line(buf);
    for (const SweepPoint& p : sw->points) {
      std::string marks;
      auto mark = [&](bool on, const char* what) {
        if (on) marks += (marks.empty() ? "<- " : ", ") + std::string(what);
      };
      mark(p.interval_s == sw->best_interval_s, "best");
      mark(p.interval_s == sw->young_interval_s, "Young");
      mark(p.interval_s == sw->daly_interval_s, "Daly");
      std::snprintf(buf, sizeof buf, "  %12s %12.3f %9.3f%% %16.3f %s", duration(p.interval_s).c_str(), p.wall_days_mean,
                    100 * p.goodput_mean, p.rollbacks_beyond_kept_mean, marks.c_str());
      std::string l = buf;
      while (!l.empty() && l.back() == ' ') l.pop_back();
      line(l);
    }
    line("best interval: " + duration(sw->best_interval_s) + "; Young (1974, first order) sqrt(2*delta*M) = " +
         duration(sw->young_interval_s) + ", Daly (2006, higher order) = " + duration(sw->daly_interval_s) +
         ", with delta = " + duration(sw->stall_s) + " stall per checkpoint, M = " + duration(sw->mtbf_s) +
         " between work-losing interruptions");
    for (const std::string& cv : sw->caveats) line("  note: " + cv);
  }
  return out;
}

json summary_to_json(const FaultModel& m, const McSummary& s, const RunOrigin& o, const IntervalSweep* sw) {
  json j;
  j["format"] = "preflight-faults-report/1";
  j["fault_model"] = m.name;
  j["gpus"] = s.gpus;
  j["trials"] = s.trials;
  j["seed"] = s.seed;
  j["run"] = {{"work_days", round6(s.spec.work_s / 86400.0)},
              {"max_wall_days", std::isfinite(s.spec.max_wall_s) ? json(round6(s.spec.max_wall_s / 86400.0)) : json(nullptr)},
              {"step_time_s", round6(s.spec.step_time_s)},
              {"tokens", round6(o.tokens)},
              {"tokens_per_step", round6(o.tokens_per_step)},
              {"throughput_source", o.throughput_source},
              {"checkpoint_size_source", o.checkpoint_size_source}};
  j["wall_days"] = dist_json(s.wall_days);
  j["goodput"] = dist_json(s.goodput);
  j["interruptions"] = dist_json(s.interruptions);
  json classes = json::array();
  for (const ClassSummary& cs : s.classes) {
    classes.push_back({{"name", cs.name},
                       {"label", cs.label},
                       {"rate_per_gpu_hour", round6(cs.rate_per_gpu_hour)},
                       {"rate_per_day", round6(cs.rate_per_day)},
                       {"interruptions_mean", round6(cs.interruptions_mean)},
                       {"lost_work_gpu_h_mean", round6(cs.lost_work_gpu_h_mean)},
                       {"downtime_gpu_h_mean", round6(cs.downtime_gpu_h_mean)}});
  }
  j["classes"] = classes;
  j["checkpoint_stall_gpu_h_mean"] = round6(s.checkpoint_stall_gpu_h_mean);
  j["checkpoints_mean"] = round6(s.checkpoints_mean);
  j["rollbacks_beyond_kept_mean"] = round6(s.rollbacks_beyond_kept_mean);
  j["corrupted_at_end_fraction"] = round6(s.corrupted_at_end_fraction);
  j["unfinished_fraction"] = round6(s.unfinished_fraction);
  j["checkpoint"] = {{"interval_s", round6(m.checkpoint.interval_s)}, {"mode", m.checkpoint.async ? "async" : "sync"},
                     {"size_bytes", round6(m.checkpoint.size_bytes)}, {"write_s", round6(m.checkpoint.write_s())},
                     {"stall_s", round6(m.checkpoint.stall_s())}, {"load_s", round6(m.checkpoint.read_s())},
                     {"keep_last", m.checkpoint.keep_last}, {"keep_every_n", m.checkpoint.keep_every_n}};
  if (sw) {
    json pts = json::array();
    for (const SweepPoint& p : sw->points)
      pts.push_back({{"interval_s", round6(p.interval_s)}, {"wall_days_mean", round6(p.wall_days_mean)},
                     {"goodput_mean", round6(p.goodput_mean)}, {"rollbacks_beyond_kept_mean", round6(p.rollbacks_beyond_kept_mean)}});
    j["interval_sweep"] = {{"points", pts},
                           {"trials_per_point", sw->trials_per_point},
                           {"best_interval_s", round6(sw->best_interval_s)},
                           {"young_interval_s", round6(sw->young_interval_s)},
                           {"daly_interval_s", round6(sw->daly_interval_s)},
                           {"stall_s", round6(sw->stall_s)},
                           {"mtbf_s", round6(sw->mtbf_s)},
                           {"caveats", sw->caveats}};
  }
  return j;
}

std::string render_svg(const FaultModel& m, const McSummary& s) {
  // A fixed wall-clock window (--wall-days alone) gives every run the same length, so
  // the first panel shows goodput there; with a token budget it shows days to finish.
  const bool fixed_window = std::isfinite(s.spec.max_wall_s) && s.spec.work_s >= s.spec.max_wall_s;
  const std::vector<double>& samples = fixed_window ? s.goodput_samples : s.wall_days_samples;
  const Distribution& d = fixed_window ? s.goodput : s.wall_days;
  const double unit = fixed_window ? 100.0 : 1.0;  // goodput in percent

  // Left margin wide enough for the longest class label (no label is cut).
  const double char_px = 6.6;  // 12 px sans-serif, average glyph
  size_t longest = 12;
  for (const TimelineEvent& e : s.timeline) longest = std::max(longest, m.classes[e.cls].label.size());
  const double left = std::max(140.0, 16 + char_px * static_cast<double>(longest));
  const double plot_w = 720, right = 40, W = left + plot_w + right;
  std::string svg;
  auto add = [&](const std::string& x) { svg += x + "\n"; };
  auto num = [](double x) { return fmt("%.1f", x); };
  auto text = [&](double x, double y, const std::string& body, const char* extra = "") {
    add("<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + extra + ">" + esc(body) + "</text>");
  };
  auto line_at = [&](double x1, double y1, double x2, double y2, const char* style = "stroke=\"black\"") {
    add("<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " + style + "/>");
  };

  // --- panel 1: histogram over the trials ---
  const double h1_top = 70, h1_h = 200;
  double lo = d.min * unit, hi = d.max * unit;
  if (hi - lo < 1e-9 * std::max(1.0, std::fabs(hi))) {
    lo -= 0.5;
    hi += 0.5;
  }
  const std::vector<double> xticks = sim::nice_ticks(lo, hi, 6);
  const int bins = 40;
  std::vector<int> counts(bins, 0);
  for (double v : samples) counts[std::clamp(static_cast<int>((v * unit - lo) / (hi - lo) * bins), 0, bins - 1)]++;
  const int peak = std::max(1, *std::max_element(counts.begin(), counts.end()));

  // --- panel 2: timeline of trial 0, one row per class that occurred ---
  std::vector<int> rows;
  for (const TimelineEvent& e : s.timeline)
    if (std::find(rows.begin(), rows.end(), e.cls) == rows.end()) rows.push_back(e.cls);
  std::sort(rows.begin(), rows.end());
  const double row_h = 18, t_top = h1_top + h1_h + 100;
  const double t_h = std::max<double>(1, static_cast<double>(rows.size())) * row_h;
  const double c_top = t_top + t_h + 80, c_h = 140;
  const double H = c_top + c_h + 90;
  const double span_s = std::max(s.timeline_wall_s, 1.0);

  add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) + "\" viewBox=\"0 0 " + num(W) +
      " " + num(H) + "\" font-family=\"sans-serif\" font-size=\"12\">");
  add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
  text(W / 2, 24, "Fault Monte Carlo: " + m.name + ", " + std::to_string(s.gpus) + " GPUs, " + std::to_string(s.trials) + " trials, seed " + std::to_string(s.seed),
       " text-anchor=\"middle\" font-size=\"16\"");
  const std::string run_text = fixed_window ? fmt("fixed window of %.4g wall-clock days", s.spec.max_wall_s / 86400)
                                            : fmt("%.4g days of failure-free training", s.spec.work_s / 86400);
  text(W / 2, 42, run_text + fmt("; goodput mean %.2f%%", 100 * s.goodput.mean) + fmt(", wall-clock mean %.2f days", s.wall_days.mean),
       " text-anchor=\"middle\" fill=\"#555\"");
  const std::string what = fixed_window ? "Goodput per run (useful training / wall-clock)" : "Wall-clock days per run to finish the token budget";
  const char* f = fixed_window ? "%.2f%%" : "%.2f";
  text(left, h1_top - 12, what + ": mean " + fmt(f, d.mean * unit) + ", p5 " + fmt(f, d.p5 * unit) + ", p50 " + fmt(f, d.p50 * unit) +
       ", p95 " + fmt(f, d.p95 * unit), " font-size=\"13\"");
  const double bw = plot_w / bins;
  for (int b = 0; b < bins; ++b) {
    const double bh = h1_h * counts[b] / peak;
    add("<rect x=\"" + num(left + b * bw + 1) + "\" y=\"" + num(h1_top + h1_h - bh) + "\" width=\"" + num(bw - 2) + "\" height=\"" + num(bh) + "\" fill=\"#4c72b0\"/>");
  }
  line_at(left, h1_top + h1_h, left + plot_w, h1_top + h1_h);
  line_at(left, h1_top, left, h1_top + h1_h);
  auto xpos = [&](double v) { return left + plot_w * (v - lo) / (hi - lo); };
  for (double v : xticks) {
    line_at(xpos(v), h1_top + h1_h, xpos(v), h1_top + h1_h + 4);
    text(xpos(v), h1_top + h1_h + 17, sim::tick_label(v), " text-anchor=\"middle\"");
  }
  // The axis name goes left of the widest tick label, so the two never overlap.
  auto label_px = [&](const std::string& t) { return char_px * static_cast<double>(t.size()); };
  double widest_count_px = 0;
  for (double v : sim::nice_ticks(0, peak, 4)) {
    const double y = h1_top + h1_h - h1_h * v / peak;
    line_at(left - 4, y, left, y);
    text(left - 7, y + 4, sim::tick_label(v), " text-anchor=\"end\"");
    widest_count_px = std::max(widest_count_px, label_px(sim::tick_label(v)));
  }
  double label_y = h1_top + 12;
  for (auto [q, name] : {std::pair{d.p5, "p5"}, std::pair{d.p50, "p50"}, std::pair{d.p95, "p95"}}) {
    const double x = xpos(q * unit);
    line_at(x, h1_top, x, h1_top + h1_h, "stroke=\"#c44e52\" stroke-dasharray=\"4,3\"");
    // Right of the line, or left of it near the right edge, so the label stays inside.
    const bool flip = x > left + plot_w - 30;
    text(flip ? x - 3 : x + 3, label_y, name,
         flip ? " text-anchor=\"end\" fill=\"#c44e52\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\""
              : " fill=\"#c44e52\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"");
    label_y += 14;  // stagger: neighbouring percentiles are often close
  }
  text(left + plot_w / 2, h1_top + h1_h + 36,
       fixed_window ? "goodput of the run (%)" : "wall-clock time to finish (days)", " text-anchor=\"middle\"");
  text(left - 15 - widest_count_px, h1_top + h1_h / 2, "runs", " text-anchor=\"end\"");

  // --- the day axis shared by panels 2 and 3 ---
  const double days = span_s / 86400;
  const std::vector<double> dticks = sim::nice_ticks(0, days, 10);
  auto day_axis = [&](double y) {
    line_at(left, y, left + plot_w, y);
    for (double v : dticks) {
      const double x = left + plot_w * v * 86400 / span_s;
      line_at(x, y, x, y + 4);
      text(x, y + 17, sim::tick_label(v), " text-anchor=\"middle\"");
    }
    text(left + plot_w / 2, y + 34, "wall-clock time since the start of the run (days)", " text-anchor=\"middle\"");
  };

  // Timeline rows.
  text(left, t_top - 14, "Sampled run (trial 0): " + std::to_string(s.timeline.size()) + " interruptions over " +
       fmt("%.2f days; bar width = outage (at least 1 px)", days), " font-size=\"13\"");
  for (size_t i = 0; i < rows.size(); ++i) {
    const FaultClass& c = m.classes[rows[i]];
    const double y = t_top + static_cast<double>(i) * row_h;
    if (i % 2 == 0) add("<rect x=\"" + num(left) + "\" y=\"" + num(y) + "\" width=\"" + num(plot_w) + "\" height=\"" + num(row_h) + "\" fill=\"#f2f2f2\"/>");
    text(left - 8, y + 13, c.label, " text-anchor=\"end\"");
  }
  for (const TimelineEvent& e : s.timeline) {
    const auto row = static_cast<double>(std::find(rows.begin(), rows.end(), e.cls) - rows.begin());
    const double x = left + plot_w * e.fault_s / span_s;
    const double w = std::max(1.0, plot_w * (e.up_s - e.fault_s) / span_s);
    add("<rect x=\"" + num(x) + "\" y=\"" + num(t_top + row * row_h + 2) + "\" width=\"" + num(w) + "\" height=\"" + num(row_h - 4) +
        "\" fill=\"" + colour(m.classes[e.cls]) + "\"><title>" + esc(m.classes[e.cls].label) + fmt(": day %.2f", e.fault_s / 86400) +
        ", outage " + duration(e.up_s - e.fault_s) + ", lost work " + duration(e.lost_work_s) + "</title></rect>");
  }
  day_axis(t_top + t_h);

  // Panel 3: cumulative GPU-hours lost (lost work + outages) in the sampled run.
  double total_h = 0;
  for (const TimelineEvent& e : s.timeline) total_h += (e.lost_work_s + e.up_s - e.fault_s) * static_cast<double>(s.gpus) / 3600;
  const std::vector<double> yticks = sim::nice_ticks(0, std::max(total_h, 1.0), 4);
  const double ymax = std::max(yticks.back(), std::max(total_h, 1.0));
  text(left, c_top - 12, fmt("Cumulative GPU-hours lost to failures in the sampled run: %.0f (lost work + outages)", total_h), " font-size=\"13\"");
  std::string path = "M " + num(left) + " " + num(c_top + c_h);
  double acc = 0;
  for (const TimelineEvent& e : s.timeline) {
    const double x = left + plot_w * e.fault_s / span_s;
    path += " L " + num(x) + " " + num(c_top + c_h - c_h * acc / ymax);
    acc += (e.lost_work_s + e.up_s - e.fault_s) * static_cast<double>(s.gpus) / 3600;
    path += " L " + num(x) + " " + num(c_top + c_h - c_h * acc / ymax);
  }
  path += " L " + num(left + plot_w) + " " + num(c_top + c_h - c_h * acc / ymax);
  add("<path d=\"" + path + "\" fill=\"none\" stroke=\"#c44e52\" stroke-width=\"1.5\"/>");
  line_at(left, c_top, left, c_top + c_h);
  double widest_gpuh_px = 0;
  for (double v : yticks) {
    const double y = c_top + c_h - c_h * v / ymax;
    line_at(left - 4, y, left, y);
    text(left - 7, y + 4, fmt("%.0f", v), " text-anchor=\"end\"");
    widest_gpuh_px = std::max(widest_gpuh_px, label_px(fmt("%.0f", v)));
  }
  text(left - 15 - widest_gpuh_px, c_top + c_h / 2, "GPU-h", " text-anchor=\"end\"");
  day_axis(c_top + c_h);
  // Legend, wrapped to the width.
  double lx = 20, ly = H - 22;
  for (auto [col, name] : {std::pair{"#1f77b4", "crash, node swapped"}, std::pair{"#2ca02c", "crash, restart only"},
                           std::pair{"#ff7f0e", "hang (watchdog)"}, std::pair{"#d62728", "silent corruption"},
                           std::pair{"#9467bd", "loss spike"}, std::pair{"#7f7f7f", "planned"}}) {
    const double w = 14 + char_px * static_cast<double>(std::string(name).size()) + 24;
    if (lx + w > W - 10) {
      lx = 20;
      ly += 16;
    }
    add("<rect x=\"" + num(lx) + "\" y=\"" + num(ly) + "\" width=\"10\" height=\"10\" fill=\"" + col + "\"/>");
    text(lx + 14, ly + 9, name);
    lx += w;
  }
  add("</svg>");
  return svg;
}

}  // namespace preflight::faults
