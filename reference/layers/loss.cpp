// LM head + cross-entropy (order of every operation: loss.hpp).
// Legend: T = tokens, C = hidden, V = vocabulary, N = counted tokens.
#include "reference/layers/loss.hpp"

#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"

namespace preflight::ref {

namespace {

bool counted(const int32_t* targets, const uint8_t* mask, int64_t t) {
  return targets[t] != kIgnoreIndex && (!mask || mask[t] != 0);
}

void check_loss(const int32_t* targets, const LossDims& d) {
  PREFLIGHT_CHECK(d.T >= 0 && d.C > 0 && d.V > 0, "lm_head_ce: T=", d.T, " C=", d.C, " V=", d.V,
                  ", expected T >= 0, C > 0, V > 0");
  PREFLIGHT_CHECK(d.softcap >= 0.0f && d.z_coef >= 0.0f, "lm_head_ce: softcap = ", d.softcap, ", z_coef = ", d.z_coef,
                  ", expected >= 0");
  for (int64_t t = 0; t < d.T; ++t)
    PREFLIGHT_CHECK(targets[t] == kIgnoreIndex || (targets[t] >= 0 && targets[t] < d.V), "lm_head_ce: targets[", t,
                    "] = ", targets[t], ", expected in [0, ", d.V, ") or ", kIgnoreIndex);
}

}  // namespace

CeLoss lm_head_ce_forward(CeCache& c, const float* h, const float* w, const int32_t* targets, const uint8_t* mask,
                          const LossDims& d) {
  PREFLIGHT_CHECK(h && w && targets, "lm_head_ce_forward: null h (T,C), head (V,C) or targets (T)");
  check_loss(targets, d);
  const int64_t T = d.T, V = d.V;
  c.z.assign(T * V, 0.f), c.m.assign(T, 0.f), c.lse.assign(T, 0.f), c.sumexp.assign(T, 0.f);
  c.th.clear();
  if (T == 0) return {};
  matmul_forward(c.z.data(), h, w, nullptr, T, V, d.C);
  if (d.softcap > 0.0f) {
    c.th.assign(T * V, 0.f);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < T * V; ++i) {
      c.th[i] = px::tanh(c.z[i] / d.softcap);
      c.z[i] = d.softcap * c.th[i];
    }
  }
  std::vector<float> ce(T, 0.f), zz(T, 0.f);  // (T) each
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* z = &c.z[t * V];
    const float m = px::row_max(z, V);
    const float s = px::row_sum_by(V, [&](int64_t v) { return px::exp(z[v] - m); });
    c.m[t] = m, c.sumexp[t] = s, c.lse[t] = m + px::log(s);
    if (counted(targets, mask, t)) ce[t] = c.lse[t] - z[targets[t]], zz[t] = c.lse[t] * c.lse[t];
  }
  c.count = 0;
  for (int64_t t = 0; t < T; ++t) c.count += counted(targets, mask, t) ? 1 : 0;
  CeLoss r;
  r.count = c.count;
  if (c.count == 0) return r;
  const float one = 1.0f, n = float(c.count);
  r.ce = px::dot(ce.data(), 1, &one, 0, T) / n;
  if (d.z_coef > 0.0f) r.z = (px::dot(zz.data(), 1, &one, 0, T) / n) * d.z_coef;
  return r;
}

void lm_head_ce_backward(float* dh, float* dw, const CeCache& c, const float* h, const float* w,
                         const int32_t* targets, const uint8_t* mask, float dloss, const LossDims& d) {
  check_loss(targets, d);
  const int64_t T = d.T, V = d.V;
  if (T == 0 || c.count == 0) return;
  const float g = dloss / float(c.count), two_z = 2.0f * d.z_coef;
  std::vector<float> draw(T * V, 0.f);  // (T,V)
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    if (!counted(targets, mask, t)) continue;
    const float cp = d.z_coef > 0.0f ? g + (two_z * g) * c.lse[t] : g;
    const float* z = &c.z[t * V];
    float* dz = &draw[t * V];
    for (int64_t v = 0; v < V; ++v) dz[v] = (px::exp(z[v] - c.m[t]) / c.sumexp[t]) * cp;
    dz[targets[t]] = dz[targets[t]] - g;
    if (d.softcap > 0.0f) {
      const float* th = &c.th[t * V];
      for (int64_t v = 0; v < V; ++v) dz[v] = dz[v] * (1.0f - th[v] * th[v]);
    }
  }
  matmul_backward(dh, dw, nullptr, draw.data(), h, w, T, V, d.C);
}

}  // namespace preflight::ref
