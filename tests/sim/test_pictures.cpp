// The pipeline SVG (sim/trace.cpp): every label inside the picture and apart from the
// others, a time axis with ascending round ticks and its unit, chunks / DualPipe
// directions drawn differently with a legend, OOM stated in the title.
#include <gtest/gtest.h>
#include <gtest/gtest-spi.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reference/core/config_io.hpp"
#include "sim/api.hpp"
#include "sim/planner.hpp"
#include "sim/trace.hpp"
#include "sim/units.hpp"
#include "tests/sim/svg_text.hpp"

namespace preflight::sim {
namespace {

SimReport with_spans(const std::string& model, const std::string& cluster, const LayoutConfig& layout) {
  SimOptions o;
  o.keep_spans = true;
  return simulate(load_model_config(model), load_cluster(cluster), layout, o);
}

LayoutConfig deepseek_with(Schedule s) {
  LayoutConfig l = load_layout("deepseek-v3-dualpipe");
  l.schedule = s;
  if (s == Schedule::dualpipev) {
    l.vpp = 2;
    l.stage_layers = balanced_stage_layers(61, 32);
  }
  return l;
}

struct Case {
  const char* name;
  std::string model, cluster;
  LayoutConfig layout;
  const char* legend;  // the legend entry naming the second chunk / direction ("" if none)
};

std::vector<Case> cases() {
  return {{"dualpipe", "deepseek-v3-671b", "h800-2048", load_layout("deepseek-v3-dualpipe"), "direction 1"},
          {"dualpipev", "deepseek-v3-671b", "h800-2048", deepseek_with(Schedule::dualpipev), "V leg 1"},
          {"1f1b", "deepseek-v3-671b", "h800-2048", deepseek_with(Schedule::one_f_one_b), ""},
          {"zb-h1", "deepseek-v3-671b", "h800-2048", deepseek_with(Schedule::zb_h1), ""},
          {"interleaved", "llama3-405b", "h100-8192", load_layout("llama3-405b-tp8-pp16"), "chunk 1"}};
}

// The <g> groups of the spans, in r.spans order: the fills each one uses, in drawing
// order (an overlapped pair draws its top half, F, before its bottom half).
std::vector<std::vector<std::string>> span_fills(const std::string& svg) {
  std::vector<std::vector<std::string>> out;
  for (size_t p = 0; (p = svg.find("<g>", p)) != std::string::npos;) {
    const size_t end = svg.find("</g>", p);
    std::vector<std::string> fills;
    const std::string g = svg.substr(p, end - p);
    for (size_t q = 0; (q = g.find(" fill=\"", q)) != std::string::npos;) {
      q += 7;
      const std::string f = g.substr(q, g.find('"', q) - q);
      if (f != "none") fills.push_back(f);
    }
    out.push_back(fills);
    p = end;
  }
  return out;
}

TEST(PipelineSvg, LabelsInsideAndApartWithATimeAxis) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const SimReport r = with_spans(c.model, c.cluster, c.layout);
    const std::string svg = pipeline_svg(r);
    expect_text_inside_and_apart(svg);
    // Tick labels: the numeric texts on the axis row (the row just below the last rank).
    const std::vector<SvgText> texts = svg_texts(svg);
    std::map<double, std::vector<double>> numeric_by_y;
    for (const SvgText& t : texts) {
      char* end = nullptr;
      const double v = std::strtod(t.body.c_str(), &end);
      if (!t.body.empty() && *end == '\0' && t.anchor == "middle") numeric_by_y[t.y].push_back(v);
    }
    ASSERT_FALSE(numeric_by_y.empty());
    const std::vector<double>& ticks = numeric_by_y.rbegin()->second;
    ASSERT_GE(ticks.size(), 4u);
    EXPECT_EQ(ticks.front(), 0.0);
    for (size_t i = 1; i < ticks.size(); ++i) EXPECT_GT(ticks[i], ticks[i - 1]);
    EXPECT_LE(ticks.back(), r.step_time_s * (1 + 1e-9));
    // Equal steps (round numbers): the differences agree to rounding.
    for (size_t i = 2; i < ticks.size(); ++i)
      EXPECT_NEAR(ticks[i] - ticks[i - 1], ticks[1] - ticks[0], 1e-9 * ticks.back());
    bool unit = false;
    for (const SvgText& t : texts) unit |= t.body.find("time within the optimizer step (s)") != std::string::npos;
    EXPECT_TRUE(unit);
  }
}

TEST(PipelineSvg, ChunksAndDirectionsAreDrawnDifferently) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const SimReport r = with_spans(c.model, c.cluster, c.layout);
    const std::string svg = pipeline_svg(r);
    const std::vector<std::vector<std::string>> fills = span_fills(svg);
    ASSERT_EQ(fills.size(), r.spans.size());
    // Same pass and chunk(s): the same fills; same pass, another chunk: different fills.
    std::map<std::tuple<char, int32_t, int32_t>, std::vector<std::string>> seen;
    std::set<int32_t> chunks;
    for (size_t i = 0; i < r.spans.size(); ++i) {
      const Span& s = r.spans[i];
      const auto key = std::make_tuple(s.pass, s.chunk, s.chunk2);
      chunks.insert(s.chunk);
      const auto [it, fresh] = seen.emplace(key, fills[i]);
      if (!fresh) {
        EXPECT_EQ(it->second, fills[i]) << s.pass << " chunk " << s.chunk;
      }
    }
    for (const auto& [a, fa] : seen) {
      for (const auto& [b, fb] : seen) {
        if (std::get<0>(a) != std::get<0>(b) || a == b) continue;
        EXPECT_NE(fa, fb) << std::get<0>(a) << ": chunks " << std::get<1>(a) << "/" << std::get<2>(a) << " vs "
                          << std::get<1>(b) << "/" << std::get<2>(b);
      }
    }
    if (*c.legend) {
      EXPECT_GE(chunks.size(), 2u) << "the schedule should use two chunks / directions";
      bool in_legend = false;
      for (const SvgText& t : svg_texts(svg)) in_legend |= t.body.find(c.legend) != std::string::npos;
      EXPECT_TRUE(in_legend) << c.legend;
    } else {
      EXPECT_EQ(chunks, (std::set<int32_t>{-1}));
    }
  }
}

TEST(PipelineSvg, OutOfMemoryInTheTitle) {
  LayoutConfig l = load_layout("deepseek-v3-dualpipe");
  l.schedule = Schedule::gpipe;  // every micro-batch's activations at once
  const SimReport r = with_spans("deepseek-v3-671b", "h800-2048", l);
  ASSERT_FALSE(r.fits);
  const std::string svg = pipeline_svg(r);
  const std::vector<SvgText> texts = svg_texts(svg);
  ASSERT_FALSE(texts.empty());
  EXPECT_NE(texts.front().body.find("OUT OF MEMORY on rank"), std::string::npos) << texts.front().body;
  expect_text_inside_and_apart(svg);
  const SimReport ok = with_spans("deepseek-v3-671b", "h800-2048", load_layout("deepseek-v3-dualpipe"));
  EXPECT_EQ(svg_texts(pipeline_svg(ok)).front().body.find("OUT OF MEMORY"), std::string::npos);
}

// The checker itself catches a cut label and two overlapping ones.
TEST(SvgTextCheck, CatchesCutAndOverlappingLabels) {
  const std::string cut =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\" font-size=\"11\">"
      "<text x=\"60\" y=\"20\">a label too long to fit</text></svg>";
  EXPECT_NONFATAL_FAILURE(expect_text_inside_and_apart(cut), "cut at the right");
  const std::string overlap =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"50\" font-size=\"11\">"
      "<text x=\"100\" y=\"20\" text-anchor=\"middle\">1000</text>"
      "<text x=\"118\" y=\"20\" text-anchor=\"middle\">1500</text></svg>";
  EXPECT_NONFATAL_FAILURE(expect_text_inside_and_apart(overlap), "labels overlap");
  const std::string apart =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"50\" font-size=\"11\">"
      "<text x=\"100\" y=\"20\" text-anchor=\"middle\">1000</text>"
      "<text x=\"130\" y=\"20\" text-anchor=\"middle\">1500</text></svg>";
  expect_text_inside_and_apart(apart);
}

}  // namespace
}  // namespace preflight::sim

namespace preflight::sim {
namespace {

// nice_ticks: round, ascending, inside [lo, hi], and about `target` of them: the 1-2-5
// steps differ by at most 2.5x, so the closest count is within a factor 2.5 (+1 for the
// ends) of the target.
TEST(NiceTicks, RoundInsideAndAboutTheTarget) {
  // The goodput histogram that had two ticks: 85.5-98.9 % with target 6 (step 5 gave 90, 95).
  EXPECT_EQ(nice_ticks(85.5, 98.9, 6), (std::vector<double>{86, 88, 90, 92, 94, 96, 98}));
  for (double lo : {0.0, 0.37, 12.5, 85.5, -3.0})
    for (double width : {0.013, 1.0, 7.7, 13.4, 99.0, 1234.5, 6.1e5})
      for (int target : {4, 6, 10}) {
        const std::vector<double> t = nice_ticks(lo, lo + width, target);
        SCOPED_TRACE(::testing::Message() << lo << " + " << width << ", target " << target);
        ASSERT_GE(t.size(), 2u);
        EXPECT_GE(static_cast<double>(t.size()), target / 2.5 - 1);
        EXPECT_LE(static_cast<double>(t.size()), target * 2.5 + 1);
        const double step = t[1] - t[0];
        const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
        EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 || std::fabs(mantissa - 5) < 1e-6)
            << step;
        EXPECT_GE(t.front(), lo - 1e-9 * width);
        EXPECT_LE(t.back(), lo + width + 1e-9 * width);
        for (size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], step, 1e-9 * width);
      }
}

}  // namespace
}  // namespace preflight::sim
