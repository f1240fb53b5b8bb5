// float64 oracles of the reference layers: the plain mathematical definitions, written
// independently of the fp32 code (no shared helpers, std:: math in double).
// Legend: T = tokens, C = channels, H = intermediate width.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace preflight::ref::oracle {

using Vec = std::vector<double>;

// y = x·Wᵀ (+ b).  x (M,K), w (N,K) -> (M,N)
inline Vec linear(const Vec& x, const Vec& w, int64_t M, int64_t N, int64_t K, const double* b = nullptr) {
  Vec y(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

// RMSNorm: x (T,C), w (C) -> (T,C)
inline Vec rmsnorm(const Vec& x, const Vec& w, double eps, int64_t T, int64_t C) {
  Vec y(T * C);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += x[t * C + i] * x[t * C + i];
    const double r = 1.0 / std::sqrt(ss / double(C) + eps);
    for (int64_t i = 0; i < C; ++i) y[t * C + i] = x[t * C + i] * r * w[i];
  }
  return y;
}

inline double silu(double v) { return v / (1.0 + std::exp(-v)); }

// SwiGLU: x (T,C), w1 (H,C), w3 (H,C), w2 (C,H) -> (T,C)
inline Vec swiglu(const Vec& x, const Vec& w1, const Vec& w3, const Vec& w2, int64_t T, int64_t C,
                  int64_t H) {
  const Vec h1 = linear(x, w1, T, H, C), h3 = linear(x, w3, T, H, C);
  Vec act(T * H);
  for (int64_t i = 0; i < T * H; ++i) act[i] = silu(h1[i]) * h3[i];
  return linear(act, w2, T, C, H);
}

inline double weighted_sum(const Vec& g, const Vec& y) {
  double L = 0;
  for (size_t i = 0; i < y.size(); ++i) L += g[i] * y[i];
  return L;
}

}  // namespace preflight::ref::oracle
