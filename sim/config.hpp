// Cluster (hardware) and parallel-layout descriptions of the simulator, read from
// JSON presets in configs/hardware/ and configs/layouts/ or from a user's file.
// Units are in every field name: _tflops (10^12 FLOP/s), _bytes, _GBps (10^9 B/s,
// one direction, per GPU), _us (microseconds). docs/SIMULATOR.md explains each one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "reference/core/model_config.hpp"

namespace preflight::sim {

struct ClusterConfig {
  std::string name;         // preset name or file stem
  std::string description;  // free text
  std::string source;       // where the figures come from

  // --- size ---
  int64_t num_gpus = 0;       // GPUs in the job
  int64_t gpus_per_node = 8;  // GPUs sharing one NVLink domain

  // --- one GPU ---
  int64_t sm_count = 132;         // streaming multiprocessors
  int64_t comm_sms = 0;           // SMs reserved for communication kernels (V3: 20 of 132)
  double bf16_tflops = 0;         // dense BF16 tensor peak
  double fp8_tflops = 0;          // dense FP8 tensor peak (0: no FP8 tensor cores)
  double fp32_tflops = 0;         // FP32 non-tensor peak
  double hbm_bytes = 0;           // usable device memory
  double hbm_GBps = 0;            // HBM bandwidth

  // --- interconnect, per GPU, one direction ---
  double nvlink_GBps = 0;         // effective intra-node bandwidth
  double nvlink_latency_us = 0;   // per message
  double ib_GBps = 0;             // inter-node bandwidth (one NIC per GPU)
  double ib_latency_us = 0;       // per message

  // --- achievable fractions of the peaks above (0 < x <= 1) ---
  double gemm_efficiency = 0.7;        // BF16 GEMMs
  double fp8_gemm_efficiency = 0.6;    // FP8 GEMMs (fine-grained scaling costs some)
  double attention_efficiency = 0.5;   // attention core (QKᵀ, softmax, PV)
  double memory_efficiency = 0.8;      // memory-bound kernels (norms, activations, optimizer)
  double collective_efficiency = 0.8;  // ring collectives (TP, DP) of the link bandwidth
  double all_to_all_efficiency = 0.9;  // MoE dispatch/combine of the link bandwidth

  double optimizer_bytes_per_param_step = 24;  // HBM traffic of one AdamW update per parameter (reads+writes)
};

enum class Schedule { gpipe, one_f_one_b, interleaved_1f1b, zb_h1, zb_h2, dualpipe, dualpipev };
enum class Recompute { none, selective, full };
enum class Precision { bf16, fp8 };
// How the attention core runs. flash: one fused kernel that skips the masked (causal)
// blocks and keeps only its output and the log-sum-exp for backward. unfused: QKᵀ and
// PV as batched GEMMs over the full s×s square, softmax (and dropout) as memory-bound
// kernels in between, the s×s probabilities kept for backward (Megatron-LM 2021).
enum class AttentionKernel { flash, unfused };

const char* to_string(Schedule s);
const char* to_string(Recompute r);
const char* to_string(Precision p);
const char* to_string(AttentionKernel k);

struct LayoutConfig {
  std::string name;
  std::string description;
  std::string source;

  int64_t pp = 1;           // pipeline ranks
  int64_t vpp = 1;          // model chunks per pipeline rank (interleaved 1F1B; DualPipeV uses 2)
  int64_t tp = 1;           // tensor parallel
  // With tp > 1: the norms, residual adds and dropouts run on 1/tp of the sequence and
  // their activations are split likewise, with an all-gather / reduce-scatter pair in
  // place of each all-reduce (Korthikanti et al. 2022; Megatron's --sequence-parallel).
  // Off: those tensors are replicated on every TP rank (Megatron-LM 2021).
  bool sequence_parallel = true;
  int64_t ep = 1;           // expert parallel, carved out of the data-parallel ranks
  int64_t dp = 0;           // data parallel; 0 = derived from the GPU count
  int64_t zero_stage = 1;   // 0: replicated; 1: optimizer sharded; 2: + gradients; 3: + weights
  int64_t micro_batch_size = 1;    // sequences per micro-batch per pipeline
  int64_t global_batch_size = 0;   // sequences per optimizer step, all replicas
  int64_t seq_len = 4096;          // tokens per sequence
  Schedule schedule = Schedule::one_f_one_b;
  Recompute recompute = Recompute::none;
  Precision precision = Precision::bf16;   // GEMM precision
  AttentionKernel attention_kernel = AttentionKernel::flash;
  bool dropout = false;   // dropout on the attention probabilities and after attention and MLP (GPT recipe)
  int64_t max_nodes_per_token = 0;         // node-limited routing (V3: 4); 0 = unlimited
  std::vector<int64_t> stage_layers;       // transformer blocks per model stage; empty = even split

  // Bytes per element of the training state (DeepSeek: FP32 master + grads, BF16 moments).
  int64_t weight_bytes = 2;         // working copy used by the GEMMs' inputs (BF16)
  int64_t master_weight_bytes = 4;  // optimizer's master copy (0: none, update in place)
  int64_t grad_bytes = 4;           // gradient accumulation buffer
  int64_t adam_moment_bytes = 4;    // each of the two AdamW moments
  int64_t dispatch_bytes_per_elem = 2;  // MoE dispatch payload (FP8 dispatch: 1)
  int64_t combine_bytes_per_elem = 2;   // MoE combine payload
};

ClusterConfig cluster_from_json(const nlohmann::json& j, const std::string& origin);
LayoutConfig layout_from_json(const nlohmann::json& j, const std::string& origin);
nlohmann::json to_json(const ClusterConfig& c);
nlohmann::json to_json(const LayoutConfig& l);

// Range checks of one config alone; each error names the field and the value.
void validate(const ClusterConfig& c);

// A layout checked against a model and a cluster, with everything derived.
struct ResolvedLayout {
  LayoutConfig layout;
  int64_t dp = 0;                // data-parallel replicas of the non-expert weights
  int64_t expert_dp = 0;         // replicas of each expert (num_gpus / (pp·ep·tp))
  int64_t microbatches = 0;      // per pipeline per step
  int64_t num_stages = 0;        // model stages (pp·vpp; DualPipe: pp, DualPipeV: 2·pp)
  std::vector<int64_t> stage_first_layer;  // first block of each model stage
  std::vector<int64_t> stage_layers;       // blocks per model stage
  int64_t ep_nodes = 1;          // nodes one EP group spans
  int64_t tokens_per_microbatch() const { return layout.micro_batch_size * layout.seq_len; }
  // How many ways the hidden-size activations (norms, residuals, hidden dropouts) are
  // split per GPU: tp with sequence parallelism, 1 without.
  int64_t hidden_split() const { return layout.sequence_parallel ? layout.tp : 1; }
};

// Throws preflight::Error naming the violated constraint and its numbers.
ResolvedLayout resolve_layout(const ModelConfig& model, const ClusterConfig& cluster, const LayoutConfig& layout);

}  // namespace preflight::sim
