// MoE router (DeepSeek-V3 gate), the balance losses and the aux-loss-free bias update.
// Legend: T = tokens, C = hidden, E = routed experts, K = experts per token (top-k),
//         G = expert groups, TG = groups kept per token (topk_group), Eg = E/G.
//
// Forward, per token t (every line one rounding unless stated):
//   l[e]  = dot_k128(x[t,:], Wg[e,:], C)                          gate GEMM (matmul convention)
//   s[e]  = sigmoid(l[e])                                         scoring_func = sigmoid
//         | m = row_max(l); p = exp(l − m); Z = row_sum(p); s = p / Z      (softmax)
//   b[e]  = s[e] + bias[e]   (router_bias; else b = s)            SELECTION ONLY
//   groups (G > 1 and TG < G):
//     gs[g] = b[i0] + b[i1], {i0, i1} = topk(b[g·Eg .. g·Eg+Eg), 2)   (the top-2 SUM; Eg = 1: b[i0])
//     keep  = topk(gs, TG)                                        ties to the lower group index
//     b[e]  = −inf for every e outside a kept group               (−inf, never 0)
//   sel   = topk(b, K)                                            ties to the lower expert index,
//                                                                 then listed in ASCENDING expert
//                                                                 index: that order is the order of
//                                                                 every later sum over the K experts
//   w_j   = s[sel_j]                                              the UNBIASED score
//   norm_topk_prob:  σ = row_sum(w, K) (32-lane row reduction, ascending expert order, nothing
//                    added: no 1e-20 as in Megatron); w_j = (w_j / σ) · route_scale
//   otherwise:       w_j = w_j · route_scale
// If all K selected scores underflow to 0, σ = 0 and the weights are NaN (as in the official
// code); the model's finite check reports it.
//
// Backward (dw: (T,K) gradient of the weights):
//   norm_topk_prob:  ŵ_j = w_j/σ recomputed; dŵ_j = dw_j · route_scale;
//                    δ = row_dot(dŵ, ŵ, K); ds[sel_j] = (dŵ_j − δ) / σ
//   otherwise:       ds[sel_j] = dw_j · route_scale
//   (+ balance-loss gradients, added in the order the caller calls them)
//   sigmoid:  dl[e] = ds[e] · (s[e] · (1 − s[e]))
//   softmax:  δ = row_dot(s, ds, E); dl[e] = s[e] · (ds[e] − δ)
//   (+ router z-loss gradient)   then dx += dl·Wg, dWg += dlᵀ·x (matmul_backward).
// The bias gets no gradient: selection is piecewise constant.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"

namespace preflight::ref {

struct RouterDims {
  int64_t T = 0, C = 0, E = 0, K = 0, G = 1, TG = 1;
  ScoringFunc score = ScoringFunc::sigmoid;
  bool norm_topk = true;     // normalise the K weights to sum 1 before the scale
  float route_scale = 1.0f;  // routed_scaling_factor, rounded to fp32 once
  bool use_bias = true;      // add the selection bias (e_score_correction_bias)
  static RouterDims from(const ModelConfig& config, int64_t T);
};
// Throws naming the first inconsistent dimension.
void check_router_dims(const RouterDims& d);

struct RouterCache {
  std::vector<float> logits;   // (T,E) gate GEMM output
  std::vector<float> scores;   // (T,E) unbiased scores s
  std::vector<int32_t> idx;    // (T,K) selected experts, ascending expert index
  std::vector<float> weights;  // (T,K) combine weights, same order
  std::vector<float> wsum;     // (T)   σ (norm_topk) or 1
};

// Selection and weights of ONE token from its scores (E) and bias (E, or null): idx (K),
// weights (K), *wsum. Exposed so tests can feed hand-built scores.
void router_select(int32_t* idx, float* weights, float* wsum, const float* scores, const float* bias,
                   const RouterDims& d);

void router_forward(RouterCache& cache, const float* x,  // (T,C)
                    const float* gate,                   // (E,C)
                    const float* bias,                   // (E) or null
                    const RouterDims& d);

// ds (T,E) += gradient of the scores from the weights' gradient dw (T,K).
void router_weights_backward(float* ds, const float* dw, const RouterCache& cache, const RouterDims& d);
// dl (T,E) += gradient of the logits from ds (T,E) through the score function.
void router_scores_backward(float* dl, const float* ds, const RouterCache& cache, const RouterDims& d);

// Expert loads: counts[e] = number of (token, slot) assignments to expert e.
void router_counts(int64_t* counts, const RouterCache& cache, const RouterDims& d);

// Balance loss on groups of `group_len` consecutive tokens (T % group_len == 0), averaged
// over the T/group_len groups:
//   s'[t,i]  = s[t,i] / σ_t, σ_t = row_sum(s[t,:], E)    (sigmoid; softmax: s' = s)
//   cnt_i    = assignments to expert i inside the group (exact integer, as float)
//   P_i      = dot_k128 over the group's tokens (ascending) of s'[t,i]·1
//   L_group  = dot_k128(cnt, P, E) · k,  k = float(coef · E / (K · Tg² · groups)) (double, once)
//   L        = row_sum(L_group over groups)
// which is coef · (mean over groups of Σ_i f_i·P_i) with f_i = E·cnt_i/(K·Tg) and
// P_i = (1/Tg)·Σ_t s'[t,i]; so
//   group_len = sequence length: DeepSeek-V3's sequence-wise balance loss (coef = α);
//   group_len = T:               the classic Switch/GShard load-balancing loss
//                                (coef·E·Σ_i f_i·P_i with f_i the fraction of assignments).
float balance_loss_forward(const RouterCache& cache, int64_t group_len, float coef, const RouterDims& d);
// ds (T,E) += dloss · ∂L/∂s:  g_i = (cnt_i · k) · dloss for every token of the group;
//   sigmoid: δ = row_dot(g, s'_t, E); ds[t,i] += (g_i − δ) / σ_t;   softmax: ds[t,i] += g_i.
// (The counts are piecewise constant: no gradient.)
void balance_loss_backward(float* ds, const RouterCache& cache, int64_t group_len, float coef, float dloss,
                           const RouterDims& d);

// Router z-loss (ST-MoE): lse_t = m + log(row_sum(exp(l − m))), m = row_max(l);
//   L = dot_k128(lse, lse, T) · float(coef / T).
float router_z_loss_forward(const RouterCache& cache, float coef, const RouterDims& d);
// dl[t,e] += a_t · (exp(l[t,e] − m_t) / Z_t),  a_t = (float(2·coef/T) · dloss) · lse_t.
void router_z_loss_backward(float* dl, const RouterCache& cache, float coef, float dloss, const RouterDims& d);

// Aux-loss-free bias update (DeepSeek-V3), exact in integers: with A = Σ counts (= T·K),
//   counts[e]·E < A  (under-loaded): bias[e] = bias[e] + gamma
//   counts[e]·E > A  (over-loaded):  bias[e] = bias[e] − gamma
//   equal: unchanged.  No re-centring of the bias afterwards.
void router_bias_update(float* bias, const int64_t* counts, int64_t E, float gamma);

}  // namespace preflight::ref
