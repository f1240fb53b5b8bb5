// Loading and saving ModelConfig. Three input dialects are recognised by their keys:
//   * preflight presets (configs/models/*.json): `"format": "preflight-model/1"`, Hugging
//     Face field names plus preflight's own (attention_kind, ffn, norm, ...); strict.
//   * Hugging Face `config.json` (`model_type` deepseek_v3, deepseek_v2, llama, qwen2, qwen3,
//     qwen3_moe, mixtral): HF names, each family's defaults and hard-wired choices;
//     metadata keys that do not change the model (torch_dtype, architectures, ...) are
//     accepted and ignored, anything else unknown is rejected.
//   * DeepSeek's inference `config_671B.json` (dim, inter_dim, n_layers, ...).
// Every error names the origin (file or preset), the field and what was expected.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "reference/core/model_config.hpp"

namespace preflight {

// NAME|PATH|DIR: an existing file wins, then a directory holding config.json (a Hugging
// Face model directory), otherwise a preset in configs/models/. `origin` (when given) is
// set to the file read or "preset 'NAME'". Every command's model flag goes through here.
ModelConfig load_model_config(const std::string& name_or_path, std::string* origin = nullptr);

// Parses JSON text; `origin` prefixes every error message.
ModelConfig parse_model_config(const std::string& json_text, const std::string& origin);
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& origin);

// The preset dialect, with every field written out (round-trips through the parser).
nlohmann::json to_json(const ModelConfig& config);

}  // namespace preflight
