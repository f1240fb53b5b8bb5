// MoE router, balance losses, bias update (order of every operation: router.hpp).
// Legend: T = tokens, C = hidden, E = routed experts, K = top-k, G = groups, TG = kept groups.
#include "reference/layers/router.hpp"

#include <algorithm>

#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"

namespace preflight::ref {

RouterDims RouterDims::from(const ModelConfig& c, int64_t T) {
  PREFLIGHT_CHECK(c.is_moe(), "RouterDims: config '", c.name, "' has no routed experts");
  RouterDims d;
  d.T = T, d.C = c.hidden_size, d.E = c.n_routed_experts, d.K = c.num_experts_per_tok;
  d.G = c.n_group, d.TG = c.topk_group;
  d.score = c.scoring_func, d.norm_topk = c.norm_topk_prob;
  d.route_scale = float(c.routed_scaling_factor), d.use_bias = c.router_bias;
  return d;
}

void check_router_dims(const RouterDims& d) {
  PREFLIGHT_CHECK(d.T >= 0 && d.C > 0 && d.E > 0, "router: T=", d.T, " C=", d.C, " E=", d.E,
                  ", expected T >= 0, C > 0, E > 0");
  PREFLIGHT_CHECK(d.G >= 1 && d.E % d.G == 0, "router: n_group = ", d.G, ", expected a divisor of E = ", d.E);
  PREFLIGHT_CHECK(d.TG >= 1 && d.TG <= d.G, "router: topk_group = ", d.TG, ", expected in [1, n_group = ", d.G, "]");
  PREFLIGHT_CHECK(d.K >= 1 && d.K <= d.TG * (d.E / d.G), "router: top-k = ", d.K,
                  ", expected in [1, topk_group·E/n_group = ", d.TG * (d.E / d.G), "]");
}

void router_select(int32_t* idx, float* weights, float* wsum, const float* s, const float* bias,
                   const RouterDims& d) {
  const int E = int(d.E), K = int(d.K), G = int(d.G), TG = int(d.TG), Eg = E / G;
  std::vector<float> b(E);  // (E) selection scores
  for (int e = 0; e < E; ++e) b[e] = (d.use_bias && bias) ? s[e] + bias[e] : s[e];
  if (G > 1 && TG < G) {
    std::vector<float> gs(G);  // (G) group scores
    int top2[2];
    for (int g = 0; g < G; ++g) {
      const float* bg = b.data() + g * Eg;
      px::topk(bg, Eg, std::min(2, Eg), top2);
      gs[g] = Eg >= 2 ? bg[top2[0]] + bg[top2[1]] : bg[top2[0]];
    }
    std::vector<int> keep(TG);
    px::topk(gs.data(), G, TG, keep.data());
    std::vector<char> kept(G, 0);
    for (int g : keep) kept[g] = 1;
    for (int e = 0; e < E; ++e)
      if (!kept[e / Eg]) b[e] = -num::kInf;
  }
  std::vector<int> sel(K);
  px::topk(b.data(), E, K, sel.data());
  std::sort(sel.begin(), sel.end());  // ascending expert index: the order of every later sum
  for (int j = 0; j < K; ++j) idx[j] = sel[j], weights[j] = s[sel[j]];
  if (d.norm_topk) {
    const float sigma = px::row_sum(weights, K);
    for (int j = 0; j < K; ++j) weights[j] = (weights[j] / sigma) * d.route_scale;
    *wsum = sigma;
  } else {
    for (int j = 0; j < K; ++j) weights[j] = weights[j] * d.route_scale;
    *wsum = 1.0f;
  }
}

void router_forward(RouterCache& c, const float* x, const float* gate, const float* bias, const RouterDims& d) {
  check_router_dims(d);
  PREFLIGHT_CHECK(x && gate, "router_forward: null x (T,C) or gate (E,C)");
  const int64_t T = d.T, E = d.E, K = d.K;
  c.logits.assign(T * E, 0.f), c.scores.assign(T * E, 0.f);
  c.idx.assign(T * K, 0), c.weights.assign(T * K, 0.f), c.wsum.assign(T, 0.f);
  if (T == 0) return;
  matmul_forward(c.logits.data(), x, gate, nullptr, T, E, d.C);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* l = &c.logits[t * E];  // (E)
    float* s = &c.scores[t * E];        // (E)
    if (d.score == ScoringFunc::sigmoid) {
      for (int64_t e = 0; e < E; ++e) s[e] = px::sigmoid(l[e]);
    } else {
      const float m = px::row_max(l, E);
      for (int64_t e = 0; e < E; ++e) s[e] = px::exp(l[e] - m);
      const float z = px::row_sum(s, E);
      for (int64_t e = 0; e < E; ++e) s[e] = s[e] / z;
    }
    router_select(&c.idx[t * K], &c.weights[t * K], &c.wsum[t], s, bias, d);
  }
}

void router_weights_backward(float* ds, const float* dw, const RouterCache& c, const RouterDims& d) {
  const int64_t T = d.T, E = d.E, K = d.K;
#pragma omp parallel
  {
    std::vector<float> dwh(K), wh(K);  // (K) each: dŵ and ŵ
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const int32_t* idx = &c.idx[t * K];
      const float* s = &c.scores[t * E];
      if (d.norm_topk) {
        const float sigma = c.wsum[t];
        for (int64_t j = 0; j < K; ++j) dwh[j] = dw[t * K + j] * d.route_scale, wh[j] = s[idx[j]] / sigma;
        const float delta = px::row_dot(dwh.data(), wh.data(), K);
        for (int64_t j = 0; j < K; ++j) {
          float& g = ds[t * E + idx[j]];
          g = g + (dwh[j] - delta) / sigma;
        }
      } else {
        for (int64_t j = 0; j < K; ++j) {
          float& g = ds[t * E + idx[j]];
          g = g + dw[t * K + j] * d.route_scale;
        }
      }
    }
  }
}

void router_scores_backward(float* dl, const float* ds, const RouterCache& c, const RouterDims& d) {
  const int64_t T = d.T, E = d.E;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* s = &c.scores[t * E];
    const float* g = &ds[t * E];
    if (d.score == ScoringFunc::sigmoid) {
      for (int64_t e = 0; e < E; ++e) dl[t * E + e] = dl[t * E + e] + g[e] * (s[e] * (1.0f - s[e]));
    } else {
      const float delta = px::row_dot(s, g, E);
      for (int64_t e = 0; e < E; ++e) dl[t * E + e] = dl[t * E + e] + s[e] * (g[e] - delta);
    }
  }
}

void router_counts(int64_t* counts, const RouterCache& c, const RouterDims& d) {
  std::fill(counts, counts + d.E, int64_t(0));
  for (int64_t i = 0; i < d.T * d.K; ++i) ++counts[c.idx[i]];
}

namespace {

// s' (T,E): scores normalised per token over all E experts (sigmoid) or s itself (softmax),
// and σ_t (T).
void normalised_scores(std::vector<float>& sn, std::vector<float>& sigma, const RouterCache& c,
                       const RouterDims& d) {
  const int64_t T = d.T, E = d.E;
  sn.assign(c.scores.begin(), c.scores.end());
  sigma.assign(T, 1.0f);
  if (d.score != ScoringFunc::sigmoid) return;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    sigma[t] = px::row_sum(&c.scores[t * E], E);
    for (int64_t e = 0; e < E; ++e) sn[t * E + e] = c.scores[t * E + e] / sigma[t];
  }
}

void check_groups(int64_t group_len, const RouterDims& d) {
  PREFLIGHT_CHECK(group_len > 0 && d.T % group_len == 0, "balance loss: group length (sequence length) ",
                  group_len, " must divide the token count T = ", d.T);
}

// Per-group expert counts as floats (exact integers), (groups, E).
std::vector<float> group_counts(const RouterCache& c, int64_t group_len, const RouterDims& d) {
  const int64_t ng = d.T / group_len;
  std::vector<float> cnt(ng * d.E, 0.f);
  for (int64_t t = 0; t < d.T; ++t)
    for (int64_t j = 0; j < d.K; ++j) {
      float& v = cnt[(t / group_len) * d.E + c.idx[t * d.K + j]];
      v = v + 1.0f;
    }
  return cnt;
}

float balance_constant(int64_t group_len, float coef, const RouterDims& d) {
  const double ng = double(d.T / group_len), tg = double(group_len);
  return float(double(coef) * double(d.E) / (double(d.K) * tg * tg * ng));
}

}  // namespace

float balance_loss_forward(const RouterCache& c, int64_t group_len, float coef, const RouterDims& d) {
  check_groups(group_len, d);
  const int64_t E = d.E, ng = d.T / group_len;
  std::vector<float> sn, sigma;
  normalised_scores(sn, sigma, c, d);
  const std::vector<float> cnt = group_counts(c, group_len, d);
  const float k = balance_constant(group_len, coef, d);
  const float one = 1.0f;
  std::vector<float> lg(ng), P(E);  // (groups), (E)
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t i = 0; i < E; ++i) P[i] = px::dot(&sn[g * group_len * E + i], E, &one, 0, group_len);
    lg[g] = px::dot(&cnt[g * E], 1, P.data(), 1, E) * k;
  }
  return px::row_sum(lg.data(), ng);
}

void balance_loss_backward(float* ds, const RouterCache& c, int64_t group_len, float coef, float dloss,
                           const RouterDims& d) {
  check_groups(group_len, d);
  const int64_t T = d.T, E = d.E;
  std::vector<float> sn, sigma;
  normalised_scores(sn, sigma, c, d);
  const std::vector<float> cnt = group_counts(c, group_len, d);
  const float k = balance_constant(group_len, coef, d);
#pragma omp parallel
  {
    std::vector<float> g(E);  // (E) ∂L/∂s' of one token
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const float* ct = &cnt[(t / group_len) * E];
      for (int64_t i = 0; i < E; ++i) g[i] = (ct[i] * k) * dloss;
      if (d.score == ScoringFunc::sigmoid) {
        const float delta = px::row_dot(g.data(), &sn[t * E], E);
        for (int64_t i = 0; i < E; ++i) ds[t * E + i] = ds[t * E + i] + (g[i] - delta) / sigma[t];
      } else {
        for (int64_t i = 0; i < E; ++i) ds[t * E + i] = ds[t * E + i] + g[i];
      }
    }
  }
}

namespace {
// lse_t, m_t, Z_t of the router logits.
void router_lse(std::vector<float>& lse, std::vector<float>& m, std::vector<float>& z, const RouterCache& c,
                const RouterDims& d) {
  const int64_t T = d.T, E = d.E;
  lse.assign(T, 0.f), m.assign(T, 0.f), z.assign(T, 0.f);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* l = &c.logits[t * E];
    m[t] = px::row_max(l, E);
    const float mt = m[t];
    z[t] = px::row_sum_by(E, [&](int64_t e) { return px::exp(l[e] - mt); });
    lse[t] = m[t] + px::log(z[t]);
  }
}
}  // namespace

float router_z_loss_forward(const RouterCache& c, float coef, const RouterDims& d) {
  if (d.T == 0) return 0.0f;
  std::vector<float> lse, m, z;
  router_lse(lse, m, z, c, d);
  return px::dot(lse.data(), 1, lse.data(), 1, d.T) * float(double(coef) / double(d.T));
}

void router_z_loss_backward(float* dl, const RouterCache& c, float coef, float dloss, const RouterDims& d) {
  if (d.T == 0) return;
  const int64_t T = d.T, E = d.E;
  std::vector<float> lse, m, z;
  router_lse(lse, m, z, c, d);
  const float two_k = float(2.0 * double(coef) / double(T));
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float a = (two_k * dloss) * lse[t];
    for (int64_t e = 0; e < E; ++e)
      dl[t * E + e] = dl[t * E + e] + a * (px::exp(c.logits[t * E + e] - m[t]) / z[t]);
  }
}

void router_bias_update(float* bias, const int64_t* counts, int64_t E, float gamma) {
  int64_t A = 0;
  for (int64_t e = 0; e < E; ++e) A += counts[e];
  for (int64_t e = 0; e < E; ++e) {
    if (counts[e] * E < A) bias[e] = bias[e] + gamma;
    else if (counts[e] * E > A) bias[e] = bias[e] - gamma;
  }
}

}  // namespace preflight::ref
