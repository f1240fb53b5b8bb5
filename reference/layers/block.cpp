// Pre-norm transformer block (order of every operation: block.hpp).
// Legend: B = sequences, T = tokens per sequence, N = B·T rows, C = hidden, I = dense width.
#include "reference/layers/block.hpp"

#include <cmath>
#include <cstring>

#include "reference/core/error.hpp"
#include "reference/layers/gpt_layers.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/rmsnorm.hpp"
#include "reference/layers/swiglu.hpp"
#include "reference/numerics/bf16.hpp"
#include "reference/numerics/hd.hpp"

namespace preflight::ref {

void check_block_config(const ModelConfig& c) {
  PREFLIGHT_CHECK(c.ffn == FfnKind::gelu || !c.mlp_bias, "model '", c.name,
                  "': mlp_bias = true is not supported by the SwiGLU blocks (only by the GELU MLP)");
  PREFLIGHT_CHECK(c.ffn == FfnKind::swiglu || c.n_routed_experts == 0, "model '", c.name,
                  "': hidden_act = gelu with n_routed_experts = ", c.n_routed_experts,
                  "; the reference MoE experts are SwiGLU");
  PREFLIGHT_CHECK(c.position == PositionKind::rope || c.attention == AttentionKind::gqa, "model '", c.name,
                  "': position_embedding = ", to_string(c.position), " requires attention_kind = gqa");
}

BlockDims BlockDims::from(const ModelConfig& c, bool moe_block, int64_t B, int64_t T) {
  check_block_config(c);
  BlockDims d;
  d.B = B, d.T = T, d.C = c.hidden_size, d.eps = float(c.rms_norm_eps), d.attention = c.attention;
  if (c.attention == AttentionKind::mla) {
    d.mla = MlaDims::from(c, T);
  } else {
    d.gqa = GqaDims::from(c, T);
    d.gqa_opt = GqaOptions::from(c);
  }
  d.moe = moe_block;
  if (moe_block) d.moe_dims = MoeDims::from(c, B * T);
  d.I = c.intermediate_size;
  d.norm = c.norm, d.ffn = c.ffn, d.mlp_bias = c.mlp_bias;
  return d;
}

std::vector<ParamSpec> block_param_specs(const BlockDims& d) {
  const int64_t C = d.C;
  std::vector<ParamSpec> s;
  auto add = [&](std::string name, std::vector<int64_t> shape, int64_t size, ParamInit init, bool trainable = true) {
    if (size > 0) s.push_back({std::move(name), std::move(shape), init, trainable});
  };
  const bool ln = d.norm == NormKind::layernorm;
  add("attn_norm", {C}, C, ParamInit::ones);
  add("attn_norm_bias", {C}, ln ? C : 0, ParamInit::zeros);
  if (d.attention == AttentionKind::mla) {
    const MlaDims& m = d.mla;
    const auto sz = mla_weight_sizes(m);
    const int64_t HD = m.H * m.D();
    add("attn.wq_a", {m.Rq, C}, sz[0], ParamInit::normal);
    add("attn.q_norm", {m.Rq}, sz[1], ParamInit::ones);
    add("attn.wq_b", {HD, m.Rq}, sz[2], ParamInit::normal);
    add("attn.wq", {HD, C}, sz[3], ParamInit::normal);
    add("attn.wkv_a", {m.Rkv + m.Dr, C}, sz[4], ParamInit::normal);
    add("attn.kv_norm", {m.Rkv}, sz[5], ParamInit::ones);
    add("attn.wkv_b", {m.H * (m.Dn + m.Dv), m.Rkv}, sz[6], ParamInit::normal);
    add("attn.wo", {C, m.H * m.Dv}, sz[7], ParamInit::normal);
  } else {
    const GqaDims& g = d.gqa;
    const auto sz = gqa_weight_sizes(g, d.gqa_opt);
    add("attn.wq", {g.H * g.Dh, C}, sz[0], ParamInit::normal);
    add("attn.wk", {g.G * g.Dh, C}, sz[1], ParamInit::normal);
    add("attn.wv", {g.G * g.Dh, C}, sz[2], ParamInit::normal);
    add("attn.wo", {C, g.H * g.Dh}, sz[3], ParamInit::normal);
    add("attn.bq", {g.H * g.Dh}, sz[4], ParamInit::zeros);
    add("attn.bk", {g.G * g.Dh}, sz[5], ParamInit::zeros);
    add("attn.bv", {g.G * g.Dh}, sz[6], ParamInit::zeros);
    add("attn.bo", {C}, sz[7], ParamInit::zeros);
    add("attn.q_norm", {g.Dh}, sz[8], ParamInit::ones);
    add("attn.k_norm", {g.Dh}, sz[9], ParamInit::ones);
    add("attn.w_gate", {g.H, C}, sz[10], ParamInit::normal);
  }
  add("ffn_norm", {C}, C, ParamInit::ones);
  add("ffn_norm_bias", {C}, ln ? C : 0, ParamInit::zeros);
  if (d.moe) {
    const MoeDims& m = d.moe_dims;
    const auto sz = moe_weight_sizes(m);
    add("moe.gate", {m.r.E, C}, sz[0], ParamInit::normal);
    add("moe.bias", {m.r.E}, sz[1], ParamInit::zeros, false);
    add("moe.experts", {m.r.E, 3, m.I, C}, sz[2], ParamInit::normal);  // per expert [w1 | w3 | w2ᵀ-shaped (C,I)]
    add("moe.shared_w1", {m.S, C}, sz[3], ParamInit::normal);
    add("moe.shared_w3", {m.S, C}, sz[4], ParamInit::normal);
    add("moe.shared_w2", {C, m.S}, sz[5], ParamInit::normal);
  } else if (d.ffn == FfnKind::gelu) {
    add("ffn.w1", {d.I, C}, d.I * C, ParamInit::normal);
    add("ffn.b1", {d.I}, d.mlp_bias ? d.I : 0, ParamInit::zeros);
    add("ffn.w2", {C, d.I}, d.I * C, ParamInit::normal);
    add("ffn.b2", {C}, d.mlp_bias ? C : 0, ParamInit::zeros);
  } else {
    add("ffn.w1", {d.I, C}, d.I * C, ParamInit::normal);
    add("ffn.w3", {d.I, C}, d.I * C, ParamInit::normal);
    add("ffn.w2", {C, d.I}, d.I * C, ParamInit::normal);
  }
  return s;
}

int64_t block_param_count(const BlockDims& d) {
  int64_t n = 0;
  for (const auto& p : block_param_specs(d)) n += p.size();
  return n;
}

BlockWeights block_weights_view(float* flat, const BlockDims& d) {
  BlockWeights w;
  const int64_t C = d.C;
  const bool ln = d.norm == NormKind::layernorm;
  w.attn_norm = flat;
  flat += C;
  if (ln) w.attn_norm_b = flat, flat += C;
  if (d.attention == AttentionKind::mla) {
    w.mla = mla_weights_view(flat, d.mla);
    for (auto s : mla_weight_sizes(d.mla)) flat += s;
  } else {
    w.gqa = gqa_weights_view(flat, d.gqa, d.gqa_opt);
    for (auto s : gqa_weight_sizes(d.gqa, d.gqa_opt)) flat += s;
  }
  w.ffn_norm = flat;
  flat += C;
  if (ln) w.ffn_norm_b = flat, flat += C;
  if (d.moe) {
    w.moe = moe_weights_view(flat, d.moe_dims);
  } else if (d.ffn == FfnKind::gelu) {
    w.w1 = flat, flat += d.I * C;
    if (d.mlp_bias) w.b1 = flat, flat += d.I;
    w.w2 = flat, flat += C * d.I;
    if (d.mlp_bias) w.b2 = flat;
  } else {
    w.w1 = flat, w.w3 = flat + d.I * C, w.w2 = flat + 2 * d.I * C;
  }
  return w;
}

void store_activation(float* x, int64_t n, bool bf16) {
  if (!bf16) return;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = num::round_to_bf16(x[i]);
}

void check_finite(const float* x, int64_t rows, int64_t C, const std::string& where) {
  for (int64_t i = 0; i < rows * C; ++i) {
    if (num::is_nan(x[i]) || num::is_inf(x[i])) {
      float amax = 0;
      for (int64_t j = 0; j < rows * C; ++j)
        if (!num::is_nan(x[j]) && !num::is_inf(x[j])) amax = std::fmax(amax, std::fabs(x[j]));
      fail("non-finite value first appeared in ", where, ": row ", i / C, ", channel ", i % C, " = ", x[i],
           " (largest finite |value| there: ", amax, ")");
    }
  }
}

namespace {

float absmax(const float* x, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

// The sub-layers' dims with the block's GEMM precision (BlockDims::precision is the one switch).
MlaDims mla_dims(const BlockDims& d) {
  MlaDims m = d.mla;
  m.precision = d.precision;
  return m;
}
GqaOptions gqa_options(const BlockDims& d) {
  GqaOptions o = d.gqa_opt;
  o.precision = d.precision;
  return o;
}
MoeDims moe_dims(const BlockDims& d) {
  MoeDims m = d.moe_dims;
  m.precision = d.precision;
  return m;
}

void attention_forward(float* out, BlockCache& c, const float* xn, const BlockWeights& w, const int32_t* doc,
                       const RopeTable& rope, const BlockDims& d) {
  const int64_t T = d.T, C = d.C;
  const MlaDims md = mla_dims(d);
  const GqaOptions go = gqa_options(d);
  const int64_t H = d.attention == AttentionKind::mla ? d.mla.H : d.gqa.H;
  std::vector<float> seq_max(H * d.B);  // (H,B) max logit of each head and sequence
  for (int64_t b = 0; b < d.B; ++b) {
    const int32_t* db = doc ? doc + b * T : nullptr;
    const std::vector<float>* ml;
    if (d.attention == AttentionKind::mla) {
      mla_forward(out + b * T * C, c.mla[b], xn + b * T * C, w.mla, db, nullptr, rope, d.eps, md);
      ml = &c.mla[b].max_logit;
    } else {
      gqa_forward(out + b * T * C, c.gqa[b], xn + b * T * C, w.gqa, db, nullptr, rope, go, d.gqa);
      ml = &c.gqa[b].max_logit;
    }
    for (int64_t h = 0; h < H; ++h) seq_max[h * d.B + b] = (*ml)[h];
  }
  c.max_logit.assign(H, 0.f);
  for (int64_t h = 0; h < H; ++h) c.max_logit[h] = px::row_max(&seq_max[h * d.B], d.B);
}

// Norm_{w,b}(x) of the block's kind; mean is used by LayerNorm only.
void norm_forward(float* out, std::vector<float>& mean, float* rstd, const float* x, const float* w, const float* b,
                  const BlockDims& d) {
  const int64_t N = d.N(), C = d.C;
  if (d.norm == NormKind::layernorm) {
    mean.assign(N, 0.f);
    layernorm_forward(out, mean.data(), rstd, x, w, b, d.eps, N, C);
  } else {
    rmsnorm_forward(out, rstd, x, w, d.eps, N, C);
  }
}
void norm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                   const std::vector<float>& mean, const float* rstd, const BlockDims& d) {
  const int64_t N = d.N(), C = d.C;
  if (d.norm == NormKind::layernorm)
    layernorm_backward(dx, dw, db, dout, x, w, mean.data(), rstd, N, C);
  else
    rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
}

}  // namespace

void block_forward(float* out, BlockCache& c, const float* x, const BlockWeights& w, const int32_t* doc,
                   const RopeTable& rope, const MoeLossOptions& moe_opt, const BlockDims& d) {
  const int64_t N = d.N(), C = d.C;
  PREFLIGHT_CHECK(d.B > 0 && d.T > 0 && C > 0, d.label, ": block dims B=", d.B, " T=", d.T, " C=", C);
  PREFLIGHT_CHECK(!d.moe || d.moe_dims.r.T == N, d.label, ": MoE rows ", d.moe_dims.r.T, ", expected B·T = ", N);
  c.x.assign(x, x + N * C);
  c.xn.assign(N * C, 0.f), c.xn_rstd.assign(N, 0.f);
  norm_forward(c.xn.data(), c.xn_mean, c.xn_rstd.data(), x, w.attn_norm, w.attn_norm_b, d);
  store_activation(c.xn.data(), N * C, d.bf16);
  c.mla.assign(d.attention == AttentionKind::mla ? d.B : 0, MlaCache{});
  c.gqa.assign(d.attention == AttentionKind::gqa ? d.B : 0, GqaCache{});
  c.a.assign(N * C, 0.f);
  attention_forward(c.a.data(), c, c.xn.data(), w, doc, rope, d);
  store_activation(c.a.data(), N * C, d.bf16);
  if (d.check_finite) check_finite(c.a.data(), N, C, d.label + " attention output");
  c.attn_absmax = absmax(c.a.data(), N * C);
  c.h.assign(N * C, 0.f);
  for (int64_t i = 0; i < N * C; ++i) c.h[i] = x[i] + c.a[i];
  store_activation(c.h.data(), N * C, d.bf16);
  c.hn.assign(N * C, 0.f), c.hn_rstd.assign(N, 0.f);
  norm_forward(c.hn.data(), c.hn_mean, c.hn_rstd.data(), c.h.data(), w.ffn_norm, w.ffn_norm_b, d);
  store_activation(c.hn.data(), N * C, d.bf16);
  std::vector<float> f(N * C);  // (N,C)
  if (d.moe) {
    MoeLossOptions o = moe_opt;
    o.seq_len = d.T;
    moe_forward(f.data(), c.moe, c.hn.data(), w.moe, o, moe_dims(d));
  } else if (d.ffn == FfnKind::gelu) {
    c.f1.assign(N * d.I, 0.f), c.f3.clear(), c.fact.assign(N * d.I, 0.f);
    gelu_mlp_forward(f.data(), c.f1.data(), c.fact.data(), c.hn.data(), w.w1, w.b1, w.w2, w.b2, N, C, d.I,
                     d.precision);
  } else {
    c.f1.assign(N * d.I, 0.f), c.f3.assign(N * d.I, 0.f), c.fact.assign(N * d.I, 0.f);
    swiglu_forward(f.data(), c.f1.data(), c.f3.data(), c.fact.data(), c.hn.data(), w.w1, w.w3, w.w2, N, C, d.I,
                   d.precision);
  }
  store_activation(f.data(), N * C, d.bf16);
  if (d.check_finite) check_finite(f.data(), N, C, d.label + (d.moe ? " MoE output" : " FFN output"));
  c.ffn_absmax = absmax(f.data(), N * C);
  for (int64_t i = 0; i < N * C; ++i) out[i] = c.h[i] + f[i];
  store_activation(out, N * C, d.bf16);
}

void block_backward(float* dx, const BlockWeights& dw, const float* dout, const BlockCache& c, const BlockWeights& w,
                    const int32_t* doc, const RopeTable& rope, const MoeLossOptions& moe_opt, float dloss_aux,
                    const BlockDims& d) {
  const int64_t N = d.N(), C = d.C, T = d.T;
  std::vector<float> dhn(N * C, 0.f);  // (N,C)
  if (d.moe) {
    MoeLossOptions o = moe_opt;
    o.seq_len = d.T;
    moe_backward(dhn.data(), dw.moe, dout, c.moe, c.hn.data(), w.moe, o, dloss_aux, moe_dims(d));
  } else if (d.ffn == FfnKind::gelu) {
    gelu_mlp_backward(dhn.data(), dw.w1, dw.b1, dw.w2, dw.b2, dout, c.f1.data(), c.fact.data(), c.hn.data(), w.w1,
                      w.w2, N, C, d.I, d.precision);
  } else {
    swiglu_backward(dhn.data(), dw.w1, dw.w3, dw.w2, dout, c.f1.data(), c.f3.data(), c.fact.data(), c.hn.data(),
                    w.w1, w.w3, w.w2, N, C, d.I, d.precision);
  }
  std::vector<float> dh(dout, dout + N * C);  // (N,C) residual path first
  norm_backward(dh.data(), dw.ffn_norm, dw.ffn_norm_b, dhn.data(), c.h.data(), w.ffn_norm, c.hn_mean,
                c.hn_rstd.data(), d);
  std::vector<float> dxn(N * C, 0.f);  // (N,C)
  const MlaDims md = mla_dims(d);
  const GqaOptions go = gqa_options(d);
  for (int64_t b = 0; b < d.B; ++b) {
    const int32_t* db = doc ? doc + b * T : nullptr;
    if (d.attention == AttentionKind::mla)
      mla_backward(dxn.data() + b * T * C, dw.mla, dh.data() + b * T * C, c.mla[b], c.xn.data() + b * T * C, w.mla,
                   db, nullptr, rope, md);
    else
      gqa_backward(dxn.data() + b * T * C, dw.gqa, dh.data() + b * T * C, c.gqa[b], c.xn.data() + b * T * C, w.gqa,
                   db, nullptr, rope, go, d.gqa);
  }
  std::vector<float>& dxl = dh;  // (N,C) residual path first, then the norm's contribution
  norm_backward(dxl.data(), dw.attn_norm, dw.attn_norm_b, dxn.data(), c.x.data(), w.attn_norm, c.xn_mean,
                c.xn_rstd.data(), d);
  for (int64_t i = 0; i < N * C; ++i) dx[i] = dx[i] + dxl[i];
}

}  // namespace preflight::ref
