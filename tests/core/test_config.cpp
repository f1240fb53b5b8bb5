// Model config loading: presets, the Hugging Face and DeepSeek dialects, round trips,
// and the one-line errors for malformed, truncated and inconsistent files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"
#include "tests/core/test_util.hpp"

namespace preflight {
namespace {

using nlohmann::json;

TEST(Config, EveryPresetLoadsAndValidates) {
  const auto names = preset_names("models");
  ASSERT_GE(names.size(), 5u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const ModelConfig c = load_model_config(name);
    EXPECT_EQ(c.name, name);
    EXPECT_NO_THROW(validate(c));
  }
}

TEST(Config, RequiredPresetsExist) {
  for (const char* name : {"tiny", "proxy-16b", "deepseek-v3-671b", "llama3-405b", "gpt-1.7b", "gpt-18.4b",
                           "gpt-145.6b"}) {
    EXPECT_TRUE(preset_text("models", name).has_value()) << name;
  }
}

TEST(Config, PresetRoundTripsThroughJson) {
  for (const auto& name : preset_names("models")) {
    SCOPED_TRACE(name);
    const ModelConfig a = load_model_config(name);
    const json j = to_json(a);
    const ModelConfig b = model_config_from_json(j, "round trip");
    EXPECT_EQ(to_json(b), j);
  }
}

TEST(Config, DeepSeekV3PresetMatchesPublishedConfig) {
  const ModelConfig c = load_model_config("deepseek-v3-671b");
  EXPECT_EQ(c.attention, AttentionKind::mla);
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(c.num_moe_layers(), 58);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.scoring_func, ScoringFunc::sigmoid);
  EXPECT_EQ(c.qk_head_dim(), 192);
  // Pre-training ran at 4K without YaRN: the preset must not turn it on.
  EXPECT_EQ(c.rope_scaling.type, RopeScalingKind::none);
}

TEST(Config, HuggingFaceDeepSeekV3MatchesPresetShapes) {
  const ModelConfig hf = load_model_config(test::data_path("hf-deepseek-v3-config.json"));
  const ModelConfig preset = load_model_config("deepseek-v3-671b");
  EXPECT_EQ(hf.name, "hf-deepseek-v3-config");
  EXPECT_EQ(hf.hidden_size, preset.hidden_size);
  EXPECT_EQ(hf.q_lora_rank, preset.q_lora_rank);
  EXPECT_EQ(hf.n_group, preset.n_group);
  EXPECT_EQ(hf.topk_group, preset.topk_group);
  EXPECT_EQ(hf.num_nextn_predict_layers, 1);
  // The HF config is the long-context one: YaRN factor 40 over 4096, stated explicitly.
  EXPECT_EQ(hf.rope_scaling.type, RopeScalingKind::yarn);
  EXPECT_EQ(hf.rope_scaling.factor, 40.0);
  EXPECT_EQ(hf.rope_scaling.original_max_position_embeddings, 4096);
}

TEST(Config, DeepSeekInferenceDialectMatchesPreset) {
  const ModelConfig ds = load_model_config(test::data_path("deepseek-config_671B.json"));
  const ModelConfig preset = load_model_config("deepseek-v3-671b");
  ModelConfig a = ds, b = preset;
  a.name = b.name = "x";
  // config_671B.json has no MTP depth and no init std; everything else must agree.
  a.num_nextn_predict_layers = b.num_nextn_predict_layers;
  a.initializer_range = b.initializer_range;
  EXPECT_EQ(to_json(a), to_json(b));
}

TEST(Config, DeepSeekDialectTurnsYarnOnOnlyWhenAsked) {
  json j = json::parse(read_file(test::data_path("deepseek-config_671B.json")));
  j["max_seq_len"] = 16384;  // the official demo's length: must NOT imply YaRN here
  EXPECT_EQ(model_config_from_json(j, "t").rope_scaling.type, RopeScalingKind::none);
  j["rope_factor"] = 40;
  const ModelConfig c = model_config_from_json(j, "t");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingKind::yarn);
  EXPECT_EQ(c.rope_scaling.factor, 40.0);
}

TEST(Config, HuggingFaceLlamaDerivesHeadDimAndScaling) {
  const ModelConfig c = load_model_config(test::data_path("hf-llama-3.1-405b-config.json"));
  EXPECT_EQ(c.attention, AttentionKind::gqa);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingKind::llama3);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
}

// ---- errors: each must name the origin and the field, and say what was expected ----

std::string error_of(const std::string& text) {
  try {
    parse_model_config(text, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string error_of(const json& j) { return error_of(j.dump()); }

json tiny_json() { return json::parse(*preset_text("models", "tiny")); }

void expect_error(const std::string& message, std::initializer_list<const char*> fragments) {
  ASSERT_FALSE(message.empty()) << "expected an error";
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  EXPECT_EQ(message.rfind("cfg.json: ", 0), 0u) << message;
  for (const char* f : fragments) EXPECT_NE(message.find(f), std::string::npos) << "'" << f << "' in: " << message;
}

TEST(ConfigErrors, TruncatedFile) {
  const std::string text = *preset_text("models", "tiny");
  expect_error(error_of(text.substr(0, text.size() / 2)), {"invalid JSON"});
  expect_error(error_of(std::string("")), {"invalid JSON"});
}

TEST(ConfigErrors, NotAnObject) {
  expect_error(error_of(std::string("[1, 2]")), {"expected a JSON object"});
  expect_error(error_of(json{{"hello", 1}}), {"not a model config"});
}

TEST(ConfigErrors, UnknownField) {
  json j = tiny_json();
  j["num_experts"] = 8;
  expect_error(error_of(j), {"unknown field 'num_experts'"});
  j = tiny_json();
  j["rope_scaling"] = {{"type", "yarn"}, {"factr", 4}};
  expect_error(error_of(j), {"unknown field 'rope_scaling.factr'"});
}

TEST(ConfigErrors, WrongTypes) {
  json j = tiny_json();
  j["hidden_size"] = "64";
  expect_error(error_of(j), {"'hidden_size'", "expected an integer", "string \"64\""});
  j = tiny_json();
  j["hidden_size"] = 64.5;
  expect_error(error_of(j), {"'hidden_size'", "expected an integer"});
  j = tiny_json();
  j["tie_word_embeddings"] = 1;
  expect_error(error_of(j), {"'tie_word_embeddings'", "true or false"});
  j = tiny_json();
  j["scoring_func"] = "relu";
  expect_error(error_of(j), {"'scoring_func'", "\"sigmoid\"", "\"softmax\""});
}

TEST(ConfigErrors, MissingRequiredField) {
  json j = tiny_json();
  j.erase("hidden_size");
  expect_error(error_of(j), {"missing required field 'hidden_size'"});
}

TEST(ConfigErrors, InconsistentValues) {
  struct Case {
    const char* field;
    json value;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"num_experts_per_tok", 9, "at most n_routed_experts (8)"},
      {"n_group", 3, "divisor of n_routed_experts (8)"},
      {"topk_group", 5, "1 .. n_group (4)"},
      {"q_lora_rank", 64, "less than hidden_size (64)"},
      {"kv_lora_rank", 0, "positive integer"},
      {"qk_rope_head_dim", 7, "even number"},
      {"hidden_size", -64, "positive integer"},
      {"first_k_dense_replace", 3, "0 .. num_hidden_layers-1 (2)"},
      {"rms_norm_eps", 0.0, "(0, 1)"},
      {"num_experts_per_tok", 0, "positive integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field);
    json j = tiny_json();
    j[c.field] = c.value;
    expect_error(error_of(j), {c.field, c.expected});
  }
  // Group-limited top-k cannot pick more experts than its allowed groups hold.
  json j = tiny_json();
  j["num_experts_per_tok"] = 5;  // 2 groups × 2 experts = 4 reachable
  expect_error(error_of(j), {"num_experts_per_tok", "topk_group × experts per group (4)"});
}

TEST(ConfigErrors, GqaHeadsMustDivide) {
  json j = json::parse(*preset_text("models", "llama3-8b"));
  j["num_key_value_heads"] = 5;
  expect_error(error_of(j), {"num_key_value_heads", "divisor of num_attention_heads (32)"});
}

TEST(ConfigErrors, HuggingFaceUnknownModelTypeAndField) {
  json j = json::parse(read_file(test::data_path("hf-llama-3.1-405b-config.json")));
  j["model_type"] = "mamba";
  expect_error(error_of(j), {"'model_type'", "\"deepseek_v3\" or \"llama\""});
  j = json::parse(read_file(test::data_path("hf-llama-3.1-405b-config.json")));
  j["sliding_window"] = 4096;
  expect_error(error_of(j), {"unknown field 'sliding_window'"});
}

TEST(ConfigErrors, MissingFileOrPreset) {
  try {
    load_model_config("no-such-model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'no-such-model' is neither a file nor a models preset"), std::string::npos) << m;
    EXPECT_NE(m.find("deepseek-v3-671b"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace preflight
