// Multi-head latent attention, naive and absorbed orders (see mla.hpp for the order of
// every operation). Legend: T = tokens, C = hidden, H = heads, Rq = q_lora_rank,
// Rkv = kv_lora_rank, Dn/Dr/Dv = nope/rope/value head widths, D = Dn + Dr.
#include "reference/layers/mla.hpp"

#include "reference/layers/attention_common.hpp"

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/rmsnorm.hpp"

namespace preflight::ref {

MlaDims MlaDims::from(const ModelConfig& c, int64_t T) {
  PREFLIGHT_CHECK(c.attention == AttentionKind::mla, "MlaDims: config '", c.name, "' is not MLA");
  return {T, c.hidden_size, c.num_attention_heads, c.q_lora_rank, c.kv_lora_rank,
          c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim};
}

std::vector<int64_t> mla_weight_sizes(const MlaDims& d) {
  const int64_t HD = d.H * d.D();
  return {d.Rq ? d.Rq * d.C : 0, d.Rq, d.Rq ? HD * d.Rq : 0, d.Rq ? 0 : HD * d.C,
          (d.Rkv + d.Dr) * d.C, d.Rkv, d.H * (d.Dn + d.Dv) * d.Rkv, d.C * d.H * d.Dv};
}

MlaWeights mla_weights_view(float* flat, const MlaDims& d) {
  const auto sz = mla_weight_sizes(d);
  float* p[8];
  for (int i = 0; i < 8; ++i) {
    p[i] = sz[i] ? flat : nullptr;
    flat += sz[i];
  }
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]};
}

float mla_softmax_scale(const MlaDims& d, const RopeTable& rope) {
  return float(std::pow(double(d.D()), -0.5) * rope.attention_mscale * rope.attention_mscale);
}

namespace {

void check_dims(const MlaDims& d, const RopeTable& rope) {
  PREFLIGHT_CHECK(d.T > 0 && d.C > 0 && d.H > 0 && d.Rkv > 0 && d.Dn > 0 && d.Dv > 0,
                  "mla: dims T=", d.T, " C=", d.C, " H=", d.H, " Rkv=", d.Rkv, " Dn=", d.Dn, " Dv=", d.Dv);
  PREFLIGHT_CHECK(rope.dim == d.Dr, "mla: rope table dim ", rope.dim, " != qk_rope_head_dim ", d.Dr);
}


// Projections shared by both orders: q (after RoPE), kv (k_pe after RoPE), c, cn.
void mla_project(MlaCache& c, const float* x, const MlaWeights& w, const int32_t* pos,
                 const RopeTable& rope, float eps, const MlaDims& d) {
  const int64_t T = d.T, D = d.D(), HD = d.H * D, KA = d.Rkv + d.Dr;
  c.q.assign(T * HD, 0.f);
  if (d.Rq > 0) {
    c.qa.assign(T * d.Rq, 0.f), c.qa_rstd.assign(T, 0.f), c.qan.assign(T * d.Rq, 0.f);
    linear_forward(c.qa.data(), x, w.wq_a, nullptr, T, d.Rq, d.C, d.precision);
    rmsnorm_forward(c.qan.data(), c.qa_rstd.data(), c.qa.data(), w.q_norm, eps, T, d.Rq);
    linear_forward(c.q.data(), c.qan.data(), w.wq_b, nullptr, T, HD, d.Rq, d.precision);
  } else {
    linear_forward(c.q.data(), x, w.wq, nullptr, T, HD, d.C, d.precision);
  }
  rope_forward(c.q.data() + d.Dn, pos, rope, T, d.H, HD, D);
  c.kv.assign(T * KA, 0.f), c.c.assign(T * d.Rkv, 0.f), c.kv_rstd.assign(T, 0.f), c.cn.assign(T * d.Rkv, 0.f);
  linear_forward(c.kv.data(), x, w.wkv_a, nullptr, T, KA, d.C, d.precision);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < d.Rkv; ++r) c.c[t * d.Rkv + r] = c.kv[t * KA + r];
  rmsnorm_forward(c.cn.data(), c.kv_rstd.data(), c.c.data(), w.kv_norm, eps, T, d.Rkv);
  rope_forward(c.kv.data() + d.Rkv, pos, rope, T, 1, KA, 0);
}


}  // namespace

void mla_forward(float* out, MlaCache& c, const float* x, const MlaWeights& w, const int32_t* doc,
                 const int32_t* pos, const RopeTable& rope, float eps, const MlaDims& d) {
  check_dims(d, rope);
  const int64_t T = d.T, H = d.H, D = d.D(), KA = d.Rkv + d.Dr, VB = d.Dn + d.Dv;
  std::vector<int32_t> posv;
  resolve_documents(c.s0, posv, doc, pos, T, "mla");
  mla_project(c, x, w, posv.data(), rope, eps, d);
  c.kvb.assign(T * H * VB, 0.f);
  linear_forward(c.kvb.data(), c.cn.data(), w.wkv_b, nullptr, T, H * VB, d.Rkv, d.precision);
  c.k.assign(T * H * D, 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      float* k = &c.k[(t * H + h) * D];  // (D)
      for (int64_t i = 0; i < d.Dn; ++i) k[i] = c.kvb[(t * H + h) * VB + i];
      for (int64_t i = 0; i < d.Dr; ++i) k[d.Dn + i] = c.kv[t * KA + d.Rkv + i];
    }
  const float scale = mla_softmax_scale(d, rope);
  c.p.assign(H * T * T, 0.f);
  c.o.assign(T * H * d.Dv, 0.f);
  std::vector<float> row_max(H * T);  // (H,T) max logit of each row (QK-Clip statistics)
#pragma omp parallel
  {
    std::vector<float> l(T);  // (T) logits of one row
#pragma omp for collapse(2) schedule(static)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t s0 = c.s0[t], n = t - s0 + 1;
        for (int64_t s = s0; s <= t; ++s)
          l[s - s0] = px::dot(&c.q[(t * H + h) * D], 1, &c.k[(s * H + h) * D], 1, D) * scale;
        row_max[h * T + t] = px::row_max(l.data(), n);
        float* p = &c.p[(h * T + t) * T + s0];  // (n)
        softmax_row(p, l.data(), n);
        for (int64_t e = 0; e < d.Dv; ++e)
          c.o[(t * H + h) * d.Dv + e] = px::dot(p, 1, &c.kvb[(s0 * H + h) * VB + d.Dn + e], H * VB, n);
      }
  }
  c.max_logit.assign(H, 0.f);
  for (int64_t h = 0; h < H; ++h) c.max_logit[h] = px::row_max(&row_max[h * T], T);
  linear_forward(out, c.o.data(), w.wo, nullptr, T, d.C, H * d.Dv, d.precision);
}

void mla_forward_absorbed(float* out, const float* x, const MlaWeights& w, const int32_t* doc,
                          const int32_t* pos, const RopeTable& rope, float eps, const MlaDims& d) {
  check_dims(d, rope);
  const int64_t T = d.T, H = d.H, D = d.D(), KA = d.Rkv + d.Dr, VB = d.Dn + d.Dv, R = d.Rkv;
  MlaCache c;
  std::vector<int32_t> posv;
  resolve_documents(c.s0, posv, doc, pos, T, "mla");
  mla_project(c, x, w, posv.data(), rope, eps, d);
  const float scale = mla_softmax_scale(d, rope);
  std::vector<float> o(T * H * d.Dv);  // (T,H,Dv)
#pragma omp parallel
  {
    std::vector<float> qlat(R), l(T), p(T), olat(R);  // (Rkv), (T), (T), (Rkv)
#pragma omp for collapse(2) schedule(static)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const float* q = &c.q[(t * H + h) * D];                // (D)
        const float* wkb = w.wkv_b + (h * VB) * R;              // (Dn,Rkv)
        const float* wvb = w.wkv_b + (h * VB + d.Dn) * R;       // (Dv,Rkv)
        for (int64_t r = 0; r < R; ++r) qlat[r] = px::dot(q, 1, wkb + r, R, d.Dn);
        const int64_t s0 = c.s0[t], n = t - s0 + 1;
        for (int64_t s = s0; s <= t; ++s)
          l[s - s0] = (px::dot(qlat.data(), 1, &c.cn[s * R], 1, R) +
                       px::dot(q + d.Dn, 1, &c.kv[s * KA + R], 1, d.Dr)) * scale;
        softmax_row(p.data(), l.data(), n);
        for (int64_t r = 0; r < R; ++r) olat[r] = px::dot(p.data(), 1, &c.cn[s0 * R + r], R, n);
        for (int64_t e = 0; e < d.Dv; ++e)
          o[(t * H + h) * d.Dv + e] = px::dot(olat.data(), 1, wvb + e * R, 1, R);
      }
  }
  linear_forward(out, o.data(), w.wo, nullptr, T, d.C, H * d.Dv, d.precision);
}

void mla_backward(float* dx, const MlaWeights& dw, const float* dout, const MlaCache& c,
                  const float* x, const MlaWeights& w, const int32_t* doc, const int32_t* pos,
                  const RopeTable& rope, const MlaDims& d) {
  check_dims(d, rope);
  const int64_t T = d.T, H = d.H, D = d.D(), KA = d.Rkv + d.Dr, VB = d.Dn + d.Dv, Dv = d.Dv;
  std::vector<int64_t> s0v;
  std::vector<int32_t> posv;
  resolve_documents(s0v, posv, doc, pos, T, "mla");
  std::vector<int64_t> t1(T);  // (T) last query position that may attend to s (same document)
  for (int64_t s = T - 1; s >= 0; --s) t1[s] = (s + 1 < T && s0v[s + 1] == s0v[s]) ? t1[s + 1] : s;
  const float scale = mla_softmax_scale(d, rope);

  std::vector<float> dO(T * H * Dv, 0.f);  // (T,H,Dv)
  linear_backward(dO.data(), dw.wo, nullptr, dout, c.o.data(), w.wo, T, d.C, H * Dv, d.precision);
  // dS[h,t,s] = (p·(dp − Σ p·dp))·scale with dp[s] = dot_k128(dO[t,h,:], v[s,h,:], Dv).
  std::vector<float> dS(H * T * T, 0.f);  // (H,T,T)
#pragma omp parallel
  {
    std::vector<float> dp(T);  // (T)
#pragma omp for collapse(2) schedule(static)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t s0 = s0v[t], n = t - s0 + 1;
        for (int64_t s = s0; s <= t; ++s)
          dp[s - s0] = px::dot(&dO[(t * H + h) * Dv], 1, &c.kvb[(s * H + h) * VB + d.Dn], 1, Dv);
        const float* p = &c.p[(h * T + t) * T + s0];
        const float delta = px::row_dot(p, dp.data(), n);
        for (int64_t i = 0; i < n; ++i) dS[(h * T + t) * T + s0 + i] = (p[i] * (dp[i] - delta)) * scale;
      }
  }
  std::vector<float> dq(T * H * D), dk(T * H * D), dkvb(T * H * VB);  // (T,H,D), (T,H,D), (T,H,Dn+Dv)
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t) {
      // dq[t,h,:] = Σ_{s ∈ [s0,t]} dS[h,t,s]·k[s,h,:]   (dot_k128 over s ascending)
      const int64_t s0 = s0v[t], n = t - s0 + 1;
      for (int64_t i = 0; i < D; ++i)
        dq[(t * H + h) * D + i] = px::dot(&dS[(h * T + t) * T + s0], 1, &c.k[(s0 * H + h) * D + i], H * D, n);
      // as a key/value position s = t: Σ over queries u ∈ [s, t1(s)]
      const int64_t s = t, m = t1[s] - s + 1;
      for (int64_t i = 0; i < D; ++i)
        dk[(s * H + h) * D + i] = px::dot(&dS[(h * T + s) * T + s], T, &c.q[(s * H + h) * D + i], H * D, m);
      for (int64_t e = 0; e < Dv; ++e)
        dkvb[(s * H + h) * VB + d.Dn + e] = px::dot(&c.p[(h * T + s) * T + s], T, &dO[(s * H + h) * Dv + e], H * Dv, m);
      for (int64_t i = 0; i < d.Dn; ++i) dkvb[(s * H + h) * VB + i] = dk[(s * H + h) * D + i];
    }
  // The shared rotary key's gradient: heads summed in ascending order from +0.
  std::vector<float> dkv(T * KA, 0.f);  // (T,Rkv+Dr)
  for (int64_t s = 0; s < T; ++s)
    for (int64_t i = 0; i < d.Dr; ++i) {
      float acc = 0.0f;
      for (int64_t h = 0; h < H; ++h) acc = acc + dk[(s * H + h) * D + d.Dn + i];
      dkv[s * KA + d.Rkv + i] = acc;
    }
  rope_backward(dkv.data() + d.Rkv, posv.data(), rope, T, 1, KA, 0);
  rope_backward(dq.data() + d.Dn, posv.data(), rope, T, H, H * D, D);
  // kv path: Wkvb, kv_norm, then Wkva.
  std::vector<float> dcn(T * d.Rkv, 0.f), dc(T * d.Rkv, 0.f);  // (T,Rkv) each
  linear_backward(dcn.data(), dw.wkv_b, nullptr, dkvb.data(), c.cn.data(), w.wkv_b, T, H * VB, d.Rkv, d.precision);
  rmsnorm_backward(dc.data(), dw.kv_norm, dcn.data(), c.c.data(), w.kv_norm, c.kv_rstd.data(), T, d.Rkv);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < d.Rkv; ++r) dkv[t * KA + r] = dc[t * d.Rkv + r];
  // dx accumulates the query path first, then the kv path.
  if (d.Rq > 0) {
    std::vector<float> dqan(T * d.Rq, 0.f), dqa(T * d.Rq, 0.f);  // (T,Rq) each
    linear_backward(dqan.data(), dw.wq_b, nullptr, dq.data(), c.qan.data(), w.wq_b, T, H * D, d.Rq, d.precision);
    rmsnorm_backward(dqa.data(), dw.q_norm, dqan.data(), c.qa.data(), w.q_norm, c.qa_rstd.data(), T, d.Rq);
    linear_backward(dx, dw.wq_a, nullptr, dqa.data(), x, w.wq_a, T, d.Rq, d.C, d.precision);
  } else {
    linear_backward(dx, dw.wq, nullptr, dq.data(), x, w.wq, T, H * D, d.C, d.precision);
  }
  linear_backward(dx, dw.wkv_a, nullptr, dkv.data(), x, w.wkv_a, T, KA, d.C, d.precision);
}

}  // namespace preflight::ref
