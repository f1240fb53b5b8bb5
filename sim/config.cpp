#include "sim/config.hpp"

#include <map>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "reference/core/error.hpp"
#include "reference/core/json_fields.hpp"
#include "reference/core/presets.hpp"
#include "sim/api.hpp"

namespace preflight::sim {

using nlohmann::json;

namespace {

constexpr const char* kHardwareFormat = "preflight-hardware/1";
constexpr const char* kLayoutFormat = "preflight-layout/1";

const std::map<std::string, Schedule> kScheduleNames = {
    {"gpipe", Schedule::gpipe},       {"1f1b", Schedule::one_f_one_b}, {"interleaved-1f1b", Schedule::interleaved_1f1b},
    {"zb-h1", Schedule::zb_h1},       {"zb-h2", Schedule::zb_h2},      {"dualpipe", Schedule::dualpipe},
    {"dualpipev", Schedule::dualpipev}};
const std::map<std::string, Recompute> kRecomputeNames = {
    {"none", Recompute::none}, {"selective", Recompute::selective}, {"full", Recompute::full}};
const std::map<std::string, Precision> kPrecisionNames = {{"bf16", Precision::bf16}, {"fp8", Precision::fp8}};
const std::map<std::string, AttentionKernel> kAttentionKernelNames = {{"flash", AttentionKernel::flash},
                                                                      {"unfused", AttentionKernel::unfused}};

// Range limits of the layout fields, checked before any product is formed.
constexpr int64_t kMaxGpus = int64_t{1} << 24;              // 16.7M GPUs
constexpr int64_t kMaxGpusPerNode = 1024;
constexpr int64_t kMaxChunksPerRank = 1024;                  // vpp
constexpr int64_t kMaxSequencesPerStep = int64_t{1} << 30;   // global_batch_size
constexpr int64_t kMaxSeqLen = int64_t{1} << 30;             // tokens per sequence
// The executor holds an op list of (micro-batches × model stages × up to 3 passes)
// entries per pipeline; beyond this it would take minutes and gigabytes.
constexpr int64_t kMaxMicrobatchStages = int64_t{1} << 22;

// A real number in [lo, hi]. The bounds are far outside any real machine but keep every
// product and quotient of the cost model finite (no inf/NaN step times), and NaN fails.
void require_in(const std::string& origin, const char* field, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) fail(origin, ": field '", field, "' = ", v, ": expected a number in [", lo, ", ", hi, "]");
}
// An achievable fraction of a peak; below 0.1% the cost model's times approach overflow.
void require_fraction(const std::string& origin, const char* field, double v) {
  if (!(v >= 1e-3 && v <= 1)) fail(origin, ": field '", field, "' = ", v, ": expected a fraction in [0.001, 1]");
}

}  // namespace

const char* to_string(Schedule s) {
  for (const auto& [n, v] : kScheduleNames)
    if (v == s) return n.c_str();
  return "?";
}
const char* to_string(Recompute r) {
  for (const auto& [n, v] : kRecomputeNames)
    if (v == r) return n.c_str();
  return "?";
}
const char* to_string(Precision p) {
  for (const auto& [n, v] : kPrecisionNames)
    if (v == p) return n.c_str();
  return "?";
}
const char* to_string(AttentionKernel k) {
  for (const auto& [n, v] : kAttentionKernelNames)
    if (v == k) return n.c_str();
  return "?";
}

ClusterConfig cluster_from_json(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  r.expect_format(kHardwareFormat);
  ClusterConfig c;
  r.read("name", c.name);
  r.read("description", c.description);
  r.read("source", c.source);
  r.read("num_gpus", c.num_gpus);
  r.read("gpus_per_node", c.gpus_per_node);
  r.read("sm_count", c.sm_count);
  r.read("comm_sms", c.comm_sms);
  r.read("bf16_tflops", c.bf16_tflops);
  r.read("fp8_tflops", c.fp8_tflops);
  r.read("fp32_tflops", c.fp32_tflops);
  r.read("hbm_bytes", c.hbm_bytes);
  r.read("hbm_GBps", c.hbm_GBps);
  r.read("nvlink_GBps", c.nvlink_GBps);
  r.read("nvlink_latency_us", c.nvlink_latency_us);
  r.read("ib_GBps", c.ib_GBps);
  r.read("ib_latency_us", c.ib_latency_us);
  r.read("gemm_efficiency", c.gemm_efficiency);
  r.read("fp8_gemm_efficiency", c.fp8_gemm_efficiency);
  r.read("attention_efficiency", c.attention_efficiency);
  r.read("memory_efficiency", c.memory_efficiency);
  r.read("collective_efficiency", c.collective_efficiency);
  r.read("all_to_all_efficiency", c.all_to_all_efficiency);
  r.read("optimizer_bytes_per_param_step", c.optimizer_bytes_per_param_step);
  r.reject_unknown();
  if (c.name.empty()) c.name = origin;
  validate(c);
  return c;
}

void validate(const ClusterConfig& c) {
  const std::string o = "cluster '" + c.name + "'";
  // Upper bounds keep every product of layout sizes (pp·tp·dp, ep·tp, ...) far from
  // int64 overflow; they are far above any real machine.
  if (c.num_gpus <= 0 || c.num_gpus > kMaxGpus)
    fail(o, ": field 'num_gpus' = ", c.num_gpus, ": expected an integer in [1, ", kMaxGpus, "]");
  if (c.gpus_per_node <= 0 || c.gpus_per_node > kMaxGpusPerNode)
    fail(o, ": field 'gpus_per_node' = ", c.gpus_per_node, ": expected an integer in [1, ", kMaxGpusPerNode, "]");
  if (c.num_gpus % c.gpus_per_node != 0 && c.num_gpus > c.gpus_per_node)
    fail(o, ": num_gpus = ", c.num_gpus, " is not a multiple of gpus_per_node = ", c.gpus_per_node);
  if (c.sm_count <= 0 || c.sm_count > 1000000)
    fail(o, ": field 'sm_count' = ", c.sm_count, ": expected an integer in [1, 1000000]");
  if (c.comm_sms < 0 || c.comm_sms >= c.sm_count)
    fail(o, ": field 'comm_sms' = ", c.comm_sms, ": expected 0 <= comm_sms < sm_count = ", c.sm_count);
  // Rates: 1e-3 TFLOP/s and 1e-3 GB/s (a 1990s workstation) up to 1e6 of each.
  require_in(o, "bf16_tflops", c.bf16_tflops, 1e-3, 1e6);
  if (c.fp8_tflops != 0 && !(c.fp8_tflops >= 1e-3 && c.fp8_tflops <= 1e6))
    fail(o, ": field 'fp8_tflops' = ", c.fp8_tflops, ": expected 0 (no FP8) or a number in [0.001, 1e+06]");
  require_in(o, "fp32_tflops", c.fp32_tflops, 1e-3, 1e6);
  require_in(o, "hbm_bytes", c.hbm_bytes, 1 << 20, 1e15);  // 1 MiB .. 1 PB
  require_in(o, "hbm_GBps", c.hbm_GBps, 1e-3, 1e6);
  require_in(o, "nvlink_GBps", c.nvlink_GBps, 1e-3, 1e6);
  require_in(o, "ib_GBps", c.ib_GBps, 1e-3, 1e6);
  require_in(o, "nvlink_latency_us", c.nvlink_latency_us, 0, 1e6);  // up to one second per message
  require_in(o, "ib_latency_us", c.ib_latency_us, 0, 1e6);
  require_fraction(o, "gemm_efficiency", c.gemm_efficiency);
  require_fraction(o, "fp8_gemm_efficiency", c.fp8_gemm_efficiency);
  require_fraction(o, "attention_efficiency", c.attention_efficiency);
  require_fraction(o, "memory_efficiency", c.memory_efficiency);
  require_fraction(o, "collective_efficiency", c.collective_efficiency);
  require_fraction(o, "all_to_all_efficiency", c.all_to_all_efficiency);
  require_in(o, "optimizer_bytes_per_param_step", c.optimizer_bytes_per_param_step, 0, 1e4);
}

LayoutConfig layout_from_json(const json& j, const std::string& origin) {
  JsonFields r(j, origin);
  r.expect_format(kLayoutFormat);
  LayoutConfig l;
  r.read("name", l.name);
  r.read("description", l.description);
  r.read("source", l.source);
  r.read("pp", l.pp);
  r.read("vpp", l.vpp);
  r.read("tp", l.tp);
  r.read("sequence_parallel", l.sequence_parallel);
  r.read("ep", l.ep);
  r.read("dp", l.dp);
  r.read("zero_stage", l.zero_stage);
  r.read("micro_batch_size", l.micro_batch_size);
  r.read("global_batch_size", l.global_batch_size);
  r.read("seq_len", l.seq_len);
  r.read_enum("schedule", l.schedule, kScheduleNames);
  r.read_enum("recompute", l.recompute, kRecomputeNames);
  r.read_enum("precision", l.precision, kPrecisionNames);
  r.read_enum("attention_kernel", l.attention_kernel, kAttentionKernelNames);
  r.read("dropout", l.dropout);
  r.read("max_nodes_per_token", l.max_nodes_per_token);
  r.read("stage_layers", l.stage_layers);
  r.read("weight_bytes", l.weight_bytes);
  r.read("master_weight_bytes", l.master_weight_bytes);
  r.read("grad_bytes", l.grad_bytes);
  r.read("adam_moment_bytes", l.adam_moment_bytes);
  r.read("dispatch_bytes_per_elem", l.dispatch_bytes_per_elem);
  r.read("combine_bytes_per_elem", l.combine_bytes_per_elem);
  r.reject_unknown();
  if (l.name.empty()) l.name = origin;
  return l;
}

json to_json(const ClusterConfig& c) {
  return json{{"format", kHardwareFormat},
              {"name", c.name},
              {"num_gpus", c.num_gpus},
              {"gpus_per_node", c.gpus_per_node},
              {"sm_count", c.sm_count},
              {"comm_sms", c.comm_sms},
              {"bf16_tflops", c.bf16_tflops},
              {"fp8_tflops", c.fp8_tflops},
              {"fp32_tflops", c.fp32_tflops},
              {"hbm_bytes", c.hbm_bytes},
              {"hbm_GBps", c.hbm_GBps},
              {"nvlink_GBps", c.nvlink_GBps},
              {"nvlink_latency_us", c.nvlink_latency_us},
              {"ib_GBps", c.ib_GBps},
              {"ib_latency_us", c.ib_latency_us},
              {"gemm_efficiency", c.gemm_efficiency},
              {"fp8_gemm_efficiency", c.fp8_gemm_efficiency},
              {"attention_efficiency", c.attention_efficiency},
              {"memory_efficiency", c.memory_efficiency},
              {"collective_efficiency", c.collective_efficiency},
              {"all_to_all_efficiency", c.all_to_all_efficiency},
              {"optimizer_bytes_per_param_step", c.optimizer_bytes_per_param_step}};
}

json to_json(const LayoutConfig& l) {
  return json{{"format", kLayoutFormat},
              {"name", l.name},
              {"pp", l.pp},
              {"vpp", l.vpp},
              {"tp", l.tp},
              {"sequence_parallel", l.sequence_parallel},
              {"ep", l.ep},
              {"dp", l.dp},
              {"zero_stage", l.zero_stage},
              {"micro_batch_size", l.micro_batch_size},
              {"global_batch_size", l.global_batch_size},
              {"seq_len", l.seq_len},
              {"schedule", to_string(l.schedule)},
              {"recompute", to_string(l.recompute)},
              {"precision", to_string(l.precision)},
              {"attention_kernel", to_string(l.attention_kernel)},
              {"dropout", l.dropout},
              {"max_nodes_per_token", l.max_nodes_per_token},
              {"stage_layers", l.stage_layers},
              {"weight_bytes", l.weight_bytes},
              {"master_weight_bytes", l.master_weight_bytes},
              {"grad_bytes", l.grad_bytes},
              {"adam_moment_bytes", l.adam_moment_bytes},
              {"dispatch_bytes_per_elem", l.dispatch_bytes_per_elem},
              {"combine_bytes_per_elem", l.combine_bytes_per_elem}};
}

ResolvedLayout resolve_layout(const ModelConfig& m, const ClusterConfig& c, const LayoutConfig& l) {
  const std::string o = "layout '" + l.name + "'";
  validate(c);
  // Every size is range-checked before it enters a product, so that no product below
  // can overflow (each factor is at most 2^30 and at most two are multiplied).
  auto in_range = [&](const char* field, int64_t v, int64_t hi, const char* why) {
    if (v <= 0 || v > hi) fail(o, ": field '", field, "' = ", v, ": expected an integer in [1, ", hi, "] (", why, ")");
  };
  in_range("pp", l.pp, c.num_gpus, "at most the cluster's GPU count");
  in_range("vpp", l.vpp, kMaxChunksPerRank, "model chunks per pipeline rank");
  in_range("tp", l.tp, c.gpus_per_node, "tensor parallelism stays inside a node of gpus_per_node GPUs");
  in_range("ep", l.ep, c.num_gpus, "at most the cluster's GPU count");
  in_range("global_batch_size", l.global_batch_size, kMaxSequencesPerStep, "sequences per optimizer step");
  in_range("micro_batch_size", l.micro_batch_size, l.global_batch_size, "at most global_batch_size");
  in_range("seq_len", l.seq_len, kMaxSeqLen, "tokens per sequence");
  if (l.dp < 0 || l.dp > c.num_gpus)
    fail(o, ": field 'dp' = ", l.dp, ": expected an integer in [0, ", c.num_gpus,
         "] (0 = derive from the GPU count)");
  if (l.zero_stage < 0 || l.zero_stage > 3) fail(o, ": field 'zero_stage' = ", l.zero_stage, ": expected 0, 1, 2 or 3");
  if (l.max_nodes_per_token < 0 || l.max_nodes_per_token > c.num_gpus)
    fail(o, ": field 'max_nodes_per_token' = ", l.max_nodes_per_token, ": expected an integer in [0, ", c.num_gpus,
         "] (0 = unlimited)");
  for (const char* f : {"weight_bytes", "grad_bytes", "dispatch_bytes_per_elem", "combine_bytes_per_elem"}) {
    const int64_t v = std::string(f) == "weight_bytes" ? l.weight_bytes
                      : std::string(f) == "grad_bytes" ? l.grad_bytes
                      : std::string(f) == "dispatch_bytes_per_elem" ? l.dispatch_bytes_per_elem
                                                                    : l.combine_bytes_per_elem;
    if (v != 1 && v != 2 && v != 4) fail(o, ": field '", f, "' = ", v, ": expected 1, 2 or 4 bytes");
  }
  if (l.master_weight_bytes != 0 && l.master_weight_bytes != 2 && l.master_weight_bytes != 4)
    fail(o, ": field 'master_weight_bytes' = ", l.master_weight_bytes, ": expected 0, 2 or 4");
  if (l.adam_moment_bytes != 1 && l.adam_moment_bytes != 2 && l.adam_moment_bytes != 4)
    fail(o, ": field 'adam_moment_bytes' = ", l.adam_moment_bytes, ": expected 1, 2 or 4");

  ResolvedLayout r;
  r.layout = l;
  // GPU count = pp · tp · dp.
  if (c.num_gpus % (l.pp * l.tp) != 0)
    fail(o, ": GPU count mismatch: pp·tp = ", l.pp, "·", l.tp, " = ", l.pp * l.tp, " does not divide the cluster's ",
         c.num_gpus, " GPUs");
  r.dp = c.num_gpus / (l.pp * l.tp);
  if (l.dp != 0 && l.dp != r.dp)
    fail(o, ": GPU count mismatch: pp·tp·dp = ", l.pp, "·", l.tp, "·", l.dp, " = ", l.pp * l.tp * l.dp,
         " but cluster '", c.name, "' has ", c.num_gpus, " GPUs (dp would be ", r.dp, ")");
  if (m.num_attention_heads % l.tp != 0)
    fail(o, ": tp = ", l.tp, " does not divide num_attention_heads = ", m.num_attention_heads);
  if (m.attention == AttentionKind::gqa && m.num_key_value_heads % l.tp != 0 && l.tp % m.num_key_value_heads != 0)
    fail(o, ": tp = ", l.tp, " and num_key_value_heads = ", m.num_key_value_heads, " do not divide one another");
  // Experts.
  if (!m.is_moe() && l.ep != 1) fail(o, ": ep = ", l.ep, " but model '", m.name, "' has no experts (expected ep = 1)");
  if (m.is_moe() && m.n_routed_experts % l.ep != 0)
    fail(o, ": ep = ", l.ep, " does not divide n_routed_experts = ", m.n_routed_experts);
  if (r.dp % l.ep != 0)
    fail(o, ": ep = ", l.ep, " does not divide the data-parallel size dp = ", r.dp,
         " (expert parallelism is carved out of the data-parallel ranks)");
  r.expert_dp = r.dp / l.ep;
  r.ep_nodes = (l.ep * l.tp + c.gpus_per_node - 1) / c.gpus_per_node;
  // Batch.
  if (l.global_batch_size % (l.micro_batch_size * r.dp) != 0)
    fail(o, ": global_batch_size = ", l.global_batch_size, " is not a multiple of micro_batch_size·dp = ",
         l.micro_batch_size, "·", r.dp, " = ", l.micro_batch_size * r.dp);
  r.microbatches = l.global_batch_size / (l.micro_batch_size * r.dp);
  const int64_t stages_needed =
      l.schedule == Schedule::dualpipev ? 2 * l.pp : (l.schedule == Schedule::dualpipe ? l.pp : l.pp * l.vpp);
  if (r.microbatches > kMaxMicrobatchStages / stages_needed)
    fail(o, ": ", r.microbatches, " micro-batches per pipeline x ", stages_needed, " model stages exceed ",
         kMaxMicrobatchStages, " (the per-rank op lists would take gigabytes): use a larger micro_batch_size or a smaller global_batch_size");
  if (l.seq_len > m.max_position_embeddings)
    fail(o, ": seq_len = ", l.seq_len, " exceeds the model's max_position_embeddings = ", m.max_position_embeddings);
  if (l.precision == Precision::fp8 && c.fp8_tflops <= 0)
    fail(o, ": precision fp8 but cluster '", c.name, "' has fp8_tflops = 0");
  // Schedule.
  const int64_t p = l.pp, mb = r.microbatches;
  const std::string sname = to_string(l.schedule);
  switch (l.schedule) {
    case Schedule::gpipe:
    case Schedule::one_f_one_b:
    case Schedule::zb_h1:
    case Schedule::zb_h2:
      if (l.vpp != 1) fail(o, ": schedule ", sname, " needs vpp = 1, got ", l.vpp);
      if (l.schedule != Schedule::gpipe && mb < p)
        fail(o, ": too few micro-batches: schedule ", sname, " needs micro-batches >= pp = ", p, ", got ", mb,
             " (global_batch_size / (micro_batch_size·dp))");
      r.num_stages = p;
      break;
    case Schedule::interleaved_1f1b:
      if (l.vpp < 2) fail(o, ": schedule interleaved-1f1b needs vpp >= 2, got ", l.vpp);
      if (mb % p != 0 || mb < p)
        fail(o, ": too few micro-batches: interleaved-1f1b needs micro-batches to be a multiple of pp = ", p, ", got ",
             mb);
      r.num_stages = p * l.vpp;
      break;
    case Schedule::dualpipe:
      if (l.vpp != 1) fail(o, ": schedule dualpipe needs vpp = 1 (each rank holds two stages by construction), got ", l.vpp);
      if (p % 2 != 0) fail(o, ": schedule dualpipe needs an even pp, got pp = ", p);
      if (mb % 2 != 0 || mb < 2 * p)
        fail(o, ": too few micro-batches: dualpipe needs an even number >= 2·pp = ", 2 * p, ", got ", mb);
      r.num_stages = p;
      break;
    case Schedule::dualpipev:
      if (l.vpp != 2) fail(o, ": schedule dualpipev needs vpp = 2 (a V of two stages per rank), got ", l.vpp);
      if (mb < 2 * p) fail(o, ": too few micro-batches: dualpipev needs >= 2·pp = ", 2 * p, ", got ", mb);
      r.num_stages = 2 * p;
      break;
  }
  // Stage assignment.
  const int64_t S = r.num_stages;
  if (l.stage_layers.empty()) {
    if (m.num_hidden_layers % S != 0)
      fail(o, ": num_hidden_layers = ", m.num_hidden_layers, " is not divisible into ", S,
           " model stages: give 'stage_layers' (", S, " block counts summing to ", m.num_hidden_layers, ")");
    r.stage_layers.assign(S, m.num_hidden_layers / S);
  } else {
    if (static_cast<int64_t>(l.stage_layers.size()) != S)
      fail(o, ": 'stage_layers' has ", l.stage_layers.size(), " entries: expected one per model stage (", S, ")");
    int64_t sum = 0;
    for (int64_t n : l.stage_layers) {
      if (n < 0 || n > m.num_hidden_layers)
        fail(o, ": 'stage_layers' has an entry ", n, ": expected 0 to num_hidden_layers = ", m.num_hidden_layers);
      sum += n;
    }
    if (sum != m.num_hidden_layers)
      fail(o, ": 'stage_layers' sums to ", sum, ": expected num_hidden_layers = ", m.num_hidden_layers);
    r.stage_layers = l.stage_layers;
  }
  int64_t first = 0;
  for (int64_t n : r.stage_layers) {
    r.stage_first_layer.push_back(first);
    first += n;
  }
  return r;
}

ClusterConfig load_cluster(const std::string& name_or_path) {
  std::string origin;
  const std::string text = load_preset_or_file("hardware", name_or_path, &origin);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    // Also a number too large for a double (1e400), which nlohmann reports as out_of_range.
    fail(origin, ": not valid JSON: ", e.what());
  }
  return cluster_from_json(j, origin);
}

LayoutConfig load_layout(const std::string& name_or_path) {
  std::string origin;
  const std::string text = load_preset_or_file("layouts", name_or_path, &origin);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    // Also a number too large for a double (1e400), which nlohmann reports as out_of_range.
    fail(origin, ": not valid JSON: ", e.what());
  }
  return layout_from_json(j, origin);
}

}  // namespace preflight::sim
