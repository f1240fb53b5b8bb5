// Mixture-of-experts block (DeepSeek-V3): router (router.hpp), dispatch to routed SwiGLU
// experts, combine, shared expert, balance losses.
// Legend: T = tokens, C = hidden, E = routed experts, K = top-k, I = expert width
//         (moe_intermediate_size), S = shared width (n_shared_experts · I; 0 = none),
//         N = T·K dispatched rows.
//
// Forward:
//   router_forward → sel (T,K) ascending expert index, w (T,K)
//   dispatch: rows grouped by expert e = 0..E−1, inside an expert in ascending token order;
//             xe[row] = x[t] (a copy); counts[e] = rows of expert e
//   expert e: oe[rows of e] = SwiGLU_e(xe[rows of e])    (swiglu.hpp; every row its own chain,
//             so a token's expert output does not depend on which other tokens share the expert)
//   combine:  r[t,c] = dot_k128 over j = 0..K−1 (ascending expert index) of w[t,j]·o[t,j,c]
//             (one fma chain from +0: K ≤ 128)
//   shared:   sh = SwiGLU_shared(x)  (the n_shared experts as one SwiGLU of width S, as DeepSeek)
//   y[t,c] = r[t,c] + sh[t,c]       (S = 0: y = r)
// So a token's output is a function of that token's x alone: bit-identical whether the token is
// processed alone or in any batch (tested).
//
// Backward (dx accumulated once per element at the end; a local buffer collects, in order):
//   dw[t,j] = dot_k128(dy[t,:], o[t,j,:], C)
//   do[t,j,c] = w[t,j] · dy[t,c]  → expert e backward over its rows (swiglu_backward, token order)
//   dxl[t] = ((+0 + dxe[t,j=0]) + dxe[t,1]) + … in ascending expert index
//   dxl += shared expert backward (dy)
//   ds  = router_weights_backward(dw); then += sequence-wise balance loss; then += classic loss
//   dl  = router_scores_backward(ds); then += router z-loss; dxl += dl·Wg (dWg += dlᵀ·x)
//   dx  = dx + dxl
// Expert weight gradients are sums over that expert's rows in ascending token order.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/router.hpp"

namespace preflight::ref {

struct MoeDims {
  RouterDims r;    // T, C, E, K, groups, scoring
  int64_t I = 0;   // routed expert width
  int64_t S = 0;   // shared width (0 = no shared expert)
  LinearPrecision precision{};  // routed and shared experts' GEMMs (the gate stays fp32)
  static MoeDims from(const ModelConfig& config, int64_t T);
};

// Parameter pointers of one MoE block, one flat allocation in this order (the same struct
// holds gradients; bias gets none).
struct MoeWeights {
  float* gate = nullptr;     // (E,C)
  float* bias = nullptr;     // (E)  selection bias, updated by router_bias_update only
  float* experts = nullptr;  // (E, 3·I·C): expert e = [w1 (I,C) | w3 (I,C) | w2 (C,I)]
  float* shared_w1 = nullptr;  // (S,C)  S > 0
  float* shared_w3 = nullptr;  // (S,C)
  float* shared_w2 = nullptr;  // (C,S)
  float* w1(int64_t e, const MoeDims& d) const { return experts + e * 3 * d.I * d.r.C; }
  float* w3(int64_t e, const MoeDims& d) const { return w1(e, d) + d.I * d.r.C; }
  float* w2(int64_t e, const MoeDims& d) const { return w1(e, d) + 2 * d.I * d.r.C; }
};
std::vector<int64_t> moe_weight_sizes(const MoeDims& d);  // in MoeWeights order
MoeWeights moe_weights_view(float* flat, const MoeDims& d);

// Loss options of the block (all losses enter the total loss with weight 1).
struct MoeLossOptions {
  int64_t seq_len = 0;      // tokens per sequence for the sequence-wise loss (0 = T)
  float seq_aux_alpha = 0;  // DeepSeek-V3 sequence-wise balance loss α (0 = off)
  float lb_coef = 0;        // classic load-balancing loss over all T tokens (0 = off)
  float z_coef = 0;         // router z-loss (0 = off)
};

struct MoeLosses {
  float seq_aux = 0, lb = 0, z = 0;
};

struct MoeCache {
  RouterCache router;
  std::vector<int64_t> counts;   // (E)   rows per expert (the load)
  std::vector<int64_t> offsets;  // (E+1) first row of each expert
  std::vector<int64_t> row_of;   // (T,K) dispatch row of (t, j)
  std::vector<int64_t> token_of; // (N)   token of each row
  std::vector<float> xe;         // (N,C) dispatched inputs
  std::vector<float> h1, h3, act;  // (N,I) expert caches
  std::vector<float> o;          // (T,K,C) expert outputs in combine order
  std::vector<float> sh1, sh3, sact;  // (T,S) shared expert caches
  MoeLosses losses;
};

void moe_forward(float* out,            // (T,C)
                 MoeCache& cache,
                 const float* x,        // (T,C)
                 const MoeWeights& w, const MoeLossOptions& opt, const MoeDims& d);

// dx (T,C) and dw accumulated; the balance/z losses' gradients use upstream weight dloss_aux.
void moe_backward(float* dx, const MoeWeights& dw, const float* dout, const MoeCache& cache, const float* x,
                  const MoeWeights& w, const MoeLossOptions& opt, float dloss_aux, const MoeDims& d);

}  // namespace preflight::ref
