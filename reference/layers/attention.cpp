// MHA / GQA / MQA attention forward and backward (see attention.hpp for the order of every
// operation). Legend: T = tokens, C = hidden, H = query heads, G = key/value heads,
// Dh = head_dim, R = H/G query heads per key/value head.
#include "reference/layers/attention.hpp"

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/layers/attention_common.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/rmsnorm.hpp"

namespace preflight::ref {

// ------------------------------------------------------------------ dims, weights
GqaDims GqaDims::from(const ModelConfig& c, int64_t T) {
  PREFLIGHT_CHECK(c.attention == AttentionKind::gqa, "GqaDims: config '", c.name, "' is not GQA/MHA/MQA");
  return {T, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim};
}

GqaOptions GqaOptions::from(const ModelConfig& c) {
  GqaOptions o;
  o.rope = c.position == PositionKind::rope;
  o.rope_layout = RopeLayout::half;
  o.qk_norm = c.qk_norm;
  o.output_gate = c.attention_output_gate;
  o.bias = c.attention_bias;
  o.softcap = float(c.attn_logit_softcapping);
  o.eps = float(c.rms_norm_eps);
  return o;
}

std::vector<int64_t> gqa_weight_sizes(const GqaDims& d, const GqaOptions& o) {
  const int64_t HD = d.H * d.Dh, GD = d.G * d.Dh;
  return {HD * d.C, GD * d.C, GD * d.C, d.C * HD,
          o.bias ? HD : 0, o.bias ? GD : 0, o.bias ? GD : 0, o.bias ? d.C : 0,
          o.qk_norm ? d.Dh : 0, o.qk_norm ? d.Dh : 0, o.output_gate ? d.H * d.C : 0};
}

GqaWeights gqa_weights_view(float* flat, const GqaDims& d, const GqaOptions& o) {
  const auto sz = gqa_weight_sizes(d, o);
  float* p[11];
  for (int i = 0; i < 11; ++i) {
    p[i] = sz[i] ? flat : nullptr;
    flat += sz[i];
  }
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]};
}

float gqa_softmax_scale(const GqaDims& d, const RopeTable& rope) {
  return float(std::pow(double(d.Dh), -0.5) * rope.attention_mscale * rope.attention_mscale);
}

void gqa_check_arguments(const GqaDims& d, const GqaOptions& o, const RopeTable& rope, const GqaWeights& w) {
  PREFLIGHT_CHECK(d.T > 0 && d.C > 0 && d.H > 0 && d.G > 0 && d.Dh > 0, "gqa: dims T=", d.T, " C=", d.C,
                  " H=", d.H, " G=", d.G, " Dh=", d.Dh);
  PREFLIGHT_CHECK(d.H % d.G == 0, "gqa: num_key_value_heads ", d.G, " must divide num_attention_heads ", d.H);
  if (o.rope) PREFLIGHT_CHECK(rope.dim == d.Dh, "gqa: rope table dim ", rope.dim, " != head_dim ", d.Dh);
  PREFLIGHT_CHECK(o.softcap >= 0.0f, "gqa: softcap ", o.softcap, ", expected >= 0");
  PREFLIGHT_CHECK(w.wq && w.wk && w.wv && w.wo, "gqa: null projection weight");
  if (o.bias) PREFLIGHT_CHECK(w.bq && w.bk && w.bv && w.bo, "gqa: bias enabled but a bias tensor is null");
  if (o.qk_norm) PREFLIGHT_CHECK(w.q_norm && w.k_norm, "gqa: qk_norm enabled but q_norm/k_norm is null");
  if (o.output_gate) PREFLIGHT_CHECK(w.w_gate, "gqa: output_gate enabled but w_gate is null");
}

// ------------------------------------------------------------------ forward
void gqa_forward(float* out, GqaCache& c, const float* x, const GqaWeights& w, const int32_t* doc,
                 const int32_t* pos, const RopeTable& rope, const GqaOptions& o, const GqaDims& d) {
  gqa_check_arguments(d, o, rope, w);
  const int64_t T = d.T, H = d.H, G = d.G, Dh = d.Dh, R = H / G, HD = H * Dh, GD = G * Dh;
  std::vector<int32_t> posv;
  resolve_documents(c.s0, posv, doc, pos, T, "gqa");
  c.q.assign(T * HD, 0.f), c.k.assign(T * GD, 0.f), c.v.assign(T * GD, 0.f);
  if (o.qk_norm) {
    c.q_raw.assign(T * HD, 0.f), c.k_raw.assign(T * GD, 0.f), c.q_rstd.assign(T * H, 0.f), c.k_rstd.assign(T * G, 0.f);
    linear_forward(c.q_raw.data(), x, w.wq, w.bq, T, HD, d.C, o.precision);
    linear_forward(c.k_raw.data(), x, w.wk, w.bk, T, GD, d.C, o.precision);
    rmsnorm_forward(c.q.data(), c.q_rstd.data(), c.q_raw.data(), w.q_norm, o.eps, T * H, Dh);
    rmsnorm_forward(c.k.data(), c.k_rstd.data(), c.k_raw.data(), w.k_norm, o.eps, T * G, Dh);
  } else {
    linear_forward(c.q.data(), x, w.wq, w.bq, T, HD, d.C, o.precision);
    linear_forward(c.k.data(), x, w.wk, w.bk, T, GD, d.C, o.precision);
  }
  linear_forward(c.v.data(), x, w.wv, w.bv, T, GD, d.C, o.precision);
  if (o.rope) {
    rope_forward(c.q.data(), posv.data(), rope, T, H, HD, Dh, o.rope_layout);
    rope_forward(c.k.data(), posv.data(), rope, T, G, GD, Dh, o.rope_layout);
  }
  const float scale = gqa_softmax_scale(d, rope), cap = o.softcap;
  c.p.assign(H * T * T, 0.f);
  if (cap > 0.0f) c.th.assign(H * T * T, 0.f);
  std::vector<float>& oa = o.output_gate ? c.o_pre : c.o;  // (T,H,Dh) attention output
  oa.assign(T * HD, 0.f);
  std::vector<float> row_max(H * T);  // (H,T) max logit of each row (QK-Clip statistics)
#pragma omp parallel
  {
    std::vector<float> l(T);  // (T) logits of one row
#pragma omp for collapse(2) schedule(static)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t g = h / R, s0 = c.s0[t], n = t - s0 + 1;
        for (int64_t s = s0; s <= t; ++s) {
          const float r = px::dot(&c.q[(t * H + h) * Dh], 1, &c.k[(s * G + g) * Dh], 1, Dh) * scale;
          if (cap > 0.0f) {
            const float th = px::tanh(r / cap);
            c.th[(h * T + t) * T + s] = th;
            l[s - s0] = cap * th;
          } else {
            l[s - s0] = r;
          }
        }
        row_max[h * T + t] = px::row_max(l.data(), n);
        float* p = &c.p[(h * T + t) * T + s0];  // (n)
        softmax_row(p, l.data(), n);
        for (int64_t e = 0; e < Dh; ++e)
          oa[(t * H + h) * Dh + e] = px::dot(p, 1, &c.v[(s0 * G + g) * Dh + e], GD, n);
      }
  }
  c.max_logit.assign(H, 0.f);
  for (int64_t h = 0; h < H; ++h) c.max_logit[h] = px::row_max(&row_max[h * T], T);
  if (o.output_gate) {
    c.gate_logit.assign(T * H, 0.f), c.gate.assign(T * H, 0.f), c.o.assign(T * HD, 0.f);
    matmul_forward(c.gate_logit.data(), x, w.w_gate, nullptr, T, H, d.C);
    for (int64_t i = 0; i < T * H; ++i) c.gate[i] = px::sigmoid(c.gate_logit[i]);
    for (int64_t i = 0; i < T * HD; ++i) c.o[i] = c.o_pre[i] * c.gate[i / Dh];
  }
  linear_forward(out, c.o.data(), w.wo, w.bo, T, d.C, HD, o.precision);
}

// ------------------------------------------------------------------ backward
void gqa_backward(float* dx, const GqaWeights& dw, const float* dout, const GqaCache& c, const float* x,
                  const GqaWeights& w, const int32_t* doc, const int32_t* pos, const RopeTable& rope,
                  const GqaOptions& o, const GqaDims& d) {
  gqa_check_arguments(d, o, rope, w);
  const int64_t T = d.T, H = d.H, G = d.G, Dh = d.Dh, R = H / G, HD = H * Dh, GD = G * Dh;
  std::vector<int64_t> s0v;
  std::vector<int32_t> posv;
  resolve_documents(s0v, posv, doc, pos, T, "gqa");
  std::vector<int64_t> t1(T);  // (T) last query position that may attend to s (same document)
  for (int64_t s = T - 1; s >= 0; --s) t1[s] = (s + 1 < T && s0v[s + 1] == s0v[s]) ? t1[s + 1] : s;
  const float scale = gqa_softmax_scale(d, rope), cap = o.softcap;

  std::vector<float> dO(T * HD, 0.f);  // (T,H,Dh)
  linear_backward(dO.data(), dw.wo, dw.bo, dout, c.o.data(), w.wo, T, d.C, HD, o.precision);
  std::vector<float> dA;  // (T,H) gate-logit gradient
  if (o.output_gate) {
    dA.assign(T * H, 0.f);
    for (int64_t i = 0; i < T * H; ++i) {
      const float dgate = px::dot(&dO[i * Dh], 1, &c.o_pre[i * Dh], 1, Dh);
      dA[i] = dgate * (c.gate[i] * px::sigmoid(-c.gate_logit[i]));
      for (int64_t e = 0; e < Dh; ++e) dO[i * Dh + e] = dO[i * Dh + e] * c.gate[i];
    }
  }
  // dS[h,t,s] = ((p·(dp − Σ p·dp))·(1 − th²))·scale with dp[s] = dot_k128(dO[t,h,:], v[s,g,:], Dh).
  std::vector<float> dS(H * T * T, 0.f);  // (H,T,T)
#pragma omp parallel
  {
    std::vector<float> dp(T);  // (T)
#pragma omp for collapse(2) schedule(static)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t g = h / R, s0 = s0v[t], n = t - s0 + 1;
        for (int64_t s = s0; s <= t; ++s) dp[s - s0] = px::dot(&dO[(t * H + h) * Dh], 1, &c.v[(s * G + g) * Dh], 1, Dh);
        const float* p = &c.p[(h * T + t) * T + s0];
        const float delta = px::row_dot(p, dp.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          float dl = p[i] * (dp[i] - delta);
          if (cap > 0.0f) {
            const float th = c.th[(h * T + t) * T + s0 + i];
            dl = dl * (1.0f - th * th);
          }
          dS[(h * T + t) * T + s0 + i] = dl * scale;
        }
      }
  }
  // Per query head: dq, and that head's contributions to dk, dv of its key/value head.
  std::vector<float> dq(T * HD), dkh(T * HD), dvh(T * HD);  // (T,H,Dh) each
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t g = h / R, s0 = s0v[t], n = t - s0 + 1;
      for (int64_t i = 0; i < Dh; ++i)
        dq[(t * H + h) * Dh + i] = px::dot(&dS[(h * T + t) * T + s0], 1, &c.k[(s0 * G + g) * Dh + i], GD, n);
      const int64_t s = t, m = t1[s] - s + 1;  // as a key/value position: queries u ∈ [s, t1(s)]
      for (int64_t i = 0; i < Dh; ++i) {
        dkh[(s * H + h) * Dh + i] = px::dot(&dS[(h * T + s) * T + s], T, &c.q[(s * H + h) * Dh + i], HD, m);
        dvh[(s * H + h) * Dh + i] = px::dot(&c.p[(h * T + s) * T + s], T, &dO[(s * H + h) * Dh + i], HD, m);
      }
    }
  // The group's heads summed in ascending order from +0.
  std::vector<float> dk(T * GD), dv(T * GD);  // (T,G,Dh) each
  for (int64_t s = 0; s < T; ++s)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t i = 0; i < Dh; ++i) {
        float ak = 0.0f, av = 0.0f;
        for (int64_t h = g * R; h < (g + 1) * R; ++h) {
          ak = ak + dkh[(s * H + h) * Dh + i];
          av = av + dvh[(s * H + h) * Dh + i];
        }
        dk[(s * G + g) * Dh + i] = ak, dv[(s * G + g) * Dh + i] = av;
      }
  if (o.rope) {
    rope_backward(dq.data(), posv.data(), rope, T, H, HD, Dh, o.rope_layout);
    rope_backward(dk.data(), posv.data(), rope, T, G, GD, Dh, o.rope_layout);
  }
  if (o.qk_norm) {
    std::vector<float> dq_raw(T * HD, 0.f), dk_raw(T * GD, 0.f);  // (T,H,Dh), (T,G,Dh)
    rmsnorm_backward(dq_raw.data(), dw.q_norm, dq.data(), c.q_raw.data(), w.q_norm, c.q_rstd.data(), T * H, Dh);
    rmsnorm_backward(dk_raw.data(), dw.k_norm, dk.data(), c.k_raw.data(), w.k_norm, c.k_rstd.data(), T * G, Dh);
    dq.swap(dq_raw), dk.swap(dk_raw);
  }
  // dx: q, k, v projections, then the gate.
  linear_backward(dx, dw.wq, dw.bq, dq.data(), x, w.wq, T, HD, d.C, o.precision);
  linear_backward(dx, dw.wk, dw.bk, dk.data(), x, w.wk, T, GD, d.C, o.precision);
  linear_backward(dx, dw.wv, dw.bv, dv.data(), x, w.wv, T, GD, d.C, o.precision);
  if (o.output_gate) matmul_backward(dx, dw.w_gate, nullptr, dA.data(), x, w.w_gate, T, H, d.C);
}

}  // namespace preflight::ref
