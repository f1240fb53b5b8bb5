#include "reference/core/config_io.hpp"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"
#include "reference/core/json_fields.hpp"
#include "reference/core/presets.hpp"

namespace preflight {

using nlohmann::json;

namespace {

constexpr const char* kPresetFormat = "preflight-model/1";

const std::map<std::string, NormKind> kNormNames = {{"rmsnorm", NormKind::rmsnorm}, {"layernorm", NormKind::layernorm}};
const std::map<std::string, PositionKind> kPositionNames = {{"rope", PositionKind::rope},
                                                            {"learned", PositionKind::learned}};
const std::map<std::string, AttentionKind> kAttentionNames = {{"mla", AttentionKind::mla}, {"gqa", AttentionKind::gqa}};
const std::map<std::string, ScoringFunc> kScoringNames = {{"sigmoid", ScoringFunc::sigmoid},
                                                          {"softmax", ScoringFunc::softmax}};
// HF activation names: SiLU means a gated SwiGLU FFN in these model families.
const std::map<std::string, FfnKind> kActivationNames = {
    {"silu", FfnKind::swiglu}, {"swiglu", FfnKind::swiglu}, {"gelu", FfnKind::gelu}, {"gelu_new", FfnKind::gelu}};

void read_rope_scaling(JsonFields& r, RopeScaling& out) {
  if (!r.has("rope_scaling")) return;
  const json& v = r.raw("rope_scaling");
  if (v.is_null()) {
    out = RopeScaling{};
    return;
  }
  if (!v.is_object()) r.bad("rope_scaling", "an object or null", v);
  JsonFields s(v, r.origin(), "rope_scaling");
  const std::map<std::string, RopeScalingKind> kinds = {
      {"none", RopeScalingKind::none}, {"yarn", RopeScalingKind::yarn}, {"llama3", RopeScalingKind::llama3}};
  // HF spells the kind "type" (older) or "rope_type" (newer).
  if (s.has("type")) s.read_enum("type", out.type, kinds);
  if (s.has("rope_type")) s.read_enum("rope_type", out.type, kinds);
  if (!s.has("type") && !s.has("rope_type")) s.missing("type");
  s.read("factor", out.factor);
  s.read("original_max_position_embeddings", out.original_max_position_embeddings);
  s.read("beta_fast", out.beta_fast);
  s.read("beta_slow", out.beta_slow);
  s.read("mscale", out.mscale);
  s.read("mscale_all_dim", out.mscale_all_dim);
  s.read("low_freq_factor", out.low_freq_factor);
  s.read("high_freq_factor", out.high_freq_factor);
  s.reject_unknown();
}

// Fields shared by the preset and Hugging Face dialects (same names).
void read_common_fields(JsonFields& r, ModelConfig& c) {
  r.read("vocab_size", c.vocab_size);
  r.read("hidden_size", c.hidden_size);
  r.read("num_hidden_layers", c.num_hidden_layers);
  r.read("max_position_embeddings", c.max_position_embeddings);
  r.read("rms_norm_eps", c.rms_norm_eps);
  r.read("tie_word_embeddings", c.tie_word_embeddings);
  r.read("initializer_range", c.initializer_range);
  r.read("num_attention_heads", c.num_attention_heads);
  r.read("num_key_value_heads", c.num_key_value_heads);
  r.read("head_dim", c.head_dim);
  r.read("attention_bias", c.attention_bias);
  r.read("q_lora_rank", c.q_lora_rank);
  r.read("kv_lora_rank", c.kv_lora_rank);
  r.read("qk_nope_head_dim", c.qk_nope_head_dim);
  r.read("qk_rope_head_dim", c.qk_rope_head_dim);
  r.read("v_head_dim", c.v_head_dim);
  r.read("rope_theta", c.rope_theta);
  read_rope_scaling(r, c.rope_scaling);
  r.read_enum("hidden_act", c.ffn, kActivationNames);
  r.read("intermediate_size", c.intermediate_size);
  r.read("mlp_bias", c.mlp_bias);
  r.read("first_k_dense_replace", c.first_k_dense_replace);
  r.read("n_routed_experts", c.n_routed_experts);
  r.read("n_shared_experts", c.n_shared_experts);
  r.read("moe_intermediate_size", c.moe_intermediate_size);
  r.read("num_experts_per_tok", c.num_experts_per_tok);
  r.read("n_group", c.n_group);
  r.read("topk_group", c.topk_group);
  r.read("routed_scaling_factor", c.routed_scaling_factor);
  r.read_enum("scoring_func", c.scoring_func, kScoringNames);
  r.read("norm_topk_prob", c.norm_topk_prob);
  r.read("num_nextn_predict_layers", c.num_nextn_predict_layers);
  r.read("final_logit_softcapping", c.final_logit_softcapping);
  r.read("attn_logit_softcapping", c.attn_logit_softcapping);
}

// Fills fields a dialect leaves implicit.
void derive_defaults(ModelConfig& c) {
  if (c.attention == AttentionKind::gqa) {
    if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
    if (c.head_dim == 0 && c.num_attention_heads > 0) {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail("field 'head_dim' is missing and hidden_size (", c.hidden_size,
             ") is not divisible by num_attention_heads (", c.num_attention_heads, "): set head_dim");
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
  }
}

ModelConfig parse_preset(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  ModelConfig c;
  r.expect_format(kPresetFormat);
  r.read("name", c.name);
  r.ignore("description");
  r.ignore("source");
  r.read_enum("attention_kind", c.attention, kAttentionNames);
  r.read_enum("norm", c.norm, kNormNames);
  r.read_enum("position_embedding", c.position, kPositionNames);
  r.read("qk_norm", c.qk_norm);
  r.read("attention_output_gate", c.attention_output_gate);
  r.read("router_bias", c.router_bias);
  r.require({"attention_kind", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"});
  read_common_fields(r, c);
  r.reject_unknown();
  derive_defaults(c);
  return c;
}

ModelConfig parse_hugging_face(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  ModelConfig c;
  std::string model_type;
  r.read("model_type", model_type);
  if (model_type == "deepseek_v3") {
    c.attention = AttentionKind::mla;
    c.scoring_func = ScoringFunc::sigmoid;
    c.router_bias = true;
    c.n_group = 1;
    c.topk_group = 1;
    // DeepSeek-V3 stores num_key_value_heads = num_attention_heads; MLA does not use it.
    r.ignore("num_key_value_heads");
    std::string topk_method = "noaux_tc";
    r.read("topk_method", topk_method);
    if (topk_method != "noaux_tc")
      fail(origin, ": field 'topk_method' = \"", topk_method, "\": expected \"noaux_tc\" (DeepSeek-V3 routing)");
    int64_t moe_layer_freq = 1;
    r.read("moe_layer_freq", moe_layer_freq);
    if (moe_layer_freq != 1) fail(origin, ": field 'moe_layer_freq' = ", moe_layer_freq, ": expected 1");
    bool rope_interleave = true;
    r.read("rope_interleave", rope_interleave);
    if (!rope_interleave)
      fail(origin, ": field 'rope_interleave' = false: expected true (DeepSeek rotates adjacent pairs)");
  } else if (model_type == "llama") {
    c.attention = AttentionKind::gqa;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 10000.0;
  } else {
    fail(origin, ": field 'model_type' = \"", model_type, "\": expected \"deepseek_v3\" or \"llama\"");
  }
  read_common_fields(r, c);
  if (c.attention == AttentionKind::gqa && c.n_routed_experts != 0)
    fail(origin, ": field 'n_routed_experts' = ", c.n_routed_experts, ": expected 0 for a llama model");
  if (c.attention == AttentionKind::mla) {
    // HF DeepSeek configs carry intermediate_size for the dense blocks.
    if (!r.has("intermediate_size")) r.missing("intermediate_size");
  }
  // Metadata and inference/training knobs that do not change the model's shape or math.
  static const std::set<std::string> kIgnorable = {
      "architectures", "auto_map", "model_type", "torch_dtype", "dtype", "transformers_version", "bos_token_id",
      "eos_token_id", "pad_token_id", "use_cache", "attention_dropout", "pretraining_tp", "quantization_config",
      "ep_size", "seq_aux", "aux_loss_alpha", "_name_or_path", "output_router_logits", "router_aux_loss_coef"};
  r.reject_unknown(kIgnorable);
  derive_defaults(c);
  return c;
}

// DeepSeek's inference ModelArgs / config_671B.json. Defaults are those of ModelArgs.
ModelConfig parse_deepseek(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  ModelConfig c;
  c.attention = AttentionKind::mla;
  c.vocab_size = 102400;
  c.hidden_size = 2048;
  c.intermediate_size = 10944;
  c.moe_intermediate_size = 1408;
  c.num_hidden_layers = 27;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 16;
  c.n_routed_experts = 64;
  c.n_shared_experts = 2;
  c.num_experts_per_tok = 6;
  c.n_group = 1;
  c.topk_group = 1;
  c.routed_scaling_factor = 1.0;
  c.scoring_func = ScoringFunc::softmax;
  c.q_lora_rank = 0;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 4096;
  r.read("vocab_size", c.vocab_size);
  r.read("dim", c.hidden_size);
  r.read("inter_dim", c.intermediate_size);
  r.read("moe_inter_dim", c.moe_intermediate_size);
  r.read("n_layers", c.num_hidden_layers);
  r.read("n_dense_layers", c.first_k_dense_replace);
  r.read("n_heads", c.num_attention_heads);
  r.read("n_routed_experts", c.n_routed_experts);
  r.read("n_shared_experts", c.n_shared_experts);
  r.read("n_activated_experts", c.num_experts_per_tok);
  r.read("n_expert_groups", c.n_group);
  r.read("n_limited_groups", c.topk_group);
  r.read("route_scale", c.routed_scaling_factor);
  r.read_enum("score_func", c.scoring_func, kScoringNames);
  r.read("q_lora_rank", c.q_lora_rank);
  r.read("kv_lora_rank", c.kv_lora_rank);
  r.read("qk_nope_head_dim", c.qk_nope_head_dim);
  r.read("qk_rope_head_dim", c.qk_rope_head_dim);
  r.read("v_head_dim", c.v_head_dim);
  r.read("rope_theta", c.rope_theta);
  r.read("max_seq_len", c.max_position_embeddings);
  // YaRN is on only when the file asks for it with rope_factor > 1; the official code's
  // "max_seq_len > original_seq_len" switch is deliberately not reproduced.
  double rope_factor = 1.0;
  r.read("rope_factor", rope_factor);
  RopeScaling& rs = c.rope_scaling;
  r.read("original_seq_len", rs.original_max_position_embeddings);
  r.read("beta_fast", rs.beta_fast);
  r.read("beta_slow", rs.beta_slow);
  r.read("mscale", rs.mscale);
  if (rope_factor > 1.0) {
    rs.type = RopeScalingKind::yarn;
    rs.factor = rope_factor;
  }
  c.router_bias = c.scoring_func == ScoringFunc::sigmoid;
  static const std::set<std::string> kIgnorable = {"dtype", "max_batch_size", "scale_fmt"};
  r.reject_unknown(kIgnorable);
  return c;
}

}  // namespace

ModelConfig model_config_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, ": expected a JSON object at the top level");
  ModelConfig c;
  if (j.contains("format")) {
    c = parse_preset(j, origin);
  } else if (j.contains("model_type") || j.contains("architectures")) {
    c = parse_hugging_face(j, origin);
  } else if (j.contains("dim") || j.contains("n_layers")) {
    c = parse_deepseek(j, origin);
  } else {
    fail(origin, ": not a model config: expected \"format\": \"", kPresetFormat,
         "\", a Hugging Face \"model_type\", or DeepSeek's \"dim\"/\"n_layers\"");
  }
  try {
    validate(c);
  } catch (const Error& e) {
    fail(origin, ": ", e.what());
  }
  return c;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // nlohmann's message includes the byte position; keep it on one line.
    fail(origin, ": invalid JSON: ", e.what());
  }
  return model_config_from_json(j, origin);
}

ModelConfig load_model_config(const std::string& name_or_path) {
  std::string origin;
  const std::string text = load_preset_or_file("models", name_or_path, &origin);
  ModelConfig c = parse_model_config(text, origin);
  if (c.name.empty()) {
    std::string stem = name_or_path;
    if (auto slash = stem.find_last_of('/'); slash != std::string::npos) stem = stem.substr(slash + 1);
    if (stem.size() > 5 && stem.substr(stem.size() - 5) == ".json") stem.resize(stem.size() - 5);
    c.name = stem;
  }
  return c;
}

json to_json(const ModelConfig& c) {
  json j;
  j["format"] = kPresetFormat;
  j["name"] = c.name;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["norm"] = to_string(c.norm);
  j["position_embedding"] = to_string(c.position);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["attention_kind"] = to_string(c.attention);
  j["num_attention_heads"] = c.num_attention_heads;
  if (c.attention == AttentionKind::gqa) {
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
  } else {
    j["q_lora_rank"] = c.q_lora_rank;
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["qk_nope_head_dim"] = c.qk_nope_head_dim;
    j["qk_rope_head_dim"] = c.qk_rope_head_dim;
    j["v_head_dim"] = c.v_head_dim;
  }
  j["attention_bias"] = c.attention_bias;
  j["qk_norm"] = c.qk_norm;
  j["attention_output_gate"] = c.attention_output_gate;
  j["attn_logit_softcapping"] = c.attn_logit_softcapping;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type == RopeScalingKind::none) {
    j["rope_scaling"] = nullptr;
  } else {
    const auto& rs = c.rope_scaling;
    json s;
    s["type"] = to_string(rs.type);
    s["factor"] = rs.factor;
    s["original_max_position_embeddings"] = rs.original_max_position_embeddings;
    if (rs.type == RopeScalingKind::yarn) {
      s["beta_fast"] = rs.beta_fast;
      s["beta_slow"] = rs.beta_slow;
      s["mscale"] = rs.mscale;
      s["mscale_all_dim"] = rs.mscale_all_dim;
    } else {
      s["low_freq_factor"] = rs.low_freq_factor;
      s["high_freq_factor"] = rs.high_freq_factor;
    }
    j["rope_scaling"] = s;
  }
  j["hidden_act"] = c.ffn == FfnKind::swiglu ? "silu" : "gelu";
  j["intermediate_size"] = c.intermediate_size;
  j["mlp_bias"] = c.mlp_bias;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["n_routed_experts"] = c.n_routed_experts;
  if (c.is_moe()) {
    j["n_shared_experts"] = c.n_shared_experts;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["scoring_func"] = to_string(c.scoring_func);
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["router_bias"] = c.router_bias;
  }
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["final_logit_softcapping"] = c.final_logit_softcapping;
  return j;
}

}  // namespace preflight
