#include "reference/optim/adamw.hpp"

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/numerics/hd.hpp"

namespace preflight::optim {

// Elementwise loops split over OpenMP threads only above this size (a parallel region costs
// more than a small tensor); elements are independent, so the split never changes a bit.
constexpr int64_t kParallelMin = 1 << 16;

double pow_int(double beta, int64_t t) {
  double result = 1.0;
  double base = beta;
  while (t > 0) {
    if (t & 1) result *= base;
    base *= base;
    t >>= 1;
  }
  return result;
}

AdamWScalars adamw_scalars(const AdamWConfig& cfg, float lr, int64_t t, bool decay) {
  PREFLIGHT_CHECK(t >= 1, "AdamW step count ", t, " must be >= 1");
  PREFLIGHT_CHECK(cfg.beta1 >= 0.0 && cfg.beta1 < 1.0 && cfg.beta2 >= 0.0 && cfg.beta2 < 1.0,
                  "AdamW betas (", cfg.beta1, ", ", cfg.beta2, ") must lie in [0, 1)");
  const double lrd = static_cast<double>(lr);
  AdamWScalars s{};
  s.b1 = static_cast<float>(cfg.beta1);
  s.c1 = static_cast<float>(1.0 - cfg.beta1);
  s.b2 = static_cast<float>(cfg.beta2);
  s.c2 = static_cast<float>(1.0 - cfg.beta2);
  s.step_size = static_cast<float>(lrd / (1.0 - pow_int(cfg.beta1, t)));
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - pow_int(cfg.beta2, t)));
  s.decay = decay ? static_cast<float>(1.0 - lrd * cfg.weight_decay) : 1.0f;
  s.eps = static_cast<float>(cfg.eps);
  return s;
}

namespace {

// The update of p from the stored (possibly rounded) moments.
inline float adamw_apply(float p, float m, float v, const AdamWScalars& s) {
  const float d = num::sqrt(v) / s.bc2_sqrt + s.eps;
  p = p * s.decay;
  return p - s.step_size * (m / d);
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const AdamWMoments e = adamw_moments(m[i], v[i], g[i], s);
    m[i] = e.m;
    v[i] = e.v;
    p[i] = adamw_apply(p[i], e.m, e.v, s);
  }
}

void adamw_step(float* p, const float* g, num::bf16* m, num::bf16* v, int64_t n, const AdamWScalars& s) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const AdamWMoments e = adamw_moments(num::to_float(m[i]), num::to_float(v[i]), g[i], s);
    m[i] = num::to_bf16(e.m);
    v[i] = num::to_bf16(e.v);
    p[i] = adamw_apply(p[i], num::to_float(m[i]), num::to_float(v[i]), s);
  }
}

}  // namespace preflight::optim
