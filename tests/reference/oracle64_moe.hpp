// float64 oracles of the MoE block (router, experts, balance losses) and of the LM head +
// cross-entropy: the mathematical definitions in double, written independently of the fp32
// code (std::sort for top-k, std::exp/std::log, plain loops).
// Legend: T = tokens, C = hidden, E = routed experts, K = top-k, G = groups, TG = kept groups,
//         I = expert width, S = shared width, V = vocabulary.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "tests/reference/oracle64.hpp"

namespace preflight::ref::oracle {

struct Router64 {
  int64_t E = 0, K = 0, G = 1, TG = 1;
  bool sigmoid = true, norm = true, use_bias = true;
  double scale = 1.0;

  // Scores of one token from its logits (E).
  Vec scores(const double* l) const {
    Vec s(E);
    if (sigmoid) {
      for (int64_t e = 0; e < E; ++e) s[e] = 1.0 / (1.0 + std::exp(-l[e]));
    } else {
      const double m = *std::max_element(l, l + E);
      double z = 0;
      for (int64_t e = 0; e < E; ++e) z += std::exp(l[e] - m);
      for (int64_t e = 0; e < E; ++e) s[e] = std::exp(l[e] - m) / z;
    }
    return s;
  }

  // Indices of the k largest of v (ties: lower index first).
  static std::vector<int64_t> largest(const Vec& v, int64_t k) {
    std::vector<int64_t> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    order.resize(k);
    return order;
  }

  // Selected experts (ascending) of one token; *margin = the smallest gap that decides the
  // selection (kept vs dropped group score, K-th vs (K+1)-th candidate), for "away from ties".
  std::vector<int64_t> select(const Vec& s, const double* bias, double* margin = nullptr) const {
    Vec b(E);
    for (int64_t e = 0; e < E; ++e) b[e] = s[e] + (use_bias && bias ? bias[e] : 0.0);
    double gap = INFINITY;
    if (G > 1 && TG < G) {
      const int64_t Eg = E / G;
      Vec gs(G);
      for (int64_t g = 0; g < G; ++g) {
        Vec part(b.begin() + g * Eg, b.begin() + (g + 1) * Eg);
        std::sort(part.rbegin(), part.rend());
        gs[g] = Eg >= 2 ? part[0] + part[1] : part[0];
      }
      const auto keep = largest(gs, TG);
      Vec sorted = gs;
      std::sort(sorted.rbegin(), sorted.rend());
      gap = std::min(gap, sorted[TG - 1] - sorted[TG]);
      std::vector<char> kept(G, 0);
      for (auto g : keep) kept[g] = 1;
      for (int64_t e = 0; e < E; ++e)
        if (!kept[e / Eg]) b[e] = -INFINITY;
    }
    auto sel = largest(b, K);
    Vec sorted = b;
    std::sort(sorted.rbegin(), sorted.rend());
    if (K < E && std::isfinite(sorted[K])) gap = std::min(gap, sorted[K - 1] - sorted[K]);
    if (margin) *margin = gap;
    std::sort(sel.begin(), sel.end());
    return sel;
  }

  Vec weights(const Vec& s, const std::vector<int64_t>& sel) const {
    Vec w(sel.size());
    double sum = 0;
    for (size_t j = 0; j < sel.size(); ++j) w[j] = s[sel[j]], sum += s[sel[j]];
    for (auto& v : w) v = (norm ? v / sum : v) * scale;
    return w;
  }
};

// Balance loss (router.hpp): coef · mean over groups of E/(K·Tg²)·Σ_i cnt_i·Σ_t s'[t,i].
inline double balance_loss(const Vec& s, const std::vector<std::vector<int64_t>>& sel, bool sigmoid, int64_t T,
                           int64_t E, int64_t K, int64_t group_len, double coef) {
  const int64_t ng = T / group_len;
  double L = 0;
  for (int64_t g = 0; g < ng; ++g) {
    Vec cnt(E, 0.0), P(E, 0.0);
    for (int64_t t = g * group_len; t < (g + 1) * group_len; ++t) {
      for (auto e : sel[t]) cnt[e] += 1;
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += s[t * E + e];
      for (int64_t e = 0; e < E; ++e) P[e] += sigmoid ? s[t * E + e] / sum : s[t * E + e];
    }
    double acc = 0;
    for (int64_t e = 0; e < E; ++e) acc += cnt[e] * P[e];
    L += acc * double(E) / (double(K) * double(group_len) * double(group_len));
  }
  return coef * L / double(ng);
}

inline double router_z_loss(const Vec& logits, int64_t T, int64_t E, double coef) {
  double L = 0;
  for (int64_t t = 0; t < T; ++t) {
    const double m = *std::max_element(logits.begin() + t * E, logits.begin() + (t + 1) * E);
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += std::exp(logits[t * E + e] - m);
    const double lse = m + std::log(z);
    L += lse * lse;
  }
  return coef * L / double(T);
}

struct Moe64Losses {
  double seq_aux = 0, lb = 0, z = 0;
  double total() const { return seq_aux + lb + z; }
};

// The MoE block in float64. Weights in the flat MoeWeights order:
//   gate (E,C) | bias (E) | experts E × [w1 (I,C) | w3 (I,C) | w2 (C,I)] | shared w1 (S,C) | w3 (S,C) | w2 (C,S)
struct Moe64 {
  Router64 r;
  int64_t T = 0, C = 0, I = 0, S = 0;
  int64_t seq_len = 0;  // 0 = T
  double seq_alpha = 0, lb_coef = 0, z_coef = 0;

  // frozen: if non-null, the selection to use (one ascending list per token) instead of
  // computing it; sel_out / margin receive the selection computed from these inputs.
  Vec forward(const Vec& x, const Vec& flat, Moe64Losses* losses = nullptr,
              const std::vector<std::vector<int64_t>>* frozen = nullptr,
              std::vector<std::vector<int64_t>>* sel_out = nullptr, double* margin = nullptr) const {
    const int64_t E = r.E;
    const double* gate = flat.data();
    const double* bias = gate + E * C;
    const double* ex = bias + E;
    const double* sh = ex + E * 3 * I * C;
    const Vec logits = linear(x, Vec(gate, gate + E * C), T, E, C);
    Vec s(T * E);
    std::vector<std::vector<int64_t>> sel(T);
    double gap = INFINITY;
    for (int64_t t = 0; t < T; ++t) {
      const Vec st = r.scores(&logits[t * E]);
      std::copy(st.begin(), st.end(), s.begin() + t * E);
      double m = 0;
      sel[t] = frozen ? (*frozen)[t] : r.select(st, bias, &m);
      if (!frozen) gap = std::min(gap, m);
    }
    if (sel_out) *sel_out = sel;
    if (margin) *margin = gap;
    Vec y(T * C, 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const Vec st(s.begin() + t * E, s.begin() + (t + 1) * E);
      const Vec w = r.weights(st, sel[t]);
      const Vec xt(x.begin() + t * C, x.begin() + (t + 1) * C);
      for (size_t j = 0; j < sel[t].size(); ++j) {
        const double* p = ex + sel[t][j] * 3 * I * C;
        const Vec o = swiglu(xt, Vec(p, p + I * C), Vec(p + I * C, p + 2 * I * C), Vec(p + 2 * I * C, p + 3 * I * C),
                             1, C, I);
        for (int64_t c = 0; c < C; ++c) y[t * C + c] += w[j] * o[c];
      }
    }
    if (S > 0) {
      const Vec o = swiglu(x, Vec(sh, sh + S * C), Vec(sh + S * C, sh + 2 * S * C), Vec(sh + 2 * S * C, sh + 3 * S * C),
                           T, C, S);
      for (int64_t i = 0; i < T * C; ++i) y[i] += o[i];
    }
    if (losses) {
      *losses = {};
      const int64_t L = seq_len ? seq_len : T;
      if (seq_alpha != 0) losses->seq_aux = balance_loss(s, sel, r.sigmoid, T, E, r.K, L, seq_alpha);
      if (lb_coef != 0) losses->lb = balance_loss(s, sel, r.sigmoid, T, E, r.K, T, lb_coef);
      if (z_coef != 0) losses->z = router_z_loss(logits, T, E, z_coef);
    }
    return y;
  }
};

// LM head + cross-entropy in float64 (loss.hpp): logits = h·Wᵀ, optional soft-cap c·tanh(z/c),
// per counted token lse − z[target] and z-loss coef·lse², both averaged over counted tokens.
struct CrossEntropy64 {
  int64_t T = 0, C = 0, V = 0;
  double softcap = 0, z_coef = 0;
  std::vector<int32_t> targets;  // (T), −100 = ignored
  std::vector<uint8_t> mask;     // (T) or empty
  double loss(const Vec& h, const Vec& w, double* ce_out = nullptr, double* z_out = nullptr) const {
    const Vec z = linear(h, w, T, V, C);
    double ce = 0, zl = 0;
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (targets[t] == -100 || (!mask.empty() && !mask[t])) continue;
      Vec zt(z.begin() + t * V, z.begin() + (t + 1) * V);
      if (softcap > 0)
        for (auto& v : zt) v = softcap * std::tanh(v / softcap);
      const double m = *std::max_element(zt.begin(), zt.end());
      double sum = 0;
      for (double v : zt) sum += std::exp(v - m);
      const double lse = m + std::log(sum);
      ce += lse - zt[targets[t]], zl += lse * lse, ++n;
    }
    if (n == 0) return 0.0;
    ce /= double(n), zl = z_coef * zl / double(n);
    if (ce_out) *ce_out = ce;
    if (z_out) *z_out = zl;
    return ce + zl;
  }
};

}  // namespace preflight::ref::oracle
