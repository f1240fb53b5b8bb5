#include "reference/optim/qk_clip.hpp"

#include <cmath>

#include "reference/core/error.hpp"

namespace preflight::optim {

namespace {

void scale_rows(float* w, int64_t row0, int64_t n_rows, int64_t cols, float f) {
  float* x = w + row0 * cols;
  for (int64_t i = 0; i < n_rows * cols; ++i) x[i] = x[i] * f;
}

double gamma_for(float s_max, double tau) {
  if (!(static_cast<double>(s_max) > tau)) return 1.0;  // NaN never clips (the trainer reports it)
  return tau / static_cast<double>(s_max);
}

}  // namespace

std::vector<double> qk_clip_mla(const ref::MlaWeights& w, const ref::MlaDims& d, const std::vector<float>& max_logit,
                                const QkClipConfig& cfg) {
  PREFLIGHT_CHECK(static_cast<int64_t>(max_logit.size()) == d.H, "qk_clip_mla: ", max_logit.size(),
                  " max logits for ", d.H, " heads");
  PREFLIGHT_CHECK(cfg.tau > 0.0, "qk_clip tau ", cfg.tau, " must be positive");
  float* wq = d.Rq > 0 ? w.wq_b : w.wq;
  const int64_t q_cols = d.Rq > 0 ? d.Rq : d.C;
  PREFLIGHT_CHECK(wq && w.wkv_b, "qk_clip_mla: missing W_q(_b) or W_kv_b");
  std::vector<double> gammas(static_cast<size_t>(d.H), 1.0);
  if (!cfg.enabled) return gammas;
  for (int64_t h = 0; h < d.H; ++h) {
    const double g = gamma_for(max_logit[h], cfg.tau);
    gammas[h] = g;
    if (g == 1.0) continue;
    const float sg = static_cast<float>(std::sqrt(g));
    const float gg = static_cast<float>(g);
    scale_rows(wq, h * d.D(), d.Dn, q_cols, sg);                // q_nope
    scale_rows(wq, h * d.D() + d.Dn, d.Dr, q_cols, gg);         // q_rope
    scale_rows(w.wkv_b, h * (d.Dn + d.Dv), d.Dn, d.Rkv, sg);    // k_nope
  }
  return gammas;
}

std::vector<double> qk_clip_gqa(float* wq, float* wk, int64_t H, int64_t Hkv, int64_t Dh, int64_t C,
                                const std::vector<float>& max_logit, const QkClipConfig& cfg) {
  PREFLIGHT_CHECK(wq && wk && H > 0 && Hkv > 0 && H % Hkv == 0, "qk_clip_gqa: H ", H, ", Hkv ", Hkv);
  PREFLIGHT_CHECK(static_cast<int64_t>(max_logit.size()) == H, "qk_clip_gqa: ", max_logit.size(),
                  " max logits for ", H, " heads");
  std::vector<double> gammas(static_cast<size_t>(H), 1.0);
  if (!cfg.enabled) return gammas;
  for (int64_t h = 0; h < H; ++h) {
    const double g = gamma_for(max_logit[h], cfg.tau);
    gammas[h] = g;
    if (g == 1.0) continue;
    if (Hkv == H) {
      const float sg = static_cast<float>(std::sqrt(g));
      scale_rows(wq, h * Dh, Dh, C, sg);
      scale_rows(wk, h * Dh, Dh, C, sg);
    } else {
      scale_rows(wq, h * Dh, Dh, C, static_cast<float>(g));
    }
  }
  return gammas;
}

}  // namespace preflight::optim
