// MuonClip / QK-Clip (Kimi K2), applied after the optimizer step (docs/OPTIMIZERS.md §5).
//
// The forward pass records, per attention layer, S_max[h] = the largest pre-softmax logit
// (after the softmax scale) of head h over the step's tokens: a std::vector<float> of H per
// layer (the max over micro-batches and ranks is exact, so any order gives the same value).
// For each head with S_max[h] > τ:  γ = τ / S_max[h]  (double),  sγ = float(√γ), gγ = float(γ):
//   MLA (layout of reference/layers/mla.hpp):
//     W_q_b (H·(Dn+Dr), Rq) [or W_q (H·(Dn+Dr), C) when Rq = 0], head h rows h·D .. h·D+D−1:
//       rows [0, Dn)  (q_nope) ·= sγ;   rows [Dn, D) (q_rope) ·= gγ
//     W_kv_b (H·(Dn+Dv), Rkv), head h rows h·(Dn+Dv) ..: rows [0, Dn) (k_nope) ·= sγ; v rows untouched
//     W_kv_a: untouched (its rope rows are the key rotary part SHARED by all heads)
//   so q_nope·k_nope scales by sγ² ≈ γ and q_rope·k_rope by gγ ≈ γ, and no other head changes.
//   GQA / MHA (Wq (H·Dh, C), Wk (Hkv·Dh, C)): Hkv == H: q and k rows of head h ·= sγ;
//   Hkv < H (a key head shared by a group): the query rows ·= gγ, the shared key untouched
//   (the same rule as MLA's shared rotary key, so the other heads of the group keep their logits).
// Each scaling is one fp32 multiply per weight.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/layers/mla.hpp"

namespace preflight::optim {

struct QkClipConfig {
  bool enabled = true;
  double tau = 100.0;
};

// Per head: the γ applied (1 for heads at or below τ).
std::vector<double> qk_clip_mla(const ref::MlaWeights& w, const ref::MlaDims& d, const std::vector<float>& max_logit,
                                const QkClipConfig& cfg);
std::vector<double> qk_clip_gqa(float* wq, float* wk, int64_t H, int64_t Hkv, int64_t Dh, int64_t C,
                                const std::vector<float>& max_logit, const QkClipConfig& cfg);

}  // namespace preflight::optim
