// Activation memory per block against Korthikanti et al. 2022's closed forms, exactly
// (every term is an integer number of bytes here), and the Llama 3 405B layout's memory
// worked through by hand.
#include <gtest/gtest.h>

#include "reference/core/config_io.hpp"
#include "sim/api.hpp"
#include "sim/memory.hpp"

namespace preflight::sim {
namespace {

// Bytes per token of one block of the Megatron-LM paper's 18.4B GPT (MHA, GELU 4h,
// LayerNorm): h = 6144, a = 48 heads, s = 2048.
double gpt_block(int64_t tp, bool sp, AttentionKernel kernel, bool dropout, Recompute rc) {
  const ModelConfig m = load_model_config("gpt-18.4b");
  LayoutConfig l;
  l.tp = tp;
  l.sequence_parallel = sp;
  l.attention_kernel = kernel;
  l.dropout = dropout;
  l.recompute = rc;
  l.seq_len = 2048;
  return block_activation_bytes_per_token(m, l, sp ? tp : 1, 0);
}

TEST(ActivationMemory, GptBlockMatchesKorthikanti) {
  const double h = 6144, a = 48, s = 2048;
  for (int64_t t : {1, 2, 8}) {
    // Per token: 34h + 5as without parallelism; h(10 + 24/t) + 5as/t with TP; h·34/t + 5as/t with TP + SP.
    EXPECT_EQ(gpt_block(t, false, AttentionKernel::unfused, true, Recompute::none), h * (10 + 24.0 / t) + 5 * a * s / t)
        << "tp " << t;
    EXPECT_EQ(gpt_block(t, true, AttentionKernel::unfused, true, Recompute::none), h * 34 / t + 5 * a * s / t)
        << "tp " << t;
    // Selective recompute of the attention core removes the 5as/t term ...
    EXPECT_EQ(gpt_block(t, true, AttentionKernel::unfused, true, Recompute::selective), h * 34 / t) << "tp " << t;
    // ... and so does a flash kernel, which keeps an FP32 log-sum-exp per head instead.
    EXPECT_EQ(gpt_block(t, true, AttentionKernel::flash, true, Recompute::none), h * 34 / t + 4 * a / t) << "tp " << t;
    // Without dropout the two hidden masks (h) and the probabilities' mask and copy (3as) go.
    EXPECT_EQ(gpt_block(t, true, AttentionKernel::unfused, false, Recompute::none), h * 32 / t + 2 * a * s / t)
        << "tp " << t;
    // Full recompute keeps the block input: 2h, split t ways only with SP.
    EXPECT_EQ(gpt_block(t, true, AttentionKernel::unfused, true, Recompute::full), 2 * h / t) << "tp " << t;
    EXPECT_EQ(gpt_block(t, false, AttentionKernel::unfused, true, Recompute::full), 2 * h) << "tp " << t;
  }
}

TEST(ActivationMemory, Llama405BBlockWithSequenceParallelAndFlash) {
  // h = 16384, 128 heads of 128, 8 KV heads, SwiGLU f = 53248, TP8 + SP, no dropout:
  // (12h + 4·kv·d + 6f)/t + 4a/t = (196608 + 4096 + 319488 + 512)/8 = 65088 bytes per token.
  const ModelConfig m = load_model_config("llama3-405b");
  const LayoutConfig l = load_layout("llama3-405b-tp8-pp16");
  EXPECT_EQ(block_activation_bytes_per_token(m, l, 8, 5), 65088);
  // Without SP the norm inputs and the two normed GEMM inputs (8h bytes) are replicated.
  EXPECT_EQ(block_activation_bytes_per_token(m, l, 1, 5), 65088 + 8 * 16384 * 7 / 8);
}

TEST(ActivationMemory, Llama405BInterleavedDoesNotFitAndWhy) {
  // Rank 1 of the interleaved schedule (p = 16, v = 2) holds 2(p − 2) + p + 1 = 45 chunks
  // of 4 blocks: 180 blocks × 65088 B × 8192 tokens = 96.0 GB, more than the 85.5 GB of
  // HBM before any weight is counted. Plain 1F1B holds 15 micro-batches of 8 blocks there.
  const ModelConfig m = load_model_config("llama3-405b");
  const ClusterConfig c = load_cluster("h100-8192");
  LayoutConfig l = load_layout("llama3-405b-tp8-pp16");
  const SimReport r = simulate(m, c, l);
  EXPECT_FALSE(r.fits);
  EXPECT_EQ(r.memory[1].activations_bytes, 180.0 * 65088 * 8192);
  EXPECT_GT(r.memory[1].activations_bytes, c.hbm_bytes);
  EXPECT_EQ(r.memory[1].biggest().front().first, "activations");
  l.schedule = Schedule::one_f_one_b;
  l.vpp = 1;
  l.stage_layers = {7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7};
  const SimReport f = simulate(m, c, l);
  EXPECT_TRUE(f.fits);
  EXPECT_EQ(f.memory[1].activations_bytes, 120.0 * 65088 * 8192);
}

}  // namespace
}  // namespace preflight::sim
