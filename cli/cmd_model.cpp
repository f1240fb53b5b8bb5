// `preflight model`: exact parameter and FLOP accounting for a model config.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/accounting.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"

namespace preflight::cli {

namespace {

struct ModelOptions {
  std::string config = "deepseek-v3-671b";
  int64_t seq_len = 0;  // 0: the config's max_position_embeddings
  bool json = false;
  bool list = false;
  bool show_config = false;
};

// 671026522112 -> "671,026,522,112"
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string billions(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f B", n / 1e9);
  return buf;
}

std::string gflops(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f G", n / 1e9);
  return buf;
}

std::string describe(const ModelConfig& c) {
  std::string s;
  if (c.attention == AttentionKind::mla) {
    s += std::string("MLA (") + (c.q_lora_rank > 0 ? "q rank " + std::to_string(c.q_lora_rank) : "q projected directly") +
         ", kv rank " + std::to_string(c.kv_lora_rank) + ", " + std::to_string(c.num_attention_heads) + " heads of " +
         std::to_string(c.qk_nope_head_dim) + "+" + std::to_string(c.qk_rope_head_dim) + ")";
  } else {
    const bool mha = c.num_key_value_heads == c.num_attention_heads;
    s += std::string(mha ? "MHA" : c.num_key_value_heads == 1 ? "MQA" : "GQA") + " (" +
         std::to_string(c.num_attention_heads) + " heads, " + std::to_string(c.num_key_value_heads) + " kv, dim " +
         std::to_string(c.head_dim);
    if (c.attention_bias) s += ", q/k/v/o biases";
    else if (c.qkv_bias) s += ", q/k/v biases";
    if (c.qk_norm) s += ", QK-norm";
    s += ")";
  }
  s += ", " + std::to_string(c.num_hidden_layers) + " blocks";
  if (c.is_moe())
    s += " (" + std::to_string(c.num_dense_layers()) + " dense + " + std::to_string(c.num_moe_layers()) + " MoE)";
  s += ", hidden " + std::to_string(c.hidden_size) + ", vocab " + std::to_string(c.vocab_size);
  if (c.tie_word_embeddings) s += " (tied head)";
  if (c.is_moe()) {
    s += "\n  experts: " + std::to_string(c.n_routed_experts) + " routed (top-" + std::to_string(c.num_experts_per_tok);
    if (c.n_group > 1)
      s += " from " + std::to_string(c.topk_group) + " of " + std::to_string(c.n_group) + " groups (" +
           to_string(c.topk_method) + ")";
    s += std::string(", ") + to_string(c.scoring_func) + (c.norm_topk_prob ? ", renormalised" : "") + ") + " +
         std::to_string(c.n_shared_experts) + " shared, width " + std::to_string(c.moe_intermediate_size);
  }
  if (c.num_nextn_predict_layers > 0) s += "; MTP depth " + std::to_string(c.num_nextn_predict_layers);
  return s;
}

// Where the FLOP count's sequence length came from: the flag, or the config's full context.
// HF configs state the longest context the model supports (DeepSeek-V3: 163840, Qwen2:
// 131072), far beyond a pre-training length, and attention FLOPs grow with it.
std::string seq_len_source(const ModelConfig& c, bool from_flag) {
  if (from_flag) return "--seq-len";
  std::string s = "the config's max_position_embeddings; set --seq-len for a training length";
  if (c.rope_scaling.type != RopeScalingKind::none)
    s += " (pre-extension context " + std::to_string(c.rope_scaling.original_max_position_embeddings) + ")";
  return s;
}

void print_text(const ModelConfig& c, const std::string& origin, const ParamBreakdown& p, const FlopCounts& f,
                const std::string& seq_source) {
  std::printf("model %s (%s)\n  %s\n", c.name.c_str(), origin.c_str(), describe(c).c_str());
  std::printf("  sequence length for FLOPs: %lld (%s)\n\n", static_cast<long long>(f.seq_len), seq_source.c_str());
  std::printf("%-26s %22s %10s %22s %10s\n", "parameters", "total", "", "activated per token", "");
  for (const auto& [name, count] : p.components()) {
    std::printf("  %-24s %22s %10s %22s %10s\n", name.c_str(), grouped(count.total).c_str(),
                billions(static_cast<double>(count.total)).c_str(), grouped(count.activated).c_str(),
                billions(static_cast<double>(count.activated)).c_str());
  }
  const ParamCount main = p.main_model();
  const ParamCount with = p.with_mtp();
  std::printf("  %-24s %22s %10s %22s %10s\n", "total without MTP", grouped(main.total).c_str(),
              billions(static_cast<double>(main.total)).c_str(), grouped(main.activated).c_str(),
              billions(static_cast<double>(main.activated)).c_str());
  if (c.num_nextn_predict_layers > 0) {
    std::printf("  %-24s %22s %10s %22s %10s\n", "total with MTP", grouped(with.total).c_str(),
                billions(static_cast<double>(with.total)).c_str(), grouped(with.activated).c_str(),
                billions(static_cast<double>(with.activated)).c_str());
  }
  std::printf("\nFLOPs per token at sequence length %lld (multiply-add = 2; causal attention)\n",
              static_cast<long long>(f.seq_len));
  std::printf("  %-24s %14s %14s %14s\n", "", "forward", "backward", "fwd+bwd");
  auto row = [](const char* name, double fwd) {
    std::printf("  %-24s %14s %14s %14s\n", name, gflops(fwd).c_str(), gflops(2 * fwd).c_str(),
                gflops(3 * fwd).c_str());
  };
  row("GEMMs", f.forward_gemm);
  row("attention core", f.forward_attention_core);
  row("total without MTP", f.forward());
  if (c.num_nextn_predict_layers > 0) {
    row("MTP GEMMs", f.mtp_forward_gemm);
    row("MTP attention core", f.mtp_forward_attention_core);
    row("total with MTP", f.forward() + f.mtp_forward());
  }
  std::printf("  (6·N_activated rule of thumb: %s per token)\n",
              gflops(6.0 * static_cast<double>(main.activated)).c_str());
}

nlohmann::json as_json(const ModelConfig& c, const std::string& origin, const ParamBreakdown& p, const FlopCounts& f,
                       bool seq_from_flag) {
  nlohmann::json j;
  j["model"] = c.name;
  j["origin"] = origin;
  j["seq_len"] = f.seq_len;
  j["seq_len_source"] = seq_from_flag ? "--seq-len" : "max_position_embeddings";
  j["config"] = to_json(c);
  nlohmann::json params;
  for (const auto& [name, count] : p.components()) params[name] = {{"total", count.total}, {"activated", count.activated}};
  params["total_without_mtp"] = {{"total", p.main_model().total}, {"activated", p.main_model().activated}};
  params["total_with_mtp"] = {{"total", p.with_mtp().total}, {"activated", p.with_mtp().activated}};
  j["parameters"] = params;
  j["flops_per_token"] = {
      {"seq_len", f.seq_len},
      {"forward_gemm", f.forward_gemm},
      {"forward_attention_core", f.forward_attention_core},
      {"forward", f.forward()},
      {"backward", f.backward()},
      {"training", f.training()},
      {"mtp_forward_gemm", f.mtp_forward_gemm},
      {"mtp_forward_attention_core", f.mtp_forward_attention_core},
      {"training_with_mtp", f.training_with_mtp()},
  };
  return j;
}

// The name and origin come from a path, which need not be UTF-8: replace such bytes
// rather than let nlohmann's dump throw.
std::string dump_json(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

void run_model(const ModelOptions& o) {
  if (o.list) {
    for (const auto& n : preset_names("models")) std::printf("%s\n", n.c_str());
    return;
  }
  std::string origin;
  const ModelConfig c = load_model_config(o.config, &origin);
  if (o.show_config) {
    std::printf("%s\n", dump_json(to_json(c)).c_str());
    return;
  }
  const bool seq_from_flag = o.seq_len > 0;
  const int64_t seq_len = seq_from_flag ? o.seq_len : c.max_position_embeddings;
  const ParamBreakdown p = count_parameters(c);
  const FlopCounts f = count_flops(c, seq_len);
  if (o.json) {
    std::printf("%s\n", dump_json(as_json(c, origin, p, f, seq_from_flag)).c_str());
  } else {
    print_text(c, origin, p, f, seq_len_source(c, seq_from_flag));
  }
}

}  // namespace

void register_model(CLI::App& app) {
  auto opts = std::make_shared<ModelOptions>();
  auto* cmd = app.add_subcommand("model", "Parameter and FLOP accounting for a model config");
  cmd->add_option("--config,-c", opts->config,
                  "Preset name (see --list), path to a config JSON, or a model directory holding config.json")
      ->capture_default_str();
  add_number<int64_t>(cmd, "--seq-len", opts->seq_len,
                      "Sequence length for the FLOP count (default: the config's max_position_embeddings)", 1,
                      int64_t{1} << 30)
      ->default_str("");
  cmd->add_flag("--json", opts->json, "Print machine-readable JSON");
  cmd->add_flag("--list", opts->list, "List the model presets");
  cmd->add_flag("--show-config", opts->show_config, "Print the parsed config in preset form");
  cmd->callback([opts] { run_model(*opts); });
}

}  // namespace preflight::cli
