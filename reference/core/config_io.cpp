#include "reference/core/config_io.hpp"

#include <filesystem>
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

const std::map<std::string, TopkMethod> kTopkMethodNames = {{"noaux_tc", TopkMethod::noaux_tc},
                                                             {"greedy", TopkMethod::greedy},
                                                             {"group_limited_greedy", TopkMethod::group_limited_greedy}};

// The fields every dialect with Hugging Face names shares (same names, same meaning).
void read_base_fields(JsonFields& r, ModelConfig& c) {
  r.read("vocab_size", c.vocab_size);
  r.read("hidden_size", c.hidden_size);
  r.read("num_hidden_layers", c.num_hidden_layers);
  r.read("max_position_embeddings", c.max_position_embeddings);
  r.read("rms_norm_eps", c.rms_norm_eps);
  r.read("tie_word_embeddings", c.tie_word_embeddings);
  r.read("initializer_range", c.initializer_range);
  r.read("num_attention_heads", c.num_attention_heads);
  r.read("num_key_value_heads", c.num_key_value_heads);
  // HF writes head_dim: null when it is hidden_size / num_attention_heads.
  if (!(r.has("head_dim") && r.raw("head_dim").is_null())) r.read("head_dim", c.head_dim);
  r.read("rope_theta", c.rope_theta);
  read_rope_scaling(r, c.rope_scaling);
  r.read_enum("hidden_act", c.ffn, kActivationNames);
  r.read("intermediate_size", c.intermediate_size);
}

// MLA (DeepSeek-V2/V3 names).
void read_mla_fields(JsonFields& r, ModelConfig& c) {
  // q_lora_rank null (DeepSeek-V2-Lite, Moonlight): the query is projected directly.
  if (r.has("q_lora_rank") && r.raw("q_lora_rank").is_null()) {
    c.q_lora_rank = 0;
  } else {
    r.read("q_lora_rank", c.q_lora_rank);
  }
  r.read("kv_lora_rank", c.kv_lora_rank);
  r.read("qk_nope_head_dim", c.qk_nope_head_dim);
  r.read("qk_rope_head_dim", c.qk_rope_head_dim);
  r.read("v_head_dim", c.v_head_dim);
}

// DeepSeek-style MoE (DeepSeek-V2/V3 names).
void read_deepseek_moe_fields(JsonFields& r, ModelConfig& c) {
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
  r.read("qkv_bias", c.qkv_bias);
  r.read("shared_expert_gate", c.shared_expert_gate);
  r.read_enum("topk_method", c.topk_method, kTopkMethodNames);
  r.require({"attention_kind", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"});
  read_base_fields(r, c);
  read_mla_fields(r, c);
  read_deepseek_moe_fields(r, c);
  r.read("attention_bias", c.attention_bias);
  r.read("mlp_bias", c.mlp_bias);
  r.read("num_nextn_predict_layers", c.num_nextn_predict_layers);
  r.read("final_logit_softcapping", c.final_logit_softcapping);
  r.read("attn_logit_softcapping", c.attn_logit_softcapping);
  r.reject_unknown();
  derive_defaults(c);
  return c;
}

// Hugging Face: one reader per model_type. Each sets what its modeling code hard-wires or
// defaults (so a key the file leaves out means what it means in transformers), reads the
// keys that family's config class defines, and refuses the ones that would change the model
// in a way preflight does not model (sliding windows, sparse-step cadences, ...).

// "every layer" cadences: DeepSeek's moe_layer_freq, Qwen's decoder_sparse_step and mlp_only_layers.
void require_every_layer_moe(JsonFields& r, const char* key) {
  int64_t v = 1;
  r.read(key, v);
  if (v != 1)
    fail(r.origin(), ": field '", key, "' = ", v,
         ": expected 1 (every block after first_k_dense_replace is MoE; other cadences are not modelled)");
}

// transformers >= 4.53 lists every layer's attention; only full attention is modelled.
void require_full_attention_layers(JsonFields& r, const ModelConfig& c) {
  if (!r.has("layer_types")) return;
  const json& v = r.raw("layer_types");
  if (!v.is_array() || static_cast<int64_t>(v.size()) != c.num_hidden_layers)
    r.bad("layer_types", "an array of num_hidden_layers (" + std::to_string(c.num_hidden_layers) + ") strings", v);
  for (const json& t : v)
    if (t != "full_attention")
      fail(r.origin(), ": field 'layer_types' has ", describe_json_value(t),
           ": expected only \"full_attention\" (sliding-window attention is not modelled)");
}

// Qwen2/Qwen3: `use_sliding_window` must be false; the window size is then unused.
void require_no_sliding_window_qwen(JsonFields& r) {
  bool use = false;
  r.read("use_sliding_window", use);
  if (use)
    fail(r.origin(), ": field 'use_sliding_window' = true: expected false (sliding-window attention is not modelled)");
  r.ignore("sliding_window");
  r.ignore("max_window_layers");
}

void read_hf_deepseek(JsonFields& r, ModelConfig& c, bool v2) {
  c.attention = AttentionKind::mla;
  c.n_group = 1;
  c.topk_group = 1;
  // DeepSeek stores num_key_value_heads = num_attention_heads; MLA does not use it.
  r.ignore("num_key_value_heads");
  read_base_fields(r, c);
  read_mla_fields(r, c);
  r.read("attention_bias", c.attention_bias);
  if (v2) {
    // DeepseekV2Config: softmax gate, greedy top-k, no selection bias, no MTP.
    c.scoring_func = ScoringFunc::softmax;
    c.router_bias = false;
    c.norm_topk_prob = false;
    c.topk_method = TopkMethod::greedy;
  } else {
    c.scoring_func = ScoringFunc::sigmoid;
    c.router_bias = true;  // noaux_tc's e_score_correction_bias
    c.topk_method = TopkMethod::noaux_tc;
    r.read("num_nextn_predict_layers", c.num_nextn_predict_layers);
  }
  read_deepseek_moe_fields(r, c);
  std::string topk_method = to_string(c.topk_method);
  r.read("topk_method", topk_method);
  if (v2 && topk_method == "greedy") {
    c.topk_method = TopkMethod::greedy;
    c.n_group = c.topk_group = 1;  // greedy ignores the groups
  } else if (v2 && topk_method == "group_limited_greedy") {
    c.topk_method = TopkMethod::group_limited_greedy;
  } else if (!v2 && topk_method == "noaux_tc") {
    c.topk_method = TopkMethod::noaux_tc;
  } else {
    fail(r.origin(), ": field 'topk_method' = \"", topk_method, "\": expected ",
         v2 ? "\"greedy\" or \"group_limited_greedy\" (DeepSeek-V2)" : "\"noaux_tc\" (DeepSeek-V3)");
  }
  // The gate normalises the top-k weights only when top_k > 1. DeepSeek-V2 then leaves out
  // routed_scaling_factor (it multiplies only unnormalised weights); V3 always applies it.
  if (c.num_experts_per_tok == 1) c.norm_topk_prob = false;
  if (v2 && c.norm_topk_prob) c.routed_scaling_factor = 1.0;
  require_every_layer_moe(r, "moe_layer_freq");
  bool rope_interleave = true;
  r.read("rope_interleave", rope_interleave);
  if (!rope_interleave)
    fail(r.origin(), ": field 'rope_interleave' = false: expected true (DeepSeek rotates adjacent pairs)");
  // HF DeepSeek configs carry intermediate_size for the dense blocks.
  if (!r.has("intermediate_size")) r.missing("intermediate_size");
}

void read_hf_llama(JsonFields& r, ModelConfig& c) {
  c.attention = AttentionKind::gqa;
  c.rms_norm_eps = 1e-6;  // LlamaConfig's default
  read_base_fields(r, c);
  r.read("attention_bias", c.attention_bias);
  r.read("mlp_bias", c.mlp_bias);
}

// Qwen2-MoE's shared expert is one SwiGLU of shared_expert_intermediate_size, gated by
// sigmoid(x·w). A SwiGLU of width n·m is exactly n SwiGLUs of width m summed (the
// intermediate dimension splits into independent slices), so it is loaded as n shared
// experts of moe_intermediate_size: the same parameters, FLOPs and memory everywhere.
void read_qwen2_shared_expert(JsonFields& r, ModelConfig& c) {
  if (!r.has("shared_expert_intermediate_size")) r.missing("shared_expert_intermediate_size");
  int64_t width = 0;
  r.read("shared_expert_intermediate_size", width);
  if (width == 0) return;  // no shared expert
  const int64_t m = c.moe_intermediate_size;
  if (width < 0 || m <= 0 || width % m != 0)
    fail(r.origin(), ": field 'shared_expert_intermediate_size' = ", width,
         ": expected a multiple of moe_intermediate_size (", m, ")");
  c.n_shared_experts = width / m;
  c.shared_expert_gate = true;
}

// qwen2, qwen2_moe, qwen3, qwen3_moe.
void read_hf_qwen(JsonFields& r, ModelConfig& c, const std::string& model_type) {
  c.attention = AttentionKind::gqa;
  c.rms_norm_eps = 1e-6;
  if (model_type == "qwen2" || model_type == "qwen2_moe") {
    c.qkv_bias = true;  // Qwen2(Moe)Attention: bias on q/k/v, none on o; not configurable
  } else {
    c.qk_norm = true;  // Qwen3Attention: RMSNorm of head width on q and k
    r.read("attention_bias", c.attention_bias);  // Qwen3: q/k/v/o together
  }
  read_base_fields(r, c);
  require_no_sliding_window_qwen(r);
  require_full_attention_layers(r, c);
  if (model_type == "qwen3_moe" || model_type == "qwen2_moe") {
    // Qwen{2,3}MoeSparseMoeBlock: softmax over all experts, top-k, optional renormalisation,
    // no selection bias, no scaling; Qwen2-MoE adds one gated shared expert.
    c.scoring_func = ScoringFunc::softmax;
    c.router_bias = false;
    c.topk_method = TopkMethod::greedy;
    c.norm_topk_prob = false;  // Qwen3MoeConfig's default
    r.read("num_experts", c.n_routed_experts);
    r.read("num_experts_per_tok", c.num_experts_per_tok);
    r.read("moe_intermediate_size", c.moe_intermediate_size);
    r.read("norm_topk_prob", c.norm_topk_prob);
    require_every_layer_moe(r, "decoder_sparse_step");
    if (r.has("mlp_only_layers")) {
      std::vector<int64_t> dense;
      r.read("mlp_only_layers", dense);
      if (!dense.empty())
        fail(r.origin(), ": field 'mlp_only_layers' has ", dense.size(),
             " entries: expected [] (dense blocks between MoE blocks are not modelled)");
    }
    if (!r.has("num_experts")) r.missing("num_experts");
    if (model_type == "qwen2_moe") read_qwen2_shared_expert(r, c);
  }
}

void read_hf_mixtral(JsonFields& r, ModelConfig& c) {
  c.attention = AttentionKind::gqa;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 1e6;
  // MixtralSparseMoeBlock: softmax over the experts, top-k, always renormalised; every
  // block is MoE, experts have intermediate_size's width, no shared expert, no bias.
  c.scoring_func = ScoringFunc::softmax;
  c.router_bias = false;
  c.topk_method = TopkMethod::greedy;
  c.norm_topk_prob = true;
  read_base_fields(r, c);
  r.read("num_local_experts", c.n_routed_experts);
  r.read("num_experts_per_tok", c.num_experts_per_tok);
  if (!r.has("num_local_experts")) r.missing("num_local_experts");
  if (!r.has("intermediate_size")) r.missing("intermediate_size");
  c.moe_intermediate_size = c.intermediate_size;
  if (r.has("sliding_window") && !r.raw("sliding_window").is_null())
    fail(r.origin(), ": field 'sliding_window' = ", describe_json_value(r.raw("sliding_window")),
         ": expected null (sliding-window attention is not modelled)");
  double jitter = 0.0;
  r.read("router_jitter_noise", jitter);
  if (jitter != 0.0)
    fail(r.origin(), ": field 'router_jitter_noise' = ", jitter, ": expected 0 (router noise is not modelled)");
}

ModelConfig parse_hugging_face(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  ModelConfig c;
  if (!r.has("model_type")) r.missing("model_type");
  std::string model_type;
  r.read("model_type", model_type);
  if (model_type == "deepseek_v3" || model_type == "deepseek_v2") {
    read_hf_deepseek(r, c, model_type == "deepseek_v2");
  } else if (model_type == "llama") {
    read_hf_llama(r, c);
  } else if (model_type == "qwen2" || model_type == "qwen2_moe" || model_type == "qwen3" || model_type == "qwen3_moe") {
    read_hf_qwen(r, c, model_type);
  } else if (model_type == "mixtral") {
    read_hf_mixtral(r, c);
  } else {
    fail(origin, ": field 'model_type' = \"", model_type,
         "\": expected one of \"deepseek_v3\", \"deepseek_v2\", \"llama\", \"qwen2\", \"qwen2_moe\", "
         "\"qwen3\", \"qwen3_moe\", \"mixtral\"");
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
  return model_config_from_json(parse_json(json_text, origin), origin);
}

namespace {
// "dir/Qwen3-8B/" and "dir/Qwen3-8B/config.json" -> "Qwen3-8B"; "dir/x.json" -> "x".
std::string model_name_from_path(const std::string& name_or_path) {
  std::filesystem::path p = std::filesystem::path(name_or_path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing slash
  if (p.filename() == "config.json" && p.has_parent_path()) p = p.parent_path();
  std::string stem = p.filename().string();
  if (stem.size() > 5 && stem.substr(stem.size() - 5) == ".json") stem.resize(stem.size() - 5);
  return stem.empty() || stem == "." || stem == ".." ? name_or_path : stem;
}
}  // namespace

ModelConfig load_model_config(const std::string& name_or_path, std::string* origin) {
  std::string where;
  const std::string text = load_preset_or_file("models", name_or_path, &where);
  ModelConfig c = parse_model_config(text, where);
  if (c.name.empty()) c.name = model_name_from_path(name_or_path);
  if (origin) *origin = where;
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
  if (c.attention == AttentionKind::gqa) j["qkv_bias"] = c.qkv_bias;
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
    j["shared_expert_gate"] = c.shared_expert_gate;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["scoring_func"] = to_string(c.scoring_func);
    j["topk_method"] = to_string(c.topk_method);
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["router_bias"] = c.router_bias;
  }
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["final_logit_softcapping"] = c.final_logit_softcapping;
  return j;
}

}  // namespace preflight
