// Renderings of a simulated step: a Chrome/Perfetto trace (JSON, one track per rank
// and stream) and an SVG pipeline diagram (coloured F/B/W blocks per rank over time).
#pragma once

#include <string>

#include "sim/api.hpp"

namespace preflight::sim {

// Needs a report made with SimOptions::keep_spans.
std::string chrome_trace_json(const SimReport& report);
std::string pipeline_svg(const SimReport& report);

}  // namespace preflight::sim
