// float64 oracle of the whole model (embedding, learned positions, MLA or plain GQA blocks
// (GPT: biases, no RoPE), RMSNorm or LayerNorm, dense SwiGLU / GELU MLP / MoE FFN, final
// norm, LM head + CE, MTP, balance losses): the definitions of model.hpp, mtp.hpp,
// block.hpp in double, written independently of the fp32 code. It reads the parameters
// through the library's tensor table (names → offsets: data placement, not numerics) and uses
// the fp32 RoPE tables exactly (they are part of the definition, rounded once from double).
// Activations are never rounded (the oracle of the fp32-activation model).
// Legend: B = sequences, T = tokens per sequence, N = B·T, C = hidden, V = vocabulary.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "reference/layers/attention.hpp"
#include "reference/layers/mla.hpp"
#include "reference/layers/model.hpp"
#include "reference/layers/rope.hpp"
#include "tests/reference/oracle64.hpp"
#include "tests/reference/oracle64_moe.hpp"

namespace preflight::ref::oracle {

using Selection = std::vector<std::vector<int64_t>>;  // per token, ascending experts

struct Model64 {
  ModelConfig cfg;
  ModelOptions opt;
  int64_t B = 1, T = 0;
  std::vector<int32_t> tokens, targets, doc;  // (B,T); doc empty = none
  std::vector<uint8_t> mask;                  // (B,T) or empty
  RopeTable rope;
  double scale = 0;  // softmax scale (the fp32 constant, exactly)
  std::map<std::string, TensorInfo> at;
  // Routing of each MoE block (layers ascending, then MTP depths), frozen when non-empty.
  std::vector<Selection> frozen;
  // Max pre-softmax logit per head of every block loss() ran (layers, then MTP depths).
  mutable std::vector<std::vector<double>> max_logit;

  Model64(const ModelConfig& c, const ModelOptions& o, int64_t B_, int64_t T_) : cfg(c), opt(o), B(B_), T(T_) {
    for (const auto& t : model_layout(c).tensors) at[t.name] = t;
    const int64_t rd = c.attention == AttentionKind::mla ? c.qk_rope_head_dim : c.head_dim;
    rope = rope_table(c, rd, T);
    if (c.attention == AttentionKind::mla) {
      scale = double(mla_softmax_scale(MlaDims::from(c, T), rope));
    } else {
      scale = double(gqa_softmax_scale(GqaDims::from(c, T), rope));
    }
  }

  Vec get(const Vec& p, const std::string& name) const {
    const auto it = at.find(name);
    if (it == at.end()) return {};
    return Vec(p.begin() + it->second.offset, p.begin() + it->second.offset + it->second.size);
  }
  bool has(const std::string& name) const { return at.count(name) > 0; }
  const double* ptr(const Vec& v) const { return v.empty() ? nullptr : v.data(); }

  // The config's norm: RMSNorm_w or LayerNorm_{w,b} (pre = "…attn_norm", bias "…attn_norm_bias").
  Vec norm(const Vec& x, const Vec& p, const std::string& name, int64_t n) const {
    const int64_t C = cfg.hidden_size;
    const double eps = double(float(cfg.rms_norm_eps));
    if (cfg.norm == NormKind::rmsnorm) return rmsnorm(x, get(p, name), eps, n, C);
    const Vec w = get(p, name), b = get(p, name + "_bias");
    Vec y(n * C);
    for (int64_t t = 0; t < n; ++t) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < C; ++i) mean += x[t * C + i];
      mean /= double(C);
      for (int64_t i = 0; i < C; ++i) var += (x[t * C + i] - mean) * (x[t * C + i] - mean);
      const double r = 1.0 / std::sqrt(var / double(C) + eps);
      for (int64_t i = 0; i < C; ++i) y[t * C + i] = (x[t * C + i] - mean) * r * w[i] + b[i];
    }
    return y;
  }

  // GELU MLP (tanh approximation, GPT-2): gelu(x·W1ᵀ + b1)·W2ᵀ + b2.
  Vec gelu_mlp(const Vec& x, const Vec& p, const std::string& pre, int64_t n) const {
    const int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
    const Vec b1 = get(p, pre + "ffn.b1"), b2 = get(p, pre + "ffn.b2");
    Vec h = linear(x, get(p, pre + "ffn.w1"), n, I, C, ptr(b1));
    const double k = std::sqrt(2.0 / M_PI);
    for (double& v : h) v = 0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v)));
    return linear(h, get(p, pre + "ffn.w2"), n, C, I, ptr(b2));
  }

  // First key of each token (documents contiguous) and RoPE positions for one sequence.
  void docs(const int32_t* d, int64_t n, std::vector<int64_t>& s0, std::vector<int32_t>& pos) const {
    s0.assign(n, 0), pos.assign(n, 0);
    for (int64_t t = 0; t < n; ++t) {
      s0[t] = (d && t > 0 && d[t] == d[t - 1]) ? s0[t - 1] : (d ? t : 0);
      pos[t] = int32_t(t - s0[t]);
    }
  }

  // Softmax-weighted values of one query row over keys [s0, t].
  static void attend(double* o, const std::vector<double>& l, const double* v, int64_t vstride, int64_t Dv) {
    double m = -INFINITY, z = 0;
    for (double x : l) m = std::max(m, x);
    std::vector<double> p(l.size());
    for (size_t i = 0; i < l.size(); ++i) p[i] = std::exp(l[i] - m), z += p[i];
    for (size_t i = 0; i < l.size(); ++i)
      for (int64_t e = 0; e < Dv; ++e) o[e] += p[i] / z * v[int64_t(i) * vstride + e];
  }

  // MLA of one sequence x (n,C), naive order.
  Vec mla(const Vec& x, const Vec& p, const std::string& pre, const int32_t* d, int64_t n) const {
    const auto& c = cfg;
    const int64_t C = c.hidden_size, H = c.num_attention_heads, Dn = c.qk_nope_head_dim, Dr = c.qk_rope_head_dim,
                  Dv = c.v_head_dim, R = c.kv_lora_rank, D = Dn + Dr, KA = R + Dr, VB = Dn + Dv, half = Dr / 2;
    const double eps = double(float(c.rms_norm_eps));
    Vec q;
    if (c.q_lora_rank > 0) {
      const Vec qa = linear(x, get(p, pre + "wq_a"), n, c.q_lora_rank, C);
      q = linear(rmsnorm(qa, get(p, pre + "q_norm"), eps, n, c.q_lora_rank), get(p, pre + "wq_b"), n, H * D, c.q_lora_rank);
    } else {
      q = linear(x, get(p, pre + "wq"), n, H * D, C);
    }
    Vec kv = linear(x, get(p, pre + "wkv_a"), n, KA, C);
    Vec cc(n * R);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < R; ++r) cc[t * R + r] = kv[t * KA + r];
    const Vec kvb = linear(rmsnorm(cc, get(p, pre + "kv_norm"), eps, n, R), get(p, pre + "wkv_b"), n, H * VB, R);
    std::vector<int64_t> s0;
    std::vector<int32_t> pos;
    docs(d, n, s0, pos);
    auto rot = [&](double* v, int64_t t) {  // interleaved pairs
      for (int64_t i = 0; i < half; ++i) {
        const double co = rope.cos[pos[t] * half + i], si = rope.sin[pos[t] * half + i], a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * co - b * si, v[2 * i + 1] = a * si + b * co;
      }
    };
    for (int64_t t = 0; t < n; ++t) {
      rot(&kv[t * KA + R], t);
      for (int64_t h = 0; h < H; ++h) rot(&q[(t * H + h) * D + Dn], t);
    }
    Vec o(n * H * Dv, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < n; ++t) {
        std::vector<double> l;
        for (int64_t s = s0[t]; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < Dn; ++i) dot += q[(t * H + h) * D + i] * kvb[(s * H + h) * VB + i];
          for (int64_t i = 0; i < Dr; ++i) dot += q[(t * H + h) * D + Dn + i] * kv[s * KA + R + i];
          l.push_back(dot * scale);
          max_logit.back()[h] = std::max(max_logit.back()[h], dot * scale);
        }
        attend(&o[(t * H + h) * Dv], l, &kvb[(s0[t] * H + h) * VB + Dn], H * VB, Dv);
      }
    return linear(o, get(p, pre + "wo"), n, C, H * Dv);
  }

  // GQA of one sequence (optional GPT biases; no qk-norm, gate or soft-cap), RoPE in the "half"
  // layout when position_embedding = rope.
  Vec gqa(const Vec& x, const Vec& p, const std::string& pre, const int32_t* d, int64_t n) const {
    const auto& c = cfg;
    const int64_t C = c.hidden_size, H = c.num_attention_heads, G = c.num_key_value_heads, Dh = c.head_dim,
                  half = c.position == PositionKind::rope ? Dh / 2 : 0;
    const Vec bq = get(p, pre + "bq"), bk = get(p, pre + "bk"), bv = get(p, pre + "bv"), bo = get(p, pre + "bo");
    Vec q = linear(x, get(p, pre + "wq"), n, H * Dh, C, ptr(bq)), k = linear(x, get(p, pre + "wk"), n, G * Dh, C, ptr(bk));
    const Vec v = linear(x, get(p, pre + "wv"), n, G * Dh, C, ptr(bv));
    std::vector<int64_t> s0;
    std::vector<int32_t> pos;
    docs(d, n, s0, pos);
    auto rot = [&](double* u, int64_t t) {  // pairs (i, i + Dh/2)
      for (int64_t i = 0; i < half; ++i) {
        const double co = rope.cos[pos[t] * half + i], si = rope.sin[pos[t] * half + i], a = u[i], b = u[i + half];
        u[i] = a * co - b * si, u[i + half] = a * si + b * co;
      }
    };
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < H; ++h) rot(&q[(t * H + h) * Dh], t);
      for (int64_t g = 0; g < G; ++g) rot(&k[(t * G + g) * Dh], t);
    }
    Vec o(n * H * Dh, 0.0);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / G);
      for (int64_t t = 0; t < n; ++t) {
        std::vector<double> l;
        for (int64_t s = s0[t]; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < Dh; ++i) dot += q[(t * H + h) * Dh + i] * k[(s * G + g) * Dh + i];
          l.push_back(dot * scale);
          max_logit.back()[h] = std::max(max_logit.back()[h], dot * scale);
        }
        attend(&o[(t * H + h) * Dh], l, &v[(s0[t] * G + g) * Dh], G * Dh, Dh);
      }
    }
    return linear(o, get(p, pre + "wo"), n, C, H * Dh, ptr(bo));
  }

  // One block over B sequences of n tokens; moe_index counts MoE blocks for `frozen`.
  Vec block(const Vec& x, const Vec& p, const std::string& pre, bool moe, int64_t n, const int32_t* d,
            int& moe_index, Moe64Losses* aux, Selection* sel_out, double* margin) const {
    const auto& c = cfg;
    const int64_t C = c.hidden_size, N = B * n;
        const Vec xn = norm(x, p, pre + "attn_norm", N);
    max_logit.push_back(std::vector<double>(c.num_attention_heads, -INFINITY));
    Vec h(x);
    for (int64_t b = 0; b < B; ++b) {
      const Vec xb(xn.begin() + b * n * C, xn.begin() + (b + 1) * n * C);
      const int32_t* db = d ? d + b * n : nullptr;
      const Vec a = c.attention == AttentionKind::mla ? mla(xb, p, pre + "attn.", db, n) : gqa(xb, p, pre + "attn.", db, n);
      for (int64_t i = 0; i < n * C; ++i) h[b * n * C + i] += a[i];
    }
    const Vec hn = norm(h, p, pre + "ffn_norm", N);
    Vec f;
    if (moe) {
      Moe64 m;
      m.r.E = c.n_routed_experts, m.r.K = c.num_experts_per_tok, m.r.G = c.n_group, m.r.TG = c.topk_group;
      m.r.sigmoid = c.scoring_func == ScoringFunc::sigmoid, m.r.norm = c.norm_topk_prob, m.r.use_bias = c.router_bias;
      m.r.scale = double(float(c.routed_scaling_factor));
      m.T = N, m.C = C, m.I = c.moe_intermediate_size, m.S = c.n_shared_experts * c.moe_intermediate_size, m.seq_len = n;
      m.seq_alpha = double(opt.seq_aux_alpha), m.lb_coef = double(opt.lb_coef), m.z_coef = double(opt.router_z_coef);
      const TensorInfo& g0 = at.at(pre + "moe.gate");
      const std::string last = m.S > 0 ? pre + "moe.shared_w2" : pre + "moe.experts";
      const TensorInfo& g1 = at.at(last);
      const Vec flat(p.begin() + g0.offset, p.begin() + g1.offset + g1.size);
      Moe64Losses L;
      Selection sel;
      double mg = INFINITY;
      const Selection* fz = moe_index < int(frozen.size()) ? &frozen[moe_index] : nullptr;
      f = m.forward(hn, flat, &L, fz, &sel, &mg);
      if (sel_out) sel_out[moe_index] = sel;
      if (margin) *margin = std::min(*margin, mg);
      aux->seq_aux += L.seq_aux, aux->lb += L.lb, aux->z += L.z;
      ++moe_index;
    } else if (c.ffn == FfnKind::gelu) {
      f = gelu_mlp(hn, p, pre, N);
    } else {
      f = swiglu(hn, get(p, pre + "ffn.w1"), get(p, pre + "ffn.w3"), get(p, pre + "ffn.w2"), N, C, c.intermediate_size);
    }
    for (int64_t i = 0; i < N * C; ++i) h[i] += f[i];
    return h;
  }

  double ce(const Vec& h, const Vec& head, const std::vector<int32_t>& tg, const std::vector<uint8_t>& mk, int64_t n) const {
    CrossEntropy64 e;
    e.T = n, e.C = cfg.hidden_size, e.V = cfg.vocab_size, e.softcap = cfg.final_logit_softcapping;
    e.z_coef = double(opt.logit_z_coef), e.targets = tg, e.mask = mk;
    return e.loss(h, head);
  }

  // Total loss. sel_out (one Selection per MoE block) and margin receive the routing the
  // oracle computes itself (or the frozen one).
  double loss(const Vec& p, std::vector<Selection>* sel_out = nullptr, double* margin = nullptr,
              double* main_out = nullptr) const {
    const auto& c = cfg;
    const int64_t C = c.hidden_size, N = B * T, L = c.num_hidden_layers, D = c.num_nextn_predict_layers;
    const double eps = double(float(c.rms_norm_eps));
    const Vec emb = get(p, "embed"), head = c.tie_word_embeddings ? emb : get(p, "head");
    auto lookup = [&](const std::vector<int32_t>& tok) {
      Vec x(tok.size() * C);
      for (size_t t = 0; t < tok.size(); ++t)
        for (int64_t i = 0; i < C; ++i) x[t * C + i] = emb[tok[t] * C + i];
      return x;
    };
    int moe_index = 0;
    max_logit.clear();
    Moe64Losses aux;
    std::vector<Selection> sel(64);
    Vec x = lookup(tokens);
    const int32_t* d = doc.empty() ? nullptr : doc.data();
    if (c.position == PositionKind::learned) {  // position inside the document
      const Vec pe = get(p, "pos_embed");
      for (int64_t b = 0; b < B; ++b) {
        std::vector<int64_t> s0;
        std::vector<int32_t> pos;
        docs(d ? d + b * T : nullptr, T, s0, pos);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < C; ++i) x[(b * T + t) * C + i] += pe[pos[t] * C + i];
      }
    }
    for (int64_t l = 0; l < L; ++l)
      x = block(x, p, "layers." + std::to_string(l) + ".", c.is_moe_layer(l), T, d, moe_index, &aux, sel.data(), margin);
    const double main = ce(norm(x, p, "final_norm", N), head, targets, mask, N);
    double mtp = 0;
    Vec hprev = x;
    for (int64_t k = 1; k <= D; ++k) {
      const int64_t Tk = T - k, Tp = T - k + 1, Nk = B * Tk;
      const std::string pre = "mtp." + std::to_string(k) + ".";
      std::vector<int32_t> tok(Nk), tg(Nk), dk;
      std::vector<uint8_t> mk;
      Vec hp(Nk * C);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < Tk; ++i) {
          tok[b * Tk + i] = tokens[b * T + i + k], tg[b * Tk + i] = targets[b * T + i + k];
          if (!mask.empty()) mk.push_back(mask[b * T + i + k]);
          if (d) dk.push_back(doc[b * T + i]);
          for (int64_t ch = 0; ch < C; ++ch) hp[(b * Tk + i) * C + ch] = hprev[(b * Tp + i) * C + ch];
        }
      const Vec en = rmsnorm(lookup(tok), get(p, pre + "enorm"), eps, Nk, C);
      const Vec hn = rmsnorm(hp, get(p, pre + "hnorm"), eps, Nk, C);
      Vec cat(Nk * 2 * C);
      for (int64_t r = 0; r < Nk; ++r)
        for (int64_t ch = 0; ch < C; ++ch) cat[r * 2 * C + ch] = en[r * C + ch], cat[r * 2 * C + C + ch] = hn[r * C + ch];
      const Vec proj = linear(cat, get(p, pre + "proj"), Nk, C, 2 * C);
      // B sequences of Tk tokens: the block's row layout is (B, Tk).
      const Vec hk = block(proj, p, pre + "block.", c.is_moe_layer(L - 1), Tk, d ? dk.data() : nullptr, moe_index,
                               &aux, sel.data(), margin);
      mtp += ce(rmsnorm(hk, get(p, pre + "head_norm"), eps, Nk, C), head, tg, mk, Nk);
      hprev = hk;
    }
    if (sel_out) sel_out->assign(sel.begin(), sel.begin() + moe_index);
    if (main_out) *main_out = main;
    return main + (D > 0 ? double(float(double(opt.mtp_lambda) / double(D))) * mtp : 0.0) + aux.total();
  }
};

}  // namespace preflight::ref::oracle
