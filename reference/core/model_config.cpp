#include "reference/core/model_config.hpp"

#include <cmath>
#include <utility>

#include "reference/core/accounting.hpp"
#include "reference/core/error.hpp"

namespace preflight {

namespace {
void require_positive(int64_t value, const char* field, int64_t max = kMaxModelWidth) {
  if (value <= 0 || value > max)
    fail("field '", field, "' = ", value, ": expected a positive integer at most ", max);
}
// Sizes that may be 0: a feature that is off, or a field the attention kind does not use.
void require_count(int64_t value, const char* field, const char* zero_means, int64_t max = kMaxModelWidth) {
  if (value < 0 || value > max)
    fail("field '", field, "' = ", value, ": expected 0 .. ", max, " (0 = ", zero_means, ")");
}
// Finite and above `lo` (or at it when `lo_allowed`): JSON has no inf or nan, but
// programmatic configs may, and 1e300 scales would only overflow later.
void require_finite(double value, const char* field, double lo, bool lo_allowed, const char* what) {
  const bool above = lo_allowed ? value >= lo : value > lo;
  if (!(above && std::isfinite(value))) fail("field '", field, "' = ", value, ": expected ", what);
}
}  // namespace

void validate(const ModelConfig& c) {
  require_positive(c.vocab_size, "vocab_size");
  require_positive(c.hidden_size, "hidden_size");
  require_positive(c.num_hidden_layers, "num_hidden_layers", kMaxModelLayers);
  require_positive(c.num_attention_heads, "num_attention_heads");
  require_positive(c.max_position_embeddings, "max_position_embeddings", kMaxModelContext);
  struct Size {
    int64_t value;
    const char* field;
    const char* zero_means;
  };
  for (const Size& s : {Size{c.num_key_value_heads, "num_key_value_heads", "unused (MLA)"},
                        Size{c.head_dim, "head_dim", "unused (MLA)"},
                        Size{c.q_lora_rank, "q_lora_rank", "no compression"},
                        Size{c.kv_lora_rank, "kv_lora_rank", "unused (GQA)"},
                        Size{c.qk_nope_head_dim, "qk_nope_head_dim", "unused (GQA)"},
                        Size{c.qk_rope_head_dim, "qk_rope_head_dim", "unused (GQA)"},
                        Size{c.v_head_dim, "v_head_dim", "unused (GQA)"},
                        Size{c.intermediate_size, "intermediate_size", "unused (every block MoE)"},
                        Size{c.moe_intermediate_size, "moe_intermediate_size", "dense"},
                        Size{c.n_routed_experts, "n_routed_experts", "dense"},
                        Size{c.n_shared_experts, "n_shared_experts", "none"},
                        Size{c.num_experts_per_tok, "num_experts_per_tok", "dense"},
                        Size{c.n_group, "n_group", "dense"},
                        Size{c.topk_group, "topk_group", "dense"}})
    require_count(s.value, s.field, s.zero_means);
  require_count(c.first_k_dense_replace, "first_k_dense_replace", "none", kMaxModelLayers);
  require_count(c.num_nextn_predict_layers, "num_nextn_predict_layers", "no MTP", kMaxModelLayers);
  if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
    fail("field 'rms_norm_eps' = ", c.rms_norm_eps, ": expected a value in (0, 1)");
  require_finite(c.initializer_range, "initializer_range", 0.0, false, "a finite value > 0");
  require_finite(c.rope_theta, "rope_theta", 0.0, false, "a finite value > 0");
  require_finite(c.routed_scaling_factor, "routed_scaling_factor", 0.0, false, "a finite value > 0");
  require_finite(c.attn_logit_softcapping, "attn_logit_softcapping", 0.0, true, "a finite value >= 0 (0 = off)");
  require_finite(c.final_logit_softcapping, "final_logit_softcapping", 0.0, true, "a finite value >= 0 (0 = off)");

  if (c.attention == AttentionKind::mla) {
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
    if (c.qkv_bias) fail("field 'qkv_bias' = true: expected false with MLA (attention_bias sets its biases)");
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
    require_finite(rs.factor, "rope_scaling.factor", 1.0, true, "a finite value >= 1");
    for (const auto& [value, field] : {std::pair{rs.beta_fast, "rope_scaling.beta_fast"},
                                       {rs.beta_slow, "rope_scaling.beta_slow"},
                                       {rs.mscale, "rope_scaling.mscale"},
                                       {rs.mscale_all_dim, "rope_scaling.mscale_all_dim"},
                                       {rs.low_freq_factor, "rope_scaling.low_freq_factor"},
                                       {rs.high_freq_factor, "rope_scaling.high_freq_factor"}})
      require_finite(value, field, -HUGE_VAL, true, "a finite number");
    require_positive(rs.original_max_position_embeddings, "rope_scaling.original_max_position_embeddings",
                     kMaxModelContext);
    if (rs.type == RopeScalingKind::yarn && !(rs.beta_fast > rs.beta_slow && rs.beta_slow > 0.0))
      fail("field 'rope_scaling.beta_fast' = ", rs.beta_fast, ": expected beta_fast > beta_slow (", rs.beta_slow,
           ") > 0");
    if (rs.type == RopeScalingKind::llama3 && !(rs.high_freq_factor > rs.low_freq_factor && rs.low_freq_factor > 0.0))
      fail("field 'rope_scaling.high_freq_factor' = ", rs.high_freq_factor,
           ": expected high_freq_factor > low_freq_factor (", rs.low_freq_factor, ") > 0");
  }

  if (c.num_dense_layers() > 0 || !c.is_moe()) require_positive(c.intermediate_size, "intermediate_size");

  if (c.is_moe()) {
    if (c.first_k_dense_replace < 0 || c.first_k_dense_replace >= c.num_hidden_layers)
      fail("field 'first_k_dense_replace' = ", c.first_k_dense_replace, ": expected 0 .. num_hidden_layers-1 (",
           c.num_hidden_layers - 1, ")");
    if (c.ffn != FfnKind::swiglu) fail("field 'hidden_act': MoE experts are SwiGLU; expected \"silu\"");
    require_positive(c.moe_intermediate_size, "moe_intermediate_size");
    require_positive(c.num_experts_per_tok, "num_experts_per_tok");
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
    if (c.topk_method == TopkMethod::noaux_tc && c.n_group > 1 && per_group < 2)
      fail("field 'n_group' = ", c.n_group, ": each group needs at least 2 experts (group score = top-2 sum)");
    if (c.shared_expert_gate && c.n_shared_experts == 0)
      fail("field 'shared_expert_gate' = true: expected n_shared_experts > 0 (it gates the shared experts)");
    if (c.topk_method == TopkMethod::greedy && (c.n_group != 1 || c.topk_group != 1))
      fail("field 'n_group' = ", c.n_group, ": expected n_group = topk_group = 1 with topk_method greedy (no groups)");
  } else {
    if (c.first_k_dense_replace != 0 && c.first_k_dense_replace != c.num_hidden_layers)
      fail("field 'first_k_dense_replace' = ", c.first_k_dense_replace, ": expected 0 for a dense model");
    if (c.num_experts_per_tok != 0)
      fail("field 'num_experts_per_tok' = ", c.num_experts_per_tok, ": expected 0 for a dense model (n_routed_experts = 0)");
    if (c.n_shared_experts != 0)
      fail("field 'n_shared_experts' = ", c.n_shared_experts, ": expected 0 for a dense model (n_routed_experts = 0)");
    if (c.shared_expert_gate) fail("field 'shared_expert_gate' = true: expected false for a dense model");
  }
  if (c.num_nextn_predict_layers > c.num_hidden_layers)
    fail("field 'num_nextn_predict_layers' = ", c.num_nextn_predict_layers, ": expected at most num_hidden_layers (",
         c.num_hidden_layers, ")");

  // Every field is in range; the total is counted with overflow checks (accounting.cpp) and
  // must stay below a bound that keeps byte counts (× 16 bytes of optimizer state) in int64_t.
  const int64_t total = count_parameters(c).with_mtp().total;
  if (total > kMaxModelParameters)
    fail("the model has ", total, " parameters: expected at most 2^48 (", kMaxModelParameters,
         "); check hidden_size, num_hidden_layers, vocab_size and the expert counts");
}

std::string reference_unsupported(const ModelConfig& c) {
  // Every reason, not only the first: a user fixing one should not discover the next later.
  std::string out;
  auto add = [&out](const char* why) { out += (out.empty() ? "" : "; ") + std::string(why); };
  if (c.attention == AttentionKind::gqa && c.qkv_bias && !c.attention_bias)
    add("field 'qkv_bias' = true: the reference GQA has biases on all of q/k/v/o or none (Qwen2's q/k/v-only "
        "biases are counted by `model` but cannot be trained yet)");
  if (c.is_moe() && c.shared_expert_gate)
    add("field 'shared_expert_gate' = true: the reference MoE has no gate on the shared experts (Qwen2-MoE)");
  if (c.attention == AttentionKind::mla && c.attention_bias)
    add("field 'attention_bias' = true: the reference MLA has no projection biases");
  if (c.is_moe() && c.topk_method == TopkMethod::group_limited_greedy && c.n_group > 1 && c.topk_group < c.n_group)
    add("field 'topk_method' = group_limited_greedy: the reference router scores groups by their top-2 sum "
        "(noaux_tc), not by their largest score (DeepSeek-V2)");
  return out;
}

const char* to_string(AttentionKind k) { return k == AttentionKind::mla ? "mla" : "gqa"; }
const char* to_string(ScoringFunc k) { return k == ScoringFunc::sigmoid ? "sigmoid" : "softmax"; }
const char* to_string(TopkMethod k) {
  switch (k) {
    case TopkMethod::noaux_tc: return "noaux_tc";
    case TopkMethod::greedy: return "greedy";
    case TopkMethod::group_limited_greedy: return "group_limited_greedy";
  }
  return "?";
}
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
