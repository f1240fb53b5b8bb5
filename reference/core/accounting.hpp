// Exact parameter and FLOP accounting for a ModelConfig. Every count is an integer
// number of elements (parameters) or floating-point operations; a multiply-add is 2.
//
// Conventions (docs/CONFIG.md, "Accounting"):
//   * Parameters include every weight, bias, norm vector and the router's selection bias.
//   * "Activated" counts what one token touches in a forward pass: all dense parts,
//     top-k routed experts, the shared experts, the router. Embedding and head count
//     fully in both (as DeepSeek and Llama report them).
//   * GEMM FLOPs = 2 × (activated matrix parameters) per token, plus the router GEMM.
//   * Attention core (QKᵀ and PV) is counted separately, causal: a token at position i
//     (1-based) attends to i keys, so per token the average context is (s + 1) / 2.
//   * Backward = input gradient + weight gradient = 2 × forward for GEMMs; the
//     attention core backward (dQ, dK, dV, dP) is 2 × its forward.
//   * Elementwise work (norms, softmax, activations, RoPE) is not counted.
//   * MTP is reported separately and is not part of the main-model totals.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/core/model_config.hpp"

namespace preflight {

// Exact int64 arithmetic that throws preflight::Error instead of wrapping: the counts of
// an absurd config (validate() bounds them afterwards) must never overflow silently.
[[noreturn]] void parameter_count_overflow();
inline int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) parameter_count_overflow();
  return r;
}
inline int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) parameter_count_overflow();
  return r;
}
template <typename... Rest>
int64_t checked_mul(int64_t a, int64_t b, Rest... rest) {
  return checked_mul(checked_mul(a, b), rest...);
}

// Parameters of one component: all of them, and those one token activates.
struct ParamCount {
  int64_t total = 0;
  int64_t activated = 0;
  ParamCount& operator+=(const ParamCount& o) {
    total = checked_add(total, o.total);
    activated = checked_add(activated, o.activated);
    return *this;
  }
};

struct ParamBreakdown {
  ParamCount embedding;        // token (+ learned position) embedding
  ParamCount attention;        // projections, biases, attention-internal norms (MLA q/kv norms, QK-norm)
  ParamCount dense_ffn;        // FFN of the dense blocks
  ParamCount routed_experts;   // routed experts of the MoE blocks
  ParamCount shared_experts;   // shared experts of the MoE blocks
  ParamCount router;           // gate matrix + selection bias
  ParamCount norms;            // block pre-norms and the final norm
  ParamCount head;             // LM head (0 when tied)
  ParamCount mtp;              // MTP modules: projections, norms, their blocks (embedding/head shared)

  ParamCount main_model() const;  // everything except MTP
  ParamCount with_mtp() const;    // main model + MTP
  // (name, count) pairs in a fixed print order.
  std::vector<std::pair<std::string, ParamCount>> components() const;
};

// Parameters of one transformer block (index 0-based, MTP blocks not included).
struct BlockParams {
  ParamCount attention;
  ParamCount dense_ffn;
  ParamCount routed_experts;
  ParamCount shared_experts;
  ParamCount router;
  ParamCount norms;
  ParamCount total() const;
};

BlockParams count_block_parameters(const ModelConfig& config, int64_t layer);
ParamBreakdown count_parameters(const ModelConfig& config);

// Forward FLOPs per token of one block at sequence length seq_len, by part.
struct BlockFlops {
  double attention_gemm = 0;  // q/k/v/o projections (MLA: all down/up projections)
  double attention_core = 0;  // QKᵀ and PV, causal average
  double ffn_gemm = 0;        // dense FFN
  double router_gemm = 0;     // gate scores
  double expert_gemm = 0;     // top-k routed + shared experts
  double total() const { return attention_gemm + attention_core + ffn_gemm + router_gemm + expert_gemm; }
};

BlockFlops count_block_flops(const ModelConfig& config, int64_t layer, int64_t seq_len);
// One MTP module (projection + its block + shared head), forward, per token.
BlockFlops count_mtp_block_flops(const ModelConfig& config, int64_t seq_len);

struct FlopCounts {
  int64_t seq_len = 0;
  // Per token, forward pass of the main model.
  double forward_gemm = 0;            // all GEMMs incl. LM head and router
  double forward_attention_core = 0;  // causal QKᵀ + PV
  // Per token, MTP modules (all depths), forward.
  double mtp_forward_gemm = 0;
  double mtp_forward_attention_core = 0;
  double forward() const { return forward_gemm + forward_attention_core; }
  double backward() const { return 2 * forward(); }
  double mtp_forward() const { return mtp_forward_gemm + mtp_forward_attention_core; }
  double mtp_backward() const { return 2 * mtp_forward(); }
  // Forward + backward per token, main model (+ MTP).
  double training() const { return forward() + backward(); }
  double training_with_mtp() const { return training() + mtp_forward() + mtp_backward(); }
};

FlopCounts count_flops(const ModelConfig& config, int64_t seq_len);

}  // namespace preflight
