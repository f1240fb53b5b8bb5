// Reports of a fault Monte Carlo: text table, JSON, and an SVG with the wall-clock
// histogram and the timeline of one sampled run.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"

namespace preflight::faults {

// Where the run's length came from, for the report header.
struct RunOrigin {
  std::string throughput_source;  // "--step-time-s/--tokens-per-step", "simulator", "--train-days", "--wall-days"
  double tokens = 0;               // token budget (0 when unknown)
  double tokens_per_step = 0;
  double step_time_s = 0;
  std::string checkpoint_size_source;  // "faults config" or "model <name>: N params × b bytes"
};

std::string format_text(const FaultModel& model, const McSummary& summary, const RunOrigin& origin,
                        const IntervalSweep* sweep);
nlohmann::json summary_to_json(const FaultModel& model, const McSummary& summary, const RunOrigin& origin,
                               const IntervalSweep* sweep);
std::string render_svg(const FaultModel& model, const McSummary& summary);

// x rounded to 6 significant digits (reports compare equal across compilers and runs).
double round6(double x);

}  // namespace preflight::faults
