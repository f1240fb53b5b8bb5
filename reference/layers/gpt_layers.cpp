// LayerNorm, GELU MLP and learned positions (see gpt_layers.hpp for the exact order).
// Legend: T = rows (tokens), C = channels, H = MLP width, P = table positions.
#include "reference/layers/gpt_layers.hpp"

#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/prims.hpp"

namespace preflight::ref {

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       float eps, int64_t T, int64_t C) {
  PREFLIGHT_CHECK(C > 0, "layernorm: C = ", C, ", expected > 0");
  PREFLIGHT_CHECK(w && b, "layernorm: null weight or bias");
#pragma omp parallel
  {
    std::vector<float> dev(C);  // (C) x − mean
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const float* xr = x + t * C;
      const float mu = px::row_sum(xr, C) / float(C);
      for (int64_t i = 0; i < C; ++i) dev[i] = xr[i] - mu;
      const float var = px::row_dot(dev.data(), dev.data(), C) / float(C);
      const float r = px::rsqrt(var + eps);
      mean[t] = mu, rstd[t] = r;
      for (int64_t i = 0; i < C; ++i) out[t * C + i] = (dev[i] * r) * w[i] + b[i];
    }
  }
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t T, int64_t C) {
  std::vector<float> xh(T * C);  // (T,C) normalised input, as the forward rounded it
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < C; ++i) xh[t * C + i] = (x[t * C + i] - mean[t]) * rstd[t];
  if (dx) {
#pragma omp parallel
    {
      std::vector<float> g(C);  // (C)
#pragma omp for schedule(static)
      for (int64_t t = 0; t < T; ++t) {
        const float* dy = dout + t * C;
        const float* xr = &xh[t * C];
        for (int64_t i = 0; i < C; ++i) g[i] = dy[i] * w[i];
        const float a = px::row_sum(g.data(), C) / float(C);
        const float c = px::row_dot(g.data(), xr, C) / float(C);
        for (int64_t i = 0; i < C; ++i) dx[t * C + i] = dx[t * C + i] + ((g[i] - a) - xr[i] * c) * rstd[t];
      }
    }
  }
  const float one = 1.0f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < C; ++i) {
    if (dw) dw[i] = dw[i] + px::dot(dout + i, C, xh.data() + i, C, T);
    if (db) db[i] = db[i] + px::dot(dout + i, C, &one, 0, T);
  }
}

float gelu_grad(float x) {
  constexpr float kC1 = 0x1.6e4e26p-5f;      // num::gelu's float(0.044715)
  constexpr float kTwoC0 = 0x1.988454p+0f;   // num::gelu's 2·float(sqrt(2/pi))
  constexpr float kThreeC1 = 3.0f * kC1;     // rounded once
  const float x2 = x * x;
  const float a = kTwoC0 * (x + kC1 * (x2 * x));
  const float sp = px::sigmoid(a), sm = px::sigmoid(-a);
  return sp + (x * (sp * sm)) * (kTwoC0 * (1.0f + kThreeC1 * x2));
}

void gelu_mlp_forward(float* out, float* h, float* act, const float* x, const float* w1, const float* b1,
                      const float* w2, const float* b2, int64_t T, int64_t C, int64_t H, const LinearPrecision& p) {
  linear_forward(h, x, w1, b1, T, H, C, p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < T * H; ++i) act[i] = px::gelu(h[i]);
  linear_forward(out, act, w2, b2, T, C, H, p);
}

void gelu_mlp_backward(float* dx, float* dw1, float* db1, float* dw2, float* db2, const float* dout,
                       const float* h, const float* act, const float* x, const float* w1, const float* w2,
                       int64_t T, int64_t C, int64_t H, const LinearPrecision& p) {
  std::vector<float> dh(T * H, 0.0f);  // (T,H): dact, then dh in place
  linear_backward(dh.data(), dw2, db2, dout, act, w2, T, C, H, p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < T * H; ++i) dh[i] = dh[i] * gelu_grad(h[i]);
  linear_backward(dx, dw1, db1, dh.data(), x, w1, T, H, C, p);
}

void position_embedding_forward(float* x, const int32_t* pos, const float* table, int64_t T, int64_t C,
                                int64_t P) {
  for (int64_t t = 0; t < T; ++t) {
    const int64_t p = pos ? pos[t] : t;
    PREFLIGHT_CHECK(p >= 0 && p < P, "position_embedding: pos[", t, "] = ", p, ", expected in [0, ", P, ")");
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* row = table + (pos ? pos[t] : t) * C;
    for (int64_t c = 0; c < C; ++c) x[t * C + c] = x[t * C + c] + row[c];
  }
}

void position_embedding_backward(float* dtable, const float* dout, const int32_t* pos, int64_t T, int64_t C,
                                 int64_t P) {
  std::vector<int32_t> seq;
  if (!pos) {
    seq.resize(T);
    for (int64_t t = 0; t < T; ++t) seq[t] = int32_t(t);
    pos = seq.data();
  }
  embedding_backward(dtable, dout, pos, T, C, P);
}

}  // namespace preflight::ref
