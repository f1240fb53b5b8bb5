// The model's flat parameter buffer as named tensors with Hugging Face names
// (docs/TRAINING.md §3): DeepseekV3 names for MLA/MoE models, Llama names for GQA attention.
//
//   embed → model.embed_tokens.weight        final_norm → model.norm.weight     head → lm_head.weight
//   layers.l.<t> → model.layers.l.<block name>; mtp.k.<t> → model.layers.(L+k−1).<...> (as the
//   released V3 checkpoint stores its MTP module as layer 61): enorm, hnorm, eh_proj,
//   shared_head.norm, and the block's tensors with the block names below.
//   Block: attn_norm → input_layernorm, ffn_norm → post_attention_layernorm;
//     MLA: wq_a → self_attn.q_a_proj, q_norm → self_attn.q_a_layernorm, wq_b → q_b_proj, wq → q_proj,
//          wkv_a → kv_a_proj_with_mqa, kv_norm → kv_a_layernorm, wkv_b → kv_b_proj, wo → o_proj
//     GQA: wq/wk/wv/wo → self_attn.{q,k,v,o}_proj.weight, bq/bk/bv/bo → the same .bias,
//          q_norm/k_norm → self_attn.{q,k}_norm, w_gate → self_attn.g_proj (no HF standard)
//     dense FFN: w1/w3/w2 → mlp.{gate,up,down}_proj
//     MoE: gate → mlp.gate.weight, bias → mlp.gate.e_score_correction_bias,
//          experts (E,3,I,C) → mlp.experts.e.{gate_proj (I,C), up_proj (I,C), down_proj (C,I)} —
//          each a contiguous slice of the flat buffer, so the split copies nothing,
//          shared_w1/w3/w2 → mlp.shared_experts.{gate,up,down}_proj
// A layout name not in this table (a tensor added to the model later) keeps its own name
// under "preflight." and gets its kind from its rank (2-D: matrix_hidden, else bias).
// The shared embedding/head are stored once (not repeated under the MTP layer).
#pragma once

#include <string>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/optim/params.hpp"

namespace preflight::train {

// Every parameter of model_layout(config) in flat order (offsets ascending, no gaps), named
// and kinded for the optimizer and the safetensors file.
std::vector<optim::ParamTensor> hf_param_tensors(const ModelConfig& config);

}  // namespace preflight::train
