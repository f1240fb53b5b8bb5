// The whole model: embedding → blocks → final RMSNorm → LM head + cross-entropy, plus the
// MTP modules and the MoE balance losses; forward, loss and backward over every parameter.
// Legend: B = sequences, T = tokens per sequence, N = B·T, C = hidden, V = vocabulary,
//         L = blocks, D = MTP depth.
//
// Parameters live in ONE flat fp32 allocation (the master weights; llm.c style: an optimizer
// loops over one buffer, a checkpoint is one write), described by model_layout(): tensors in
// this order, each contiguous, absent ones omitted:
//   embed (V,C) | pos_embed (P,C) (learned positions only; P = max_position_embeddings) |
//   layers.l.* for l = 0..L−1 (block.hpp order) | final_norm (C) | final_norm_bias (C)
//   (layernorm only) | head (V,C) (absent when tie_word_embeddings) | mtp.k.* for k = 1..D
//   (mtp.hpp order)
// Initialisation (model_init): tensor number s of that list (0-based, absent ones not
// counted) is filled by its ParamInit: normal → x[i] = float(initializer_range) ·
// num::normal(seed, s, i) (Philox stream s, element i); ones → 1; zeros → 0.
//
// Forward (R: round to bf16 when options.bf16_activations, else identity; block.hpp):
//   x0 = R(Emb(tokens))   or, learned positions (GPT), x0 = R(Emb(tokens) + Pos(pos)) with
//        pos = position inside the token's document (restarting at 0, like RoPE's), one add
//   x_{l+1} = Block_l(x_l);  hL = x_L
//   fn = R(Norm_final(hL)) (RMSNorm, or LayerNorm with bias);  CE, z = lm_head_ce(fn, head; …)
// GEMM precision (options.precision, fp8_linear.hpp): every block GEMM (block.hpp: attention
// projections, dense FFN, routed and shared experts) and the MTP projection. The LM head, the
// router gate, the gated-attention gate and the attention core stay fp32, as DeepSeek-V3 keeps
// "the embedding module, the output head, MoE gating modules, normalization operators, and
// attention operators" in higher precision (report §3.3.1). fp32 (the default) is matmul.hpp.
// GPT-style configs (layernorm, gelu, learned positions, biases, tied embeddings) compose
// without MTP (num_nextn_predict_layers must be 0 with layernorm).
//   MTP depth k = 1..D on h_prev = hL (k = 1) or the previous depth's block output (mtp.hpp)
//   main = CE + z;  mtp = (Σ_k (CE_k + z_k), sequentially k = 1..D) · float(λ/D)
//   aux  = Σ over MoE blocks (layers ascending, then MTP depths) of (seq_aux + lb + router_z),
//          sequentially;  total = (main + mtp) + aux
// Backward (the order is the definition of every accumulated gradient):
//   1. MTP depths k = D..1 (CE with weight float(λ/D); gradients of head, embedding, their
//      own weights; depth k's h_prev gradient goes to depth k−1, depth 1's to dhL)
//   2. main CE (weight 1): dhead += …, dfn;  dhL += RMSNorm_final backward
//   3. blocks L−1..0;  4. embedding backward.  MoE losses have weight 1.
// So dhead = ((+0 + MTP_D) + … + MTP_1) + main; dembed = MTP_D, …, MTP_1, then the main
// embedding (and, when tied, the head terms where they occur in that sequence).
// A NaN or Inf raises preflight::Error naming the first block / sub-layer where it appeared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/block.hpp"
#include "reference/layers/loss.hpp"
#include "reference/layers/mtp.hpp"

namespace preflight::ref {

struct ModelOptions {
  bool bf16_activations = false;  // store activations in bf16 (rounding points: block.hpp)
  float mtp_lambda = 0.1f;        // λ of the MTP loss (V3: 0.3 for the first 10T tokens, then 0.1)
  float seq_aux_alpha = 1e-4f;    // DeepSeek-V3 sequence-wise balance loss α (0 = off)
  float lb_coef = 0.0f;           // classic load-balancing loss (0 = off)
  float router_z_coef = 0.0f;     // router z-loss (0 = off)
  float logit_z_coef = 0.0f;      // z-loss on the LM logits (0 = off)
  bool check_finite = true;       // throw on the first NaN/Inf activation
  LinearPrecision precision{};    // GEMM operands (fp32 | bf16 | fp8): see the header comment
};

struct TensorInfo {
  std::string name;  // "embed", "layers.2.attn.wq_a", "mtp.1.block.moe.gate", ...
  int64_t offset = 0, size = 0;
  std::vector<int64_t> shape;
  ParamInit init = ParamInit::normal;
  bool trainable = true;  // false: never receives a gradient (router selection bias)
};
struct ModelLayout {
  std::vector<TensorInfo> tensors;
  int64_t total = 0;  // floats
};
ModelLayout model_layout(const ModelConfig& config);

struct ModelWeights {
  float* embed = nullptr;       // (V,C)
  float* pos_embed = nullptr;   // (P,C) learned positions, else null
  std::vector<BlockWeights> layers;
  float* final_norm = nullptr;  // (C)
  float* final_norm_b = nullptr;  // (C) layernorm, else null
  float* head = nullptr;        // (V,C) (== embed when tied)
  std::vector<MtpWeights> mtp;  // (D)
};
// Views `flat` (model_layout(config).total floats) as weights or gradients.
ModelWeights model_weights_view(float* flat, const ModelConfig& config);

// Fills `flat` as described above.
void model_init(float* flat, const ModelConfig& config, uint64_t seed);

struct Batch {
  int64_t B = 1, T = 0;
  const int32_t* tokens = nullptr;   // (B,T)
  const int32_t* targets = nullptr;  // (B,T) next token or −100
  const uint8_t* mask = nullptr;     // (B,T) loss mask or null
  const int32_t* doc = nullptr;      // (B,T) document ids (packed sequences) or null
};

struct ModelLoss {
  float total = 0, ce = 0, logit_z = 0, mtp = 0, aux = 0;
  std::vector<float> mtp_ce;                  // (D) CE of each depth
  std::vector<MoeLosses> moe;                 // per MoE block (layers, then MTP depths)
  std::vector<std::vector<int64_t>> expert_counts;  // per MoE block: loads for router_bias_update
  std::vector<float> attn_absmax, ffn_absmax;  // per block (layers, then MTP): max |sub-layer output|
  // per block (layers, then MTP depths) × head: max pre-softmax attention logit (after the
  // softmax scale and soft-cap, over allowed keys, all sequences) — QK-Clip's statistic
  std::vector<std::vector<float>> max_logit_per_head;
};

struct ModelCache {
  std::vector<float> x0;                  // (N,C) embedding output
  std::vector<BlockCache> layers;         // (L)
  std::vector<std::vector<float>> xs;     // (L+1) × (N,C) residual stream; xs[L] = hL
  std::vector<float> fn, fn_rstd;         // (N,C), (N)
  std::vector<float> fn_mean;             // (N) layernorm
  std::vector<int32_t> pos;               // (N) learned positions (position in document)
  CeCache ce;
  std::vector<MtpCache> mtp;              // (D)
  RopeTable rope;                         // rotary table for T positions
};

ModelLoss model_forward(ModelCache& cache, const float* params, const Batch& batch, const ModelConfig& config,
                        const ModelOptions& options);
// grads (model_layout(config).total floats) accumulated.
void model_backward(float* grads, const ModelCache& cache, const float* params, const Batch& batch,
                    const ModelConfig& config, const ModelOptions& options);

}  // namespace preflight::ref
