// Parameter and FLOP accounting against published totals and independent closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "reference/core/accounting.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
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


// ---- Hugging Face configs of published models: each derived term by term from the
// architecture (the modeling code's modules), compared exactly with count_parameters, and
// the result compared with the published total. Published totals are rounded to the digits
// shown, so the check is |count − published| ≤ half a unit of the last published digit
// (written next to each), unless a wider reason is stated.

ParamCount main_of(const std::string& file) { return count_parameters(load_model_config(test::data_path(file))).main_model(); }

// GQA attention of one block: wq, wk, wv, wo (+ biases, + QK-norm weights).
int64_t gqa_attention(int64_t d, int64_t h, int64_t kv, int64_t hd, int64_t bias_vectors, int64_t qk_norm) {
  return d * h * hd + 2 * d * kv * hd + h * hd * d + bias_vectors + qk_norm;
}

TEST(AccountingHf, Qwen2_7B_QkvBiasesNoOutputBias) {
  const int64_t V = 152064, d = 3584, L = 28, h = 28, kv = 4, hd = 128, I = 18944;
  const int64_t attn = gqa_attention(d, h, kv, hd, /*q,k,v biases; o has none*/ h * hd + 2 * kv * hd, 0);
  const int64_t block = attn + 3 * d * I + 2 * d;
  const int64_t total = 2 * V * d + L * block + d;
  const ParamCount p = main_of("hf-qwen2-7b-config.json");
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, total);
  // Published (Qwen2.5-7B card, the same shapes): 7.61B, and 6.53B without the embedding
  // matrices. The count is 7.6156B / 6.5256B: the card truncates the first to [7.61, 7.62)
  // and rounds the second (±0.005B). (Qwen2 report: "7.6B".)
  EXPECT_GE(total, int64_t{7610000000});
  EXPECT_LT(total, int64_t{7620000000});
  EXPECT_LE(std::abs(static_cast<double>(total - 2 * V * d) - 6.53e9), 0.005e9);
  std::printf("[ params ] Qwen2-7B: %.4fB (published 7.61B; 6.53B non-embedding: %.4fB)\n", total / 1e9,
              (total - 2 * V * d) / 1e9);
}

TEST(AccountingHf, Qwen3_8B_QkNorm) {
  const int64_t V = 151936, d = 4096, L = 36, h = 32, kv = 8, hd = 128, I = 12288;
  const int64_t attn = gqa_attention(d, h, kv, hd, 0, /*q_norm + k_norm, head width each*/ 2 * hd);
  const int64_t total = 2 * V * d + L * (attn + 3 * d * I + 2 * d) + d;
  const ParamCount p = main_of("hf-qwen3-8b-config.json");
  EXPECT_EQ(p.total, total);
  // Published: 8.2B (±0.05B), 6.95B non-embedding (±0.005B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 8.2e9), 0.05e9);
  EXPECT_LE(std::abs(static_cast<double>(total - 2 * V * d) - 6.95e9), 0.005e9);
  std::printf("[ params ] Qwen3-8B: %.4fB (published 8.2B; 6.95B non-embedding: %.4fB)\n", total / 1e9,
              (total - 2 * V * d) / 1e9);
}

TEST(AccountingHf, Qwen3_0_6B_TiedEmbeddings) {
  const int64_t V = 151936, d = 1024, L = 28, h = 16, kv = 8, hd = 128, I = 3072;
  const int64_t attn = gqa_attention(d, h, kv, hd, 0, 2 * hd);
  const int64_t total = V * d /* one matrix: the head is the embedding */ + L * (attn + 3 * d * I + 2 * d) + d;
  const ParamBreakdown p = count_parameters(load_model_config(test::data_path("hf-qwen3-0.6b-config.json")));
  EXPECT_EQ(p.head.total, 0);
  EXPECT_EQ(p.main_model().total, total);
  // Published: 0.6B (±0.05B), 0.44B non-embedding (±0.005B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 0.6e9), 0.05e9);
  EXPECT_LE(std::abs(static_cast<double>(total - V * d) - 0.44e9), 0.005e9);
  // The head still costs its GEMM: FLOPs count 2·d·V for it although it has no own parameters.
  const ModelConfig c = load_model_config(test::data_path("hf-qwen3-0.6b-config.json"));
  const FlopCounts f = count_flops(c, 4096);
  EXPECT_EQ(f.forward_gemm, 2.0 * static_cast<double>(L * (attn - 2 * hd + 3 * d * I)) + 2.0 * d * V);
  std::printf("[ params ] Qwen3-0.6B: %.4fB (published 0.6B; 0.44B non-embedding: %.4fB)\n", total / 1e9,
              (total - V * d) / 1e9);
}

TEST(AccountingHf, Qwen3_30B_A3B_SoftmaxNoSharedExperts) {
  const int64_t V = 151936, d = 2048, L = 48, h = 32, kv = 4, hd = 128, E = 128, k = 8, m = 768;
  const int64_t attn = gqa_attention(d, h, kv, hd, 0, 2 * hd);
  const int64_t expert = 3 * d * m, router = E * d /* no selection bias, no gate bias */;
  const int64_t total = 2 * V * d + L * (attn + E * expert + router + 2 * d) + d;
  const int64_t activated = 2 * V * d + L * (attn + k * expert + router + 2 * d) + d;
  const ModelConfig c = load_model_config(test::data_path("hf-qwen3-30b-a3b-config.json"));
  EXPECT_EQ(c.num_dense_layers(), 0);  // intermediate_size (6144) is unused: every block is MoE
  EXPECT_EQ(c.scoring_func, ScoringFunc::softmax);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_FALSE(c.router_bias);
  EXPECT_EQ(c.n_shared_experts, 0);
  const ParamCount p = count_parameters(c).main_model();
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, activated);
  // Published: 30.5B total (±0.05B), 29.9B non-embedding (±0.05B), 3.3B activated.
  EXPECT_LE(std::abs(static_cast<double>(total) - 30.5e9), 0.05e9);
  EXPECT_LE(std::abs(static_cast<double>(total - 2 * V * d) - 29.9e9), 0.05e9);
  // 3.353B activated: the card's "3.3B" is truncated to one decimal, [3.3B, 3.4B).
  EXPECT_GE(activated, int64_t{3300000000});
  EXPECT_LT(activated, int64_t{3400000000});
  std::printf("[ params ] Qwen3-30B-A3B: %.4fB total, %.4fB activated (published 30.5B / 3.3B)\n", total / 1e9,
              activated / 1e9);
}

TEST(AccountingHf, Qwen2_57B_A14B_GatedSharedExpert) {
  const int64_t V = 151936, d = 3584, L = 28, h = 28, kv = 4, hd = 128, E = 64, k = 8, m = 2560, shared_width = 20480;
  const int64_t attn = gqa_attention(d, h, kv, hd, h * hd + 2 * kv * hd, 0);
  const int64_t shared = 3 * d * shared_width + d;  // one wide SwiGLU + its sigmoid gate (d → 1)
  const int64_t routed = E * 3 * d * m, router = E * d;
  const int64_t total = 2 * V * d + L * (attn + routed + shared + router + 2 * d) + d;
  const int64_t activated = 2 * V * d + L * (attn + k * 3 * d * m + shared + router + 2 * d) + d;
  const ModelConfig c = load_model_config(test::data_path("hf-qwen2-57b-a14b-config.json"));
  EXPECT_EQ(c.n_shared_experts, shared_width / m);  // 8 slices of the moe width: the same SwiGLU
  EXPECT_TRUE(c.shared_expert_gate);
  EXPECT_FALSE(c.norm_topk_prob);
  const ParamCount p = count_parameters(c).main_model();
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, activated);
  // Published: 57B total, 14B activated (both ±0.5B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 57e9), 0.5e9);
  EXPECT_LE(std::abs(static_cast<double>(activated) - 14e9), 0.5e9);
  std::printf("[ params ] Qwen2-57B-A14B: %.4fB total, %.4fB activated (published 57B / 14B)\n", total / 1e9,
              activated / 1e9);
}

TEST(AccountingHf, Mixtral8x7B_ExpertsAreTheFfn) {
  const int64_t V = 32000, d = 4096, L = 32, h = 32, kv = 8, hd = 128, E = 8, k = 2, I = 14336;
  const int64_t attn = gqa_attention(d, h, kv, hd, 0, 0);
  const int64_t expert = 3 * d * I, router = E * d;
  const int64_t total = 2 * V * d + L * (attn + E * expert + router + 2 * d) + d;
  const int64_t activated = 2 * V * d + L * (attn + k * expert + router + 2 * d) + d;
  const ParamCount p = main_of("hf-mixtral-8x7b-config.json");
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, activated);
  // Published (Mistral AI): 46.7B total, 12.9B used per token; both ±0.05B.
  EXPECT_LE(std::abs(static_cast<double>(total) - 46.7e9), 0.05e9);
  EXPECT_LE(std::abs(static_cast<double>(activated) - 12.9e9), 0.05e9);
  std::printf("[ params ] Mixtral-8x7B: %.4fB total, %.4fB activated (published 46.7B / 12.9B)\n", total / 1e9,
              activated / 1e9);
}

// MLA without query compression (q_lora_rank null): wq (d → H·(Dn+Dr)) replaces wq_a, q_norm, wq_b.
int64_t mla_direct_q(int64_t d, int64_t H, int64_t kvr, int64_t nope, int64_t rope, int64_t vd) {
  return d * H * (nope + rope) + d * (kvr + rope) + kvr + kvr * H * (nope + vd) + H * vd * d;
}

TEST(AccountingHf, DeepSeekV2LiteDirectQuery) {
  const int64_t V = 102400, d = 2048, L = 27, dense = 1, H = 16, I = 10944, m = 1408, E = 64, shared = 2, k = 6;
  const int64_t mla = mla_direct_q(d, H, 512, 128, 64, 128);
  const int64_t expert = 3 * d * m, router = E * d;  // softmax gate: no selection bias
  const int64_t norms = L * 2 * d + d;
  const int64_t total = 2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((E + shared) * expert + router) + norms;
  const int64_t activated =
      2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((k + shared) * expert + router) + norms;
  const ModelConfig c = load_model_config(test::data_path("hf-deepseek-v2-lite-config.json"));
  EXPECT_EQ(c.q_lora_rank, 0);
  EXPECT_EQ(c.topk_method, TopkMethod::greedy);
  EXPECT_FALSE(c.router_bias);
  const ParamCount p = count_parameters(c).main_model();
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, activated);
  // Published (DeepSeek-V2 paper): 15.7B total (±0.05B), 2.4B activated. The 2.4B leaves
  // out the input embedding (a lookup): activated − V·d = 2.451B, and 2.4 is that
  // truncated to one decimal, so [2.4B, 2.5B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 15.7e9), 0.05e9);
  EXPECT_GE(activated - V * d, int64_t{2400000000});
  EXPECT_LT(activated - V * d, int64_t{2500000000});
  std::printf("[ params ] DeepSeek-V2-Lite: %.4fB total, %.4fB activated, %.4fB without the input embedding "
              "(published 15.7B / 2.4B)\n", total / 1e9, activated / 1e9, (activated - V * d) / 1e9);
}

TEST(AccountingHf, DeepSeekV2GroupLimited) {
  const int64_t V = 102400, d = 5120, L = 60, dense = 1, H = 128, qr = 1536, kvr = 512, nope = 128, rope = 64,
                vd = 128, I = 12288, m = 1536, E = 160, shared = 2, k = 6;
  const int64_t mla = d * qr + qr + qr * H * (nope + rope) + d * (kvr + rope) + kvr + kvr * H * (nope + vd) + H * vd * d;
  const int64_t expert = 3 * d * m, router = E * d;
  const int64_t norms = L * 2 * d + d;
  const int64_t total = 2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((E + shared) * expert + router) + norms;
  const int64_t activated =
      2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((k + shared) * expert + router) + norms;
  const ModelConfig c = load_model_config(test::data_path("hf-deepseek-v2-config.json"));
  EXPECT_EQ(c.topk_method, TopkMethod::group_limited_greedy);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 3);
  EXPECT_EQ(c.routed_scaling_factor, 16.0);  // norm_topk_prob false: V2 applies the factor
  const ParamCount p = count_parameters(c).main_model();
  EXPECT_EQ(p.total, total);
  EXPECT_EQ(p.activated, activated);
  // Published: 236B total, 21B activated (both ±0.5B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 236e9), 0.5e9);
  EXPECT_LE(std::abs(static_cast<double>(activated) - 21e9), 0.5e9);
  std::printf("[ params ] DeepSeek-V2: %.4fB total, %.4fB activated (published 236B / 21B)\n", total / 1e9,
              activated / 1e9);
}

TEST(AccountingHf, Moonlight16B_A3B_V3RoutingDirectQuery) {
  const int64_t V = 163840, d = 2048, L = 27, dense = 1, H = 16, I = 11264, m = 1408, E = 64, shared = 2, k = 6;
  const int64_t mla = mla_direct_q(d, H, 512, 128, 64, 128);
  const int64_t expert = 3 * d * m, router = E * d + E;  // sigmoid + e_score_correction_bias (noaux_tc)
  const int64_t norms = L * 2 * d + d;
  const int64_t total = 2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((E + shared) * expert + router) + norms;
  const int64_t activated =
      2 * V * d + L * mla + dense * 3 * d * I + (L - dense) * ((k + shared) * expert + router) + norms;
  const ModelConfig c = load_model_config(test::data_path("hf-moonlight-16b-a3b-config.json"));
  EXPECT_EQ(c.q_lora_rank, 0);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  const ParamBreakdown b = count_parameters(c);
  EXPECT_EQ(b.main_model().total, total);
  EXPECT_EQ(b.main_model().activated, activated);
  EXPECT_EQ(b.mtp.total, 0);
  // Published (model card): 16B total, 3B activated (both ±0.5B).
  EXPECT_LE(std::abs(static_cast<double>(total) - 16e9), 0.5e9);
  EXPECT_LE(std::abs(static_cast<double>(activated) - 3e9), 0.5e9);
  std::printf("[ params ] Moonlight-16B-A3B: %.4fB total, %.4fB activated (published 16B / 3B)\n", total / 1e9,
              activated / 1e9);
}

// DeepSeek's attention_bias puts biases on q_a_proj (q_lora_rank wide), kv_a_proj
// (kv_lora_rank + qk_rope_head_dim) and o_proj (hidden); wq_b, the uncompressed wq and
// wkv_b have none (modeling_deepseek.py).
TEST(AccountingHf, MlaAttentionBiasFollowsTheModelingCode) {
  ModelConfig c = load_model_config("deepseek-v3-671b");
  const int64_t without = count_block_parameters(c, 0).attention.total;
  c.attention_bias = true;
  EXPECT_EQ(count_block_parameters(c, 0).attention.total - without, 1536 + (512 + 64) + 7168);
  c.q_lora_rank = 0;
  const int64_t direct_without = [&] {
    ModelConfig n = c;
    n.attention_bias = false;
    return count_block_parameters(n, 0).attention.total;
  }();
  EXPECT_EQ(count_block_parameters(c, 0).attention.total - direct_without, (512 + 64) + 7168);
}

TEST(AccountingHf, SharedExpertGateCostsAGemm) {
  const ModelConfig c = load_model_config(test::data_path("hf-qwen2-57b-a14b-config.json"));
  const BlockFlops b = count_block_flops(c, 0, 4096);
  // top-8 routed + 8 shared slices of width 2560, + the gate's hidden → 1 GEMM.
  EXPECT_EQ(b.expert_gemm, 2.0 * ((8 + 8) * 3.0 * 3584 * 2560 + 3584));
  EXPECT_EQ(b.router_gemm, 2.0 * 3584 * 64);
}

// Overflow: absurd but type-correct sizes must be refused with a line, never wrap.
TEST(AccountingHf, ParameterCountOverflowThrowsInsteadOfWrapping) {
  ModelConfig c = load_model_config("tiny");
  c.hidden_size = int64_t{1} << 40;
  c.vocab_size = int64_t{1} << 30;  // V·d = 2^70
  EXPECT_THROW(count_parameters(c), Error);
}

}  // namespace
}  // namespace preflight
