// Standard multi-head attention family: MHA / GQA / MQA (Llama, Qwen, Gemma, GPT styles),
// one packed sequence of T tokens. DeepSeek's MLA is in mla.hpp; this file reuses its
// masking, softmax and reduction orders.
// Legend: T = tokens, C = hidden, H = query heads, G = key/value heads (G divides H; MHA:
//         G = H, MQA: G = 1), Dh = head_dim. Query head h reads key/value head g(h) = h / (H/G).
//
// Forward (each line one rounding per element unless it says dot):
//   q = x·Wqᵀ (+bq) (T,H,Dh);  k = x·Wkᵀ (+bk) (T,G,Dh);  v = x·Wvᵀ (+bv) (T,G,Dh)
//       (linear_forward in the run's Precision: fp32, bf16 or fp8; fp8_linear.hpp)
//   qk_norm:  q[t,h,:] = RMSNorm(q[t,h,:]; q_norm), k[t,g,:] = RMSNorm(k[t,g,:]; k_norm)
//             (rmsnorm.hpp over rows of Dh, weights (Dh) shared by all heads), before RoPE
//   rope:     q[t,h,:] and k[t,g,:] rotated over the full Dh at position pos[t], in the
//             chosen RopeLayout (rope.hpp)
//   scale = float(Dh^-0.5 · mscale²)           (double, rounded once; mscale = YaRN's, else 1)
//   r[t,h,s] = dot_k128(q[t,h,:], k[s,g(h),:], Dh) · scale
//   softcap (c > 0):  th = tanh(r / c);  l = c · th          (else l = r)   -- before masking
//   allowed s: s ∈ [s0(t), t] (causal, within t's document; documents are contiguous runs)
//   m = row_max(l); e_s = exp(l_s − m); Z = row_sum(e); p_s = e_s / Z
//   max_logit[h] = row_max over t of m(t, h)   (after scale and soft-cap, allowed keys only)
//   o[t,h,:] = dot_k128 over s ∈ [s0(t), t] ascending of p_s · v[s,g(h),:]
//   output gate:  a[t,h] = x·Wgateᵀ (fp32 matmul, T×H);  gate = sigmoid(a);
//                 o[t,h,e] = o[t,h,e] · gate[t,h]
//   out = o·Woᵀ (+bo)                               (linear_forward in the run's Precision)
//
// Backward (gradients ACCUMULATED into dx and dw; the order below is the definition):
//   dO = dout·Wo (+ dWo, dbo);   gate: dA[t,h] = dot_k128(dO[t,h,:], o_pre[t,h,:], Dh) ·
//       (gate · sigmoid(−a)),  dO = dO · gate   (o_pre: the ungated output)
//   dp[s] = dot_k128(dO[t,h,:], v[s,g,:], Dh);  delta = row_dot(p, dp);
//   dl = p·(dp − delta);  softcap: dl = dl·(1 − th·th);  dS = dl · scale
//   dq[t,h,:] = dot_k128 over s ∈ [s0,t] of dS·k[s,g,:]
//   dk[s,g,:] = Σ over the heads h of group g, ascending, from +0 (plain adds) of
//               dot_k128 over queries u ∈ [s, last of doc] ascending of dS[h,u,s]·q[u,h,:];
//   dv likewise with p and dO.   Then inverse RoPE of dq, dk; qk-norm backward (rmsnorm.hpp;
//   its weight gradient sums rows (t,h) in row order); then dx accumulates the q, k, v
//   projections' dgrad in that order, and last the gate's.
//
// RoPE layouts (the SAME tables, rope.hpp; pair i uses freq_i = theta^(−2i/Dh)):
//   interleaved: pairs (2i, 2i+1) — DeepSeek (MLA presets, the official inference code).
//   half:        pairs (i, i + Dh/2) — "rotate_half", the Hugging Face Llama layout; the
//                GQA presets (llama3-*) use it, so HF Llama checkpoints load unpermuted.
//   Rotation in both: y0 = x0·c − x1·s, y1 = x0·s + x1·c;  backward d0 = g0·c + g1·s,
//   d1 = g1·c − g0·s.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/rope.hpp"

namespace preflight::ref {


struct GqaDims {
  int64_t T, C, H, G, Dh;
  static GqaDims from(const ModelConfig& config, int64_t T);
};

struct GqaOptions {
  bool rope = true;                          // rotary on q, k (false: learned absolute positions)
  RopeLayout rope_layout = RopeLayout::half;
  bool qk_norm = false;                      // RMSNorm per head on q and k, before RoPE
  bool output_gate = false;                  // per-head sigmoid gate on the attention output
  bool bias = false;                         // q/k/v/o biases (GPT)
  float softcap = 0.0f;                      // c of c·tanh(logit/c); 0 = off
  float eps = 1e-6f;                         // qk-norm epsilon
  LinearPrecision precision;                 // q/k/v/o projections (the gate stays fp32)
  // rope = (position == rope), layout half (the Llama-family presets), the rest from the
  // config's fields (qk_norm, attention_output_gate, attention_bias, attn_logit_softcapping,
  // rms_norm_eps). The precision is left fp32: the run sets it.
  static GqaOptions from(const ModelConfig& config);
};

// Parameter pointers (one layer); the same struct holds gradients. Absent tensors are null.
struct GqaWeights {
  float* wq = nullptr;      // (H·Dh,C)
  float* wk = nullptr;      // (G·Dh,C)
  float* wv = nullptr;      // (G·Dh,C)
  float* wo = nullptr;      // (C,H·Dh)
  float* bq = nullptr;      // (H·Dh)      bias
  float* bk = nullptr;      // (G·Dh)      bias
  float* bv = nullptr;      // (G·Dh)      bias
  float* bo = nullptr;      // (C)         bias
  float* q_norm = nullptr;  // (Dh)        qk_norm
  float* k_norm = nullptr;  // (Dh)        qk_norm
  float* w_gate = nullptr;  // (H,C)       output_gate
};
// Sizes of each tensor in GqaWeights order (0 when absent), for allocation.
std::vector<int64_t> gqa_weight_sizes(const GqaDims& d, const GqaOptions& opt);
// Points every tensor of `w` into `flat` (one allocation, in GqaWeights order).
GqaWeights gqa_weights_view(float* flat, const GqaDims& d, const GqaOptions& opt);

// Everything backward needs.
struct GqaCache {
  std::vector<float> q_raw, k_raw;    // (T,H,Dh), (T,G,Dh) projections before qk-norm (qk_norm)
  std::vector<float> q_rstd, k_rstd;  // (T·H), (T·G)                                   (qk_norm)
  std::vector<float> q, k, v;         // (T,H,Dh), (T,G,Dh), (T,G,Dh) as the softmax sees them
  std::vector<float> th;              // (H,T,T) tanh(r/c)                                (softcap)
  std::vector<float> p;               // (H,T,T) probabilities (0 outside the allowed range)
  std::vector<float> o_pre;           // (T,H,Dh) ungated attention output            (output_gate)
  std::vector<float> gate_logit, gate;  // (T,H) each                                   (output_gate)
  std::vector<float> o;               // (T,H,Dh) the input of Wo
  std::vector<int64_t> s0;            // (T) first allowed key position
  std::vector<float> max_logit;       // (H) max over t and allowed s of l[t,h,s] (QK-Clip)
};

// doc (T): document id per token, non-decreasing (null = one document); pos (T): RoPE
// positions (null = 0..T-1, or restarting at 0 in each document when doc is given). The rope
// table must have dim == Dh when opt.rope.
// Throws preflight::Error when dims, options, rope table and weights do not fit together
// (shared with the CUDA path, which validates the same arguments on the host).
void gqa_check_arguments(const GqaDims& d, const GqaOptions& o, const RopeTable& rope, const GqaWeights& w);

void gqa_forward(float* out, GqaCache& cache, const float* x, const GqaWeights& w, const int32_t* doc,
                 const int32_t* pos, const RopeTable& rope, const GqaOptions& opt, const GqaDims& d);
// Gradients accumulated into dx (T,C) and dw (same layout as w).
void gqa_backward(float* dx, const GqaWeights& dw, const float* dout, const GqaCache& cache, const float* x,
                  const GqaWeights& w, const int32_t* doc, const int32_t* pos, const RopeTable& rope,
                  const GqaOptions& opt, const GqaDims& d);

// float(Dh^-0.5 · mscale²), computed in double, rounded once.
float gqa_softmax_scale(const GqaDims& d, const RopeTable& rope);

}  // namespace preflight::ref
