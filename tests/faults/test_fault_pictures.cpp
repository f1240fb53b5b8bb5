// The fault Monte Carlo's SVG (sim/faults/report.cpp): a fixed wall-clock window plots
// goodput (every run lasts the window, so days say nothing), a token budget plots days;
// every label inside the picture and apart; time axes with ascending ticks and units.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"
#include "sim/faults/report.hpp"
#include "tests/sim/svg_text.hpp"

namespace preflight::faults {
namespace {

using sim::SvgText;

// Numeric texts centred under an axis, grouped by their baseline.
std::map<double, std::vector<double>> numeric_rows(const std::vector<SvgText>& texts) {
  std::map<double, std::vector<double>> rows;
  for (const SvgText& t : texts) {
    char* end = nullptr;
    const double v = std::strtod(t.body.c_str(), &end);
    if (!t.body.empty() && *end == '\0' && t.anchor == "middle") rows[t.y].push_back(v);
  }
  return rows;
}

bool has_text(const std::vector<SvgText>& texts, const std::string& what) {
  for (const SvgText& t : texts)
    if (t.body.find(what) != std::string::npos) return true;
  return false;
}

McSummary run(const std::string& preset, RunSpec spec, int64_t trials) {
  FaultModel m = load_fault_model(preset);
  if (m.checkpoint.size_bytes == 0) m.checkpoint.size_bytes = 5.5e12;
  McOptions o;
  o.trials = trials;
  o.threads = 2;
  return run_monte_carlo(m, spec, o);
}

void expect_axes(const std::vector<SvgText>& texts, double first_lo, double first_hi) {
  const std::map<double, std::vector<double>> rows = numeric_rows(texts);
  // Histogram x axis, timeline day axis, cumulative day axis.
  ASSERT_GE(rows.size(), 3u);
  for (const auto& [y, ticks] : rows) {
    SCOPED_TRACE(y);
    ASSERT_GE(ticks.size(), 3u);
    for (size_t i = 1; i < ticks.size(); ++i) EXPECT_GT(ticks[i], ticks[i - 1]);
  }
  // The first row is the histogram's: its ticks lie within the plotted samples' range.
  const std::vector<double>& h = rows.begin()->second;
  EXPECT_GE(h.front(), first_lo - 1e-9 * std::abs(first_lo));
  EXPECT_LE(h.back(), first_hi + 1e-9 * std::abs(first_hi));
  EXPECT_TRUE(has_text(texts, "wall-clock time since the start of the run (days)"));
}

TEST(FaultsSvg, FixedWindowPlotsGoodputInPercent) {
  RunSpec spec;
  spec.max_wall_s = 30 * 86400.0;
  spec.work_s = spec.max_wall_s;
  const McSummary s = run("deepseek-v3-2048", spec, 200);
  FaultModel m = load_fault_model("deepseek-v3-2048");
  m.checkpoint.size_bytes = 5.5e12;
  const std::string svg = render_svg(m, s);
  sim::expect_text_inside_and_apart(svg);
  const std::vector<SvgText> texts = sim::svg_texts(svg);
  EXPECT_TRUE(has_text(texts, "Goodput per run")) << svg.substr(0, 600);
  EXPECT_TRUE(has_text(texts, "goodput of the run (%)"));
  EXPECT_FALSE(has_text(texts, "Wall-clock days per run"));
  // Every run lasts exactly the window (its work is the window itself and a run stops at
  // the window's end even during an outage): a day histogram would be one bar at 30.
  EXPECT_EQ(s.wall_days.min, 30.0);
  EXPECT_EQ(s.wall_days.max, 30.0);
  ASSERT_LT(s.goodput.min, s.goodput.max);
  expect_axes(texts, 100 * s.goodput.min, 100 * s.goodput.max);
  EXPECT_LE(numeric_rows(texts).begin()->second.back(), 100.0);
}

TEST(FaultsSvg, TokenBudgetPlotsDays) {
  RunSpec spec;
  spec.work_s = 40 * 86400.0;
  for (const char* preset : {"deepseek-v3-2048", "llama3-54d"}) {
    SCOPED_TRACE(preset);
    const McSummary s = run(preset, spec, 100);
    FaultModel m = load_fault_model(preset);
    if (m.checkpoint.size_bytes == 0) m.checkpoint.size_bytes = 5.5e12;
    const std::string svg = render_svg(m, s);
    sim::expect_text_inside_and_apart(svg);
    const std::vector<SvgText> texts = sim::svg_texts(svg);
    EXPECT_TRUE(has_text(texts, "Wall-clock days per run"));
    EXPECT_TRUE(has_text(texts, "wall-clock time to finish (days)"));
    expect_axes(texts, s.wall_days.min, s.wall_days.max);
  }
}

}  // namespace
}  // namespace preflight::faults
