// Cost model: the time one pipeline op (F, B, W or B+W of one model stage, one
// micro-batch) takes on one GPU, and the two-stream timing of DeepSeek's overlapped
// F&B pair. Built on reference/core/accounting.hpp so that the simulator and
// `preflight model` count the same FLOPs.
//
// Per block ("unit") and pass, compute time = GEMM FLOPs / (peak · efficiency · SM
// share) + attention-core FLOPs / (BF16 peak · attention efficiency · SM share) +
// element-wise bytes / (HBM bandwidth · memory efficiency). Communication per unit:
// MoE dispatch/combine (all-to-all, node-limited, IB then NVLink), TP collectives.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "reference/core/model_config.hpp"
#include "sim/config.hpp"
#include "sim/schedule.hpp"

namespace preflight::sim {

// Communication kinds reported separately.
enum CommKind : int { kDispatch = 0, kCombine = 1, kTensorParallel = 2, kNumCommKinds = 3 };
const char* comm_kind_name(int kind);

// One block (or the embedding, the head + loss, an MTP module) for one micro-batch on
// one GPU, in seconds. "attn" is the first half of a block (attention, or the whole unit
// when it has no MLP), "mlp" the second (dense FFN or router + experts).
struct UnitCost {
  std::string name;
  double attn_f_s = 0, attn_b_s = 0, attn_w_s = 0;
  double mlp_f_s = 0, mlp_b_s = 0, mlp_w_s = 0;
  double recompute_s = 0;     // forward work redone before this unit's B (selective or full)
  double dispatch_f_s = 0, combine_f_s = 0;  // EP all-to-all, forward
  double dispatch_b_s = 0, combine_b_s = 0;  // their backward counterparts
  double tp_s = 0;            // TP collectives around each half, per pass
  double recompute_tp_s = 0;  // TP collectives of a recomputed forward (full recompute)
  // FLOPs per micro-batch on this GPU (for MFU/HFU): model (F+B+W) and recomputed.
  double model_flops = 0, recompute_flops = 0;
};

struct StageCost {
  std::vector<UnitCost> units;  // in forward order
};

// Result of timing one step of a rank's program.
struct StepCost {
  double duration_s = 0;    // compute stream, start to end
  double compute_s = 0;     // compute stream busy
  std::array<double, kNumCommKinds> exposed_s{};  // duration − compute, split by kind
};

// Holds references to the model and the cluster (they must outlive it) and its own copy
// of the resolved layout, so that callers may keep one across layouts (SimCache).
class CostModel {
 public:
  CostModel(const ModelConfig& model, const ClusterConfig& cluster, const ResolvedLayout& layout);

  const StageCost& stage(int32_t s) const { return stages_[s]; }
  int32_t num_stages() const { return static_cast<int32_t>(stages_.size()); }
  // Time of one program step (single op or overlapped pair); cached.
  const StepCost& step(const Step& st);
  // One activation or gradient between pipeline neighbours.
  double p2p_s() const { return p2p_s_; }
  double p2p_bytes() const { return p2p_bytes_; }
  // Rates used (FLOP/s), for the report.
  double gemm_flops_per_s() const { return gemm_rate_; }
  // Per-stage pass times (single ops).
  double op_s(Pass pass, int32_t stage);

 private:
  StepCost time_ops(const Op* ops, int32_t count) const;
  UnitCost block_unit(int64_t layer, bool mtp) const;
  double a2a_s(double bytes_per_token_elem, bool dispatch) const;

  const ModelConfig& model_;
  const ClusterConfig& cluster_;
  const ResolvedLayout layout_;
  double tokens_ = 0;          // tokens per micro-batch ÷ tp: the per-GPU share of every GEMM
  double gemm_rate_ = 0;       // FLOP/s of the block GEMMs (BF16 or FP8)
  double bf16_gemm_rate_ = 0;  // FLOP/s of GEMMs kept in BF16 (router, head)
  double attn_rate_ = 0;       // FLOP/s of the attention core
  double mem_rate_ = 0;        // B/s of element-wise kernels
  double p2p_s_ = 0, p2p_bytes_ = 0;
  std::vector<StageCost> stages_;
  // Step times worked out so far: single ops by (pass, stage), overlapped pairs by
  // (forward stage, backward pass, backward stage).
  std::vector<StepCost> single_cache_;   // [pass · stages + stage]
  std::vector<bool> single_known_;
  std::unordered_map<int64_t, StepCost> pair_cache_;
};

}  // namespace preflight::sim
