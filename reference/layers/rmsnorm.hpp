// RMSNorm with fp32 statistics (contract row reduction).
// Legend: T = rows (tokens), C = channels.
//
// Forward, per row t (each line one rounding):
//   ss    = row_dot(x, x)                    (32-lane row reduction, fma per lane)
//   ms    = ss / C
//   rstd  = rsqrt(ms + eps)                  (eps rounded to fp32 once)
//   y_i   = (x_i · rstd) · w_i
#pragma once

#include <cstdint>

namespace preflight::ref {

void rmsnorm_forward(float* out,        // (T,C)
                     float* rstd,       // (T)  cache for backward
                     const float* x,    // (T,C)
                     const float* w,    // (C)
                     float eps, int64_t T, int64_t C);

// Backward, per row t:
//   g_i  = dy_i · w_i;   s = row_dot(g, x);   coef = (s / C) · ((rstd · rstd) · rstd)
//   dx_i += rstd · g_i − coef · x_i                 (each product rounded, then the difference)
//   dw_i += dot_k128 over t (ascending) of dy[t][i] · xn[t][i],  xn = x · rstd (rounded)
// dx or dw may be null.
void rmsnorm_backward(float* dx,          // (T,C) or null
                      float* dw,          // (C) or null
                      const float* dout,  // (T,C)
                      const float* x,     // (T,C)
                      const float* w,     // (C)
                      const float* rstd,  // (T)
                      int64_t T, int64_t C);

}  // namespace preflight::ref
