// Multi-token prediction module (DeepSeek-V3), depth k = 1..D, sharing the embedding and
// the output head with the main model.
// Legend: B = sequences, T = main tokens per sequence, Tk = T − k (positions of depth k),
//         Nk = B·Tk rows, C = hidden, V = vocabulary.
//
// Inputs per sequence: tokens x (T), targets y (T) with y[i] = the token after x[i] (or
// −100), mask (T) or null, doc (T) or null; h_prev (B, T−k+1, C): the main model's last
// hidden state before its final norm (k = 1) or depth k−1's block output.
// Depth k works on positions i = 0..Tk−1 of each sequence (a prediction needs x[i+k] and the
// target y[i+k] = x[i+k+1]):
//   e    = R(Emb(x[i+k]))                                  (shared table; R: block.hpp)
//   en   = R(RMSNorm_e(e));   hn = R(RMSNorm_h(h_prev[i]))
//   hp   = R([en ; hn]·Wprojᵀ)     (C, 2C): the EMBEDDING half first, as the released weights
//                                  (enorm, hnorm, eh_proj), although the paper writes h first;
//                                  linear_forward in the block's precision (d.block.precision)
//   hk   = Block_k(hp)             one full transformer block over B sequences of Tk tokens
//                                  (attention positions/documents of positions 0..Tk−1)
//   fn   = R(RMSNorm_head(hk));   L_k = CE(fn·Wheadᵀ; targets y[i+k], mask[i+k])  (loss.hpp)
// The model's MTP loss is (λ/D)·Σ_k (CE_k + z_k).
//
// Backward of depth k, given dhk (Nk, C) from depth k+1 (its h_prev gradient; null at k = D):
//   dhk' = dhk (or 0);  dfn = CE backward(dloss = λ/D)  (+ dWhead);  dhk' += RMSNorm_head bwd
//   dhp  = Block backward(dhk');  dcat = dhp·Wproj (+ dWproj)
//   de   = RMSNorm_e bwd(dcat[:, :C]) → dEmb (embedding_backward, ascending rows)
//   dh_prev[i] += RMSNorm_h bwd(dcat[:, C:])     (rows i < Tk of each sequence; the rest 0)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/layers/block.hpp"
#include "reference/layers/loss.hpp"

namespace preflight::ref {

struct MtpDims {
  int64_t B = 1, T = 0, k = 1, C = 0, V = 0;
  float eps = 1e-6f;
  BlockDims block;  // over B sequences of T − k tokens
  LossDims loss;    // T = B·(T − k)
  bool bf16 = false;
  int64_t Tk() const { return T - k; }
  int64_t Nk() const { return B * (T - k); }
  // Depth k (1-based) of `config` for B sequences of T main tokens.
  static MtpDims from(const ModelConfig& config, int64_t k, int64_t B, int64_t T, bool bf16);
};

std::vector<ParamSpec> mtp_param_specs(const MtpDims& d);  // enorm, hnorm, proj, block.*, head_norm

struct MtpWeights {
  float* enorm = nullptr;      // (C)
  float* hnorm = nullptr;      // (C)
  float* proj = nullptr;       // (C,2C)  [embedding half | hidden half]
  BlockWeights block;
  float* head_norm = nullptr;  // (C)
};
MtpWeights mtp_weights_view(float* flat, const MtpDims& d);

struct MtpCache {
  std::vector<int32_t> tok, tgt, doc;  // (Nk) each (doc empty = none)
  std::vector<uint8_t> mask;           // (Nk) or empty
  std::vector<float> e, en, en_rstd;   // (Nk,C), (Nk,C), (Nk)
  std::vector<float> hprev, hn, hn_rstd;  // (Nk,C), (Nk,C), (Nk)
  std::vector<float> cat;              // (Nk,2C)
  std::vector<float> hp;               // (Nk,C) projection output = block input
  BlockCache block;
  std::vector<float> hk;               // (Nk,C) block output (next depth's h_prev)
  std::vector<float> fn, fn_rstd;      // (Nk,C), (Nk)
  CeCache ce;
  CeLoss loss;
};

// tokens/targets/mask/doc: (B,T) of the main batch (mask, doc may be null).
void mtp_forward(MtpCache& cache, const float* h_prev,  // (B,T−k+1,C)
                 const int32_t* tokens, const int32_t* targets, const uint8_t* mask, const int32_t* doc,
                 const float* embed,  // (V,C) shared
                 const float* head,   // (V,C) shared
                 const MtpWeights& w, const RopeTable& rope, const MoeLossOptions& moe_opt, const MtpDims& d);

// dh_prev (B,T−k+1,C), dembed (V,C), dhead (V,C), dw: accumulated. dhk: (B,T−k,C) gradient
// of this depth's block output from depth k+1, or null.
void mtp_backward(float* dh_prev, float* dembed, float* dhead, const MtpWeights& dw, const float* dhk,
                  const MtpCache& cache, const float* embed, const float* head, const MtpWeights& w,
                  const RopeTable& rope, const MoeLossOptions& moe_opt, float dloss, float dloss_aux,
                  const MtpDims& d);

}  // namespace preflight::ref
