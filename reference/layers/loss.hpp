// LM head + softmax cross-entropy, with ignore index / loss mask (SFT), optional final-logit
// soft-cap and optional z-loss on the logits.
// Legend: T = tokens, C = hidden, V = vocabulary, N = counted tokens.
//
// Forward, per token t (each line one rounding):
//   raw[v] = dot_k128(h[t,:], W[v,:], C)                        (matmul convention, W (V,C))
//   soft-cap c > 0:  th[v] = tanh(raw[v] / c);  z[v] = c · th[v]      (else z = raw)
//   m = row_max(z);  Z = row_sum over v of exp(z[v] − m);  lse = m + log(Z)
//   counted(t) = target[t] != −100 and (no mask or mask[t] != 0);  N = Σ counted
//   ce_t = lse − z[target]   (0 when not counted)
//   zz_t = lse · lse         (0 when not counted)
//   CE   = dot_k128 over t (ascending, 128-token blocks) of ce_t·1, then / N
//   ZL   = (dot_k128 over t of zz_t·1 / N) · z_coef                   (z_coef = 0: ZL = 0)
//   N = 0: CE = ZL = 0 and every gradient is 0 (no 0/0).
// The caller's loss is CE + ZL.
//
// Backward with upstream weight dloss on CE + ZL:
//   g  = dloss / N;  a_t = ((2·z_coef) · g) · lse_t  (0 when z_coef = 0);  cp_t = g + a_t
//   dz[v] = (exp(z[v] − m) / Z) · cp_t;  dz[target] = dz[target] − g   (rows not counted: 0)
//   soft-cap: draw[v] = dz[v] · (1 − th[v]·th[v])                      (else draw = dz)
//   dh += draw·W,  dW += drawᵀ·h                                       (matmul_backward)
#pragma once

#include <cstdint>
#include <vector>

namespace preflight::ref {

inline constexpr int32_t kIgnoreIndex = -100;

struct LossDims {
  int64_t T = 0, C = 0, V = 0;
  float softcap = 0.0f;  // final_logit_softcapping (0 = off)
  float z_coef = 0.0f;   // logit z-loss coefficient (0 = off)
};

struct CeCache {
  std::vector<float> z;       // (T,V) logits after the soft-cap
  std::vector<float> th;      // (T,V) tanh(raw/c) when soft-capped
  std::vector<float> m, lse;  // (T) each
  std::vector<float> sumexp;  // (T) Z
  int64_t count = 0;          // N
};

struct CeLoss {
  float ce = 0.0f;  // mean cross-entropy over counted tokens
  float z = 0.0f;   // z-loss
  int64_t count = 0;
};

// targets (T): token ids in [0, V) or kIgnoreIndex; mask (T) or null.
CeLoss lm_head_ce_forward(CeCache& cache, const float* h,  // (T,C) final hidden (after the final norm)
                          const float* w,                  // (V,C) head
                          const int32_t* targets, const uint8_t* mask, const LossDims& d);

// dh (T,C) and dw (V,C) accumulated (either may be null).
void lm_head_ce_backward(float* dh, float* dw, const CeCache& cache, const float* h, const float* w,
                         const int32_t* targets, const uint8_t* mask, float dloss, const LossDims& d);

}  // namespace preflight::ref
