// Parameter and FLOP accounting against published totals and independent closed forms.
#include <gtest/gtest.h>

#include <cmath>

#include "reference/core/accounting.hpp"
#include "reference/core/config_io.hpp"
#include "tests/core/test_util.hpp"

namespace preflight {
namespace {

double rel_err(double got, double want) { return std::abs(got - want) / want; }

TEST(Accounting, DeepSeekV3PublishedTotals) {
  const ParamBreakdown p = count_parameters(load_model_config("deepseek-v3-671b"));
  // Published: 671B total, 37B activated (facts/deepseek-v3.md counts 671.03B / 37.55B).
  EXPECT_LT(rel_err(static_cast<double>(p.main_model().total), 671.0e9), 0.001);
  EXPECT_LT(rel_err(static_cast<double>(p.main_model().activated), 37.5e9), 0.005);
  std::printf("[ params ] deepseek-v3-671b: total %.3fB, activated %.3fB, MTP %.3fB\n",
              p.main_model().total / 1e9, p.main_model().activated / 1e9, p.mtp.total / 1e9);
}

// An independent derivation from the published table, written out term by term.
TEST(Accounting, DeepSeekV3ExactFromTable) {
  const int64_t V = 129280, d = 7168, L = 61, dense = 3, moe = L - dense, H = 128;
  const int64_t qr = 1536, kvr = 512, nope = 128, rope = 64, vd = 128, inter = 18432, moe_inter = 2048;
  const int64_t E = 256, shared = 1, k = 8;
  const int64_t mla = d * qr + qr + qr * H * (nope + rope) + d * (kvr + rope) + kvr + kvr * H * (nope + vd) + H * vd * d;
  EXPECT_EQ(mla, 187107328);  // "MLA is 0.187B parameters per layer"
  const int64_t expert = 3 * d * moe_inter;
  EXPECT_EQ(expert, 44040192);  // "one routed expert is 44.04M parameters"
  const int64_t router = E * d + E;
  const int64_t norms = L * 2 * d + d;
  const int64_t total =
      2 * V * d + L * mla + dense * 3 * d * inter + moe * ((E + shared) * expert + router) + norms;
  const int64_t activated =
      2 * V * d + L * mla + dense * 3 * d * inter + moe * ((k + shared) * expert + router) + norms;
  const ParamBreakdown p = count_parameters(load_model_config("deepseek-v3-671b"));
  EXPECT_EQ(p.main_model().total, total);
  EXPECT_EQ(p.main_model().activated, activated);
  // MTP: enorm, hnorm, eh_proj (2d→d), one MoE block, the shared head's norm.
  const int64_t mtp = 3 * d + 2 * d * d + mla + 2 * d + (E + shared) * expert + router;
  EXPECT_EQ(p.mtp.total, mtp);
}

TEST(Accounting, AllDeepSeekDialectsAgree) {
  const int64_t preset = count_parameters(load_model_config("deepseek-v3-671b")).main_model().total;
  EXPECT_EQ(count_parameters(load_model_config(test::data_path("hf-deepseek-v3-config.json"))).main_model().total,
            preset);
  EXPECT_EQ(count_parameters(load_model_config(test::data_path("deepseek-config_671B.json"))).main_model().total,
            preset);
}

TEST(Accounting, Llama3_405B) {
  for (const std::string& name : {std::string("llama3-405b"), test::data_path("hf-llama-3.1-405b-config.json")}) {
    const ParamBreakdown p = count_parameters(load_model_config(name));
    EXPECT_LT(rel_err(static_cast<double>(p.main_model().total), 405e9), 0.01) << name;
    EXPECT_EQ(p.main_model().total, p.main_model().activated);  // dense
    std::printf("[ params ] %s: total %.3fB\n", name.c_str(), p.main_model().total / 1e9);
  }
}

// Megatron-LM paper: P = 12·l·h²·(1 + 13/(12h) + (V+s)/(12·l·h)), exact for its GPT
// (biases, two LayerNorms per block, learned positions, tied head), without the final
// LayerNorm (2h) that the formula leaves out.
TEST(Accounting, MegatronGptMatchesPaperFormulaExactly) {
  for (const char* name : {"gpt-1.7b", "gpt-18.4b", "gpt-145.6b", "gpt-1t"}) {
    const ModelConfig c = load_model_config(name);
    const int64_t l = c.num_hidden_layers, h = c.hidden_size, V = c.vocab_size, s = c.max_position_embeddings;
    const int64_t formula = 12 * l * h * h + 13 * l * h + (V + s) * h;
    EXPECT_EQ(count_parameters(c).main_model().total, formula + 2 * h) << name;
  }
  // And the paper's rounded labels.
  EXPECT_LT(rel_err(count_parameters(load_model_config("gpt-18.4b")).main_model().total, 18.4e9), 0.01);
  EXPECT_LT(rel_err(count_parameters(load_model_config("gpt-145.6b")).main_model().total, 145.6e9), 0.01);
}

// The Megatron FLOP formula 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) counts forward,
// recomputed forward and backward (4 forwards) of the blocks, 3 of the LM head (it is
// not recomputed), with NON-causal attention. Per token:
// forward GEMMs = 24·l·h² + 2·h·V exactly; causal attention core = l·2h·(s+1), which is
// the non-causal 4·l·h·s scaled by (s+1)/(2s).
TEST(Accounting, MegatronGptFlopsMatchPaperTerms) {
  const ModelConfig c = load_model_config("gpt-145.6b");
  const double l = c.num_hidden_layers, h = c.hidden_size, V = c.vocab_size, s = 2048;
  const FlopCounts f = count_flops(c, 2048);
  EXPECT_EQ(f.forward_gemm, 24 * l * h * h + 2 * h * V);
  EXPECT_EQ(f.forward_attention_core, l * 2 * h * (s + 1));
  const double paper_per_token = 96 * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
  const double head = 2 * h * V;
  const double ours_noncausal = 4 * (f.forward_gemm - head + 4 * l * h * s) + 3 * head;
  EXPECT_LT(rel_err(ours_noncausal, paper_per_token), 1e-12);
}

TEST(Accounting, MlaAttentionCoreUsesBothHeadWidths) {
  const ModelConfig c = load_model_config("deepseek-v3-671b");
  const BlockFlops b = count_block_flops(c, 0, 4096);
  // 2·H·(192 + 128)·(s+1)/2 per token: QKᵀ over 192-wide keys, PV over 128-wide values.
  EXPECT_EQ(b.attention_core, 128.0 * (192 + 128) * 4097);
  EXPECT_EQ(b.router_gemm, 0.0);  // dense block
  const BlockFlops m = count_block_flops(c, 3, 4096);
  EXPECT_EQ(m.router_gemm, 2.0 * 7168 * 256);
  EXPECT_EQ(m.expert_gemm, 2.0 * 9 * 3 * 7168 * 2048);
}

TEST(Accounting, GemmFlopsAreTwiceActivatedMatrices) {
  // For a model without biases or norms inside attention the forward GEMM FLOPs are
  // 2 × (activated parameters − embedding − norms − router bias), the router GEMM included.
  const ModelConfig c = load_model_config("llama3-8b");
  const ParamBreakdown p = count_parameters(c);
  const FlopCounts f = count_flops(c, 8192);
  const double matrices = static_cast<double>(p.main_model().activated - p.embedding.total - p.norms.total);
  EXPECT_EQ(f.forward_gemm, 2 * matrices);
}

TEST(Accounting, TiedEmbeddingsHaveNoHead) {
  const ParamBreakdown p = count_parameters(load_model_config("gpt-1.7b"));
  EXPECT_EQ(p.head.total, 0);
  EXPECT_GT(p.embedding.total, 0);
}

}  // namespace
}  // namespace preflight
