// Multi-head latent attention (DeepSeek-V3), one packed sequence of T tokens.
// Legend: T = tokens, C = hidden, H = heads, Rq = q_lora_rank, Rkv = kv_lora_rank,
//         Dn = qk_nope_head_dim, Dr = qk_rope_head_dim, Dv = v_head_dim, D = Dn + Dr.
//
// Naive order (forward and backward):
//   q   = RMSNorm_q(x·Wqaᵀ)·Wqbᵀ   (Rq > 0)   or   x·Wqᵀ   (Rq = 0)        (T,H,D)
//   kv  = x·Wkvaᵀ = [c (Rkv) | k_pe (Dr)];  cn = RMSNorm_kv(c)               (T,Rkv+Dr)
//   kvb = cn·Wkvbᵀ = per head [k_nope (Dn) | v (Dv)]                        (T,H,Dn+Dv)
//   RoPE (interleaved) on q[:, h, Dn:] and on the ONE shared k_pe; k = [k_nope | k_pe]
//   l[t,h,s] = dot_k128(q[t,h,:], k[s,h,:], D) · scale,  scale = float(D^-0.5 · mscale²)
//   allowed s: doc[s] == doc[t] and s ≤ t, i.e. s ∈ [s0(t), t] (documents are contiguous runs)
//   m = row_max over allowed s; e_s = exp(l_s − m); Z = row_sum(e); p_s = e_s / Z
//   max_logit[h] = row_max over t of m(t, h)   (the QK-Clip statistic; naive order only)
//   o[t,h,:] = dot_k128 over s ∈ [s0(t), t] (ascending) of p_s · v[s,h,:]
//   out = o·Woᵀ
// Because every reduction runs over the allowed range only, a document's outputs in a
// packed sequence are bit-identical to running that document alone.
//
// Absorbed order (forward only; DeepSeek's "absorb"): with Wkb[h] (Dn,Rkv) and Wvb[h]
// (Dv,Rkv) the rows of Wkvb,
//   q_lat[t,h,r] = dot_k128 over d of q_nope[t,h,d]·Wkb[h][d][r]                (T,H,Rkv)
//   l[t,h,s] = (dot_k128(q_lat, cn[s], Rkv) + dot_k128(q_pe, k_pe[s], Dr)) · scale
//   softmax as above;  o_lat[t,h,:] = dot_k128 over s of p_s·cn[s,:]            (T,H,Rkv)
//   o[t,h,d] = dot_k128(o_lat[t,h,:], Wvb[h][d][:], Rkv);   out = o·Woᵀ
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/rope.hpp"

namespace preflight::ref {

struct MlaDims {
  int64_t T, C, H, Rq, Rkv, Dn, Dr, Dv;
  LinearPrecision precision{};  // the projections Wqa, Wqb / Wq, Wkva, Wkvb, Wo (naive order; the
                                // absorbed order and the attention core stay fp32)
  int64_t D() const { return Dn + Dr; }
  static MlaDims from(const ModelConfig& config, int64_t T);
};

// Parameter pointers (one layer); the same struct holds gradients.
struct MlaWeights {
  float* wq_a = nullptr;     // (Rq,C)            Rq > 0
  float* q_norm = nullptr;   // (Rq)              Rq > 0
  float* wq_b = nullptr;     // (H·D,Rq)          Rq > 0
  float* wq = nullptr;       // (H·D,C)           Rq = 0
  float* wkv_a = nullptr;    // (Rkv+Dr,C)
  float* kv_norm = nullptr;  // (Rkv)
  float* wkv_b = nullptr;    // (H·(Dn+Dv),Rkv)
  float* wo = nullptr;       // (C,H·Dv)
};
// Sizes of each tensor in MlaWeights order (0 when absent), for allocation.
std::vector<int64_t> mla_weight_sizes(const MlaDims& d);
// Points every tensor of `w` into `flat` (one allocation, in MlaWeights order).
MlaWeights mla_weights_view(float* flat, const MlaDims& d);

// Everything backward needs (recomputation is not used in the reference).
struct MlaCache {
  std::vector<float> qa, qa_rstd, qan;  // (T,Rq), (T), (T,Rq)
  std::vector<float> q;                 // (T,H,D) after RoPE
  std::vector<float> kv, c, kv_rstd, cn;  // (T,Rkv+Dr) (k_pe part after RoPE), (T,Rkv), (T), (T,Rkv)
  std::vector<float> kvb;               // (T,H,Dn+Dv)
  std::vector<float> k;                 // (T,H,D)
  std::vector<float> p;                 // (H,T,T) softmax probabilities (0 outside allowed)
  std::vector<float> o;                 // (T,H,Dv)
  std::vector<int64_t> s0;              // (T) first allowed key position
  std::vector<float> max_logit;         // (H) max over t and allowed s of l[t,h,s] (QK-Clip)
};

// doc (T): document id per token, non-decreasing (null = one document); pos (T): RoPE
// positions (null = 0..T-1, or restarting at 0 in each document when doc is given).
void mla_forward(float* out, MlaCache& cache, const float* x, const MlaWeights& w,
                 const int32_t* doc, const int32_t* pos, const RopeTable& rope, float eps,
                 const MlaDims& d);
void mla_forward_absorbed(float* out, const float* x, const MlaWeights& w, const int32_t* doc,
                          const int32_t* pos, const RopeTable& rope, float eps, const MlaDims& d);
// Gradients accumulated into dx (T,C) and dw (same layout as w).
void mla_backward(float* dx, const MlaWeights& dw, const float* dout, const MlaCache& cache,
                  const float* x, const MlaWeights& w, const int32_t* doc, const int32_t* pos,
                  const RopeTable& rope, const MlaDims& d);

// The softmax scale: float((Dn+Dr)^-0.5 · mscale²), computed in double, rounded once.
float mla_softmax_scale(const MlaDims& d, const RopeTable& rope);

}  // namespace preflight::ref
