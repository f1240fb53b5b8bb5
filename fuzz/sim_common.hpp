// Simulating a fuzzed layout or cluster the way `preflight sim` and `preflight plan` do,
// within the time a fuzz input may take. The pipeline simulation's work grows with
// stages × micro-batches (about 2 ms for DeepSeek-V3's 16 × 120 in a Release build), so a
// layout larger than kMaxSimulatedOps is only resolved, not simulated: that skips valid
// but expensive inputs, never a refusal.
#pragma once

#include <cstdint>

#include "reference/core/model_config.hpp"
#include "sim/api.hpp"
#include "sim/config.hpp"

namespace preflight::fuzz {

inline constexpr int64_t kMaxSimulatedOps = 40000;  // stages × micro-batches per simulate()

// resolve_layout, then simulate() as `sim` (all micro-batches) and as `plan` does
// (extrapolated from 4·pp micro-batches), each when it is small enough.
inline void resolve_and_simulate(const ModelConfig& model, const sim::ClusterConfig& cluster,
                                 const sim::LayoutConfig& layout) {
  const sim::ResolvedLayout r = sim::resolve_layout(model, cluster, layout);
  auto small = [](int64_t stages, int64_t microbatches) {
    int64_t ops = 0;
    return !__builtin_mul_overflow(stages, microbatches, &ops) && ops <= kMaxSimulatedOps;
  };
  if (small(r.num_stages, r.microbatches)) {
    sim::SimOptions plain;
    plain.keep_spans = true;  // `sim --trace/--svg`
    const sim::SimReport rep = sim::simulate(model, cluster, layout, plain);
    (void)rep.to_json();
    (void)sim::days_for_tokens(rep, 14.8e12);
  }
  int64_t planned = 0;  // the planner's micro-batch cap, 4·pp
  if (!__builtin_mul_overflow(layout.pp, int64_t{4}, &planned) && small(r.num_stages, 2 * planned + 4)) {
    sim::SimOptions plan;
    plan.max_simulated_microbatches = planned;
    plan.stop_if_out_of_memory = true;
    (void)sim::simulate(model, cluster, layout, plan).to_json();
  }
}

}  // namespace preflight::fuzz
