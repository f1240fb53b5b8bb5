// Layout planner: enumerate parallel layouts for a model, a cluster and a global batch,
// simulate each, drop those that violate a constraint or do not fit, rank by step time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/api.hpp"

namespace preflight::sim {

struct PlanOptions {
  int64_t global_batch_size = 0;  // sequences per step
  int64_t seq_len = 0;            // 0: the model's max_position_embeddings
  size_t top = 10;
  std::vector<int64_t> pp_values;  // pipeline sizes to try; empty: 1, 2, 4, 8, 16, 32
};

struct PlanEntry {
  LayoutConfig layout;
  SimReport report;
};

// Candidates rejected by one constraint: the constraint's message with every number
// replaced by N (so "global_batch_size = 7 is not a multiple of micro_batch_size·dp = 2048"
// and "... = 4096" count together), how many, and the first one in full.
struct Rejection {
  std::string constraint;
  int64_t count = 0;
  std::string example_layout;
  std::string example_message;
};

struct PlanResult {
  int64_t enumerated = 0;   // candidate layouts
  int64_t invalid = 0;      // rejected by a constraint (divisibility, micro-batches, ...)
  int64_t out_of_memory = 0;
  int64_t fit = 0;          // enumerated = invalid + out_of_memory + fit
  std::vector<Rejection> rejections;  // why the invalid ones were invalid, most frequent first
  // The out-of-memory candidate that came closest to fitting (peak rank / capacity).
  std::string closest_oom_layout;
  double closest_oom_peak_bytes = 0, closest_oom_capacity_bytes = 0;
  std::vector<PlanEntry> best;  // fitting layouts, fastest first, at most `top`
};

// Stage assignment for layers that do not divide evenly: the remainder goes to the
// middle stages, since the first holds the embedding and the last the head (and MTP).
std::vector<int64_t> balanced_stage_layers(int64_t layers, int64_t stages);

PlanResult plan(const ModelConfig& model, const ClusterConfig& cluster, const PlanOptions& options);

}  // namespace preflight::sim
