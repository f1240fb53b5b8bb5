#include "sim/memory.hpp"

#include <algorithm>

#include "reference/core/accounting.hpp"

namespace preflight::sim {

std::vector<StageParams> stage_parameters(const ModelConfig& m, const ResolvedLayout& r) {
  const int64_t S = r.num_stages;
  std::vector<StageParams> out(S);
  const ParamBreakdown all = count_parameters(m);
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t k = 0; k < r.stage_layers[s]; ++k) {
      const BlockParams b = count_block_parameters(m, r.stage_first_layer[s] + k);
      out[s].expert += static_cast<double>(b.routed_experts.total);
      out[s].dense += static_cast<double>(b.total().total - b.routed_experts.total);
    }
  }
  out[0].dense += static_cast<double>(all.embedding.total);
  // Last stage: final norm, head (a copy of the embedding when tied and S > 1), MTP.
  const double d = static_cast<double>(m.hidden_size);
  out[S - 1].dense += (m.norm == NormKind::layernorm ? 2.0 : 1.0) * d;
  out[S - 1].dense += m.tie_word_embeddings ? (S > 1 ? static_cast<double>(m.vocab_size) * d : 0.0)
                                            : static_cast<double>(all.head.total);
  if (m.num_nextn_predict_layers > 0) {
    const BlockParams last = count_block_parameters(m, m.num_hidden_layers - 1);
    const double mtp_expert = static_cast<double>(last.routed_experts.total * m.num_nextn_predict_layers);
    out[S - 1].expert += mtp_expert;
    out[S - 1].dense += static_cast<double>(all.mtp.total) - mtp_expert;
  }
  return out;
}

// Activation bytes one block leaves on one GPU for its backward, per token of the
// micro-batch (every token passes through every GPU of a TP group).
//
// Korthikanti et al. 2022 count, for a GPT block in 16-bit (s tokens, b sequences,
// hidden h, a heads, t-way TP; docs/SIMULATOR.md "Activation memory"):
//   sbh·(34 + 5as/h)             no model parallelism
//   sbh·(10 + 24/t + 5as/(ht))   tensor parallelism
//   sbh·(34/t + 5as/(ht))        tensor + sequence parallelism
// Per token, term by term: the two norm inputs 2h each, the QKV and FC1 GEMM inputs 2h
// each, Q K V 6h, the attention output (the out-projection's input) 2h, the GELU input
// 8h and the FC2 input 8h, two hidden dropout masks h each (1 byte), and per head and
// key: softmax output 2, its dropout mask 1, the dropped-out probabilities 2 (the 5as).
// The code below is that count generalised: K and V at the KV-head count (GQA), SwiGLU
// (FC1 output 2·2f + FC2 input 2f for width f), dropout off, flash attention (no s×s
// terms; a 4-byte log-sum-exp per head instead), MLA and MoE, and what each recompute
// policy drops. Tensors of hidden size are split tp ways only with sequence parallelism.
double block_activation_bytes_per_token(const ModelConfig& m, const LayoutConfig& l, int64_t hidden_split,
                                        int64_t layer) {
  const double tp = static_cast<double>(l.tp);
  const double hs = static_cast<double>(m.hidden_size) / static_cast<double>(hidden_split);  // hidden-size tensor
  const double heads = static_cast<double>(m.num_attention_heads) / tp;                      // heads on this GPU
  const double mask = l.dropout ? 1.0 : 0.0;                                                 // bytes per masked element
  const bool selective = l.recompute == Recompute::selective;
  const bool mla = m.attention == AttentionKind::mla;
  if (l.recompute == Recompute::full) return 2.0 * hs;  // the block input only
  // FP8 training caches the inputs of some GEMMs in FP8 (V3 report 3.3.2): half a BF16 element.
  const double fp8_cache = l.precision == Precision::fp8 ? 0.5 : 1.0;

  double bytes = 2.0 * 2.0 * hs;  // inputs of the two norms (the residual stream)
  // --- attention half ---
  if (mla) {
    // Selective recompute as V3: the RMSNorms and the MLA up-projections run again.
    bytes += 2.0 * static_cast<double>(m.q_lora_rank + m.kv_lora_rank + m.qk_rope_head_dim) / tp;  // down-proj outputs
    if (!selective)
      bytes += 2.0 * hs +                                                          // normed input (wq_a, wkv_a)
               2.0 * static_cast<double>(m.q_lora_rank + m.kv_lora_rank) / tp +   // normed latents (wq_b, wkv_b)
               2.0 * heads * static_cast<double>(2 * m.qk_head_dim() + m.v_head_dim);  // per-head q, k, v
  } else {
    // Selective recompute as Megatron: only the attention core runs again.
    const double kv_heads = std::max(static_cast<double>(m.num_key_value_heads) / tp, 1.0);
    const double hd = static_cast<double>(m.head_dim);
    bytes += 2.0 * hs + 2.0 * heads * hd + 2.0 * 2.0 * kv_heads * hd;  // QKV GEMM input; Q, K, V
  }
  bytes += 2.0 * heads * static_cast<double>(m.value_head_dim()) * fp8_cache;  // core output = out-proj input
  if (l.attention_kernel == AttentionKernel::flash) {
    if (mla || !selective) bytes += 4.0 * heads;  // FP32 log-sum-exp
  } else if (!selective) {
    // s×s scores per head: probabilities (2), dropout mask (1), dropped-out probabilities (2).
    bytes += heads * static_cast<double>(l.seq_len) * (2.0 + 3.0 * mask);
  }
  bytes += mask * hs;  // dropout mask after the attention block
  // --- MLP half ---
  if (!(mla && selective)) bytes += 2.0 * hs;  // normed input (FC1 / router GEMM input)
  const double act = m.ffn == FfnKind::swiglu ? 3.0 : 2.0;  // FC1 output(s) + FC2 input, in widths
  if (m.is_moe_layer(layer)) {
    const double k = static_cast<double>(m.num_experts_per_tok);
    const double experts = static_cast<double>(m.num_experts_per_tok + m.n_shared_experts);
    bytes += 4.0 * static_cast<double>(m.n_routed_experts) / tp;               // FP32 router scores
    bytes += k * hs * static_cast<double>(l.dispatch_bytes_per_elem);          // dispatched inputs
    // SwiGLU inputs (FP8 under the V3 recipe); its output is recomputed under selective
    // recompute, as V3 does, and so are the expert outputs the routing-weight gradient needs.
    bytes += 2.0 * experts * (selective ? act - 1.0 : act) * static_cast<double>(m.moe_intermediate_size) / tp *
             fp8_cache;
    if (!selective) bytes += 2.0 * k * hs;  // expert outputs
  } else {
    bytes += 2.0 * act * static_cast<double>(m.intermediate_size) / tp;
  }
  bytes += mask * hs;  // dropout mask after the MLP
  return bytes;
}

double stage_activation_bytes(const ModelConfig& m, const ResolvedLayout& r, int64_t s) {
  const LayoutConfig& l = r.layout;
  const int64_t split = r.hidden_split();
  double per_token = 0;
  for (int64_t k = 0; k < r.stage_layers[s]; ++k)
    per_token += block_activation_bytes_per_token(m, l, split, r.stage_first_layer[s] + k);
  if (s == r.num_stages - 1)
    for (int64_t depth = 0; depth < m.num_nextn_predict_layers; ++depth)
      per_token += block_activation_bytes_per_token(m, l, split, m.num_hidden_layers - 1) +
                   6.0 * static_cast<double>(m.hidden_size) / static_cast<double>(split);  // MTP inputs
  return per_token * static_cast<double>(r.tokens_per_microbatch());
}

RankParams rank_parameters(const std::vector<StageParams>& stages, const PipelineSchedule& schedule,
                           const ResolvedLayout& r, int32_t rank) {
  RankParams p;
  const double tp = static_cast<double>(r.layout.tp);
  const double ep = static_cast<double>(r.layout.ep);
  for (int32_t s : schedule.stages_of(rank)) {
    p.dense += stages[s].dense / tp;
    p.expert += stages[s].expert / (ep * tp);
  }
  return p;
}

std::vector<StageMemory> memory_per_rank(const ModelConfig& m, const ClusterConfig& c, const ResolvedLayout& r,
                                         const PipelineSchedule& schedule, double p2p_bytes) {
  const LayoutConfig& l = r.layout;
  const std::vector<StageParams> stages = stage_parameters(m, r);
  std::vector<double> act_bytes(r.num_stages);
  for (int64_t s = 0; s < r.num_stages; ++s) act_bytes[s] = stage_activation_bytes(m, r, s);
  const std::vector<double> act_peak =
      peak_in_flight_weighted(schedule, [&](int32_t s) { return act_bytes[s]; });
  const double dp = static_cast<double>(r.dp), edp = static_cast<double>(r.expert_dp);
  const double T = static_cast<double>(r.tokens_per_microbatch()) / static_cast<double>(l.tp);
  std::vector<StageMemory> out;
  for (int32_t rank = 0; rank < schedule.ranks; ++rank) {
    const RankParams p = rank_parameters(stages, schedule, r, rank);
    // Sharded count of a per-parameter quantity under ZeRO: dense over dp, experts over expert_dp.
    auto sharded = [&](bool shard) { return shard ? p.dense / dp + p.expert / edp : p.total(); };
    StageMemory sm;
    sm.stage = rank;
    sm.weights_bytes = sharded(l.zero_stage >= 3) * static_cast<double>(l.weight_bytes);
    sm.grads_bytes = sharded(l.zero_stage >= 2) * static_cast<double>(l.grad_bytes);
    sm.optimizer_bytes =
        sharded(l.zero_stage >= 1) * static_cast<double>(l.master_weight_bytes + 2 * l.adam_moment_bytes);
    // ZeRO-3 gathers one stage's weights at a time.
    if (l.zero_stage >= 3) sm.weights_bytes += p.total() / static_cast<double>(schedule.stages_of(rank).size()) *
                                                static_cast<double>(l.weight_bytes);
    sm.activations_bytes = act_peak[rank];
    bool holds_head = false;
    for (int32_t s : schedule.stages_of(rank)) holds_head = holds_head || s == r.num_stages - 1;
    // Transient working set: the logits and their FP32 gradient on the head's rank; one
    // block's full activations when everything else is recomputed.
    double transient = holds_head ? T * static_cast<double>(m.vocab_size) * (2.0 + 4.0) : 0.0;
    if (l.recompute == Recompute::full) {
      LayoutConfig none = l;
      none.recompute = Recompute::none;
      ResolvedLayout rn = r;
      rn.layout = none;
      double one_block = 0;
      for (int32_t s : schedule.stages_of(rank))
        if (r.stage_layers[s] > 0)
          one_block = std::max(one_block, stage_activation_bytes(m, rn, s) / static_cast<double>(r.stage_layers[s]));
      transient += one_block;
    }
    sm.activations_bytes += transient;
    // Buffers: 1 GiB of workspace (cuBLAS, NCCL, allocator slack), P2P send/receive
    // buffers both ways, and the all-to-all buffers (send + receive of k copies per token).
    const double ep_buffers = l.ep > 1 ? 2.0 * T * static_cast<double>(m.num_experts_per_tok) *
                                             static_cast<double>(m.hidden_size) * 2.0
                                       : 0.0;
    sm.buffers_bytes = 1073741824.0 + 4.0 * p2p_bytes + ep_buffers;
    sm.total_bytes = sm.weights_bytes + sm.grads_bytes + sm.optimizer_bytes + sm.activations_bytes + sm.buffers_bytes;
    sm.capacity_bytes = c.hbm_bytes;
    sm.fits = sm.total_bytes <= sm.capacity_bytes;
    out.push_back(sm);
  }
  return out;
}

}  // namespace preflight::sim
