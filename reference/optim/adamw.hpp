// AdamW (decoupled weight decay, bias correction) in the numerics contract (docs/OPTIMIZERS.md §2).
//
// Per step t (1-based, the count after this step) the host computes in double and rounds each
// to float ONCE (β^t by repeated squaring in double, IEEE operations only):
//   b1 = float(β1), c1 = float(1 − β1), b2 = float(β2), c2 = float(1 − β2)
//   step_size = float(lr / (1 − β1^t))          lr is the float the schedule returned
//   bc2_sqrt  = float(√(1 − β2^t))
//   decay     = float(1 − lr·wd)  (1 when the tensor does not decay)
//   eps       = float(ε)
// Per element, every operation one fp32 rounding, no fma, in this order:
//   m = b1·m + c1·g
//   v = b2·v + c2·(g·g)
//   [bf16 moments: m and v are read as float from bf16 (exact), updated as above in fp32,
//    rounded RNE to bf16 and stored; the update below reads the ROUNDED values]
//   d = √v / bc2_sqrt + eps
//   p = p·decay
//   p = p − step_size·(m / d)
// Elements are independent, so any thread split gives the same bits.
#pragma once

#include <cstdint>

#include "reference/numerics/bf16.hpp"

namespace preflight::optim {

enum class MomentDtype { fp32, bf16 };

struct AdamWConfig {
  double beta1 = 0.9;    // DeepSeek-V3
  double beta2 = 0.95;   // DeepSeek-V3
  double eps = 1e-8;
  double weight_decay = 0.1;
  MomentDtype moments = MomentDtype::fp32;  // bf16 as DeepSeek-V3 did
};

// The per-step scalars above; t >= 1.
struct AdamWScalars {
  float b1, c1, b2, c2, step_size, bc2_sqrt, decay, eps;
};
AdamWScalars adamw_scalars(const AdamWConfig& cfg, float lr, int64_t t, bool decay);

// β^t in double by repeated squaring (IEEE multiplies only, so the same bits everywhere).
double pow_int(double beta, int64_t t);

// One step over n elements: p (n), g (n), m (n), v (n).
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s);
void adamw_step(float* p, const float* g, num::bf16* m, num::bf16* v, int64_t n, const AdamWScalars& s);

// The per-element operation, shared by both storage types (and mirrored by the CUDA kernel).
struct AdamWMoments {
  float m, v;
};
inline AdamWMoments adamw_moments(float m, float v, float g, const AdamWScalars& s) {
  const float m1 = s.b1 * m + s.c1 * g;
  const float v1 = s.b2 * v + s.c2 * (g * g);
  return {m1, v1};
}

}  // namespace preflight::optim
