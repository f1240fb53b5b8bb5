#include "reference/core/accounting.hpp"

#include <initializer_list>

#include "reference/core/error.hpp"

namespace preflight {

[[noreturn]] void parameter_count_overflow() {
  fail("the parameter count exceeds 2^63: expected at most 2^48 parameters (check hidden_size, num_hidden_layers, "
       "vocab_size and the expert counts)");
}

namespace {

// Every product and sum below goes through checked_mul / checked_add (accounting.hpp).
int64_t sum(std::initializer_list<int64_t> terms) {
  int64_t s = 0;
  for (int64_t t : terms) s = checked_add(s, t);
  return s;
}

ParamCount all(int64_t n) { return {n, n}; }

int64_t norm_params(const ModelConfig& c, int64_t width) {
  return c.norm == NormKind::layernorm ? checked_mul(2, width) : width;
}

// Attention of one block: matrices (GEMM weights) and vectors (biases, inner norms).
struct AttentionShape {
  int64_t matrices = 0;
  int64_t vectors = 0;
};

AttentionShape attention_shape(const ModelConfig& c) {
  AttentionShape a;
  const int64_t d = c.hidden_size;
  const int64_t h = c.num_attention_heads;
  if (c.attention == AttentionKind::mla) {
    const int64_t qk = checked_add(c.qk_nope_head_dim, c.qk_rope_head_dim);
    const int64_t kv_a = checked_add(c.kv_lora_rank, c.qk_rope_head_dim);  // c_KV and the shared k_pe
    const int64_t q = c.q_lora_rank > 0 ? sum({checked_mul(d, c.q_lora_rank), checked_mul(c.q_lora_rank, h, qk)})
                                        : checked_mul(d, h, qk);  // wq_a + wq_b, or wq (q_lora_rank = 0)
    a.matrices = sum({q,
                      checked_mul(d, kv_a),                                                     // wkv_a
                      checked_mul(c.kv_lora_rank, h, checked_add(c.qk_nope_head_dim, c.v_head_dim)),  // wkv_b
                      checked_mul(h, c.v_head_dim, d)});                                        // wo
    a.vectors = sum({c.q_lora_rank, c.kv_lora_rank});  // q_a_layernorm (when q_lora_rank > 0), kv_a_layernorm
    // DeepSeek's attention_bias: on q_a_proj (not wq_b, not the uncompressed wq), kv_a_proj and o_proj.
    if (c.attention_bias) a.vectors = sum({a.vectors, c.q_lora_rank, kv_a, d});
  } else {
    const int64_t hd = c.head_dim;
    const int64_t q = checked_mul(h, hd), kv = checked_mul(c.num_key_value_heads, hd);
    a.matrices = sum({checked_mul(d, q), checked_mul(2, d, kv), checked_mul(q, d)});  // wq, wk, wv, wo
    if (c.attention_bias) {
      a.vectors = sum({q, checked_mul(2, kv), d});  // q, k, v and o biases
    } else if (c.qkv_bias) {
      a.vectors = sum({q, checked_mul(2, kv)});  // Qwen2: q, k, v only
    }
    if (c.qk_norm) a.vectors = sum({a.vectors, checked_mul(2, hd)});  // one head-width weight for q, one for k
  }
  if (c.attention_output_gate) a.matrices = sum({a.matrices, checked_mul(d, h)});  // one sigmoid gate per head
  return a;
}

int64_t dense_ffn_matrices(const ModelConfig& c) {
  return checked_mul(c.ffn == FfnKind::swiglu ? 3 : 2, c.hidden_size, c.intermediate_size);
}
int64_t dense_ffn_vectors(const ModelConfig& c) {
  if (!c.mlp_bias) return 0;
  return sum({checked_mul(c.ffn == FfnKind::swiglu ? 2 : 1, c.intermediate_size), c.hidden_size});
}
int64_t expert_matrices(const ModelConfig& c) { return checked_mul(3, c.hidden_size, c.moe_intermediate_size); }

// Average number of keys a query attends to over a causal sequence of length s.
// (s + 1 is formed in double: exact for s < 2^53, and no int64 overflow at s = INT64_MAX.)
double causal_context(int64_t seq_len) { return 0.5 * (static_cast<double>(seq_len) + 1.0); }

}  // namespace

ParamCount BlockParams::total() const {
  ParamCount t;
  t += attention;
  t += dense_ffn;
  t += routed_experts;
  t += shared_experts;
  t += router;
  t += norms;
  return t;
}

BlockParams count_block_parameters(const ModelConfig& c, int64_t layer) {
  PREFLIGHT_CHECK(layer >= 0 && layer < c.num_hidden_layers, "layer ", layer);
  BlockParams b;
  const AttentionShape a = attention_shape(c);
  b.attention = all(sum({a.matrices, a.vectors}));
  b.norms = all(checked_mul(2, norm_params(c, c.hidden_size)));  // pre-attention and pre-FFN norms
  if (c.is_moe_layer(layer)) {
    const int64_t e = expert_matrices(c);
    b.routed_experts = {checked_mul(c.n_routed_experts, e), checked_mul(c.num_experts_per_tok, e)};
    b.shared_experts = all(sum({checked_mul(c.n_shared_experts, e), c.shared_expert_gate ? c.hidden_size : 0}));
    b.router = all(sum({checked_mul(c.n_routed_experts, c.hidden_size), c.router_bias ? c.n_routed_experts : 0}));
  } else {
    b.dense_ffn = all(sum({dense_ffn_matrices(c), dense_ffn_vectors(c)}));
  }
  return b;
}

ParamCount ParamBreakdown::main_model() const {
  ParamCount t;
  t += embedding;
  t += attention;
  t += dense_ffn;
  t += routed_experts;
  t += shared_experts;
  t += router;
  t += norms;
  t += head;
  return t;
}

ParamCount ParamBreakdown::with_mtp() const {
  ParamCount t = main_model();
  t += mtp;
  return t;
}

std::vector<std::pair<std::string, ParamCount>> ParamBreakdown::components() const {
  return {{"embedding", embedding}, {"attention", attention},   {"dense_ffn", dense_ffn},
          {"routed_experts", routed_experts}, {"shared_experts", shared_experts}, {"router", router},
          {"norms", norms},           {"head", head},             {"mtp", mtp}};
}

ParamBreakdown count_parameters(const ModelConfig& c) {
  ParamBreakdown p;
  const int64_t d = c.hidden_size;
  p.embedding = all(sum({checked_mul(c.vocab_size, d),
                         c.position == PositionKind::learned ? checked_mul(c.max_position_embeddings, d) : 0}));
  p.head = all(c.tie_word_embeddings ? 0 : checked_mul(c.vocab_size, d));
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const BlockParams b = count_block_parameters(c, layer);
    p.attention += b.attention;
    p.dense_ffn += b.dense_ffn;
    p.routed_experts += b.routed_experts;
    p.shared_experts += b.shared_experts;
    p.router += b.router;
    p.norms += b.norms;
  }
  p.norms += all(norm_params(c, d));  // final norm
  // Each MTP module: enorm + hnorm, eh_proj (2d → d), one block shaped like the last
  // main block, and the shared head's own norm. Embedding and head are shared.
  for (int64_t depth = 0; depth < c.num_nextn_predict_layers; ++depth) {
    p.mtp += all(sum({checked_mul(3, norm_params(c, d)), checked_mul(2, d, d)}));
    p.mtp += count_block_parameters(c, c.num_hidden_layers - 1).total();
  }
  return p;
}

BlockFlops count_block_flops(const ModelConfig& c, int64_t layer, int64_t seq_len) {
  PREFLIGHT_CHECK(seq_len > 0, "seq_len ", seq_len);
  PREFLIGHT_CHECK(layer >= 0 && layer < c.num_hidden_layers, "layer ", layer);
  BlockFlops f;
  f.attention_gemm = 2.0 * static_cast<double>(attention_shape(c).matrices);
  f.attention_core = 2.0 * static_cast<double>(c.num_attention_heads) *
                     static_cast<double>(c.qk_head_dim() + c.value_head_dim()) * causal_context(seq_len);
  if (c.is_moe_layer(layer)) {
    f.router_gemm = 2.0 * static_cast<double>(checked_mul(c.hidden_size, c.n_routed_experts));
    // Top-k routed and the shared experts (+ Qwen2-MoE's shared-expert gate, a hidden → 1 GEMM).
    f.expert_gemm = 2.0 * static_cast<double>(sum({checked_mul(checked_add(c.num_experts_per_tok, c.n_shared_experts),
                                                               expert_matrices(c)),
                                                   c.shared_expert_gate ? c.hidden_size : 0}));
  } else {
    f.ffn_gemm = 2.0 * static_cast<double>(dense_ffn_matrices(c));
  }
  return f;
}

BlockFlops count_mtp_block_flops(const ModelConfig& c, int64_t seq_len) {
  BlockFlops f = count_block_flops(c, c.num_hidden_layers - 1, seq_len);
  const double d = static_cast<double>(c.hidden_size);
  f.attention_gemm += 2.0 * 2.0 * d * d;                                  // eh_proj
  f.ffn_gemm += 2.0 * d * static_cast<double>(c.vocab_size);              // shared head
  return f;
}

FlopCounts count_flops(const ModelConfig& c, int64_t seq_len) {
  if (seq_len <= 0) fail("sequence length ", seq_len, ": expected a positive integer");
  FlopCounts f;
  f.seq_len = seq_len;
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const BlockFlops b = count_block_flops(c, layer, seq_len);
    f.forward_gemm += b.total() - b.attention_core;
    f.forward_attention_core += b.attention_core;
  }
  f.forward_gemm += 2.0 * static_cast<double>(c.hidden_size) * static_cast<double>(c.vocab_size);  // LM head
  for (int64_t depth = 0; depth < c.num_nextn_predict_layers; ++depth) {
    const BlockFlops m = count_mtp_block_flops(c, seq_len);
    f.mtp_forward_gemm += m.total() - m.attention_core;
    f.mtp_forward_attention_core += m.attention_core;
  }
  return f;
}

}  // namespace preflight
