// One pre-norm transformer block (DeepSeek-V3 / Llama / GPT): attention (MLA or GQA/MHA/MQA)
// and a dense SwiGLU FFN, an MoE block or (GPT) a GELU MLP with biases, each behind an RMSNorm
// (or, GPT, a LayerNorm with bias: gpt_layers.hpp), each added to the residual.
// Legend: B = sequences, T = tokens per sequence, N = B·T rows, C = hidden.
//
// Forward (R(·) = round to bf16 when activations are bf16, else the identity; the
// residual stream and every tensor between sub-layers is what R leaves):
//   xn  = R(RMSNorm_attn(x))
//   a   = R(Attention(xn))             per sequence b (rows b·T .. b·T+T−1), causal, documents
//   h   = R(x + a)
//   hn  = R(RMSNorm_ffn(h))
//   f   = R(FFN(hn))                   dense SwiGLU over the N rows, or MoE over the N rows
//                                      (the sequence-wise balance loss groups by T)
//   out = R(h + f)
// Norm = RMSNorm_w(·) or LayerNorm_{w,b}(·) as the config's `norm` says; FFN = dense SwiGLU, MoE,
// or the GELU MLP (hidden_act = gelu, biases b1, b2 when mlp_bias).
// GEMM precision (BlockDims::precision, fp8_linear.hpp): every projection of the attention
// (MLA: Wqa, Wqb / Wq, Wkva, Wkvb, Wo; GQA: Wq, Wk, Wv, Wo), the dense FFN's and the routed and
// shared experts' GEMMs run through linear_forward/linear_backward in that precision. Kept in
// fp32 as DeepSeek-V3 keeps them in higher precision (report §3.3.1: "the embedding module, the
// output head, MoE gating modules, normalization operators, and attention operators"): the
// router gate, the gated-attention gate, the attention core (QKᵀ, softmax, P·V), the norms.
// Inside a sub-layer everything is fp32 otherwise (its own header defines it). Backward treats R as the
// identity (straight-through) and uses the stored, rounded tensors:
//   dh  = dout;  dhn = FFN backward(dout);  dh += RMSNorm_ffn backward(dhn)   (one add)
//   dxn = Attention backward(dh) (sequence by sequence)
//   dxl = dh;  dxl += RMSNorm_attn backward(dxn);   dx = dx + dxl
// The finite check (on by default) throws naming the block label and the sub-layer where a
// NaN or Inf first appears (attention output, FFN output).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/attention.hpp"
#include "reference/layers/mla.hpp"
#include "reference/layers/moe.hpp"
#include "reference/layers/rope.hpp"

namespace preflight::ref {

enum class ParamInit {
  normal,  // initializer_range · Philox normal
  ones,    // norm weights
  zeros,   // biases, the router's selection bias
};

// One parameter tensor of a block or of the model, in flat order.
struct ParamSpec {
  std::string name;            // e.g. "attn.wq_a"; the model prefixes "layers.3." / "mtp.0."
  std::vector<int64_t> shape;  // (out, in) for matrices
  ParamInit init = ParamInit::normal;
  bool trainable = true;       // false: no gradient (the router's selection bias)
  int64_t size() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

struct BlockDims {
  int64_t B = 1, T = 0, C = 0;
  float eps = 1e-6f;
  AttentionKind attention = AttentionKind::mla;
  MlaDims mla{};
  GqaDims gqa{};
  GqaOptions gqa_opt{};
  bool moe = false;   // MoE block (else dense SwiGLU)
  MoeDims moe_dims;   // when moe (T = N)
  int64_t I = 0;      // dense SwiGLU width
  bool bf16 = false;  // activations stored in bf16
  LinearPrecision precision{};        // GEMM operands of the block (see the header comment)
  NormKind norm = NormKind::rmsnorm;  // both block norms (layernorm: GPT, with bias)
  FfnKind ffn = FfnKind::swiglu;      // dense FFN kind (gelu: GPT MLP)
  bool mlp_bias = false;              // GELU MLP biases b1, b2
  bool check_finite = true;
  std::string label;  // "layer 3", "mtp 1": named in errors
  int64_t N() const { return B * T; }
  // Block `moe_block ? MoE : dense` of `config` for B sequences of T tokens.
  static BlockDims from(const ModelConfig& config, bool moe_block, int64_t B, int64_t T);
};

// Throws if the block kinds of `config` are outside what the reference model composes, naming
// the field: RMSNorm or LayerNorm; SwiGLU (no biases) or GELU (biases optional); GELU only in
// dense blocks; learned positions only with GQA attention.
void check_block_config(const ModelConfig& config);

std::vector<ParamSpec> block_param_specs(const BlockDims& d);  // flat order, absent tensors omitted
int64_t block_param_count(const BlockDims& d);

struct BlockWeights {
  float* attn_norm = nullptr;    // (C)
  float* attn_norm_b = nullptr;  // (C)   layernorm
  MlaWeights mla;                // attention == mla
  GqaWeights gqa;                // attention == gqa
  float* ffn_norm = nullptr;     // (C)
  float* ffn_norm_b = nullptr;   // (C)   layernorm
  float* w1 = nullptr;           // (I,C) dense
  float* w3 = nullptr;           // (I,C) dense swiglu
  float* w2 = nullptr;           // (C,I) dense
  float* b1 = nullptr;           // (I)   dense gelu, mlp_bias
  float* b2 = nullptr;           // (C)   dense gelu, mlp_bias
  MoeWeights moe;              // moe
};
BlockWeights block_weights_view(float* flat, const BlockDims& d);

struct BlockCache {
  std::vector<float> x;                  // (N,C) block input
  std::vector<float> xn, xn_rstd;        // (N,C), (N)
  std::vector<float> xn_mean, hn_mean;   // (N), (N) layernorm
  std::vector<MlaCache> mla;             // (B) per sequence
  std::vector<GqaCache> gqa;             // (B) per sequence
  std::vector<float> a;                  // (N,C) attention output
  std::vector<float> h;                  // (N,C) residual after attention
  std::vector<float> hn, hn_rstd;        // (N,C), (N)
  std::vector<float> f1, f3, fact;       // (N,I) dense FFN caches (gelu: f1 = h, fact = gelu(h))
  MoeCache moe;
  float attn_absmax = 0, ffn_absmax = 0;  // max |a|, max |f| (monitoring)
  // Max pre-softmax logit per head (after scale and soft-cap, over allowed keys), max over
  // the B sequences (row_max of the per-sequence values, ascending b): QK-Clip's statistic.
  std::vector<float> max_logit;            // (H)
};

// doc (B,T): document ids per sequence (null = one document each); rope: table of the
// attention's rotary width covering T positions.
void block_forward(float* out,  // (N,C)
                   BlockCache& cache,
                   const float* x,  // (N,C)
                   const BlockWeights& w, const int32_t* doc, const RopeTable& rope, const MoeLossOptions& moe_opt,
                   const BlockDims& d);

// dx (N,C) and dw accumulated; dloss_aux weighs the MoE balance / z losses.
void block_backward(float* dx, const BlockWeights& dw, const float* dout, const BlockCache& cache,
                    const BlockWeights& w, const int32_t* doc, const RopeTable& rope, const MoeLossOptions& moe_opt,
                    float dloss_aux, const BlockDims& d);

// In place: x = R(x) when bf16 (round to nearest even), else unchanged.
void store_activation(float* x, int64_t n, bool bf16);
// Throws if x (rows, C) holds a NaN or Inf, naming `where` and the first bad row/channel.
void check_finite(const float* x, int64_t rows, int64_t C, const std::string& where);

}  // namespace preflight::ref
