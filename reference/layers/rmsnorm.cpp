// RMSNorm forward/backward. Legend: T = rows (tokens), C = channels.
#include "reference/layers/rmsnorm.hpp"

#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/prims.hpp"

namespace preflight::ref {

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t T,
                     int64_t C) {
  PREFLIGHT_CHECK(C > 0, "rmsnorm: C = ", C, ", expected > 0");
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * C;
    const float ms = px::row_dot(xr, xr, C) / float(C);
    const float r = px::rsqrt(ms + eps);
    rstd[t] = r;
    for (int64_t i = 0; i < C; ++i) out[t * C + i] = (xr[i] * r) * w[i];
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t T, int64_t C) {
  if (dx) {
#pragma omp parallel
    {
      std::vector<float> g(C);  // (C)
#pragma omp for schedule(static)
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = x + t * C;
        const float* dy = dout + t * C;
        for (int64_t i = 0; i < C; ++i) g[i] = dy[i] * w[i];
        const float r = rstd[t];
        const float coef = (px::row_dot(g.data(), xr, C) / float(C)) * ((r * r) * r);
        for (int64_t i = 0; i < C; ++i) dx[t * C + i] = dx[t * C + i] + (r * g[i] - coef * xr[i]);
      }
    }
  }
  if (dw) {
    std::vector<float> xn(T * C);  // (T,C)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < C; ++i) xn[t * C + i] = x[t * C + i] * rstd[t];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < C; ++i) dw[i] = dw[i] + px::dot(dout + i, C, xn.data() + i, C, T);
  }
}

}  // namespace preflight::ref
