// Multi-token prediction module (order of every operation: mtp.hpp).
// Legend: B = sequences, T = main tokens per sequence, Tk = T − k, Nk = B·Tk, C = hidden.
#include "reference/layers/mtp.hpp"

#include <cstring>

#include "reference/core/error.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/rmsnorm.hpp"

namespace preflight::ref {

MtpDims MtpDims::from(const ModelConfig& c, int64_t k, int64_t B, int64_t T, bool bf16) {
  PREFLIGHT_CHECK(k >= 1 && k < T, "mtp: depth ", k, " needs more than ", k, " tokens per sequence, got T = ", T);
  MtpDims d;
  d.B = B, d.T = T, d.k = k, d.C = c.hidden_size, d.V = c.vocab_size, d.eps = float(c.rms_norm_eps), d.bf16 = bf16;
  // The MTP block is the same kind as the model's last block (MoE in DeepSeek-V3).
  d.block = BlockDims::from(c, c.is_moe_layer(c.num_hidden_layers - 1), B, T - k);
  d.block.bf16 = bf16;
  d.block.label = "mtp " + std::to_string(k) + " block";
  d.loss.T = B * (T - k), d.loss.C = c.hidden_size, d.loss.V = c.vocab_size;
  d.loss.softcap = float(c.final_logit_softcapping);
  return d;
}

std::vector<ParamSpec> mtp_param_specs(const MtpDims& d) {
  std::vector<ParamSpec> s = {{"enorm", {d.C}, ParamInit::ones, true},
                              {"hnorm", {d.C}, ParamInit::ones, true},
                              {"proj", {d.C, 2 * d.C}, ParamInit::normal, true}};
  for (auto p : block_param_specs(d.block)) {
    p.name = "block." + p.name;
    s.push_back(p);
  }
  s.push_back({"head_norm", {d.C}, ParamInit::ones, true});
  return s;
}

MtpWeights mtp_weights_view(float* flat, const MtpDims& d) {
  MtpWeights w;
  w.enorm = flat, w.hnorm = flat + d.C, w.proj = flat + 2 * d.C;
  flat += 2 * d.C + 2 * d.C * d.C;
  w.block = block_weights_view(flat, d.block);
  w.head_norm = flat + block_param_count(d.block);
  return w;
}

void mtp_forward(MtpCache& c, const float* h_prev, const int32_t* tokens, const int32_t* targets, const uint8_t* mask,
                 const int32_t* doc, const float* embed, const float* head, const MtpWeights& w, const RopeTable& rope,
                 const MoeLossOptions& moe_opt, const MtpDims& d) {
  const int64_t B = d.B, T = d.T, k = d.k, Tk = d.Tk(), Nk = d.Nk(), C = d.C, Tp = T - k + 1;
  PREFLIGHT_CHECK(Tk > 0, "mtp: depth ", k, " needs T > ", k, ", got T = ", T);
  c.tok.assign(Nk, 0), c.tgt.assign(Nk, 0);
  c.mask.assign(mask ? Nk : 0, 0), c.doc.assign(doc ? Nk : 0, 0);
  c.hprev.assign(Nk * C, 0.f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tk; ++i) {
      const int64_t r = b * Tk + i;
      c.tok[r] = tokens[b * T + i + k], c.tgt[r] = targets[b * T + i + k];
      if (mask) c.mask[r] = mask[b * T + i + k];
      if (doc) c.doc[r] = doc[b * T + i];
      std::memcpy(&c.hprev[r * C], h_prev + (b * Tp + i) * C, C * sizeof(float));
    }
  c.e.assign(Nk * C, 0.f), c.en.assign(Nk * C, 0.f), c.en_rstd.assign(Nk, 0.f);
  embedding_forward(c.e.data(), c.tok.data(), embed, Nk, C, d.V);
  store_activation(c.e.data(), Nk * C, d.bf16);
  rmsnorm_forward(c.en.data(), c.en_rstd.data(), c.e.data(), w.enorm, d.eps, Nk, C);
  store_activation(c.en.data(), Nk * C, d.bf16);
  c.hn.assign(Nk * C, 0.f), c.hn_rstd.assign(Nk, 0.f);
  rmsnorm_forward(c.hn.data(), c.hn_rstd.data(), c.hprev.data(), w.hnorm, d.eps, Nk, C);
  store_activation(c.hn.data(), Nk * C, d.bf16);
  c.cat.assign(Nk * 2 * C, 0.f);
  for (int64_t r = 0; r < Nk; ++r) {
    std::memcpy(&c.cat[r * 2 * C], &c.en[r * C], C * sizeof(float));
    std::memcpy(&c.cat[r * 2 * C + C], &c.hn[r * C], C * sizeof(float));
  }
  c.hp.assign(Nk * C, 0.f);
  linear_forward(c.hp.data(), c.cat.data(), w.proj, nullptr, Nk, C, 2 * C, d.block.precision);
  store_activation(c.hp.data(), Nk * C, d.bf16);
  c.hk.assign(Nk * C, 0.f);
  block_forward(c.hk.data(), c.block, c.hp.data(), w.block, doc ? c.doc.data() : nullptr, rope, moe_opt, d.block);
  c.fn.assign(Nk * C, 0.f), c.fn_rstd.assign(Nk, 0.f);
  rmsnorm_forward(c.fn.data(), c.fn_rstd.data(), c.hk.data(), w.head_norm, d.eps, Nk, C);
  store_activation(c.fn.data(), Nk * C, d.bf16);
  c.loss = lm_head_ce_forward(c.ce, c.fn.data(), head, c.tgt.data(), mask ? c.mask.data() : nullptr, d.loss);
}

void mtp_backward(float* dh_prev, float* dembed, float* dhead, const MtpWeights& dw, const float* dhk,
                  const MtpCache& c, const float* embed, const float* head, const MtpWeights& w, const RopeTable& rope,
                  const MoeLossOptions& moe_opt, float dloss, float dloss_aux, const MtpDims& d) {
  (void)embed;
  const int64_t B = d.B, T = d.T, k = d.k, Tk = d.Tk(), Nk = d.Nk(), C = d.C, Tp = T - k + 1;
  const uint8_t* mask = c.mask.empty() ? nullptr : c.mask.data();
  const int32_t* doc = c.doc.empty() ? nullptr : c.doc.data();
  std::vector<float> dfn(Nk * C, 0.f);  // (Nk,C)
  lm_head_ce_backward(dfn.data(), dhead, c.ce, c.fn.data(), head, c.tgt.data(), mask, dloss, d.loss);
  std::vector<float> dh(Nk * C, 0.f);  // (Nk,C) gradient of hk: the deeper depth's first
  if (dhk) std::memcpy(dh.data(), dhk, Nk * C * sizeof(float));
  rmsnorm_backward(dh.data(), dw.head_norm, dfn.data(), c.hk.data(), w.head_norm, c.fn_rstd.data(), Nk, C);
  std::vector<float> dhp(Nk * C, 0.f);  // (Nk,C)
  block_backward(dhp.data(), dw.block, dh.data(), c.block, w.block, doc, rope, moe_opt, dloss_aux, d.block);
  std::vector<float> dcat(Nk * 2 * C, 0.f), den(Nk * C), dhn(Nk * C);  // (Nk,2C), (Nk,C), (Nk,C)
  linear_backward(dcat.data(), dw.proj, nullptr, dhp.data(), c.cat.data(), w.proj, Nk, C, 2 * C, d.block.precision);
  for (int64_t r = 0; r < Nk; ++r) {
    std::memcpy(&den[r * C], &dcat[r * 2 * C], C * sizeof(float));
    std::memcpy(&dhn[r * C], &dcat[r * 2 * C + C], C * sizeof(float));
  }
  std::vector<float> de(Nk * C, 0.f), dhprev(Nk * C, 0.f);  // (Nk,C) each
  rmsnorm_backward(de.data(), dw.enorm, den.data(), c.e.data(), w.enorm, c.en_rstd.data(), Nk, C);
  embedding_backward(dembed, de.data(), c.tok.data(), Nk, C, d.V);
  rmsnorm_backward(dhprev.data(), dw.hnorm, dhn.data(), c.hprev.data(), w.hnorm, c.hn_rstd.data(), Nk, C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tk; ++i)
      for (int64_t ch = 0; ch < C; ++ch) {
        float& g = dh_prev[(b * Tp + i) * C + ch];
        g = g + dhprev[(b * Tk + i) * C + ch];
      }
}

}  // namespace preflight::ref
