// Model config loading: presets, the Hugging Face and DeepSeek dialects, round trips,
// and the one-line errors for malformed, truncated and inconsistent files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/json_fields.hpp"
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
  expect_error(error_of(j), {"'model_type'", "\"deepseek_v3\"", "\"llama\"", "\"qwen3_moe\"", "\"mixtral\""});
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


// ---- Hugging Face families beyond deepseek_v3 / llama ----

const std::vector<std::string> kHfConfigs = {
    "hf-qwen2-7b-config.json",         "hf-qwen3-8b-config.json",         "hf-qwen3-0.6b-config.json",
    "hf-qwen3-30b-a3b-config.json",    "hf-qwen2-57b-a14b-config.json",   "hf-mixtral-8x7b-config.json",
    "hf-deepseek-v2-lite-config.json", "hf-deepseek-v2-config.json",      "hf-moonlight-16b-a3b-config.json",
    "hf-deepseek-v3-config.json",      "hf-llama-3.1-405b-config.json"};

TEST(ConfigHf, EveryFamilyLoadsAndRoundTripsThroughThePresetDialect) {
  for (const auto& file : kHfConfigs) {
    SCOPED_TRACE(file);
    const ModelConfig a = load_model_config(test::data_path(file));
    const json j = to_json(a);
    EXPECT_EQ(to_json(model_config_from_json(j, "round trip")), j);
  }
}

TEST(ConfigHf, Qwen2HasQkvBiasesOnly) {
  const ModelConfig c = load_model_config(test::data_path("hf-qwen2-7b-config.json"));
  EXPECT_EQ(c.attention, AttentionKind::gqa);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 128);  // 3584 / 28, derived
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rope_theta, 1e6);
}

TEST(ConfigHf, Qwen3HasQkNormAndExplicitHeadDim) {
  const ModelConfig c = load_model_config(test::data_path("hf-qwen3-30b-a3b-config.json"));
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.head_dim, 128);  // not 2048 / 32 = 64
  EXPECT_EQ(c.n_routed_experts, 128);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.first_k_dense_replace, 0);
  // Qwen3MoeConfig's norm_topk_prob defaults to false: a file without it does not renormalise.
  json j = json::parse(read_file(test::data_path("hf-qwen3-30b-a3b-config.json")));
  j.erase("norm_topk_prob");
  EXPECT_FALSE(model_config_from_json(j, "t").norm_topk_prob);
  EXPECT_TRUE(load_model_config(test::data_path("hf-qwen3-0.6b-config.json")).tie_word_embeddings);
}

TEST(ConfigHf, MixtralExpertsUseIntermediateSize) {
  const ModelConfig c = load_model_config(test::data_path("hf-mixtral-8x7b-config.json"));
  EXPECT_EQ(c.n_routed_experts, 8);
  EXPECT_EQ(c.moe_intermediate_size, 14336);
  EXPECT_EQ(c.n_shared_experts, 0);
  EXPECT_EQ(c.scoring_func, ScoringFunc::softmax);
  EXPECT_TRUE(c.norm_topk_prob);  // Mixtral always renormalises the top-k softmax
  EXPECT_FALSE(c.router_bias);
  EXPECT_EQ(c.num_moe_layers(), 32);
}

TEST(ConfigHf, DeepSeekV2AndMoonlightWithoutQueryCompression) {
  const ModelConfig lite = load_model_config(test::data_path("hf-deepseek-v2-lite-config.json"));
  EXPECT_EQ(lite.q_lora_rank, 0);  // null
  EXPECT_EQ(lite.scoring_func, ScoringFunc::softmax);
  EXPECT_FALSE(lite.norm_topk_prob);
  EXPECT_EQ(lite.routed_scaling_factor, 1.0);
  EXPECT_EQ(lite.rope_scaling.type, RopeScalingKind::yarn);
  EXPECT_EQ(lite.rope_scaling.mscale_all_dim, 0.707);
  const ModelConfig moon = load_model_config(test::data_path("hf-moonlight-16b-a3b-config.json"));
  EXPECT_EQ(moon.q_lora_rank, 0);
  EXPECT_EQ(moon.scoring_func, ScoringFunc::sigmoid);
  EXPECT_TRUE(moon.router_bias);
  EXPECT_EQ(moon.routed_scaling_factor, 2.446);
  EXPECT_EQ(moon.first_k_dense_replace, 1);
  EXPECT_EQ(moon.rope_theta, 50000.0);
}

TEST(ConfigHf, DeepSeekGateSemantics) {
  json j = json::parse(read_file(test::data_path("hf-deepseek-v2-config.json")));
  // DeepSeek-V2's gate multiplies by routed_scaling_factor only when it does not
  // renormalise; V3's reference semantics always multiply, so the factor becomes 1.
  j["norm_topk_prob"] = true;
  ModelConfig c = model_config_from_json(j, "t");
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.routed_scaling_factor, 1.0);
  // Both gates normalise only when top_k > 1.
  j["num_experts_per_tok"] = 1;
  EXPECT_FALSE(model_config_from_json(j, "t").norm_topk_prob);
  // greedy ignores the groups.
  j = json::parse(read_file(test::data_path("hf-deepseek-v2-config.json")));
  j["topk_method"] = "greedy";
  c = model_config_from_json(j, "t");
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
}

TEST(ConfigHf, ModelDirectoryIsReadThroughItsConfigJson) {
  const auto dir = std::filesystem::temp_directory_path() / ("pf-core-" + std::to_string(::getpid())) / "Qwen3-8B";
  std::filesystem::create_directories(dir);
  write_file_atomic((dir / "config.json").string(), read_file(test::data_path("hf-qwen3-8b-config.json")));
  for (const std::string& arg : {dir.string(), dir.string() + "/", (dir / "config.json").string()}) {
    SCOPED_TRACE(arg);
    std::string origin;
    const ModelConfig c = load_model_config(arg, &origin);
    EXPECT_EQ(c.name, "Qwen3-8B");
    EXPECT_EQ(origin.substr(origin.size() - 11), "config.json");
    EXPECT_EQ(to_json(c)["hidden_size"], 4096);
  }
  std::filesystem::remove(dir / "config.json");
  try {
    load_model_config(dir.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory without a config.json"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir.parent_path());
}

TEST(ConfigHf, ReferenceSupportIsReportedPerFeature) {
  // Runnable by the CPU reference as they are.
  for (const char* file : {"hf-qwen3-8b-config.json", "hf-qwen3-30b-a3b-config.json", "hf-mixtral-8x7b-config.json",
                           "hf-deepseek-v2-lite-config.json", "hf-moonlight-16b-a3b-config.json",
                           "hf-deepseek-v3-config.json", "hf-llama-3.1-405b-config.json"})
    EXPECT_EQ(reference_unsupported(load_model_config(test::data_path(file))), "") << file;
  for (const auto& name : preset_names("models")) EXPECT_EQ(reference_unsupported(load_model_config(name)), "") << name;
  // Counted exactly, but not runnable yet: each names its field.
  EXPECT_NE(reference_unsupported(load_model_config(test::data_path("hf-qwen2-7b-config.json"))).find("'qkv_bias'"),
            std::string::npos);
  // Qwen2-MoE has two such features: both are named.
  const std::string qwen2_moe = reference_unsupported(load_model_config(test::data_path("hf-qwen2-57b-a14b-config.json")));
  EXPECT_NE(qwen2_moe.find("'shared_expert_gate'"), std::string::npos) << qwen2_moe;
  EXPECT_NE(qwen2_moe.find("'qkv_bias'"), std::string::npos) << qwen2_moe;
  EXPECT_NE(reference_unsupported(load_model_config(test::data_path("hf-deepseek-v2-config.json"))).find("'topk_method'"),
            std::string::npos);
}

TEST(ConfigHf, FeaturesThatAreNotModelledAreRefusedByName) {
  struct Case {
    const char* file;
    const char* field;
    json value;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"hf-qwen2-7b-config.json", "use_sliding_window", true, "sliding-window attention is not modelled"},
      {"hf-qwen2-7b-config.json", "attention_bias", true, "unknown field 'attention_bias'"},  // Qwen2 hard-wires it
      {"hf-qwen3-8b-config.json", "layer_types", json::array({"sliding_attention"}), "'layer_types'"},
      {"hf-qwen3-30b-a3b-config.json", "decoder_sparse_step", 2, "expected 1"},
      {"hf-qwen3-30b-a3b-config.json", "mlp_only_layers", json::array({3}), "expected []"},
      {"hf-qwen2-57b-a14b-config.json", "shared_expert_intermediate_size", 20000, "multiple of moe_intermediate_size"},
      {"hf-mixtral-8x7b-config.json", "sliding_window", 4096, "sliding-window attention is not modelled"},
      {"hf-mixtral-8x7b-config.json", "router_jitter_noise", 0.1, "router noise is not modelled"},
      {"hf-mixtral-8x7b-config.json", "n_shared_experts", 1, "unknown field 'n_shared_experts'"},
      {"hf-deepseek-v2-lite-config.json", "moe_layer_freq", 2, "expected 1"},
      {"hf-deepseek-v2-lite-config.json", "topk_method", "noaux_tc", "\"greedy\" or \"group_limited_greedy\""},
      {"hf-moonlight-16b-a3b-config.json", "topk_method", "greedy", "\"noaux_tc\""},
      {"hf-moonlight-16b-a3b-config.json", "q_lora_rank", "none", "'q_lora_rank'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.file) + " " + c.field);
    json j = json::parse(read_file(test::data_path(c.file)));
    j[c.field] = c.value;
    expect_error(error_of(j), {c.field, c.expected});
  }
}

// ---- numbers a double or an int64 cannot hold, and absurd sizes: one line each ----

TEST(ConfigErrors, NumberTooLargeForADouble) {
  std::string text = *preset_text("models", "tiny");
  const auto at = text.find("\"hidden_size\": 64");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 17, "\"hidden_size\": 1e400");
  expect_error(error_of(text), {"field 'hidden_size'", "1e400", "too large for a double"});
}

// The shared parser that every config loader can use (model, hardware, layout, faults):
// each error is one line that starts with the origin and names the field where there is one.
std::string parse_json_error(const std::string& text) {
  try {
    parse_json(text, "cluster.json");
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("cluster.json: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 600u) << m;
    return m;
  }
  ADD_FAILURE() << "expected an error for " << text.substr(0, 80);
  return "";
}

TEST(ConfigErrors, ParseJsonNamesTheFieldOfAnOverflowingNumber) {
  EXPECT_NE(parse_json_error("{\"gpus\": -1e999}").find("field 'gpus': number -1e999 is too large for a double"),
            std::string::npos);
  // Nested objects and arrays: the path to the value.
  EXPECT_NE(parse_json_error("{\"a\": 1, \"links\": {\"ib\": [1, 2, {\"rate\": 2e308}]}}")
                .find("field 'links.ib[2].rate'"),
            std::string::npos);
  EXPECT_NE(parse_json_error("[1, 1e400]").find("field '[1]'"), std::string::npos);
  // Still finite: the largest double and a long integer literal (read as a double) parse.
  EXPECT_DOUBLE_EQ(parse_json("{\"x\": 1.7976931348623157e308}", "f").at("x").get<double>(), 1.7976931348623157e308);
  EXPECT_TRUE(parse_json("{\"x\": 123456789012345678901234567890}", "f").at("x").is_number_float());
}

TEST(ConfigErrors, ParseJsonSyntaxErrorsAreOneShortLine) {
  EXPECT_NE(parse_json_error("{\"format\": \"preflight-mo").find("invalid JSON"), std::string::npos);
  EXPECT_NE(parse_json_error("{\"a\": [1, 2,]}").find("field 'a[2]'"), std::string::npos);
  EXPECT_NE(parse_json_error("").find("invalid JSON"), std::string::npos);
  EXPECT_NE(parse_json_error("{} trailing").find("invalid JSON"), std::string::npos);
  // An unterminated string of a megabyte, with line breaks, is cut and kept on one line.
  EXPECT_NE(parse_json_error("{\"k\": \"" + std::string(1 << 20, 'x') + "\n\n").find("invalid JSON"),
            std::string::npos);
}

TEST(ConfigErrors, ParseJsonRefusesDeepNesting) {
  // 64 levels parse; 65 are refused (by the parser, before any recursive walk of the tree).
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_NO_THROW(parse_json(nested(64), "f"));
  EXPECT_NE(parse_json_error(nested(65)).find("nested more than 64 levels"), std::string::npos);
  EXPECT_NE(parse_json_error(nested(100000)).find("nested more than 64 levels"), std::string::npos);
  EXPECT_NE(parse_json_error("{\"a\": {\"b\": " + nested(70) + "}}").find("field 'a.b"), std::string::npos);
}

TEST(ConfigErrors, IntegersBeyondInt64AreNotWrapped) {
  json j = tiny_json();
  j["hidden_size"] = uint64_t{18446744073709551615u};  // would read back as -1
  expect_error(error_of(j), {"'hidden_size'", "expected an integer", "18446744073709551615"});
  j = tiny_json();
  j["n_routed_experts"] = uint64_t{9223372036854775808u};
  expect_error(error_of(j), {"'n_routed_experts'", "9223372036854775808"});
}

TEST(ConfigErrors, AbsurdSizesAreRefusedAtLoad) {
  struct Case {
    const char* field;
    json value;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"hidden_size", int64_t{1} << 62, "at most 16777216"},
      {"num_hidden_layers", 1000000000, "at most 65536"},
      {"num_hidden_layers", 1e9, "expected an integer"},
      {"vocab_size", int64_t{1} << 40, "at most 16777216"},
      {"max_position_embeddings", int64_t{1} << 31, "at most 1073741824"},
      {"moe_intermediate_size", -5, "expected 0 .. 16777216"},
      {"n_shared_experts", -1, "expected 0 .. 16777216"},
      {"num_nextn_predict_layers", 4, "at most num_hidden_layers (3)"},
      {"routed_scaling_factor", 0.0, "finite value > 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field);
    json j = tiny_json();
    j[c.field] = c.value;
    expect_error(error_of(j), {c.field, c.expected});
  }
}

TEST(ConfigErrors, TotalsBeyondTheParameterBoundAreRefused) {
  // Every field in range, the product not: V·d = 2^48 twice (embedding and head) > 2^48.
  json j = tiny_json();
  j["hidden_size"] = int64_t{1} << 24;
  j["vocab_size"] = int64_t{1} << 24;
  expect_error(error_of(j), {"parameters", "expected at most 2^48"});
  // Products past int64 itself (2^24 experts of 3·2^24·2^24 each): the checked count
  // refuses instead of wrapping to a small or negative number.
  j = tiny_json();
  j["hidden_size"] = int64_t{1} << 24;
  j["n_routed_experts"] = int64_t{1} << 24;
  j["n_group"] = 1;
  j["topk_group"] = 1;
  j["moe_intermediate_size"] = int64_t{1} << 24;
  expect_error(error_of(j), {"exceeds 2^63", "expected at most 2^48"});
}

TEST(ConfigErrors, LongStringValuesAreCutInMessages) {
  json j = tiny_json();
  j["scoring_func"] = std::string(100000, 'x');
  const std::string m = error_of(j);
  expect_error(m, {"'scoring_func'"});
  EXPECT_LT(m.size(), 400u) << m.size();
}

}  // namespace
}  // namespace preflight
