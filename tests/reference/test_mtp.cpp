// MTP module: the concatenation order of the released weights (embedding first), the shift of
// tokens / targets / mask by the depth, a two-depth chain (depth 2 reads depth 1's block
// output) forward vs the float64 oracle and backward (h_prev, shared embedding, shared head,
// every module weight) vs central finite differences of it, thread/repeat bit-identity.
// Legend: B = sequences, T = main tokens per sequence, Tk = T − k, Nk = B·Tk, C = hidden,
//         V = vocabulary.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "reference/core/config_io.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/mtp.hpp"
#include "tests/reference/oracle64_model.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

// tiny's mechanisms at a smaller width; moe_block: the last layer (and so the MTP block) is MoE.
ModelConfig mtp_config(bool moe_block) {
  ModelConfig c = load_model_config("tiny");
  c.hidden_size = 32, c.vocab_size = 64, c.num_attention_heads = 2, c.q_lora_rank = 16, c.kv_lora_rank = 16;
  c.qk_nope_head_dim = 8, c.qk_rope_head_dim = 4, c.v_head_dim = 8, c.intermediate_size = 48;
  c.moe_intermediate_size = 12, c.num_hidden_layers = 2, c.first_k_dense_replace = 1;
  c.num_nextn_predict_layers = 2;
  if (!moe_block) {  // a dense model
    c.n_routed_experts = c.n_shared_experts = c.moe_intermediate_size = c.num_experts_per_tok = 0;
    c.first_k_dense_replace = 0, c.n_group = c.topk_group = 1;
  }
  validate(c);
  return c;
}

// Two chained depths over one flat buffer [module 1 | module 2] plus the shared tensors.
struct MtpSetup {
  ModelConfig cfg;
  int64_t B = 2, T = 7;
  MoeLossOptions moe_opt;
  float dloss = 0.15f;  // λ/D
  std::vector<MtpDims> dims;
  std::vector<int64_t> offset;  // module offsets in `mods`
  std::vector<float> h, embed, head, mods;  // (B,T,C), (V,C), (V,C), modules
  std::vector<int32_t> tokens, targets, doc;
  std::vector<uint8_t> mask;
  RopeTable rope;
  explicit MtpSetup(bool moe_block) : cfg(mtp_config(moe_block)) {
    moe_opt.seq_aux_alpha = 0.01f, moe_opt.lb_coef = 0.01f, moe_opt.z_coef = 1e-3f;
    const int64_t C = cfg.hidden_size, V = cfg.vocab_size;
    int64_t total = 0;
    for (int64_t k = 1; k <= 2; ++k) {
      dims.push_back(MtpDims::from(cfg, k, B, T, false));
      offset.push_back(total);
      for (const auto& s : mtp_param_specs(dims.back())) total += s.size();
    }
    mods = randn(total, 5, 0.15f);
    for (int64_t k = 0; k < 2; ++k) {  // norm weights around 1, router bias small
      int64_t off = offset[k];
      for (const auto& s : mtp_param_specs(dims[k])) {
        for (int64_t i = 0; i < s.size(); ++i) {
          float& v = mods[off + i];
          if (s.init == ParamInit::ones) v = 1.0f + v;
          if (s.init == ParamInit::zeros) v = 0.3f * v;
        }
        off += s.size();
      }
    }
    h = randn(B * T * C, 1), embed = randn(V * C, 2, 0.5f), head = randn(V * C, 3, 0.3f);
    for (int64_t i = 0; i < B * T; ++i) tokens.push_back(int32_t((i * 29 + 3) % V)), targets.push_back(int32_t((i * 17 + 5) % V));
    doc.assign(B * T, 0);
    for (int64_t t = T / 2; t < T; ++t) doc[T + t] = 1;  // sequence 1 packs two documents
    mask.assign(B * T, 1);
    targets[4] = kIgnoreIndex, mask[B * T - 3] = 0;
    rope = rope_table(cfg, cfg.qk_rope_head_dim, T);
  }
  MtpWeights view(std::vector<float>& flat, int64_t k) const { return mtp_weights_view(flat.data() + offset[k], dims[k]); }

  struct Out {
    float loss = 0;  // Σ_k dloss·(CE_k + z_k) + Σ aux
    std::vector<float> dh, dembed, dhead, dmods;
    std::vector<oracle::Selection> routing;
    std::vector<MtpCache> caches;
  };
  Out run() const {
    const int64_t C = cfg.hidden_size, V = cfg.vocab_size;
    Out o;
    o.caches.resize(2);
    auto mods_ = mods;
    for (int64_t k = 0; k < 2; ++k) {
      const float* hp = k == 0 ? h.data() : o.caches[0].hk.data();
      mtp_forward(o.caches[k], hp, tokens.data(), targets.data(), mask.data(), doc.data(), embed.data(), head.data(),
                  view(mods_, k), rope, moe_opt, dims[k]);
      const MtpCache& c = o.caches[k];
      o.loss = o.loss + dloss * (c.loss.ce + c.loss.z);
      if (dims[k].block.moe) {
        o.loss = o.loss + ((c.block.moe.losses.seq_aux + c.block.moe.losses.lb) + c.block.moe.losses.z);
        oracle::Selection sel(c.block.moe.router.idx.size() / cfg.num_experts_per_tok);
        for (size_t t = 0; t < sel.size(); ++t)
          for (int64_t j = 0; j < cfg.num_experts_per_tok; ++j)
            sel[t].push_back(c.block.moe.router.idx[t * cfg.num_experts_per_tok + j]);
        o.routing.push_back(sel);
      }
    }
    o.dh.assign(B * T * C, 0.f), o.dembed.assign(V * C, 0.f), o.dhead.assign(V * C, 0.f), o.dmods.assign(mods.size(), 0.f);
    std::vector<float> dh1(B * (T - 1) * C, 0.f);  // gradient of depth 1's block output
    mtp_backward(dh1.data(), o.dembed.data(), o.dhead.data(), view(o.dmods, 1), nullptr, o.caches[1], embed.data(),
                 head.data(), view(mods_, 1), rope, moe_opt, dloss, 1.0f, dims[1]);
    mtp_backward(o.dh.data(), o.dembed.data(), o.dhead.data(), view(o.dmods, 0), dh1.data(), o.caches[0], embed.data(),
                 head.data(), view(mods_, 0), rope, moe_opt, dloss, 1.0f, dims[0]);
    return o;
  }

  // float64 oracle of the chain (mtp.hpp, in double); `frozen` = the fp32 routing.
  double oracle_loss(const Vec& hv, const Vec& ev, const Vec& headv, const Vec& mv,
                     const std::vector<oracle::Selection>& frozen) const {
    ModelOptions mo;
    mo.seq_aux_alpha = moe_opt.seq_aux_alpha, mo.lb_coef = moe_opt.lb_coef, mo.router_z_coef = moe_opt.z_coef;
    const int64_t C = cfg.hidden_size;
    const double eps = double(float(cfg.rms_norm_eps));
    double L = 0;
    Vec hprev = hv;
    int moe_index = 0;
    for (int64_t k = 1; k <= 2; ++k) {
      oracle::Model64 o(cfg, mo, B, T);
      o.frozen = frozen;
      o.at.clear();
      int64_t off = offset[k - 1];
      for (const auto& s : mtp_param_specs(dims[k - 1])) {
        o.at[s.name] = TensorInfo{s.name, off, s.size(), s.shape, s.init, s.trainable};
        off += s.size();
      }
      const int64_t Tk = T - k, Tp = T - k + 1, Nk = B * Tk;
      std::vector<int32_t> tg(Nk), dk(Nk);
      std::vector<uint8_t> mk(Nk);
      Vec e(Nk * C), hp(Nk * C);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < Tk; ++i) {
          const int64_t r = b * Tk + i;
          tg[r] = targets[b * T + i + k], mk[r] = mask[b * T + i + k], dk[r] = doc[b * T + i];
          for (int64_t ch = 0; ch < C; ++ch)
            e[r * C + ch] = ev[tokens[b * T + i + k] * C + ch], hp[r * C + ch] = hprev[(b * Tp + i) * C + ch];
        }
      const Vec en = oracle::rmsnorm(e, o.get(mv, "enorm"), eps, Nk, C), hn = oracle::rmsnorm(hp, o.get(mv, "hnorm"), eps, Nk, C);
      Vec cat(Nk * 2 * C);
      for (int64_t r = 0; r < Nk; ++r)
        for (int64_t ch = 0; ch < C; ++ch) cat[r * 2 * C + ch] = en[r * C + ch], cat[r * 2 * C + C + ch] = hn[r * C + ch];
      oracle::Moe64Losses aux;
      std::vector<oracle::Selection> sel(4);
      const Vec hk = o.block(oracle::linear(cat, o.get(mv, "proj"), Nk, C, 2 * C), mv, "block.", dims[k - 1].block.moe, Tk,
                             dk.data(), moe_index, &aux, sel.data(), nullptr);
      L += double(dloss) * o.ce(oracle::rmsnorm(hk, o.get(mv, "head_norm"), eps, Nk, C), headv, tg, mk, Nk) + aux.total();
      hprev = hk;
    }
    return L;
  }
};

TEST(MtpModule, EmbeddingHalfOfTheProjectionComesFirst) {
  MtpSetup s(false);
  const int64_t C = s.cfg.hidden_size, Nk = s.dims[0].Nk();
  auto mods = s.mods;
  MtpWeights w = s.view(mods, 0);
  for (int64_t o = 0; o < C; ++o) std::fill_n(w.proj + o * 2 * C + C, C, 0.0f);  // hidden half of W_proj = 0
  MtpCache c;
  mtp_forward(c, s.h.data(), s.tokens.data(), s.targets.data(), nullptr, nullptr, s.embed.data(), s.head.data(), w,
              s.rope, s.moe_opt, s.dims[0]);
  // hp must then be RMSNorm_e(Emb(x[i+1]))·W_e ᵀ alone: the first C inputs are the embedding.
  std::vector<float> we(C * C), want(Nk * C);
  for (int64_t o = 0; o < C; ++o) std::copy_n(w.proj + o * 2 * C, C, &we[o * C]);
  matmul_forward(want.data(), c.en.data(), we.data(), nullptr, Nk, C, C);
  EXPECT_TRUE(bits_equal(c.hp, want));  // 2C = 64 ≤ 128: one block, and fma(x, 0, acc) = acc
  for (int64_t i = 0; i < C; ++i) ASSERT_EQ(c.cat[i], c.en[i]);
  for (int64_t i = 0; i < C; ++i) ASSERT_EQ(c.cat[C + i], c.hn[i]);
}

TEST(MtpModule, TokensTargetsMaskAndDocumentsShiftByTheDepth) {
  MtpSetup s(false);
  const auto o = s.run();
  for (int64_t k = 1; k <= 2; ++k) {
    const MtpCache& c = o.caches[k - 1];
    const int64_t Tk = s.T - k;
    int64_t counted = 0;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t i = 0; i < Tk; ++i) {
        const int64_t r = b * Tk + i;
        ASSERT_EQ(c.tok[r], s.tokens[b * s.T + i + k]);
        ASSERT_EQ(c.tgt[r], s.targets[b * s.T + i + k]);  // = x[i+k+1]
        ASSERT_EQ(c.mask[r], s.mask[b * s.T + i + k]);
        ASSERT_EQ(c.doc[r], s.doc[b * s.T + i]);
        counted += (c.tgt[r] != kIgnoreIndex && c.mask[r]) ? 1 : 0;
      }
    EXPECT_EQ(c.loss.count, counted);
    EXPECT_EQ(int64_t(c.hk.size()), s.B * Tk * s.cfg.hidden_size);
  }
}

class MtpChain : public ::testing::TestWithParam<bool> {};

TEST_P(MtpChain, TwoDepthsMatchFloat64OracleAndFiniteDifferences) {
  MtpSetup s(GetParam());
  const auto o = s.run();
  const Vec hd = to_double(s.h), ed = to_double(s.embed), headd = to_double(s.head), md = to_double(s.mods);
  const double L64 = s.oracle_loss(hd, ed, headd, md, o.routing);
  // Loss: two depths, each a block (chain of ≤ 6 dots of length ≤ 2C = 64 plus norms, softmax,
  // experts: n ≈ 6·dot(64) + 60) and a head (dot(C), a row reduction over V, log): relative
  // γ(n) per depth on activations, moved into the CE by ≤ (1 + 2·max|logit|)·4.
  const double n = 2 * (6 * dot_roundings(64) + 60 + dot_roundings(32) + 10);
  double max_logit = 0;
  for (const auto& c : o.caches)
    for (float z : c.ce.z) max_logit = std::max(max_logit, double(std::fabs(z)));
  const double bound = gamma32(n) * (1 + 2 * max_logit) * 4 * (1 + std::fabs(L64));
  EXPECT_NEAR(o.loss, L64, bound);
  // FD with h = 1e-3 on O(0.1–1) inputs: truncation h²/6·|f'''| ≲ 1e-7. The fp32 gradients
  // chain through both depths (≤ 2n roundings): |g − fd| ≤ γ(2n)·(|fd| + g_scale)·4 with
  // g_scale the tensor's largest |g| (the factor 4 covers the magnitude sums' excess over
  // |g| measured ≲ 2 here).
  const double tol = gamma32(2 * n) * 4;
  auto check = [&](const char* what, const std::vector<float>& g, const Vec& x, auto f, size_t stride) {
    double gs = 0;
    for (float v : g) gs = std::max(gs, double(std::fabs(v)));
    expect_grad_matches_fd(what, g, f, x, 1e-3, tol * gs + 1e-9, tol, stride);
  };
  const auto& fz = o.routing;
  check("dh_prev", o.dh, hd, [&](const Vec& v) { return s.oracle_loss(v, ed, headd, md, fz); }, 7);
  check("dembed", o.dembed, ed, [&](const Vec& v) { return s.oracle_loss(hd, v, headd, md, fz); }, 5);
  check("dhead", o.dhead, headd, [&](const Vec& v) { return s.oracle_loss(hd, ed, v, md, fz); }, 13);
  check("dmodules", o.dmods, md, [&](const Vec& v) { return s.oracle_loss(hd, ed, headd, v, fz); },
        std::max<size_t>(1, md.size() / 300) | 1);
}

TEST_P(MtpChain, OneAndTwoThreadsAndRepeatsBitIdentical) {
  MtpSetup s(GetParam());
  auto flat = [&] {
    auto o = s.run();
    std::vector<float> v = o.dh;
    for (auto* x : {&o.dembed, &o.dhead, &o.dmods}) v.insert(v.end(), x->begin(), x->end());
    v.push_back(o.loss);
    return v;
  };
  const auto one = with_threads(1, flat);
  EXPECT_TRUE(bits_equal(one, with_threads(2, flat)));
  EXPECT_TRUE(bits_equal(one, with_threads(2, flat)));
}

INSTANTIATE_TEST_SUITE_P(Blocks, MtpChain, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "moe_block" : "dense_block"); });

}  // namespace
}  // namespace preflight::ref::test
