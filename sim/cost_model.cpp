#include "sim/cost_model.hpp"

#include <algorithm>
#include <cmath>
#include <queue>
#include <utility>

#include "reference/core/accounting.hpp"
#include "reference/core/error.hpp"

namespace preflight::sim {

const char* comm_kind_name(int kind) {
  switch (kind) {
    case kDispatch: return "ep_dispatch";
    case kCombine: return "ep_combine";
    case kTensorParallel: return "tp";
  }
  return "?";
}

CostModel::CostModel(const ModelConfig& m, const ClusterConfig& c, const ResolvedLayout& r)
    : model_(m), cluster_(c), layout_(r) {
  const LayoutConfig& l = r.layout;
  tokens_ = static_cast<double>(r.tokens_per_microbatch()) / static_cast<double>(l.tp);
  // MoE all-to-all kernels (DeepEP) keep comm_sms SMs for themselves; compute gets the rest.
  const double sm_share =
      l.ep > 1 ? static_cast<double>(c.sm_count - c.comm_sms) / static_cast<double>(c.sm_count) : 1.0;
  bf16_gemm_rate_ = c.bf16_tflops * 1e12 * c.gemm_efficiency * sm_share;
  gemm_rate_ = l.precision == Precision::fp8 ? c.fp8_tflops * 1e12 * c.fp8_gemm_efficiency * sm_share : bf16_gemm_rate_;
  attn_rate_ = c.bf16_tflops * 1e12 * c.attention_efficiency * sm_share;
  mem_rate_ = c.hbm_GBps * 1e9 * c.memory_efficiency;

  // Pipeline neighbours are dp·tp GPUs apart: another node once that reaches a node.
  p2p_bytes_ = tokens_ * static_cast<double>(m.hidden_size) * 2.0;
  const bool p2p_ib = r.dp * l.tp >= c.gpus_per_node && c.num_gpus > c.gpus_per_node;
  p2p_s_ = p2p_ib ? p2p_bytes_ / (c.ib_GBps * 1e9) + c.ib_latency_us * 1e-6
                  : p2p_bytes_ / (c.nvlink_GBps * 1e9) + c.nvlink_latency_us * 1e-6;

  const double d = static_cast<double>(m.hidden_size);
  const double T = tokens_;
  const int64_t S = r.num_stages;
  stages_.resize(S);
  for (int64_t s = 0; s < S; ++s) {
    StageCost& st = stages_[s];
    if (s == 0) {
      // Embedding lookup (forward writes T·d BF16; backward scatter-adds FP32 rows).
      UnitCost u;
      u.name = "embedding";
      u.attn_f_s = T * d * 2.0 / mem_rate_;
      u.attn_w_s = T * d * 4.0 * 2.0 / mem_rate_;
      st.units.push_back(u);
    }
    for (int64_t k = 0; k < r.stage_layers[s]; ++k) st.units.push_back(block_unit(r.stage_first_layer[s] + k, false));
    if (s == S - 1) {
      // Final norm, output head (BF16, as DeepSeek keeps it) and cross-entropy.
      const double V = static_cast<double>(m.vocab_size);
      const double head_flops = 2.0 * d * V * T;
      const double loss_bytes = T * V * (2.0 + 4.0 + 4.0);  // logits, FP32 softmax, its gradient
      UnitCost u;
      u.name = "head";
      u.attn_f_s = head_flops / bf16_gemm_rate_ + loss_bytes / mem_rate_;
      u.attn_b_s = head_flops / bf16_gemm_rate_ + loss_bytes / mem_rate_;
      u.attn_w_s = head_flops / bf16_gemm_rate_;
      u.model_flops = 3.0 * head_flops;
      st.units.push_back(u);
      for (int64_t depth = 0; depth < m.num_nextn_predict_layers; ++depth) {
        UnitCost mtp = block_unit(m.num_hidden_layers - 1, true);
        mtp.name = "mtp";
        const double proj_flops = 2.0 * 2.0 * d * d * T;  // eh_proj (2d -> d)
        mtp.attn_f_s += proj_flops / gemm_rate_;
        mtp.attn_b_s += proj_flops / gemm_rate_;
        mtp.attn_w_s += proj_flops / gemm_rate_;
        mtp.model_flops += 3.0 * proj_flops;
        st.units.push_back(mtp);
        UnitCost h = u;  // the shared head and loss again, for the MTP prediction
        h.name = "mtp_head";
        st.units.push_back(h);
      }
    }
  }
  single_cache_.resize(4 * S);
  single_known_.assign(4 * S, false);
}

// All-to-all time of one dispatch or combine for this GPU's tokens, with node-limited
// routing: a token crosses IB once per distinct remote node it picks (DeepEP's two-hop
// path: IB to the same in-node index, then NVLink to the expert's GPU), and NVLink
// carries one copy per (token, expert) pair that is not on the sending GPU.
double CostModel::a2a_s(double bytes_per_elem, bool) const {
  const ModelConfig& m = model_;
  const ClusterConfig& c = cluster_;
  const LayoutConfig& l = layout_.layout;
  const double d = static_cast<double>(m.hidden_size);
  const double k = static_cast<double>(m.num_experts_per_tok);
  const double T = tokens_;
  const double ep = static_cast<double>(l.ep);
  const double eff = c.all_to_all_efficiency;
  const int64_t nodes = layout_.ep_nodes;
  if (nodes <= 1) {
    const double bytes = T * k * (ep - 1.0) / ep * d * bytes_per_elem;
    return bytes / (c.nvlink_GBps * 1e9 * eff) + c.nvlink_latency_us * 1e-6;
  }
  const double N = static_cast<double>(nodes);
  const double M = static_cast<double>(l.max_nodes_per_token > 0 ? std::min<int64_t>(l.max_nodes_per_token, nodes) : nodes);
  // Expected distinct nodes a token's k experts fall on, uniform over its M allowed nodes.
  const double distinct_nodes = M * (1.0 - std::pow(1.0 - 1.0 / M, k));
  const double ib_bytes = T * distinct_nodes * (N - 1.0) / N * d * bytes_per_elem;
  const double G = static_cast<double>(std::min<int64_t>(c.gpus_per_node, l.ep * l.tp));
  const double nvlink_bytes = T * k * (G - 1.0) / G * d * bytes_per_elem;
  const double ib_s = ib_bytes / (c.ib_GBps * 1e9 * eff);
  const double nvlink_s = nvlink_bytes / (c.nvlink_GBps * 1e9 * eff);
  // The two hops are pipelined in chunks: the slower one sets the pace.
  return std::max(ib_s, nvlink_s) + (c.ib_latency_us + c.nvlink_latency_us) * 1e-6;
}

UnitCost CostModel::block_unit(int64_t layer, bool mtp) const {
  const ModelConfig& m = model_;
  const LayoutConfig& l = layout_.layout;
  const ClusterConfig& c = cluster_;
  const BlockFlops bf = count_block_flops(m, layer, l.seq_len);
  const double T = tokens_;
  const double d = static_cast<double>(m.hidden_size);
  const double tp = static_cast<double>(l.tp);
  UnitCost u;
  u.name = mtp ? "mtp" : "layer " + std::to_string(layer);

  // --- attention half: projections (GEMM), core, two norms + residual (element-wise) ---
  // T counts this GPU's share of the tokens (÷ tp); TP splits the weights instead, so
  // per-GPU FLOPs = per-token FLOPs · all tokens ÷ tp = per-token FLOPs · T.
  // The norms, residual adds and hidden dropouts see T tokens with sequence
  // parallelism and all of them (T · tp) on every TP rank without.
  const double T_hidden = static_cast<double>(layout_.tokens_per_microbatch()) /
                          static_cast<double>(layout_.hidden_split());
  const bool unfused = l.attention_kernel == AttentionKernel::unfused;
  const double mask = l.dropout ? 1.0 : 0.0;
  const double s = static_cast<double>(l.seq_len);
  const double attn_gemm = bf.attention_gemm * T;
  const double attn_core_model = bf.attention_core * T;  // causal: (s + 1)/2 keys per query on average
  // A flash kernel skips the masked blocks; unfused batched GEMMs compute all s keys.
  const double attn_core = unfused ? attn_core_model * 2.0 * s / (s + 1.0) : attn_core_model;
  // Norms (read + write 2d each) and residual adds (read 4d, write 2d), twice; a hidden
  // dropout writes its 1-byte mask too.
  const double attn_elem_bytes = T_hidden * (8.0 * d + 12.0 * d + 2.0 * mask * d);
  // Unfused core: the h/tp heads' s×s scores of every token pass through softmax
  // (read + write 2 bytes each; backward reads the gradient and the probabilities, writes
  // one) and dropout (forward: read, write, mask; backward: read gradient and mask, write).
  const double scores = unfused ? T * static_cast<double>(m.num_attention_heads) * s : 0.0;  // per GPU
  const double softmax_f_bytes = scores * (4.0 + 5.0 * mask);
  const double softmax_b_bytes = scores * (6.0 + 5.0 * mask);
  u.attn_f_s = attn_gemm / gemm_rate_ + attn_core / attn_rate_ + (attn_elem_bytes + softmax_f_bytes) / mem_rate_;
  u.attn_b_s = attn_gemm / gemm_rate_ + 2.0 * attn_core / attn_rate_ +
               (2.0 * attn_elem_bytes + softmax_b_bytes) / mem_rate_;
  u.attn_w_s = attn_gemm / gemm_rate_;

  // --- MLP half: dense FFN, or router + routed/shared experts ---
  const bool moe = m.is_moe_layer(layer);
  const double width = moe ? static_cast<double>((m.num_experts_per_tok + m.n_shared_experts) * m.moe_intermediate_size)
                           : static_cast<double>(m.intermediate_size);
  const double mlp_gemm = (bf.ffn_gemm + bf.expert_gemm) * T;
  const double router_gemm = bf.router_gemm * T;
  const double act_bytes_per_token = (m.ffn == FfnKind::swiglu ? 6.0 : 4.0) * width;
  const double permute_bytes_per_token = moe ? 8.0 * static_cast<double>(m.num_experts_per_tok) * d : 0.0;
  const double mlp_elem_bytes = T * (act_bytes_per_token + permute_bytes_per_token);
  u.mlp_f_s = mlp_gemm / gemm_rate_ + router_gemm / bf16_gemm_rate_ + mlp_elem_bytes / mem_rate_;
  u.mlp_b_s = mlp_gemm / gemm_rate_ + router_gemm / bf16_gemm_rate_ + 2.0 * mlp_elem_bytes / mem_rate_;
  u.mlp_w_s = mlp_gemm / gemm_rate_ + router_gemm / bf16_gemm_rate_;
  u.model_flops = 3.0 * (attn_gemm + mlp_gemm + router_gemm) + 3.0 * attn_core_model;

  // --- recompute before the backward ---
  if (l.recompute == Recompute::selective) {
    if (m.attention == AttentionKind::mla) {
      // DeepSeek-V3: all RMSNorms and the MLA up-projections (wq_b, wkv_b).
      const double h = static_cast<double>(m.num_attention_heads);
      const double up = 2.0 * (static_cast<double>(m.q_lora_rank) * h * static_cast<double>(m.qk_head_dim()) +
                               static_cast<double>(m.kv_lora_rank) * h *
                                   static_cast<double>(m.qk_nope_head_dim + m.v_head_dim)) *
                        T;
      u.recompute_s = up / gemm_rate_ + T * 8.0 * d / mem_rate_;
      u.recompute_flops = up;
    } else {
      // Megatron's selective recompute: the attention core (with its softmax and dropout).
      u.recompute_s = attn_core / attn_rate_ + softmax_f_bytes / mem_rate_;
      u.recompute_flops = attn_core_model;
    }
  } else if (l.recompute == Recompute::full) {
    u.recompute_s = u.attn_f_s + u.mlp_f_s;
    u.recompute_flops = attn_gemm + attn_core_model + mlp_gemm + router_gemm;
  }

  // --- communication ---
  if (moe && l.ep > 1) {
    u.dispatch_f_s = a2a_s(static_cast<double>(l.dispatch_bytes_per_elem), true);
    u.combine_f_s = a2a_s(static_cast<double>(l.combine_bytes_per_elem), false);
    // Backward: the combine's gradient travels like a dispatch, the dispatch's like a combine (both BF16).
    u.combine_b_s = a2a_s(static_cast<double>(l.combine_bytes_per_elem), true);
    u.dispatch_b_s = a2a_s(static_cast<double>(l.combine_bytes_per_elem), false);
  }
  if (l.tp > 1) {
    // Sequence parallelism: an all-gather before and a reduce-scatter after each half,
    // each moving (tp−1)/tp of the full (T·tp)×d BF16 activation through NVLink. Without
    // it, one all-reduce after each half (and its conjugate in backward): the same bytes.
    const double full_bytes = T * tp * d * 2.0;
    const double one = (tp - 1.0) / tp * full_bytes / (c.nvlink_GBps * 1e9 * c.collective_efficiency) +
                       (tp - 1.0) * c.nvlink_latency_us * 1e-6;
    u.tp_s = 2.0 * one;
    // Full recompute runs the forward again, collectives included.
    if (l.recompute == Recompute::full) u.recompute_tp_s = 2.0 * u.tp_s;
  }
  return u;
}

namespace {

// Two-stream task graph of one program step: stream 0 computes, stream 1 communicates.
struct Task {
  int stream = 0;
  int kind = -1;        // CommKind for stream 1
  double duration_s = 0;
  int dep = -1;         // the one task this waits for (chains), -1 none
  int dep2 = -1;
  int priority = 0;     // lower runs first among ready tasks of a stream
};

class TaskGraph {
 public:
  // Appends to chain `chain` (0 = forward, 1 = backward); returns the task index.
  int add(int chain, int stream, int kind, double duration_s, int extra_dep = -1) {
    if (duration_s <= 0 && extra_dep < 0) return last_[chain];
    Task t;
    t.stream = stream;
    t.kind = kind;
    t.duration_s = duration_s;
    t.dep = last_[chain];
    t.dep2 = extra_dep;
    // Forward and backward chains alternate by progress; at a tie the backward goes first.
    t.priority = 2 * position_[chain] + (chain == 0 ? 1 : 0);
    ++position_[chain];
    tasks_.push_back(t);
    last_[chain] = static_cast<int>(tasks_.size()) - 1;
    return last_[chain];
  }
  // A task off the chain (weight gradient): waits for `dep`, does not block the chain.
  void add_side(int chain, double duration_s, int dep) {
    if (duration_s <= 0) return;
    Task t;
    t.stream = 0;
    t.duration_s = duration_s;
    t.dep = dep;
    t.priority = 2 * position_[chain] + (chain == 0 ? 1 : 0);
    tasks_.push_back(t);
  }
  int last(int chain) const { return last_[chain]; }

  // Greedy list scheduling: whenever a stream is free it starts, among its tasks whose
  // dependencies have ended, the one of lowest priority (then lowest index); time moves
  // from one task end to the next. Event-driven, O(n log n) in the number of tasks.
  StepCost run() const {
    const size_t n = tasks_.size();
    std::vector<double> end(n, -1);
    std::vector<int> waiting(n, 0);               // dependencies not ended yet
    std::vector<std::vector<int>> dependents(n);
    for (size_t i = 0; i < n; ++i) {
      for (int d : {tasks_[i].dep, tasks_[i].dep2}) {
        if (d < 0) continue;
        ++waiting[i];
        dependents[d].push_back(static_cast<int>(i));
      }
    }
    // Ready tasks per stream, lowest (priority, index) first; running tasks by end time.
    using Key = std::pair<int, int>;
    std::priority_queue<Key, std::vector<Key>, std::greater<Key>> ready[2];
    using Running = std::pair<double, int>;
    std::priority_queue<Running, std::vector<Running>, std::greater<Running>> running;
    for (size_t i = 0; i < n; ++i)
      if (waiting[i] == 0) ready[tasks_[i].stream].push({tasks_[i].priority, static_cast<int>(i)});
    double free_at[2] = {0, 0};
    double t = 0;
    size_t started = 0;
    StepCost cost;
    std::array<double, kNumCommKinds> comm{};
    // Tasks that have ended by `t` release their dependents.
    auto release = [&] {
      while (!running.empty() && running.top().first <= t) {
        const int i = running.top().second;
        running.pop();
        for (int j : dependents[i])
          if (--waiting[j] == 0) ready[tasks_[j].stream].push({tasks_[j].priority, j});
      }
    };
    while (started < n) {
      bool progress = false;
      for (int s = 0; s < 2; ++s) {
        release();
        if (free_at[s] > t || ready[s].empty()) continue;
        const int best = ready[s].top().second;
        ready[s].pop();
        end[best] = t + tasks_[best].duration_s;
        running.push({end[best], best});
        free_at[s] = end[best];
        if (s == 0) cost.compute_s += tasks_[best].duration_s;
        else comm[tasks_[best].kind] += tasks_[best].duration_s;
        ++started;
        progress = true;
      }
      if (progress) continue;
      PREFLIGHT_CHECK(!running.empty() && running.top().first > t, "cost model task graph stalled");
      t = running.top().first;
    }
    for (size_t i = 0; i < n; ++i) cost.duration_s = std::max(cost.duration_s, end[i]);
    // Time the compute stream waited, attributed to the kinds in proportion to their volume.
    const double exposed = std::max(0.0, cost.duration_s - cost.compute_s);
    double total_comm = 0;
    for (double v : comm) total_comm += v;
    for (int k = 0; k < kNumCommKinds; ++k) cost.exposed_s[k] = total_comm > 0 ? exposed * comm[k] / total_comm : 0;
    return cost;
  }

 private:
  std::vector<Task> tasks_;
  int last_[2] = {-1, -1};
  int position_[2] = {0, 0};
};

}  // namespace

StepCost CostModel::time_ops(const Op* ops, int32_t count) const {
  TaskGraph g;
  for (int32_t i = 0; i < count; ++i) {
    const Op& op = ops[i];
    const StageCost& st = stages_[op.stage];
    const int chain = op.pass == Pass::F ? 0 : 1;
    if (op.pass == Pass::F) {
      for (const UnitCost& u : st.units) {
        g.add(chain, 0, -1, u.attn_f_s);
        g.add(chain, 1, kTensorParallel, u.tp_s);
        g.add(chain, 1, kDispatch, u.dispatch_f_s);
        g.add(chain, 0, -1, u.mlp_f_s);
        g.add(chain, 1, kCombine, u.combine_f_s);
        g.add(chain, 1, kTensorParallel, u.tp_s);
      }
    } else if (op.pass == Pass::W) {
      for (auto it = st.units.rbegin(); it != st.units.rend(); ++it) {
        g.add(chain, 0, -1, it->mlp_w_s);
        g.add(chain, 0, -1, it->attn_w_s);
      }
    } else {
      const bool with_w = op.pass == Pass::X;
      for (auto it = st.units.rbegin(); it != st.units.rend(); ++it) {
        const UnitCost& u = *it;
        g.add(chain, 0, -1, u.recompute_s);
        g.add(chain, 1, kTensorParallel, u.recompute_tp_s);
        g.add(chain, 1, kTensorParallel, u.tp_s);
        g.add(chain, 1, kCombine, u.combine_b_s);
        const int mlp_b = g.add(chain, 0, -1, u.mlp_b_s);
        if (with_w) g.add_side(chain, u.mlp_w_s, mlp_b);
        g.add(chain, 1, kDispatch, u.dispatch_b_s);
        g.add(chain, 1, kTensorParallel, u.tp_s);
        const int attn_b = g.add(chain, 0, -1, u.attn_b_s);
        if (with_w) g.add_side(chain, u.attn_w_s, attn_b);
      }
    }
  }
  return g.run();
}

const StepCost& CostModel::step(const Step& st) {
  const int64_t S = num_stages();
  if (st.count == 1) {
    const size_t i = static_cast<size_t>(static_cast<int64_t>(st.op[0].pass) * S + st.op[0].stage);
    if (!single_known_[i]) {
      single_cache_[i] = time_ops(st.op, 1);
      single_known_[i] = true;
    }
    return single_cache_[i];
  }
  const int64_t key = (static_cast<int64_t>(st.op[0].stage) * 4 + static_cast<int64_t>(st.op[1].pass)) * S + st.op[1].stage;
  auto it = pair_cache_.find(key);
  if (it != pair_cache_.end()) return it->second;
  return pair_cache_.emplace(key, time_ops(st.op, st.count)).first->second;
}

double CostModel::op_s(Pass pass, int32_t stage) {
  Step st;
  st.op[0] = Op{pass, 0, stage};
  return step(st).duration_s;
}

}  // namespace preflight::sim
