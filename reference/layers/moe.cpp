// MoE block: dispatch, routed + shared SwiGLU experts, combine, losses (order: moe.hpp).
// Legend: T = tokens, C = hidden, E = routed experts, K = top-k, I = expert width,
//         S = shared width, N = T·K dispatched rows.
#include "reference/layers/moe.hpp"

#include <cstring>

#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/swiglu.hpp"

namespace preflight::ref {

MoeDims MoeDims::from(const ModelConfig& c, int64_t T) {
  MoeDims d;
  d.r = RouterDims::from(c, T);
  d.I = c.moe_intermediate_size;
  d.S = c.n_shared_experts * c.moe_intermediate_size;
  return d;
}

std::vector<int64_t> moe_weight_sizes(const MoeDims& d) {
  const int64_t E = d.r.E, C = d.r.C;
  return {E * C, E, E * 3 * d.I * C, d.S * C, d.S * C, C * d.S};
}

MoeWeights moe_weights_view(float* flat, const MoeDims& d) {
  const auto sz = moe_weight_sizes(d);
  float* p[6];
  for (int i = 0; i < 6; ++i) {
    p[i] = sz[i] ? flat : nullptr;
    flat += sz[i];
  }
  MoeWeights w;
  w.gate = p[0], w.bias = p[1], w.experts = p[2], w.shared_w1 = p[3], w.shared_w3 = p[4], w.shared_w2 = p[5];
  return w;
}

namespace {

void check_moe(const MoeDims& d, const MoeLossOptions& opt) {
  check_router_dims(d.r);
  PREFLIGHT_CHECK(d.I > 0 && d.S >= 0, "moe: expert width I = ", d.I, " and shared width S = ", d.S,
                  ", expected I > 0, S >= 0");
  const int64_t L = opt.seq_len ? opt.seq_len : d.r.T;
  PREFLIGHT_CHECK(d.r.T == 0 || (L > 0 && d.r.T % L == 0), "moe: seq_len = ", opt.seq_len,
                  " must divide T = ", d.r.T);
}

// Dispatch plan from the selection: rows grouped by expert, ascending token order inside.
void plan_dispatch(MoeCache& c, const MoeDims& d) {
  const int64_t T = d.r.T, E = d.r.E, K = d.r.K;
  c.counts.assign(E, 0);
  router_counts(c.counts.data(), c.router, d.r);
  c.offsets.assign(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) c.offsets[e + 1] = c.offsets[e] + c.counts[e];
  std::vector<int64_t> next(c.offsets.begin(), c.offsets.end() - 1);  // (E)
  c.row_of.assign(T * K, 0), c.token_of.assign(T * K, 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j) {
      const int64_t row = next[c.router.idx[t * K + j]]++;
      c.row_of[t * K + j] = row, c.token_of[row] = t;
    }
}

}  // namespace

void moe_forward(float* out, MoeCache& c, const float* x, const MoeWeights& w, const MoeLossOptions& opt,
                 const MoeDims& d) {
  check_moe(d, opt);
  PREFLIGHT_CHECK(out && x && w.gate && w.experts, "moe_forward: null out, x, gate or experts");
  PREFLIGHT_CHECK(d.S == 0 || (w.shared_w1 && w.shared_w3 && w.shared_w2), "moe_forward: shared width S = ",
                  d.S, " but the shared expert weights are null");
  const int64_t T = d.r.T, C = d.r.C, E = d.r.E, K = d.r.K, I = d.I, S = d.S, N = T * K;
  router_forward(c.router, x, w.gate, w.bias, d.r);
  plan_dispatch(c, d);
  c.xe.assign(N * C, 0.f);
  for (int64_t r = 0; r < N; ++r) std::memcpy(&c.xe[r * C], x + c.token_of[r] * C, C * sizeof(float));
  c.h1.assign(N * I, 0.f), c.h3.assign(N * I, 0.f), c.act.assign(N * I, 0.f);
  std::vector<float> oe(N * C);  // (N,C) expert outputs in dispatch order
  // Threads split the experts (each expert's GEMMs then run inside one thread: OpenMP does
  // not nest by default). Every element has its own fixed chain, so the bits do not depend
  // on this split.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = c.offsets[e], n = c.counts[e];
    if (n == 0) continue;
    swiglu_forward(&oe[r0 * C], &c.h1[r0 * I], &c.h3[r0 * I], &c.act[r0 * I], &c.xe[r0 * C], w.w1(e, d),
                   w.w3(e, d), w.w2(e, d), n, C, I, d.precision);
  }
  c.o.assign(T * K * C, 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j) std::memcpy(&c.o[(t * K + j) * C], &oe[c.row_of[t * K + j] * C], C * sizeof(float));
  std::vector<float> sh;  // (T,C) shared expert output
  if (S > 0) {
    sh.assign(T * C, 0.f), c.sh1.assign(T * S, 0.f), c.sh3.assign(T * S, 0.f), c.sact.assign(T * S, 0.f);
    swiglu_forward(sh.data(), c.sh1.data(), c.sh3.data(), c.sact.data(), x, w.shared_w1, w.shared_w3, w.shared_w2,
                   T, C, S, d.precision);
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t ch = 0; ch < C; ++ch) {
      const float r = px::dot(&c.router.weights[t * K], 1, &c.o[t * K * C + ch], C, K);
      out[t * C + ch] = S > 0 ? r + sh[t * C + ch] : r;
    }
  const int64_t L = opt.seq_len ? opt.seq_len : T;
  c.losses = {};
  if (T > 0) {
    if (opt.seq_aux_alpha != 0) c.losses.seq_aux = balance_loss_forward(c.router, L, opt.seq_aux_alpha, d.r);
    if (opt.lb_coef != 0) c.losses.lb = balance_loss_forward(c.router, T, opt.lb_coef, d.r);
    if (opt.z_coef != 0) c.losses.z = router_z_loss_forward(c.router, opt.z_coef, d.r);
  }
}

void moe_backward(float* dx, const MoeWeights& dw, const float* dout, const MoeCache& c, const float* x,
                  const MoeWeights& w, const MoeLossOptions& opt, float dloss_aux, const MoeDims& d) {
  check_moe(d, opt);
  const int64_t T = d.r.T, C = d.r.C, E = d.r.E, K = d.r.K, I = d.I, S = d.S, N = T * K;
  if (T == 0) return;
  // Combine: gradients of the weights and of the expert outputs (dispatch order).
  std::vector<float> dwt(T * K), doe(N * C);  // (T,K), (N,C)
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j) {
      dwt[t * K + j] = px::dot(dout + t * C, 1, &c.o[(t * K + j) * C], 1, C);
      const float wj = c.router.weights[t * K + j];
      float* g = &doe[c.row_of[t * K + j] * C];
      for (int64_t ch = 0; ch < C; ++ch) g[ch] = wj * dout[t * C + ch];
    }
  // Routed experts, each over its rows in token order.
  std::vector<float> dxe(N * C, 0.f);  // (N,C)
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = c.offsets[e], n = c.counts[e];
    if (n == 0) continue;
    swiglu_backward(&dxe[r0 * C], dw.w1(e, d), dw.w3(e, d), dw.w2(e, d), &doe[r0 * C], &c.h1[r0 * I],
                    &c.h3[r0 * I], &c.act[r0 * I], &c.xe[r0 * C], w.w1(e, d), w.w3(e, d), w.w2(e, d), n, C, I, d.precision);
  }
  std::vector<float> dxl(T * C, 0.f);  // (T,C) this block's input gradient
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j) {
      const float* g = &dxe[c.row_of[t * K + j] * C];
      for (int64_t ch = 0; ch < C; ++ch) dxl[t * C + ch] = dxl[t * C + ch] + g[ch];
    }
  if (S > 0)
    swiglu_backward(dxl.data(), dw.shared_w1, dw.shared_w3, dw.shared_w2, dout, c.sh1.data(), c.sh3.data(),
                    c.sact.data(), x, w.shared_w1, w.shared_w3, w.shared_w2, T, C, S, d.precision);
  // Router: weights, balance losses, score function, z-loss, gate GEMM.
  std::vector<float> ds(T * E, 0.f), dl(T * E, 0.f);  // (T,E) each
  router_weights_backward(ds.data(), dwt.data(), c.router, d.r);
  const int64_t L = opt.seq_len ? opt.seq_len : T;
  if (opt.seq_aux_alpha != 0) balance_loss_backward(ds.data(), c.router, L, opt.seq_aux_alpha, dloss_aux, d.r);
  if (opt.lb_coef != 0) balance_loss_backward(ds.data(), c.router, T, opt.lb_coef, dloss_aux, d.r);
  router_scores_backward(dl.data(), ds.data(), c.router, d.r);
  if (opt.z_coef != 0) router_z_loss_backward(dl.data(), c.router, opt.z_coef, dloss_aux, d.r);
  matmul_backward(dxl.data(), dw.gate, nullptr, dl.data(), x, w.gate, T, E, C);
  if (dx) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < T * C; ++i) dx[i] = dx[i] + dxl[i];
  }
}

}  // namespace preflight::ref
