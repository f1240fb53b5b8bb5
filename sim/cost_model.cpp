#include "sim/cost_model.hpp"

#include <algorithm>
#include <cmath>

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
  const double attn_gemm = bf.attention_gemm * T;
  const double attn_core = bf.attention_core * T;
  const double attn_elem_bytes = T * (8.0 * d + 12.0 * d);
  u.attn_f_s = attn_gemm / gemm_rate_ + attn_core / attn_rate_ + attn_elem_bytes / mem_rate_;
  u.attn_b_s = attn_gemm / gemm_rate_ + 2.0 * attn_core / attn_rate_ + 2.0 * attn_elem_bytes / mem_rate_;
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
  u.model_flops = 3.0 * (attn_gemm + mlp_gemm + router_gemm) + 3.0 * attn_core;

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
      // Megatron's selective recompute: the attention core.
      u.recompute_s = attn_core / attn_rate_;
      u.recompute_flops = attn_core;
    }
  } else if (l.recompute == Recompute::full) {
    u.recompute_s = u.attn_f_s + u.mlp_f_s;
    u.recompute_flops = attn_gemm + attn_core + mlp_gemm + router_gemm;
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
    // each moving (tp−1)/tp of the full (T·tp)×d BF16 activation through NVLink.
    const double full_bytes = T * tp * d * 2.0;
    const double one = (tp - 1.0) / tp * full_bytes / (c.nvlink_GBps * 1e9 * c.collective_efficiency) +
                       (tp - 1.0) * c.nvlink_latency_us * 1e-6;
    u.tp_s = 2.0 * one;
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

  // Greedy list scheduling: a free stream starts its ready task of lowest priority.
  StepCost run() const {
    const size_t n = tasks_.size();
    std::vector<double> end(n, -1);
    std::vector<bool> started(n, false);
    double free_at[2] = {0, 0};
    double t = 0;
    size_t done = 0;
    StepCost cost;
    std::array<double, kNumCommKinds> comm{};
    while (done < n) {
      bool progress = false;
      for (int s = 0; s < 2; ++s) {
        if (free_at[s] > t) continue;
        int best = -1;
        for (size_t i = 0; i < n; ++i) {
          const Task& k = tasks_[i];
          if (started[i] || k.stream != s) continue;
          if (k.dep >= 0 && !(started[k.dep] && end[k.dep] <= t)) continue;
          if (k.dep2 >= 0 && !(started[k.dep2] && end[k.dep2] <= t)) continue;
          if (best < 0 || k.priority < tasks_[best].priority) best = static_cast<int>(i);
        }
        if (best < 0) continue;
        started[best] = true;
        end[best] = t + tasks_[best].duration_s;
        free_at[s] = end[best];
        if (s == 0) cost.compute_s += tasks_[best].duration_s;
        else comm[tasks_[best].kind] += tasks_[best].duration_s;
        ++done;
        progress = true;
      }
      if (progress) continue;
      double next = -1;
      for (size_t i = 0; i < n; ++i)
        if (started[i] && end[i] > t && (next < 0 || end[i] < next)) next = end[i];
      PREFLIGHT_CHECK(next > t, "cost model task graph stalled");
      t = next;
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
  const auto key = std::make_tuple(st.count, static_cast<int>(st.op[0].pass), st.op[0].stage,
                                   st.count == 2 ? static_cast<int>(st.op[1].pass) : -1,
                                   st.count == 2 ? st.op[1].stage : -1);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  return cache_.emplace(key, time_ops(st.op, st.count)).first->second;
}

double CostModel::op_s(Pass pass, int32_t stage) {
  Step st;
  st.op[0] = Op{pass, 0, stage};
  return step(st).duration_s;
}

}  // namespace preflight::sim
