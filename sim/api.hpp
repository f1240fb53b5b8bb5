// The cluster simulator's public interface: load a cluster and a layout, simulate one
// optimizer step of a model on them, get a report. Everything else in sim/ is the
// machinery behind simulate(); `preflight check` and `preflight plan` build on this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/model_config.hpp"
#include "sim/config.hpp"

namespace preflight::sim {

// NAME|PATH: an existing file wins, otherwise a preset in configs/hardware/ (configs/layouts/).
ClusterConfig load_cluster(const std::string& name_or_path);
LayoutConfig load_layout(const std::string& name_or_path);

// Peak memory of one pipeline rank (it may hold several model stages).
struct StageMemory {
  int64_t stage = 0;  // pipeline rank
  double weights_bytes = 0;
  double grads_bytes = 0;
  double optimizer_bytes = 0;    // master weights + AdamW moments (sharded per ZeRO stage)
  double activations_bytes = 0;  // peak of the activations kept for backward
  double buffers_bytes = 0;      // communication buffers, workspace, allocator reserve
  double total_bytes = 0;
  double capacity_bytes = 0;
  bool fits = true;
  // The largest consumers, largest first, as (name, bytes).
  std::vector<std::pair<std::string, double>> biggest() const;
};

// Time one pipeline rank spent, over one step.
struct RankTime {
  int64_t rank = 0;
  double busy_s = 0;            // compute stream busy (incl. exposed in-op communication)
  double idle_s = 0;            // step_time_s − busy_s
  double bubble_fraction = 0;   // idle_s / step_time_s
  double compute_s = 0;         // pure compute
  double exposed_comm_s = 0;    // in-op communication the compute stream waited for
};

// One interval on a rank's stream, for traces and pipeline diagrams.
struct Span {
  int32_t rank = 0;
  int32_t stream = 0;   // 0 = compute, 1 = communication
  char pass = 'F';      // 'F', 'B', 'W', 'X' (B+W together), 'P' (overlapped F&B pair), 'D' (DP/optimizer)
  int32_t microbatch = -1;
  int32_t stage = -1;   // model stage
  int32_t microbatch2 = -1;  // second half of an overlapped pair
  int32_t stage2 = -1;
  // Which of the rank's model chunks the op runs (interleaved 1F1B: chunk 0..v−1;
  // DualPipeV: leg 0/1 of the V), or for DualPipe the micro-batch's direction
  // (0: enters at rank 0, 1: enters at the last rank); -1 when not applicable.
  int32_t chunk = -1;
  int32_t chunk2 = -1;
  double start_s = 0;
  double end_s = 0;
};

struct SimReport {
  // --- inputs, resolved ---
  std::string model, cluster, layout, schedule;
  int64_t pp = 0, vpp = 0, tp = 0, ep = 0, dp = 0, expert_dp = 0, zero_stage = 0;
  int64_t microbatches = 0, micro_batch_size = 0, global_batch_size = 0, seq_len = 0;
  std::vector<int64_t> stage_layers;

  // --- headline ---
  double step_time_s = 0;
  double bubble_fraction = 0;    // mean over ranks of idle / step time
  double mfu = 0;                // model FLOPs (no recompute) / (step time · GPUs · BF16 peak)
  double hfu = 0;                // hardware FLOPs (with recompute) / same
  double tokens_per_s_per_gpu = 0;
  double tokens_per_step = 0;
  int64_t num_gpus = 0;
  double gpu_hours_per_trillion_tokens = 0;
  double model_flops_per_step = 0;
  double hardware_flops_per_step = 0;

  // --- time breakdown ---
  double pipeline_time_s = 0;     // last compute op end
  double dp_exposed_s = 0;        // gradient sync + parameter gather not hidden by compute
  double optimizer_s = 0;         // AdamW update
  std::vector<RankTime> ranks;
  // Exposed (non-overlapped) communication per kind, summed over a step on the
  // busiest rank: "ep_dispatch", "ep_combine", "tp", "pp_p2p", "dp".
  std::vector<std::pair<std::string, double>> exposed_comm_s;
  // Per-op cost table (per micro-batch, per model stage), for the text report.
  double f_chunk_s = 0, b_chunk_s = 0, w_chunk_s = 0;  // mean over stages
  double fb_pair_s = 0;          // DualPipe overlapped pair (0 for other schedules)

  // --- memory ---
  std::vector<StageMemory> memory;
  bool fits = true;
  double checkpoint_bytes = 0;   // full training state (weights + optimizer) a checkpoint writes

  // --- trace (filled when SimOptions::keep_spans) ---
  std::vector<Span> spans;
  bool extrapolated = false;     // timing extrapolated from fewer micro-batches (planner)

  // Deterministic: every double is rounded to 6 significant digits.
  nlohmann::json to_json() const;
};

struct SimOptions {
  bool keep_spans = false;   // record every interval (for --trace / --svg)
  // Planner speed-ups. When > 0 and the layout has more micro-batches, the pipeline is
  // simulated at two smaller counts and the step extrapolated linearly in the number of
  // micro-batches (exact once the schedule is in its periodic steady state).
  int64_t max_simulated_microbatches = 0;
  bool stop_if_out_of_memory = false;  // skip the timing when a rank does not fit
};

SimReport simulate(const ModelConfig& model, const ClusterConfig& cluster, const LayoutConfig& layout,
                   const SimOptions& options = {});

// Days to train `tokens` tokens at the report's throughput.
double days_for_tokens(const SimReport& report, double tokens);

}  // namespace preflight::sim
