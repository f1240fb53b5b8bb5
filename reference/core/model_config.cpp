#include "reference/core/model_config.hpp"

#include "reference/core/error.hpp"

namespace preflight {

namespace {
void require_positive(int64_t value, const char* field) {
  if (value <= 0) fail("field '", field, "' = ", value, ": expected a positive integer");
}
}  // namespace

void validate(const ModelConfig& c) {
  require_positive(c.vocab_size, "vocab_size");
  require_positive(c.hidden_size, "hidden_size");
  require_positive(c.num_hidden_layers, "num_hidden_layers");
  require_positive(c.num_attention_heads, "num_attention_heads");
  require_positive(c.max_position_embeddings, "max_position_embeddings");
  if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
    fail("field 'rms_norm_eps' = ", c.rms_norm_eps, ": expected a value in (0, 1)");
  if (!(c.initializer_range > 0.0)) fail("field 'initializer_range' = ", c.initializer_range, ": expected > 0");
  if (!(c.rope_theta > 0.0)) fail("field 'rope_theta' = ", c.rope_theta, ": expected > 0");
  if (c.attn_logit_softcapping < 0.0)
    fail("field 'attn_logit_softcapping' = ", c.attn_logit_softcapping, ": expected >= 0 (0 = off)");
  if (c.final_logit_softcapping < 0.0)
    fail("field 'final_logit_softcapping' = ", c.final_logit_softcapping, ": expected >= 0 (0 = off)");

  if (c.attention == AttentionKind::mla) {
    if (c.q_lora_rank < 0) fail("field 'q_lora_rank' = ", c.q_lora_rank, ": expected >= 0 (0 = no compression)");
    require_positive(c.kv_lora_rank, "kv_lora_rank");
    require_positive(c.qk_nope_head_dim, "qk_nope_head_dim");
    require_positive(c.qk_rope_head_dim, "qk_rope_head_dim");
    require_positive(c.v_head_dim, "v_head_dim");
    if (c.qk_rope_head_dim % 2 != 0)
      fail("field 'qk_rope_head_dim' = ", c.qk_rope_head_dim, ": expected an even number (RoPE rotates pairs)");
    if (c.q_lora_rank >= c.hidden_size)
      fail("field 'q_lora_rank' = ", c.q_lora_rank, ": expected less than hidden_size (", c.hidden_size, ")");
    if (c.kv_lora_rank >= c.hidden_size)
      fail("field 'kv_lora_rank' = ", c.kv_lora_rank, ": expected less than hidden_size (", c.hidden_size, ")");
    if (c.position == PositionKind::learned)
      fail("field 'position_embedding' = learned: MLA requires rope (its decoupled rotary key)");
    if (c.qk_norm) fail("field 'qk_norm' = true: expected false with MLA (its q and kv latents are normalised already)");
  } else {
    require_positive(c.num_key_value_heads, "num_key_value_heads");
    require_positive(c.head_dim, "head_dim");
    if (c.num_key_value_heads > c.num_attention_heads || c.num_attention_heads % c.num_key_value_heads != 0)
      fail("field 'num_key_value_heads' = ", c.num_key_value_heads, ": expected a divisor of num_attention_heads (",
           c.num_attention_heads, ")");
    if (c.position == PositionKind::rope && c.head_dim % 2 != 0)
      fail("field 'head_dim' = ", c.head_dim, ": expected an even number with rope (RoPE rotates pairs)");
  }

  const auto& rs = c.rope_scaling;
  if (rs.type != RopeScalingKind::none) {
    if (c.position != PositionKind::rope)
      fail("field 'rope_scaling' is set but position_embedding is not rope");
    if (!(rs.factor >= 1.0)) fail("field 'rope_scaling.factor' = ", rs.factor, ": expected >= 1");
    require_positive(rs.original_max_position_embeddings, "rope_scaling.original_max_position_embeddings");
    if (rs.type == RopeScalingKind::yarn && !(rs.beta_fast > rs.beta_slow && rs.beta_slow > 0.0))
      fail("field 'rope_scaling.beta_fast' = ", rs.beta_fast, ": expected beta_fast > beta_slow (", rs.beta_slow,
           ") > 0");
    if (rs.type == RopeScalingKind::llama3 && !(rs.high_freq_factor > rs.low_freq_factor && rs.low_freq_factor > 0.0))
      fail("field 'rope_scaling.high_freq_factor' = ", rs.high_freq_factor,
           ": expected high_freq_factor > low_freq_factor (", rs.low_freq_factor, ") > 0");
  }

  if (c.num_dense_layers() > 0 || !c.is_moe()) require_positive(c.intermediate_size, "intermediate_size");

  if (c.n_routed_experts < 0) fail("field 'n_routed_experts' = ", c.n_routed_experts, ": expected >= 0 (0 = dense)");
  if (c.is_moe()) {
    if (c.first_k_dense_replace < 0 || c.first_k_dense_replace >= c.num_hidden_layers)
      fail("field 'first_k_dense_replace' = ", c.first_k_dense_replace, ": expected 0 .. num_hidden_layers-1 (",
           c.num_hidden_layers - 1, ")");
    if (c.ffn != FfnKind::swiglu) fail("field 'hidden_act': MoE experts are SwiGLU; expected \"silu\"");
    require_positive(c.moe_intermediate_size, "moe_intermediate_size");
    require_positive(c.num_experts_per_tok, "num_experts_per_tok");
    if (c.n_shared_experts < 0) fail("field 'n_shared_experts' = ", c.n_shared_experts, ": expected >= 0");
    if (c.num_experts_per_tok > c.n_routed_experts)
      fail("field 'num_experts_per_tok' = ", c.num_experts_per_tok, ": expected at most n_routed_experts (",
           c.n_routed_experts, ")");
    require_positive(c.n_group, "n_group");
    if (c.n_routed_experts % c.n_group != 0)
      fail("field 'n_group' = ", c.n_group, ": expected a divisor of n_routed_experts (", c.n_routed_experts, ")");
    if (c.topk_group < 1 || c.topk_group > c.n_group)
      fail("field 'topk_group' = ", c.topk_group, ": expected 1 .. n_group (", c.n_group, ")");
    const int64_t per_group = c.n_routed_experts / c.n_group;
    if (c.num_experts_per_tok > c.topk_group * per_group)
      fail("field 'num_experts_per_tok' = ", c.num_experts_per_tok, ": expected at most topk_group × experts per group (",
           c.topk_group * per_group, ")");
    // The group score sums the top-2 biased scores of a group (DeepSeek-V3).
    if (c.n_group > 1 && per_group < 2)
      fail("field 'n_group' = ", c.n_group, ": each group needs at least 2 experts (group score = top-2 sum)");
    if (!(c.routed_scaling_factor > 0.0))
      fail("field 'routed_scaling_factor' = ", c.routed_scaling_factor, ": expected > 0");
  } else {
    if (c.first_k_dense_replace != 0 && c.first_k_dense_replace != c.num_hidden_layers)
      fail("field 'first_k_dense_replace' = ", c.first_k_dense_replace, ": expected 0 for a dense model");
    if (c.num_experts_per_tok != 0)
      fail("field 'num_experts_per_tok' = ", c.num_experts_per_tok, ": expected 0 for a dense model (n_routed_experts = 0)");
  }
  if (c.num_nextn_predict_layers < 0)
    fail("field 'num_nextn_predict_layers' = ", c.num_nextn_predict_layers, ": expected >= 0");
}

const char* to_string(AttentionKind k) { return k == AttentionKind::mla ? "mla" : "gqa"; }
const char* to_string(ScoringFunc k) { return k == ScoringFunc::sigmoid ? "sigmoid" : "softmax"; }
const char* to_string(FfnKind k) { return k == FfnKind::swiglu ? "swiglu" : "gelu"; }
const char* to_string(NormKind k) { return k == NormKind::rmsnorm ? "rmsnorm" : "layernorm"; }
const char* to_string(PositionKind k) { return k == PositionKind::rope ? "rope" : "learned"; }
const char* to_string(RopeScalingKind k) {
  switch (k) {
    case RopeScalingKind::none: return "none";
    case RopeScalingKind::yarn: return "yarn";
    case RopeScalingKind::llama3: return "llama3";
  }
  return "?";
}

}  // namespace preflight
