// The whole model: parameter layout vs the exact accounting, Philox initialisation, loss vs a
// float64 oracle of the whole model, gradient of EVERY parameter tensor vs central finite
// differences of that oracle (tiny, a GQA + MoE + MTP composition, a GPT-style composition),
// determinism (repeats, 1 vs 2 threads, bf16 activations), the max attention logit per head,
// packed documents, NaN reporting, bad batches.
// Legend: B = sequences, T = tokens per sequence, N = B·T, C = hidden, V = vocabulary.
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "reference/core/accounting.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/model.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/router.hpp"
#include "reference/numerics/philox.hpp"
#include "tests/reference/oracle64_model.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

// A Llama-style GQA composition with MoE blocks, two MTP depths, tied embeddings and a
// final-logit soft-cap (not a preset): every block kind the model composes, in a size a
// float64 oracle differentiates in seconds.
ModelConfig gqa_moe_config() {
  ModelConfig c = load_model_config("tiny");
  c.name = "gqa-moe-test";
  c.attention = AttentionKind::gqa;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8;
  c.q_lora_rank = c.kv_lora_rank = c.qk_nope_head_dim = c.qk_rope_head_dim = c.v_head_dim = 0;
  c.hidden_size = 32, c.vocab_size = 96, c.intermediate_size = 40, c.moe_intermediate_size = 12;
  c.num_hidden_layers = 2, c.first_k_dense_replace = 1, c.n_routed_experts = 6, c.n_group = 3, c.topk_group = 2;
  c.num_experts_per_tok = 2, c.n_shared_experts = 1, c.num_nextn_predict_layers = 2;
  c.final_logit_softcapping = 30.0, c.tie_word_embeddings = true;
  validate(c);
  return c;
}

// A GPT-style composition (not a preset; gpt-1.7b's kinds at a testable size): LayerNorm with
// bias, GELU MLP with biases, learned absolute positions, q/k/v/o biases, tied embeddings.
ModelConfig gpt_config() {
  ModelConfig c = load_model_config("gpt-1.7b");
  c.name = "gpt-test";
  c.hidden_size = 32, c.num_attention_heads = 4, c.num_key_value_heads = 4, c.head_dim = 8;
  c.num_hidden_layers = 2, c.vocab_size = 96, c.intermediate_size = 64, c.max_position_embeddings = 16;
  validate(c);
  return c;
}

struct ModelSetup {
  ModelConfig cfg;
  ModelOptions opt;
  int64_t B, T;
  std::vector<int32_t> tokens, targets, doc;
  std::vector<uint8_t> mask;
  std::vector<float> params;
  Batch batch() const {
    Batch b;
    b.B = B, b.T = T, b.tokens = tokens.data(), b.targets = targets.data();
    b.mask = mask.empty() ? nullptr : mask.data();
    b.doc = doc.empty() ? nullptr : doc.data();
    return b;
  }
  // B sequences of T tokens from a fixed pattern; sequence 1 packs two documents; one target
  // ignored and one masked; all losses on with visible coefficients.
  ModelSetup(const ModelConfig& c, int64_t B_, int64_t T_, double init_std) : cfg(c), B(B_), T(T_) {
    cfg.initializer_range = init_std;
    opt.mtp_lambda = 0.3f, opt.seq_aux_alpha = 0.01f, opt.lb_coef = 0.01f, opt.router_z_coef = 1e-3f;
    opt.logit_z_coef = 1e-3f;
    const int64_t V = cfg.vocab_size;
    std::vector<int32_t> stream(B * T + 1);
    for (size_t i = 0; i < stream.size(); ++i) stream[i] = int32_t((i * 37 + 11 + i * i * 5) % V);
    tokens.assign(stream.begin(), stream.end() - 1);
    targets.assign(stream.begin() + 1, stream.end());
    doc.assign(B * T, 0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) doc[b * T + t] = (b == 1 && t >= T / 2) ? 1 : 0;
    mask.assign(B * T, 1);
    targets[2] = kIgnoreIndex;
    mask[B * T - 2] = 0;
    params.assign(model_layout(cfg).total, 0.f);
    model_init(params.data(), cfg, 1234);
  }
};

// fp32 forward + backward: losses, gradients, and the routing of every MoE block.
struct ModelRun {
  ModelLoss loss;
  std::vector<float> grads;
  std::vector<oracle::Selection> routing;
  double max_logit = 0;  // max |logit| of the main and MTP heads
};
ModelRun run_model(const ModelSetup& s, bool bf16 = false, Precision prec = Precision::fp32) {
  ModelOptions o = s.opt;
  o.bf16_activations = bf16;
  o.precision.kind = prec;
  ModelCache cache;
  ModelRun r;
  r.loss = model_forward(cache, s.params.data(), s.batch(), s.cfg, o);
  r.grads.assign(s.params.size(), 0.f);
  model_backward(r.grads.data(), cache, s.params.data(), s.batch(), s.cfg, o);
  for (float z : cache.ce.z) r.max_logit = std::max(r.max_logit, double(std::fabs(z)));
  for (const auto& m : cache.mtp)
    for (float z : m.ce.z) r.max_logit = std::max(r.max_logit, double(std::fabs(z)));
  auto sel_of = [&](const MoeCache& m) {
    oracle::Selection sel;
    const int64_t K = s.cfg.num_experts_per_tok, n = int64_t(m.router.idx.size()) / K;
    sel.resize(n);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < K; ++j) sel[t].push_back(m.router.idx[t * K + j]);
    return sel;
  };
  for (int64_t l = 0; l < s.cfg.num_hidden_layers; ++l)
    if (s.cfg.is_moe_layer(l)) r.routing.push_back(sel_of(cache.layers[l].moe));
  for (const auto& m : cache.mtp)
    if (s.cfg.is_moe_layer(s.cfg.num_hidden_layers - 1)) r.routing.push_back(sel_of(m.block.moe));
  return r;
}

oracle::Model64 oracle_of(const ModelSetup& s) {
  oracle::Model64 o(s.cfg, s.opt, s.B, s.T);
  o.tokens = s.tokens, o.targets = s.targets, o.doc = s.doc, o.mask = s.mask;
  return o;
}

// ---------------------------------------------------------------- layout and init
TEST(ModelLayout, TotalEqualsTheExactParameterAccounting) {
  for (const char* name : {"tiny", "proxy-16b", "deepseek-v3-671b", "llama3-8b", "llama3-405b"}) {
    const ModelConfig c = load_model_config(name);
    const ModelLayout lay = model_layout(c);
    EXPECT_EQ(lay.total, count_parameters(c).with_mtp().total) << name;
    int64_t off = 0;
    for (const auto& t : lay.tensors) {
      ASSERT_EQ(t.offset, off) << name << " " << t.name;
      off += t.size;
    }
  }
  EXPECT_EQ(model_layout(gqa_moe_config()).total, count_parameters(gqa_moe_config()).with_mtp().total);
  // GPT-style presets (LayerNorm + bias, GELU MLP + biases, learned positions, tied).
  for (const char* name : {"gpt-1.7b", "gpt-18.4b"}) {
    const ModelConfig c = load_model_config(name);
    EXPECT_EQ(model_layout(c).total, count_parameters(c).with_mtp().total) << name;
  }
  EXPECT_EQ(model_layout(gpt_config()).total, count_parameters(gpt_config()).with_mtp().total);
  // LayerNorm with MTP is not composed (the MTP modules are RMSNorm-based).
  ModelConfig bad = gpt_config();
  bad.num_nextn_predict_layers = 1;
  try {
    model_layout(bad);
    FAIL() << "expected an error";
  } catch (const preflight::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layernorm"), std::string::npos) << e.what();
  }
}

TEST(ModelLayout, InitIsPhiloxNormalPerTensorStream) {
  const ModelConfig c = load_model_config("tiny");
  const ModelLayout lay = model_layout(c);
  std::vector<float> p(lay.total, -1.0f);
  model_init(p.data(), c, 42);
  const float sd = float(c.initializer_range);
  for (size_t s = 0; s < lay.tensors.size(); ++s) {
    const auto& t = lay.tensors[s];
    for (int64_t i : {int64_t(0), t.size / 2, t.size - 1}) {
      const float want = t.init == ParamInit::normal ? sd * num::normal(42, s, uint64_t(i))
                                                     : (t.init == ParamInit::ones ? 1.0f : 0.0f);
      ASSERT_EQ(p[t.offset + i], want) << t.name << "[" << i << "]";
    }
    if (t.name.find("moe.bias") != std::string::npos) {
      EXPECT_FALSE(t.trainable);
    }
  }
  EXPECT_EQ(lay.tensors.front().name, "embed");
  EXPECT_EQ(lay.tensors.back().name, "mtp.1.head_norm");
}

// ---------------------------------------------------------------- against the float64 oracle
struct GradCase {
  const char* name;
  ModelConfig (*config)();
  int64_t B, T;
};
ModelConfig tiny_config() { return load_model_config("tiny"); }
const GradCase kGradCases[] = {
    {"tiny", tiny_config, 2, 7}, {"gqa_moe_mtp2", gqa_moe_config, 2, 6}, {"gpt_layernorm_gelu_learned", gpt_config, 2, 6}};

class ModelGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGrad, LossAndEveryParameterGradientMatchFloat64Oracle) {
  const auto& k = GetParam();
  // init std 0.1 instead of tiny's 0.02, so attention and routing are far from uniform.
  ModelSetup s(k.config(), k.B, k.T, 0.1);
  const ModelRun r = run_model(s);
  oracle::Model64 o = oracle_of(s);
  const Vec pd = to_double(s.params);
  // The oracle's own routing agrees with the fp32 model's (checked only where the oracle's
  // decision margin exceeds the fp32 logits' error, ~1e-6 here).
  std::vector<oracle::Selection> own;
  double margin = INFINITY;
  o.loss(pd, &own, &margin);
  ASSERT_EQ(own.size(), r.routing.size());
  if (margin > 1e-5) {
    EXPECT_EQ(own, r.routing);
  }
  // From here the oracle uses the fp32 routing (selection is piecewise constant; its
  // derivative is that of the frozen selection).
  o.frozen = r.routing;
  double main64 = 0;
  const double L64 = o.loss(pd, nullptr, nullptr, &main64);
  // Loss bound. The longest rounding chain runs through L blocks (each ≤ 2 RMSNorms, ~5 dots
  // of length ≤ 2C, softmax, experts: n_block ≈ Σ dot_roundings + 60) and the head (dot of
  // length C, a row reduction over V, log): n = L·n_block + n_head. Relative activation errors
  // γ(n) move the mean CE by at most γ(n)·(1 + 2·max|logit|)·4 (log-sum-exp is 1-Lipschitz
  // in the max norm; 4 covers the norms' conditioning and Σ|·|/|Σ| slack, as for MLA).
  // The factor 4 is NOT derived (issue 10; kept, not widened): a rigorous component-wise bound,
  // done for one MLA layer in test_mla.cpp (mla_forward_bound), is already up to 12× looser than
  // this estimate there, because worst-case propagation lets every GEMM amplify by Σ|W|; for
  // L + D blocks it would be looser still. Measured error / bound is recorded as
  // loss_err_over_bound.
  const double C = double(s.cfg.hidden_size);
  const double nblock = 5 * dot_roundings(2 * int64_t(C)) + dot_roundings(k.T) + 60;
  const double n = double(s.cfg.num_hidden_layers + s.cfg.num_nextn_predict_layers) * nblock +
                   dot_roundings(int64_t(C)) + double((s.cfg.vocab_size + 31) / 32) + 20;
  const double bound = gamma32(n) * (1 + 2 * r.max_logit) * 4 * (1 + std::fabs(L64));
  EXPECT_NEAR(r.loss.total, L64, bound);
  EXPECT_NEAR(r.loss.ce + r.loss.logit_z, main64, bound);
  RecordProperty("loss_err_over_bound", std::to_string(std::fabs(r.loss.total - L64) / bound));
  // Gradients: every parameter tensor, 4 entries each spread over the tensor (for the
  // embedding: entries in rows of tokens that occur), vs the central difference h = 1e-4
  // of the float64 oracle (truncation h²/6·|f'''| ≲ 1e-9, rounding 2^-53·|L|/h ≲ 1e-11).
  // Tolerance: the fp32 gradient is a chain through the same ≤ n roundings as the loss
  // (forward activations it reuses, then the transposed dots), so its error is ≤ γ(2n)
  // relative to the magnitude sums along the chain; bounding those by |fd| + g_scale
  // (g_scale = the largest |g| of that tensor: a gradient entry is a sum of products whose
  // sizes the tensor's largest entry bounds, up to the O(1) factors measured ≲ 3 here):
  //   |g − fd| ≤ γ(2n)·(|fd| + g_scale).
  const double gtol = gamma32(2 * n);
  const ModelLayout lay = model_layout(s.cfg);
  auto f = [&](const Vec& v) { return o.loss(v); };
  int checked = 0, bad = 0;
  double worst = 0;
  for (const auto& t : lay.tensors) {
    if (!t.trainable) {
      for (int64_t i = 0; i < t.size; ++i) ASSERT_EQ(r.grads[t.offset + i], 0.0f) << t.name;
      continue;
    }
    // A key bias's true gradient is identically 0 (it shifts every logit of a softmax row by
    // the same q·bk), so its fp32 value is pure cancellation noise of Σ_s dl[t,s] = 0: its
    // scale is that of the sums it cancels, which the query bias's gradient (Σ_s dl·k) shows.
    std::string scale_of = t.name;
    if (scale_of.size() > 7 && scale_of.compare(scale_of.size() - 7, 7, "attn.bk") == 0)
      scale_of.replace(scale_of.size() - 2, 2, "bq");
    double gscale = 0;
    for (const auto& u : lay.tensors)
      if (u.name == scale_of)
        for (int64_t i = 0; i < u.size; ++i) gscale = std::max(gscale, double(std::fabs(r.grads[u.offset + i])));
    for (int j = 0; j < 4; ++j) {
      int64_t i = (t.size * (2 * j + 1)) / 8;
      if (t.name == "embed") i = int64_t(s.tokens[j * 3]) * int64_t(C) + (j * 13) % int64_t(C);
      const double fd = central_diff(f, pd, size_t(t.offset + i), 1e-4);
      const double g = r.grads[t.offset + i];
      const double tol = gtol * (std::fabs(fd) + gscale) + 1e-12;
      worst = std::max(worst, std::fabs(g - fd) / tol);
      ++checked;
      if (std::fabs(g - fd) > tol && bad++ < 10)
        ADD_FAILURE() << t.name << "[" << i << "]: backward " << g << " vs finite difference " << fd << " (tol " << tol
                      << ")";
    }
  }
  EXPECT_EQ(bad, 0);
  RecordProperty("grad_entries_checked", std::to_string(checked));
  RecordProperty("grad_worst_err_over_tol", std::to_string(worst));
  std::printf("[ model ] %s: %d gradient entries over %zu tensors, gradient tol γ(2n) = %.3g, worst |g - fd| / tol = "
              "%.3g; loss %.7f vs oracle %.7f (bound %.3g); routing margin %.3g\n",
              k.name, checked, lay.tensors.size(), gtol, worst, double(r.loss.total), L64, bound, margin);
}

// The max pre-softmax logit per head that ModelLoss surfaces (QK-Clip's statistic) is a max of
// logits the forward computed, so it is checked EXACTLY against the same fp32 logits recomputed
// from the cache (l = dot_k128(q, k)·scale, soft-capped c·tanh(l/c) where configured, allowed
// keys only), and against the float64 oracle's max within the logit's rounding bound.
TEST_P(ModelGrad, MaxLogitPerHeadIsTheMaxOfTheComputedLogits) {
  const auto& k = GetParam();
  ModelSetup s(k.config(), k.B, k.T, 0.1);
  ModelCache cache;
  const ModelLoss loss = model_forward(cache, s.params.data(), s.batch(), s.cfg, s.opt);
  const int64_t L = s.cfg.num_hidden_layers, D = s.cfg.num_nextn_predict_layers, H = s.cfg.num_attention_heads;
  ASSERT_EQ(int64_t(loss.max_logit_per_head.size()), L + D);
  const bool mla = s.cfg.attention == AttentionKind::mla;
  const float scale = mla ? mla_softmax_scale(MlaDims::from(s.cfg, s.T), cache.rope)
                          : gqa_softmax_scale(GqaDims::from(s.cfg, s.T), cache.rope);
  const float cap = float(s.cfg.attn_logit_softcapping);
  auto block_of = [&](int64_t i) -> const BlockCache& { return i < L ? cache.layers[i] : cache.mtp[i - L].block; };
  for (int64_t i = 0; i < L + D; ++i) {
    const BlockCache& bc = block_of(i);
    std::vector<float> want(H, -INFINITY);
    const int64_t nseq = mla ? int64_t(bc.mla.size()) : int64_t(bc.gqa.size());
    for (int64_t b = 0; b < nseq; ++b) {
      const std::vector<int64_t>& s0 = mla ? bc.mla[b].s0 : bc.gqa[b].s0;
      const int64_t T = int64_t(s0.size());
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t u = s0[t]; u <= t; ++u) {
            float l;
            if (mla) {
              const int64_t Dq = s.cfg.qk_nope_head_dim + s.cfg.qk_rope_head_dim;
              l = px::dot(&bc.mla[b].q[(t * H + h) * Dq], 1, &bc.mla[b].k[(u * H + h) * Dq], 1, Dq) * scale;
            } else {
              const int64_t Dh = s.cfg.head_dim, G = s.cfg.num_key_value_heads, g = h / (H / G);
              l = px::dot(&bc.gqa[b].q[(t * H + h) * Dh], 1, &bc.gqa[b].k[(u * G + g) * Dh], 1, Dh) * scale;
              if (cap > 0) l = cap * px::tanh(l / cap);
            }
            want[h] = std::fmax(want[h], l);
          }
    }
    ASSERT_EQ(int64_t(loss.max_logit_per_head[i].size()), H);
    EXPECT_TRUE(bits_equal(loss.max_logit_per_head[i], want)) << "block " << i;
  }
  // Against the float64 oracle (fp32 routing frozen): the logit is a dot of length D after
  // ~the loss chain of the blocks before it, so within γ(n)·(1 + |l|)·4 as the loss bound (the
  // same underived factor 4, kept for the same reason).
  oracle::Model64 o = oracle_of(s);
  o.frozen = run_model(s).routing;
  o.loss(to_double(s.params));
  ASSERT_EQ(int64_t(o.max_logit.size()), L + D);
  const double n = double(L + D) * (5 * dot_roundings(2 * s.cfg.hidden_size) + dot_roundings(k.T) + 60);
  double worst = 0;
  for (int64_t i = 0; i < L + D; ++i)
    for (int64_t h = 0; h < H; ++h) {
      const double want = o.max_logit[i][h], got = loss.max_logit_per_head[i][h];
      const double tol = gamma32(n) * (1 + std::fabs(want)) * 4;
      worst = std::max(worst, std::fabs(got - want) / tol);
      EXPECT_NEAR(got, want, tol) << "block " << i << " head " << h;
    }
  std::printf("[ model ] %s: max logit per head vs float64 oracle, worst |err| / bound = %.3g\n", k.name, worst);
}

TEST_P(ModelGrad, RepeatsAndThreadCountsAreBitIdentical) {
  const auto& k = GetParam();
  ModelSetup s(k.config(), k.B, k.T, 0.1);
  for (bool bf16 : {false, true}) {
    auto flat = [&] {
      ModelRun r = run_model(s, bf16);
      std::vector<float> v = r.grads;
      v.push_back(r.loss.total), v.push_back(r.loss.ce), v.push_back(r.loss.mtp), v.push_back(r.loss.aux);
      return v;
    };
    const auto one = with_threads(1, flat);
    EXPECT_TRUE(bits_equal(one, with_threads(2, flat))) << (bf16 ? "bf16" : "fp32");
    if (!bf16) {
      EXPECT_TRUE(bits_equal(one, with_threads(1, flat))) << "repeat";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, ModelGrad, ::testing::ValuesIn(kGradCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------- bf16 activations
// Storing activations in bf16 rounds each of them once per rounding point (relative 2^-9).
// The loss moves by at most Σ over rounding points of |∂L/∂a|·|a|·2^-9; with ≤ 6 points per
// block and the loss's relative sensitivity to a relative perturbation of one point's
// activations ≲ 1 (at init: logits are small, so CE ≈ log V varies slowly), the loss changes
// by ≤ 2^-9·6·(L + D + 1)·|L|. Gradients change by the same relative order.
TEST(ModelBf16, ActivationsInBf16StayWithinTheirRoundingBudget) {
  ModelSetup s(load_model_config("tiny"), 2, 7, 0.02);
  const ModelRun a = run_model(s, false), b = run_model(s, true);
  const double points = 6.0 * double(s.cfg.num_hidden_layers + s.cfg.num_nextn_predict_layers + 1);
  EXPECT_NE(a.loss.total, b.loss.total);  // the rounding happened
  EXPECT_LE(std::fabs(a.loss.total - b.loss.total), std::ldexp(1.0, -9) * points * std::fabs(a.loss.total));
  double num = 0, den = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) num += std::pow(double(a.grads[i]) - b.grads[i], 2), den += std::pow(a.grads[i], 2);
  EXPECT_LE(std::sqrt(num / den), std::ldexp(1.0, -9) * points);
  std::printf("[ model ] bf16 activations: loss %.7f vs fp32 %.7f; relative gradient difference %.3g\n",
              double(b.loss.total), double(a.loss.total), std::sqrt(num / den));
}

// ---------------------------------------------------------------- GEMM precision
// options.precision routes every block GEMM and the MTP projection through linear_forward /
// linear_backward (fp8_linear.hpp); the LM head, router gate and attention core stay fp32.
double rel_fro(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += std::pow(double(a[i]) - ref[i], 2), den += std::pow(double(ref[i]), 2);
  return std::sqrt(num / den);
}

// The default precision is fp32 and then every block GEMM the model runs is matmul.hpp bit for
// bit: each GEMM output the forward caches in the first (dense, MLA) block is recomputed from
// the same cached inputs and the parameters with matmul_forward and must have the same bits.
// The same recomputation against a bf16-GEMM run must differ (the comparison can fail).
struct FirstBlockGemms {
  int64_t compared = 0, differ = 0;
};
FirstBlockGemms compare_first_block_with_matmul(const ModelSetup& s, Precision prec) {
  ModelOptions o = s.opt;
  o.precision.kind = prec;
  ModelCache cache;
  model_forward(cache, s.params.data(), s.batch(), s.cfg, o);
  const ModelLayout lay = model_layout(s.cfg);
  auto param = [&](const std::string& name) -> const float* {
    for (const auto& t : lay.tensors)
      if (t.name == name) return s.params.data() + t.offset;
    ADD_FAILURE() << "no tensor " << name;
    return nullptr;
  };
  const ModelConfig& c = s.cfg;
  const int64_t T = s.T, C = c.hidden_size, H = c.num_attention_heads, Rq = c.q_lora_rank, Rkv = c.kv_lora_rank;
  const int64_t Dr = c.qk_rope_head_dim, VB = c.qk_nope_head_dim + c.v_head_dim, Dv = c.v_head_dim, I = c.intermediate_size;
  const BlockCache& bc = cache.layers[0];
  FirstBlockGemms r;
  auto cmp = [&](const float* got, int64_t got_stride, const std::vector<float>& want, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        ++r.compared;
        r.differ += std::bit_cast<uint32_t>(got[i * got_stride + j]) != std::bit_cast<uint32_t>(want[i * cols + j]);
      }
  };
  for (int64_t b = 0; b < s.B; ++b) {
    const MlaCache& m = bc.mla[b];
    const float* xn = bc.xn.data() + b * T * C;
    std::vector<float> qa(T * Rq), ckv(T * (Rkv + Dr)), kvb(T * H * VB), a(T * C);
    matmul_forward(qa.data(), xn, param("layers.0.attn.wq_a"), nullptr, T, Rq, C);
    cmp(m.qa.data(), Rq, qa, T, Rq);
    // kv's first Rkv columns are the GEMM output as is (RoPE rotates only the k_pe columns).
    matmul_forward(ckv.data(), xn, param("layers.0.attn.wkv_a"), nullptr, T, Rkv + Dr, C);
    std::vector<float> c_part(T * Rkv);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < Rkv; ++j) c_part[t * Rkv + j] = ckv[t * (Rkv + Dr) + j];
    cmp(m.kv.data(), Rkv + Dr, c_part, T, Rkv);
    matmul_forward(kvb.data(), m.cn.data(), param("layers.0.attn.wkv_b"), nullptr, T, H * VB, Rkv);
    cmp(m.kvb.data(), H * VB, kvb, T, H * VB);
    matmul_forward(a.data(), m.o.data(), param("layers.0.attn.wo"), nullptr, T, C, H * Dv);
    cmp(bc.a.data() + b * T * C, C, a, T, C);
  }
  const int64_t N = s.B * T;
  std::vector<float> f1(N * I), f3(N * I), f(N * C), out(N * C);
  matmul_forward(f1.data(), bc.hn.data(), param("layers.0.ffn.w1"), nullptr, N, I, C);
  cmp(bc.f1.data(), I, f1, N, I);
  matmul_forward(f3.data(), bc.hn.data(), param("layers.0.ffn.w3"), nullptr, N, I, C);
  cmp(bc.f3.data(), I, f3, N, I);
  // The down projection's output is seen through the residual add: block out = h + fact·W2ᵀ.
  matmul_forward(f.data(), bc.fact.data(), param("layers.0.ffn.w2"), nullptr, N, C, I);
  for (int64_t i = 0; i < N * C; ++i) out[i] = bc.h[i] + f[i];
  cmp(cache.xs[1].data(), C, out, N, C);
  return r;
}

TEST(ModelPrecision, Fp32IsTheDefaultAndIsMatmulBitForBit) {
  EXPECT_EQ(ModelOptions{}.precision.kind, Precision::fp32);
  // tiny at its init std: layer 0 is a dense MLA block (the GEMMs compared), K = 64 and 128.
  ModelSetup s(load_model_config("tiny"), 2, 7, 0.02);
  ASSERT_FALSE(s.cfg.is_moe_layer(0));
  ASSERT_EQ(s.cfg.attention, AttentionKind::mla);
  const FirstBlockGemms f32 = compare_first_block_with_matmul(s, ModelOptions{}.precision.kind);
  EXPECT_GT(f32.compared, 0);
  EXPECT_EQ(f32.differ, 0) << "of " << f32.compared << " GEMM outputs";
  const FirstBlockGemms b16 = compare_first_block_with_matmul(s, Precision::bf16);
  EXPECT_GT(b16.differ, 0) << "a bf16-GEMM run matched fp32 matmul everywhere: the comparison cannot fail";
  std::printf("[ model ] first block: %lld of %lld GEMM outputs differ from matmul_forward (fp32); with bf16 GEMMs "
              "%lld differ\n",
              (long long)f32.differ, (long long)f32.compared, (long long)b16.differ);
}

TEST_P(ModelGrad, Bf16AndFp8GemmsAreDeterministicAndThreadInvariant) {
  const auto& k = GetParam();
  ModelSetup s(k.config(), k.B, k.T, 0.1);
  for (Precision prec : {Precision::bf16, Precision::fp8}) {
    auto flat = [&] {
      ModelRun r = run_model(s, true, prec);
      std::vector<float> v = r.grads;
      v.push_back(r.loss.total), v.push_back(r.loss.ce), v.push_back(r.loss.mtp), v.push_back(r.loss.aux);
      return v;
    };
    const auto one = with_threads(1, flat);
    EXPECT_TRUE(bits_equal(one, with_threads(2, flat))) << to_string(prec);
    EXPECT_TRUE(bits_equal(one, with_threads(2, flat))) << to_string(prec) << " repeat";
    EXPECT_FALSE(bits_equal(one, with_threads(1, [&] {
      ModelRun r = run_model(s, true);
      std::vector<float> v = r.grads;
      v.push_back(r.loss.total), v.push_back(r.loss.ce), v.push_back(r.loss.mtp), v.push_back(r.loss.aux);
      return v;
    }))) << to_string(prec) << " changed nothing";
  }
}

// Whole-model loss and gradient of the bf16- and fp8-GEMM models against the fp32 model (which
// matches the float64 oracle to γ(2n) ≈ 4e-4 relative, far below what is measured here, so
// this is also their error against float64), fp32 activations, tiny at its init std 0.02.
// Bound: one GEMM in precision p has relative (Frobenius) output error ε_p — bf16 operands
// √2·2^-9/√3·√E[1/m²] ≈ 2.4e-3, E4M3 operands 3.75e-2 (fp8_linear.hpp; measured per GEMM in
// test_fp8.cpp). A gradient entry sits at the end of a chain of at most P GEMMs (forward to the
// loss and back: (L + D) blocks × (≤ 8 forward + 8 backward), plus the MTP projection), whose
// independent errors add in quadrature: relative error ≤ ε_p·√P, times 2 for the norms' and
// softmax's conditioning (the factor the per-layer tests measure ≲ 2). The mean CE at init
// moves by at most that relative amount of the logits' spread, bounded by ε_p·√P·|L|.
TEST(ModelPrecision, Bf16AndFp8GemmErrorsStayWithinTheirDerivedBounds) {
  ModelSetup s(load_model_config("tiny"), 2, 7, 0.02);
  const ModelRun f32 = run_model(s), b16 = run_model(s, false, Precision::bf16), f8 = run_model(s, false, Precision::fp8);
  const double P = double(s.cfg.num_hidden_layers + s.cfg.num_nextn_predict_layers) * 16 + 2;
  struct Row {
    const char* name;
    const ModelRun* r;
    double eps;
  };
  for (const Row& row : {Row{"bf16", &b16, 2.4e-3}, Row{"fp8", &f8, 3.75e-2}}) {
    const double g = rel_fro(row.r->grads, f32.grads), dl = std::fabs(double(row.r->loss.total) - f32.loss.total);
    const double bound = 2 * row.eps * std::sqrt(P);
    EXPECT_LE(g, bound) << row.name;
    EXPECT_LE(dl, bound * std::fabs(f32.loss.total)) << row.name;
    EXPECT_GT(g, 0.0) << row.name;
    std::printf("[ measured ] %s GEMMs vs fp32 model (tiny, 2×7 tokens): loss %.7f vs %.7f (|Δ| %.3g), gradient "
                "rel. Frobenius %.3g (bound %.3g)\n",
                row.name, double(row.r->loss.total), double(f32.loss.total), dl, g, bound);
  }
  // FP8 against the bf16 path (the report): same model, same batch.
  std::printf("[ measured ] fp8 vs bf16 (tiny, 2×7 tokens, fp32 activations): loss %.7f vs %.7f (rel. %.3g), gradient "
              "rel. Frobenius %.3g\n",
              double(f8.loss.total), double(b16.loss.total),
              std::fabs(double(f8.loss.total) - b16.loss.total) / std::fabs(double(b16.loss.total)),
              rel_fro(f8.grads, b16.grads));
}

// ---------------------------------------------------------------- documents, counts, errors
// A packed sequence of two documents gives, for every token, the same final hidden state
// bits as each document run alone (attention stays inside a document; everything else is
// per token and batch-invariant).
TEST(ModelDocs, PackedDocumentsEqualSeparateRunsBitForBit) {
  ModelConfig c = load_model_config("tiny");
  c.num_nextn_predict_layers = 0;
  ModelSetup s(c, 1, 9, 0.1);
  s.doc = {0, 0, 0, 0, 1, 1, 1, 1, 1};
  ModelCache packed;
  model_forward(packed, s.params.data(), s.batch(), s.cfg, s.opt);
  for (auto [a, n] : {std::pair<int64_t, int64_t>{0, 4}, {4, 5}}) {
    Batch b;
    b.B = 1, b.T = n, b.tokens = s.tokens.data() + a, b.targets = s.targets.data() + a;
    ModelCache alone;
    model_forward(alone, s.params.data(), b, s.cfg, s.opt);
    const auto& hp = packed.xs.back();
    ASSERT_TRUE(bits_equal(alone.xs.back(), std::vector<float>(hp.begin() + a * c.hidden_size,
                                                               hp.begin() + (a + n) * c.hidden_size)))
        << "document at " << a;
  }
}

TEST(ModelDocs, ExpertCountsFeedTheBiasUpdate) {
  ModelSetup s(load_model_config("tiny"), 2, 7, 0.1);
  ModelCache cache;
  const ModelLoss l = model_forward(cache, s.params.data(), s.batch(), s.cfg, s.opt);
  // 2 MoE layers + the MTP block (MoE like the last layer).
  ASSERT_EQ(l.expert_counts.size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    int64_t total = 0;
    for (auto n : l.expert_counts[i]) total += n;
    EXPECT_EQ(total, s.B * s.T * s.cfg.num_experts_per_tok);
  }
  const ModelLayout lay = model_layout(s.cfg);
  for (const auto& t : lay.tensors)
    if (t.name == "layers.1.moe.bias") {  // zeros after init
      const auto& cnt = l.expert_counts[0];
      router_bias_update(s.params.data() + t.offset, cnt.data(), t.size, 0.001f);
      const int64_t A = s.B * s.T * s.cfg.num_experts_per_tok;
      for (int64_t e = 0; e < t.size; ++e)
        EXPECT_EQ(s.params[t.offset + e], cnt[e] * t.size < A ? 0.001f : (cnt[e] * t.size > A ? -0.001f : 0.0f));
    }
}

TEST(ModelErrors, NonFiniteActivationIsReportedWithItsLayer) {
  ModelSetup s(load_model_config("tiny"), 1, 6, 0.02);
  const ModelLayout lay = model_layout(s.cfg);
  auto expect_where = [&](const std::string& tensor, float value, const std::string& where, int64_t at = 3) {
    std::vector<float> p = s.params;
    for (const auto& t : lay.tensors)
      if (t.name == tensor) p[t.offset + at] = value;
    ModelCache cache;
    try {
      model_forward(cache, p.data(), s.batch(), s.cfg, s.opt);
      ADD_FAILURE() << "expected an error for " << tensor;
    } catch (const preflight::Error& e) {
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
  };
  expect_where("layers.1.attn.wo", NAN, "layer 1 attention output");
  expect_where("layers.2.moe.shared_w2", INFINITY, "layer 2 MoE output");
  expect_where("layers.0.ffn.w2", NAN, "layer 0 FFN output");
  expect_where("embed", INFINITY, "the embedding output", s.tokens[0] * s.cfg.hidden_size + 3);
  expect_where("mtp.1.block.moe.gate", NAN, "mtp 1 block MoE output");
}

TEST(ModelErrors, BadBatchesThrowNamingTheProblem) {
  ModelSetup s(load_model_config("tiny"), 1, 6, 0.02);
  ModelCache cache;
  s.tokens[3] = 512;
  EXPECT_THROW(model_forward(cache, s.params.data(), s.batch(), s.cfg, s.opt), preflight::Error);
  s.tokens[3] = 5;
  s.targets[1] = -7;
  EXPECT_THROW(model_forward(cache, s.params.data(), s.batch(), s.cfg, s.opt), preflight::Error);
  s.targets[1] = 5;
  Batch b = s.batch();
  b.T = 1;  // not more than the MTP depth
  EXPECT_THROW(model_forward(cache, s.params.data(), b, s.cfg, s.opt), preflight::Error);
}

}  // namespace
}  // namespace preflight::ref::test
