// One model configuration type, shared by the CPU reference, the CUDA path and the
// cluster simulator. Field names follow the Hugging Face `config.json` of DeepseekV3
// and Llama models (DeepSeek's own config_671B.json names are mapped onto them by the
// loader; see docs/CONFIG.md). One comment per field; sizes are element counts.
//
// A config covers two families:
//   * DeepSeek-V3-style MoE: MLA attention, `first_k_dense_replace` dense blocks
//     followed by MoE blocks with routed + shared experts, group-limited top-k routing,
//     multi-token prediction (MTP).
//   * Dense transformers: Llama-3 style (GQA, SwiGLU, RMSNorm, RoPE) and GPT style of
//     the Megatron-LM paper (MHA, GELU MLP, LayerNorm, learned positions, biases,
//     tied embeddings).
#pragma once

#include <cstdint>
#include <string>

namespace preflight {

enum class AttentionKind {
  mla,  // DeepSeek multi-head latent attention
  gqa,  // grouped-query attention; MHA when num_key_value_heads == num_attention_heads, MQA when 1
};
enum class ScoringFunc { sigmoid, softmax };  // router score function
// How the router restricts top-k to groups (Hugging Face's `topk_method`).
enum class TopkMethod {
  noaux_tc,              // DeepSeek-V3: group score = sum of the group's top-2 (biased) scores
  greedy,                // DeepSeek-V2(-Lite), Qwen, Mixtral: plain top-k, no groups (n_group = 1)
  group_limited_greedy,  // DeepSeek-V2: group score = the group's largest score
};
enum class FfnKind {
  swiglu,  // W2 · (SiLU(W1 x) ⊙ W3 x): three matrices
  gelu,    // W2 · GELU(W1 x): two matrices (GPT / Megatron)
};
enum class NormKind { rmsnorm, layernorm };  // layernorm has a bias vector too
enum class PositionKind {
  rope,     // rotary, applied inside attention; no parameters
  learned,  // absolute position embedding table (max_position_embeddings × hidden_size)
};
enum class RopeScalingKind { none, yarn, llama3 };

struct RopeScaling {
  RopeScalingKind type = RopeScalingKind::none;
  double factor = 1.0;                                   // context-extension factor (V3: 40)
  int64_t original_max_position_embeddings = 4096;       // pre-extension context (V3: 4096)
  double beta_fast = 32.0;                               // YaRN: high-frequency ramp end
  double beta_slow = 1.0;                                // YaRN: low-frequency ramp start
  double mscale = 1.0;                                   // YaRN: attention-temperature coefficient
  double mscale_all_dim = 0.0;                           // YaRN (HF): divides mscale when non-zero
  double low_freq_factor = 1.0;                          // llama3 scaling
  double high_freq_factor = 4.0;                         // llama3 scaling
};

struct ModelConfig {
  std::string name;  // preset name or file stem; informational

  // --- shared ---
  int64_t vocab_size = 0;               // tokens in the vocabulary
  int64_t hidden_size = 0;              // model width d (DeepSeek: dim)
  int64_t num_hidden_layers = 0;        // transformer blocks, MTP blocks not counted
  int64_t max_position_embeddings = 4096;  // longest sequence the model is configured for
  double rms_norm_eps = 1e-6;           // epsilon of every norm
  NormKind norm = NormKind::rmsnorm;
  PositionKind position = PositionKind::rope;
  bool tie_word_embeddings = false;     // output head shares the embedding matrix
  double initializer_range = 0.006;     // init std (V3: 0.006)

  // --- attention ---
  AttentionKind attention = AttentionKind::mla;
  int64_t num_attention_heads = 0;      // query heads
  int64_t num_key_value_heads = 0;      // GQA: key/value heads (divides num_attention_heads)
  int64_t head_dim = 0;                 // GQA: per-head width (default hidden/heads)
  bool attention_bias = false;          // biases on the q/k/v/o projections (MLA: on wq_a, wkv_a, wo)
  bool qkv_bias = false;                // GQA: biases on q/k/v only, none on o (Qwen2)
  int64_t q_lora_rank = 0;              // MLA: query down-projection rank; 0 = no compression
  int64_t kv_lora_rank = 0;             // MLA: compressed KV latent width
  int64_t qk_nope_head_dim = 0;         // MLA: per-head query/key width without rotary
  int64_t qk_rope_head_dim = 0;         // MLA: decoupled rotary width (key part shared by heads)
  int64_t v_head_dim = 0;               // MLA: per-head value width
  bool qk_norm = false;                 // RMSNorm on per-head q and k (weights of head width)
  bool attention_output_gate = false;   // per-head sigmoid gate on the attention output
  double attn_logit_softcapping = 0.0;  // c·tanh(logit/c) when > 0
  double rope_theta = 10000.0;          // RoPE base
  RopeScaling rope_scaling;             // YaRN / llama3 context extension; explicit, never implied

  // --- feed-forward ---
  FfnKind ffn = FfnKind::swiglu;
  int64_t intermediate_size = 0;        // width of the dense FFN (DeepSeek: inter_dim)
  bool mlp_bias = false;                // biases on the FFN matrices (GPT)

  // --- mixture of experts (n_routed_experts == 0 means a dense model) ---
  int64_t first_k_dense_replace = 0;    // leading dense blocks (DeepSeek: n_dense_layers)
  int64_t n_routed_experts = 0;         // routed experts per MoE block
  int64_t n_shared_experts = 0;         // always-active experts per MoE block (each moe_intermediate_size wide;
                                        // Qwen2-MoE's one wide shared expert is loaded as width / moe width of them)
  bool shared_expert_gate = false;      // Qwen2-MoE: sigmoid(x·w), w of hidden width, scales the shared output
  int64_t moe_intermediate_size = 0;    // SwiGLU width of each expert
  int64_t num_experts_per_tok = 0;      // top-k (DeepSeek: n_activated_experts)
  int64_t n_group = 1;                  // expert groups (DeepSeek: n_expert_groups)
  int64_t topk_group = 1;               // groups a token may pick from (DeepSeek: n_limited_groups)
  double routed_scaling_factor = 1.0;   // multiplies the routing weights (DeepSeek: route_scale)
  ScoringFunc scoring_func = ScoringFunc::sigmoid;
  TopkMethod topk_method = TopkMethod::noaux_tc;
  bool norm_topk_prob = true;           // normalise the top-k weights to sum 1
  bool router_bias = true;              // aux-loss-free selection bias (e_score_correction_bias)

  // --- multi-token prediction ---
  int64_t num_nextn_predict_layers = 0;  // MTP depth D (V3: 1)

  // --- output ---
  double final_logit_softcapping = 0.0;  // c·tanh(logit/c) on the LM logits when > 0

  // Derived quantities (valid after validate()).
  bool is_moe() const { return n_routed_experts > 0; }
  bool is_moe_layer(int64_t layer) const { return is_moe() && layer >= first_k_dense_replace; }
  int64_t num_moe_layers() const { return is_moe() ? num_hidden_layers - first_k_dense_replace : 0; }
  int64_t num_dense_layers() const { return num_hidden_layers - num_moe_layers(); }
  // Per-head query/key width entering the softmax (MLA: nope + rope; GQA: head_dim).
  int64_t qk_head_dim() const {
    return attention == AttentionKind::mla ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
  }
  int64_t value_head_dim() const { return attention == AttentionKind::mla ? v_head_dim : head_dim; }
};

// Limits that every config must meet. They are far above any published model (widths
// ~ 2^15, vocabularies ~ 2^18, contexts ~ 2^24, ~ 2^41 parameters) and keep every count
// the accounting forms, and the simulator's byte counts, exact in int64_t.
inline constexpr int64_t kMaxModelWidth = int64_t{1} << 24;       // any width, head count or expert count
inline constexpr int64_t kMaxModelLayers = int64_t{1} << 16;      // num_hidden_layers
inline constexpr int64_t kMaxModelContext = int64_t{1} << 30;     // max_position_embeddings (= the --seq-len limit)
inline constexpr int64_t kMaxModelParameters = int64_t{1} << 48;  // 281 T parameters, MTP included

// Throws preflight::Error naming the first field that is out of range or inconsistent
// with another, and the value that was expected.
void validate(const ModelConfig& config);

// What the CPU reference layers (reference/layers) cannot run yet although the config
// is valid and its accounting exact: "" when it can run the whole model, else one line
// naming every such field, joined by "; ". `model`, `sim`, `plan` and `check` need only the accounting; training
// must refuse a config with a non-empty answer rather than train a different model.
std::string reference_unsupported(const ModelConfig& config);

const char* to_string(AttentionKind kind);
const char* to_string(ScoringFunc kind);
const char* to_string(TopkMethod kind);
const char* to_string(FfnKind kind);
const char* to_string(NormKind kind);
const char* to_string(PositionKind kind);
const char* to_string(RopeScalingKind kind);

}  // namespace preflight
