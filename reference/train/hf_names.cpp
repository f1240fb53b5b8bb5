#include "reference/train/hf_names.hpp"

#include <map>

#include "reference/core/error.hpp"
#include "reference/layers/model.hpp"

namespace preflight::train {
namespace {

using optim::ParamKind;

struct Mapped {
  std::string name;
  ParamKind kind;
};

// Block-local layout name → (HF suffix, kind); empty when unknown.
bool map_block(const std::string& n, bool mla, Mapped& out) {
  static const std::map<std::string, Mapped> common = {
      {"attn_norm", {"input_layernorm.weight", ParamKind::norm}},
      {"ffn_norm", {"post_attention_layernorm.weight", ParamKind::norm}},
      {"attn.wo", {"self_attn.o_proj.weight", ParamKind::matrix_hidden}},
      {"attn.wq", {"self_attn.q_proj.weight", ParamKind::matrix_hidden}},
      {"ffn.w1", {"mlp.gate_proj.weight", ParamKind::matrix_hidden}},
      {"ffn.w3", {"mlp.up_proj.weight", ParamKind::matrix_hidden}},
      {"ffn.w2", {"mlp.down_proj.weight", ParamKind::matrix_hidden}},
      {"moe.gate", {"mlp.gate.weight", ParamKind::matrix_hidden}},
      {"moe.bias", {"mlp.gate.e_score_correction_bias", ParamKind::router_bias}},
      {"moe.shared_w1", {"mlp.shared_experts.gate_proj.weight", ParamKind::matrix_hidden}},
      {"moe.shared_w3", {"mlp.shared_experts.up_proj.weight", ParamKind::matrix_hidden}},
      {"moe.shared_w2", {"mlp.shared_experts.down_proj.weight", ParamKind::matrix_hidden}},
  };
  static const std::map<std::string, Mapped> mla_names = {
      {"attn.wq_a", {"self_attn.q_a_proj.weight", ParamKind::matrix_hidden}},
      {"attn.q_norm", {"self_attn.q_a_layernorm.weight", ParamKind::norm}},
      {"attn.wq_b", {"self_attn.q_b_proj.weight", ParamKind::matrix_hidden}},
      {"attn.wkv_a", {"self_attn.kv_a_proj_with_mqa.weight", ParamKind::matrix_hidden}},
      {"attn.kv_norm", {"self_attn.kv_a_layernorm.weight", ParamKind::norm}},
      {"attn.wkv_b", {"self_attn.kv_b_proj.weight", ParamKind::matrix_hidden}},
  };
  static const std::map<std::string, Mapped> gqa_names = {
      {"attn.wk", {"self_attn.k_proj.weight", ParamKind::matrix_hidden}},
      {"attn.wv", {"self_attn.v_proj.weight", ParamKind::matrix_hidden}},
      {"attn.bq", {"self_attn.q_proj.bias", ParamKind::bias}},
      {"attn.bk", {"self_attn.k_proj.bias", ParamKind::bias}},
      {"attn.bv", {"self_attn.v_proj.bias", ParamKind::bias}},
      {"attn.bo", {"self_attn.o_proj.bias", ParamKind::bias}},
      {"attn.q_norm", {"self_attn.q_norm.weight", ParamKind::norm}},
      {"attn.k_norm", {"self_attn.k_norm.weight", ParamKind::norm}},
      {"attn.w_gate", {"self_attn.g_proj.weight", ParamKind::matrix_hidden}},
  };
  for (const auto* m : {&common, mla ? &mla_names : &gqa_names}) {
    auto it = m->find(n);
    if (it != m->end()) return out = it->second, true;
  }
  return false;
}

ParamKind kind_by_rank(const std::vector<int64_t>& shape) {
  return shape.size() >= 2 ? ParamKind::matrix_hidden : ParamKind::bias;
}

}  // namespace

std::vector<optim::ParamTensor> hf_param_tensors(const ModelConfig& c) {
  const ref::ModelLayout lay = ref::model_layout(c);
  const bool mla = c.attention == AttentionKind::mla;
  std::vector<optim::ParamTensor> out;
  auto push = [&](std::string name, int64_t off, std::vector<int64_t> shape, ParamKind kind) {
    out.push_back({std::move(name), off, std::move(shape), kind});
  };
  for (const ref::TensorInfo& t : lay.tensors) {
    const std::string& n = t.name;
    if (n == "embed") { push("model.embed_tokens.weight", t.offset, t.shape, ParamKind::embedding); continue; }
    if (n == "final_norm") { push("model.norm.weight", t.offset, t.shape, ParamKind::norm); continue; }
    if (n == "head") { push("lm_head.weight", t.offset, t.shape, ParamKind::head); continue; }
    std::string prefix, local;
    if (n.rfind("layers.", 0) == 0) {
      const size_t dot = n.find('.', 7);
      prefix = "model.layers." + n.substr(7, dot - 7) + ".";
      local = n.substr(dot + 1);
    } else if (n.rfind("mtp.", 0) == 0) {
      const size_t dot = n.find('.', 4);
      const int64_t k = std::stoll(n.substr(4, dot - 4));
      prefix = "model.layers." + std::to_string(c.num_hidden_layers + k - 1) + ".";
      local = n.substr(dot + 1);
      if (local == "enorm") { push(prefix + "enorm.weight", t.offset, t.shape, ParamKind::norm); continue; }
      if (local == "hnorm") { push(prefix + "hnorm.weight", t.offset, t.shape, ParamKind::norm); continue; }
      if (local == "proj") { push(prefix + "eh_proj.weight", t.offset, t.shape, ParamKind::matrix_hidden); continue; }
      if (local == "head_norm") { push(prefix + "shared_head.norm.weight", t.offset, t.shape, ParamKind::norm); continue; }
      if (local.rfind("block.", 0) == 0) local = local.substr(6);
    } else {
      push("preflight." + n, t.offset, t.shape, kind_by_rank(t.shape));
      continue;
    }
    if (local == "moe.experts") {
      PREFLIGHT_CHECK(t.shape.size() == 4 && t.shape[1] == 3, "moe.experts shape");
      const int64_t E = t.shape[0], I = t.shape[2], C = t.shape[3];
      for (int64_t e = 0; e < E; ++e) {
        const int64_t base = t.offset + e * 3 * I * C;
        const std::string p = prefix + "mlp.experts." + std::to_string(e) + ".";
        push(p + "gate_proj.weight", base, {I, C}, ParamKind::matrix_hidden);
        push(p + "up_proj.weight", base + I * C, {I, C}, ParamKind::matrix_hidden);
        push(p + "down_proj.weight", base + 2 * I * C, {C, I}, ParamKind::matrix_hidden);
      }
      continue;
    }
    Mapped m;
    if (map_block(local, mla, m)) push(prefix + m.name, t.offset, t.shape, m.kind);
    else push(prefix + "preflight." + local, t.offset, t.shape, kind_by_rank(t.shape));
  }
  optim::validate_tensors(out, lay.total);
  return out;
}

}  // namespace preflight::train
