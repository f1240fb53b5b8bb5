// The whole model (order of every operation: model.hpp).
// Legend: B = sequences, T = tokens per sequence, N = B·T, C = hidden, V = vocabulary,
//         L = blocks, D = MTP depth.
#include "reference/layers/model.hpp"

#include <algorithm>
#include <cstring>

#include "reference/core/error.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/gpt_layers.hpp"
#include "reference/layers/rmsnorm.hpp"
#include "reference/numerics/philox.hpp"

namespace preflight::ref {

namespace {

int64_t rotary_dim(const ModelConfig& c) {
  return c.attention == AttentionKind::mla ? c.qk_rope_head_dim : c.head_dim;
}

BlockDims layer_dims(const ModelConfig& c, int64_t l, int64_t B, int64_t T, const ModelOptions& o) {
  BlockDims d = BlockDims::from(c, c.is_moe_layer(l), B, T);
  d.bf16 = o.bf16_activations, d.check_finite = o.check_finite, d.label = "layer " + std::to_string(l);
  d.precision = o.precision;
  return d;
}

MtpDims mtp_dims(const ModelConfig& c, int64_t k, int64_t B, int64_t T, const ModelOptions& o) {
  MtpDims d = MtpDims::from(c, k, B, T, o.bf16_activations);
  d.block.check_finite = o.check_finite;
  d.block.precision = o.precision;
  d.loss.z_coef = o.logit_z_coef;
  return d;
}

MoeLossOptions moe_options(const ModelOptions& o) {
  MoeLossOptions m;
  m.seq_aux_alpha = o.seq_aux_alpha, m.lb_coef = o.lb_coef, m.z_coef = o.router_z_coef;
  return m;
}

LossDims main_loss_dims(const ModelConfig& c, int64_t N, const ModelOptions& o) {
  LossDims d;
  d.T = N, d.C = c.hidden_size, d.V = c.vocab_size;
  d.softcap = float(c.final_logit_softcapping), d.z_coef = o.logit_z_coef;
  return d;
}

void check_model_config(const ModelConfig& c) {
  validate(c);
  check_block_config(c);
  PREFLIGHT_CHECK(c.norm == NormKind::rmsnorm || c.num_nextn_predict_layers == 0, "model '", c.name,
                  "': norm = layernorm with num_nextn_predict_layers = ", c.num_nextn_predict_layers,
                  "; the MTP modules are RMSNorm-based (DeepSeek-V3)");
}

bool learned_positions(const ModelConfig& c) { return c.position == PositionKind::learned; }
bool layernorm(const ModelConfig& c) { return c.norm == NormKind::layernorm; }

// Position of every token inside its document (0 at each document start), (B,T) rows.
std::vector<int32_t> document_positions(const Batch& b) {
  std::vector<int32_t> pos(b.B * b.T);
  for (int64_t s = 0; s < b.B; ++s)
    for (int64_t t = 0; t < b.T; ++t) {
      const int64_t i = s * b.T + t;
      const bool start = t == 0 || (b.doc && b.doc[i] != b.doc[i - 1]);
      pos[i] = start ? 0 : pos[i - 1] + 1;
    }
  return pos;
}

}  // namespace

ModelLayout model_layout(const ModelConfig& c) {
  check_model_config(c);
  const int64_t V = c.vocab_size, C = c.hidden_size, D = c.num_nextn_predict_layers;
  const ModelOptions o;
  ModelLayout lay;
  auto add = [&](const std::string& prefix, const ParamSpec& p) {
    lay.tensors.push_back({prefix + p.name, lay.total, p.size(), p.shape, p.init, p.trainable});
    lay.total += p.size();
  };
  add("", {"embed", {V, C}, ParamInit::normal, true});
  if (learned_positions(c)) add("", {"pos_embed", {c.max_position_embeddings, C}, ParamInit::normal, true});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& p : block_param_specs(layer_dims(c, l, 1, 1, o))) add("layers." + std::to_string(l) + ".", p);
  add("", {"final_norm", {C}, ParamInit::ones, true});
  if (layernorm(c)) add("", {"final_norm_bias", {C}, ParamInit::zeros, true});
  if (!c.tie_word_embeddings) add("", {"head", {V, C}, ParamInit::normal, true});
  for (int64_t k = 1; k <= D; ++k)
    for (const auto& p : mtp_param_specs(mtp_dims(c, k, 1, D + 1, o))) add("mtp." + std::to_string(k) + ".", p);
  return lay;
}

ModelWeights model_weights_view(float* flat, const ModelConfig& c) {
  check_model_config(c);
  const int64_t V = c.vocab_size, C = c.hidden_size, D = c.num_nextn_predict_layers;
  const ModelOptions o;
  ModelWeights w;
  float* p = flat;
  w.embed = p, p += V * C;
  if (learned_positions(c)) w.pos_embed = p, p += c.max_position_embeddings * C;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const BlockDims d = layer_dims(c, l, 1, 1, o);
    w.layers.push_back(block_weights_view(p, d));
    p += block_param_count(d);
  }
  w.final_norm = p, p += C;
  if (layernorm(c)) w.final_norm_b = p, p += C;
  if (c.tie_word_embeddings) {
    w.head = w.embed;
  } else {
    w.head = p, p += V * C;
  }
  for (int64_t k = 1; k <= D; ++k) {
    const MtpDims d = mtp_dims(c, k, 1, D + 1, o);
    w.mtp.push_back(mtp_weights_view(p, d));
    for (const auto& s : mtp_param_specs(d)) p += s.size();
  }
  return w;
}

void model_init(float* flat, const ModelConfig& c, uint64_t seed) {
  const ModelLayout lay = model_layout(c);
  const float std_dev = float(c.initializer_range);
  for (size_t s = 0; s < lay.tensors.size(); ++s) {
    const TensorInfo& t = lay.tensors[s];
    float* x = flat + t.offset;
    switch (t.init) {
      case ParamInit::normal: num::fill_normal(x, t.size, std_dev, seed, uint64_t(s)); break;
      case ParamInit::ones: std::fill(x, x + t.size, 1.0f); break;
      case ParamInit::zeros: std::fill(x, x + t.size, 0.0f); break;
    }
  }
}

namespace {

void check_batch(const Batch& b, const ModelConfig& c) {
  PREFLIGHT_CHECK(b.B > 0 && b.T > 0, "model: batch B = ", b.B, ", T = ", b.T, ", expected both > 0");
  PREFLIGHT_CHECK(b.tokens && b.targets, "model: batch tokens (B,T) and targets (B,T) are required");
  PREFLIGHT_CHECK(b.T <= c.max_position_embeddings, "model: T = ", b.T, " exceeds max_position_embeddings = ",
                  c.max_position_embeddings);
  PREFLIGHT_CHECK(b.T > c.num_nextn_predict_layers, "model: T = ", b.T, " must exceed the MTP depth ",
                  c.num_nextn_predict_layers);
}

}  // namespace

ModelLoss model_forward(ModelCache& c, const float* params, const Batch& b, const ModelConfig& cfg,
                        const ModelOptions& o) {
  check_model_config(cfg);
  check_batch(b, cfg);
  const int64_t B = b.B, T = b.T, N = B * T, C = cfg.hidden_size, V = cfg.vocab_size, L = cfg.num_hidden_layers;
  const int64_t D = cfg.num_nextn_predict_layers;
  const ModelWeights w = model_weights_view(const_cast<float*>(params), cfg);
  const MoeLossOptions mo = moe_options(o);
  c.rope = rope_table(cfg, rotary_dim(cfg), T);
  ModelLoss loss;
  c.xs.assign(L + 1, std::vector<float>(N * C, 0.f));
  embedding_forward(c.xs[0].data(), b.tokens, w.embed, N, C, V);
  if (learned_positions(cfg)) {
    c.pos = document_positions(b);
    position_embedding_forward(c.xs[0].data(), c.pos.data(), w.pos_embed, N, C, cfg.max_position_embeddings);
  }
  store_activation(c.xs[0].data(), N * C, o.bf16_activations);
  if (o.check_finite) check_finite(c.xs[0].data(), N, C, "the embedding output");
  c.layers.assign(L, BlockCache{});
  for (int64_t l = 0; l < L; ++l) {
    const BlockDims d = layer_dims(cfg, l, B, T, o);
    block_forward(c.xs[l + 1].data(), c.layers[l], c.xs[l].data(), w.layers[l], b.doc, c.rope, mo, d);
    loss.attn_absmax.push_back(c.layers[l].attn_absmax), loss.ffn_absmax.push_back(c.layers[l].ffn_absmax);
    loss.max_logit_per_head.push_back(c.layers[l].max_logit);
    if (d.moe) {
      loss.moe.push_back(c.layers[l].moe.losses);
      loss.expert_counts.push_back(c.layers[l].moe.counts);
    }
  }
  c.fn.assign(N * C, 0.f), c.fn_rstd.assign(N, 0.f);
  if (layernorm(cfg)) {
    c.fn_mean.assign(N, 0.f);
    layernorm_forward(c.fn.data(), c.fn_mean.data(), c.fn_rstd.data(), c.xs[L].data(), w.final_norm, w.final_norm_b,
                      float(cfg.rms_norm_eps), N, C);
  } else {
    rmsnorm_forward(c.fn.data(), c.fn_rstd.data(), c.xs[L].data(), w.final_norm, float(cfg.rms_norm_eps), N, C);
  }
  store_activation(c.fn.data(), N * C, o.bf16_activations);
  const CeLoss main = lm_head_ce_forward(c.ce, c.fn.data(), w.head, b.targets, b.mask, main_loss_dims(cfg, N, o));
  loss.ce = main.ce, loss.logit_z = main.z;
  c.mtp.assign(D, MtpCache{});
  float mtp_sum = 0.0f;
  for (int64_t k = 1; k <= D; ++k) {
    const MtpDims d = mtp_dims(cfg, k, B, T, o);
    const float* h_prev = k == 1 ? c.xs[L].data() : c.mtp[k - 2].hk.data();
    MtpCache& m = c.mtp[k - 1];
    mtp_forward(m, h_prev, b.tokens, b.targets, b.mask, b.doc, w.embed, w.head, w.mtp[k - 1], c.rope, mo, d);
    loss.mtp_ce.push_back(m.loss.ce);
    mtp_sum = mtp_sum + (m.loss.ce + m.loss.z);
    loss.attn_absmax.push_back(m.block.attn_absmax), loss.ffn_absmax.push_back(m.block.ffn_absmax);
    loss.max_logit_per_head.push_back(m.block.max_logit);
    if (d.block.moe) {
      loss.moe.push_back(m.block.moe.losses);
      loss.expert_counts.push_back(m.block.moe.counts);
    }
  }
  loss.mtp = D > 0 ? mtp_sum * float(double(o.mtp_lambda) / double(D)) : 0.0f;
  for (const auto& m : loss.moe) loss.aux = loss.aux + ((m.seq_aux + m.lb) + m.z);
  loss.total = ((loss.ce + loss.logit_z) + loss.mtp) + loss.aux;
  if (o.check_finite && !(loss.total - loss.total == 0.0f))
    fail("non-finite loss: ce = ", loss.ce, ", logit z = ", loss.logit_z, ", mtp = ", loss.mtp, ", aux = ", loss.aux,
         " (no activation was non-finite: the loss itself overflowed)");
  return loss;
}

void model_backward(float* grads, const ModelCache& c, const float* params, const Batch& b, const ModelConfig& cfg,
                    const ModelOptions& o) {
  check_model_config(cfg);
  check_batch(b, cfg);
  const int64_t B = b.B, T = b.T, N = B * T, C = cfg.hidden_size, V = cfg.vocab_size, L = cfg.num_hidden_layers;
  const int64_t D = cfg.num_nextn_predict_layers;
  PREFLIGHT_CHECK(int64_t(c.layers.size()) == L && int64_t(c.mtp.size()) == D && int64_t(c.xs.size()) == L + 1,
                  "model_backward: the cache does not come from model_forward of this config");
  const ModelWeights w = model_weights_view(const_cast<float*>(params), cfg);
  const ModelWeights g = model_weights_view(grads, cfg);
  const MoeLossOptions mo = moe_options(o);
  // 1. MTP depths D..1.
  std::vector<float> dhL(N * C, 0.f);  // (N,C) gradient of the last hidden state
  std::vector<float> dnext;            // gradient of depth k's block output from depth k+1
  const float mtp_weight = D > 0 ? float(double(o.mtp_lambda) / double(D)) : 0.0f;
  for (int64_t k = D; k >= 1; --k) {
    const MtpDims d = mtp_dims(cfg, k, B, T, o);
    std::vector<float> dprev;
    float* dh_prev = dhL.data();
    if (k > 1) {
      dprev.assign(B * (T - k + 1) * C, 0.f);
      dh_prev = dprev.data();
    }
    mtp_backward(dh_prev, g.embed, g.head, g.mtp[k - 1], dnext.empty() ? nullptr : dnext.data(), c.mtp[k - 1], w.embed,
                 w.head, w.mtp[k - 1], c.rope, mo, mtp_weight, 1.0f, d);
    dnext = std::move(dprev);
  }
  // 2. Main head and final norm.
  std::vector<float> dfn(N * C, 0.f);  // (N,C)
  lm_head_ce_backward(dfn.data(), g.head, c.ce, c.fn.data(), w.head, b.targets, b.mask, 1.0f,
                      main_loss_dims(cfg, N, o));
  if (layernorm(cfg))
    layernorm_backward(dhL.data(), g.final_norm, g.final_norm_b, dfn.data(), c.xs[L].data(), w.final_norm,
                       c.fn_mean.data(), c.fn_rstd.data(), N, C);
  else
    rmsnorm_backward(dhL.data(), g.final_norm, dfn.data(), c.xs[L].data(), w.final_norm, c.fn_rstd.data(), N, C);
  // 3. Blocks L−1..0.
  std::vector<float> dx = std::move(dhL), dprev(N * C);  // (N,C) each
  for (int64_t l = L - 1; l >= 0; --l) {
    std::fill(dprev.begin(), dprev.end(), 0.0f);
    block_backward(dprev.data(), g.layers[l], dx.data(), c.layers[l], w.layers[l], b.doc, c.rope, mo, 1.0f,
                   layer_dims(cfg, l, B, T, o));
    std::swap(dx, dprev);
  }
  // 4. Embedding (then the learned positions).
  embedding_backward(g.embed, dx.data(), b.tokens, N, C, V);
  if (learned_positions(cfg))
    position_embedding_backward(g.pos_embed, dx.data(), c.pos.data(), N, C, cfg.max_position_embeddings);
}

}  // namespace preflight::ref
