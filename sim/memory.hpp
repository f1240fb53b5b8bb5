// Memory per pipeline rank: weights, gradients and optimizer state per ZeRO stage and
// precision, activations held as the schedule dictates, communication buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"
#include "sim/api.hpp"
#include "sim/schedule.hpp"

namespace preflight::sim {

// Parameters of one model stage, split by how they are sharded.
struct StageParams {
  double dense = 0;   // replicated over dp (÷ tp inside a replica)
  double expert = 0;  // routed experts, split over ep (÷ tp), replicated over expert_dp
};

std::vector<StageParams> stage_parameters(const ModelConfig& model, const ResolvedLayout& layout);

// Activation bytes one block leaves on one GPU for its backward, per token of the
// micro-batch (the derivation is in memory.cpp and docs/SIMULATOR.md).
double block_activation_bytes_per_token(const ModelConfig& model, const LayoutConfig& layout, int64_t hidden_split,
                                        int64_t layer);

// Activation bytes one micro-batch leaves on a GPU for the backward of model stage s.
double stage_activation_bytes(const ModelConfig& model, const ResolvedLayout& layout, int64_t stage);

// Parameters one GPU of `rank` holds (before ZeRO sharding).
struct RankParams {
  double dense = 0;
  double expert = 0;
  double total() const { return dense + expert; }
};
RankParams rank_parameters(const std::vector<StageParams>& stages, const PipelineSchedule& schedule,
                           const ResolvedLayout& layout, int32_t rank);

std::vector<StageMemory> memory_per_rank(const ModelConfig& model, const ClusterConfig& cluster,
                                         const ResolvedLayout& layout, const PipelineSchedule& schedule,
                                         double p2p_bytes);

}  // namespace preflight::sim
