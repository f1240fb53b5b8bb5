// The reference trainer (docs/TRAINING.md): the CPU model (reference/layers/model.hpp), the
// optimizers and schedules (reference/optim), a packed token stream (data.hpp), atomic
// checkpoints (checkpoint.hpp) and the training-time safeguards.
// Legend: K = micro-batches per step, B = sequences per micro-batch, T = tokens per sequence.
//
// One step (index s, 0-based; tokens = tokens consumed before it):
//   lr = schedule(s)                                     (schedules.hpp, rounded to float once)
//   for j = 0..K−1:  micro-batch j = next_batch(B, T)     (the loader position advances)
//                    loss_j, counts_j, logits_j = forward;  g_j = backward (own buffer, from 0)
//                    g_j is pushed on the accumulation tree (below)
//   g = tree_sum(g_0..g_{K−1}) · float(1/K)   (the multiply is skipped when K = 1; exact for K = 2^n)
//   loss = tree_sum(loss_j) · float(1/K)      (the same tree on the scalars)
//   counts = Σ_j counts_j (integers);  max_logit[h] = max_j logits_j[h]
//   safeguards (below) may skip the step here
//   optimizer.step(params, g, lr)   (clip by global norm, AdamW or Muon + AdamW)
//   router bias: update_router_bias(bias_b, counts_b, E, γ, centre) per MoE block in model order
//   QK-Clip (MLA and GQA layers, model order) with max_logit, when enabled
// Accumulation tree: a binary counter over the micro-batch index. Each new g_j enters as a
// level-0 node; while the two top nodes have equal level they merge as left + right (one
// float add per element, left = the earlier micro-batches) into level+1. After the last
// micro-batch the remaining nodes fold from the top: r = top; r = below + r. For K = 2^n this
// is the perfect binary tree over j, so P = 2^p data-parallel ranks holding K/P consecutive
// micro-batches each, then reducing their partial sums with the same tree over ranks,
// reproduce the single-process gradient bit for bit.
//
// Safeguards (all in TrainOptions):
//   non-finite: the model throws naming the first bad layer; the optimizer reports a non-finite
//     grad norm. on_nonfinite = stop → the trainer throws that one-line message; skip → the
//     batch is skipped like a spike.
//   spike: after spike_warmup accepted steps, loss > spike_threshold × running average →
//     the batch is skipped (no update; its data is consumed); spike_max_skips consecutive skips →
//     roll back to the newest checkpoint of the output directory (parameters, optimizer,
//     biases, step) but KEEP the current data position, so the offending data is not replayed.
//     Running average: avg = float(0.9·avg + 0.1·loss) in double over accepted steps (the first
//     accepted loss initialises it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reference/core/model_config.hpp"
#include "reference/layers/model.hpp"
#include "reference/optim/optimizer.hpp"
#include "reference/train/data.hpp"

namespace preflight::train {

// Everything that defines the run; stored in every checkpoint and restored on resume.
struct TrainOptions {
  std::string config = "tiny";     // preset name or config file
  std::string data = "synthetic";  // "synthetic" or a token file
  uint64_t seed = 1;               // initialisation and synthetic data
  std::string precision = "fp32";  // fp32 | bf16 | fp8 (GEMM operands; bf16/fp8 also store bf16 activations)
  int64_t batch = 4;               // B: sequences per micro-batch
  int64_t seq_len = 64;            // T
  int64_t micro_batches = 1;       // K
  int64_t steps = 100;             // schedule length (the run ends here)
  std::string optimizer = "adamw"; // adamw | muon (Muon for hidden matrices, AdamW for the rest)
  std::string schedule = "cosine"; // cosine | wsd | constant
  double lr = 3e-3;                // peak learning rate
  double lr_min = 3e-4;            // end of the decay
  int64_t warmup = 10;             // warm-up steps
  double weight_decay = 0.1;
  double max_grad_norm = 1.0;      // <= 0: no clipping
  bool bf16_moments = false;       // AdamW moments in bf16
  double mtp_lambda = 0.3;         // MTP loss weight λ
  double seq_aux_alpha = 1e-4;     // sequence-wise balance loss α
  double bias_gamma = 0.001;       // aux-loss-free bias step γ (0: off)
  bool bias_centre = false;        // centre the biases after each update
  bool qk_clip = true;             // QK-Clip after each step
  double qk_tau = 100.0;           // τ
  std::string on_nonfinite = "stop";  // stop | skip
  double spike_threshold = 2.0;    // loss > threshold × running average is a spike (0: off)
  int64_t spike_warmup = 20;       // accepted steps before spike detection starts
  int64_t spike_max_skips = 3;     // consecutive skips before rolling back
  std::vector<int64_t> poison_steps;  // test hook: these step ATTEMPTS (0-based batches drawn, never rolled back) have every target of their first micro-batch replaced by vocab_size − 1 (a loss spike)
};

struct StepReport {
  int64_t step = 0;       // the step just attempted (0-based)
  bool applied = false;   // false: skipped (spike or non-finite)
  std::string event;      // "", "spike-skip", "nonfinite-skip", "rollback"
  float loss = 0, ce = 0, mtp = 0, aux = 0;
  float grad_norm = 0, lr = 0;
  int64_t tokens = 0;     // tokens consumed so far (after this step)
  double seconds = 0;     // wall time of the step
  double load_max_over_min = 0;  // worst MoE block (inf when an expert got no token)
  double load_cv = 0;            // worst MoE block: std/mean of the expert loads
  float max_attn_logit = 0;      // max over layers and heads
  double step_ms_fwd_bwd = 0, step_ms_optim = 0;
};

class Trainer {
 public:
  explicit Trainer(TrainOptions options);  // fresh run: model_init(seed)
  // Restores everything from a verified checkpoint (a ckpt-* directory).
  static std::unique_ptr<Trainer> resume(const std::string& checkpoint_dir);

  StepReport step();  // one step (or a skip / rollback)
  bool done() const { return step_ >= opt_.steps; }
  int64_t step_index() const { return step_; }

  // Writes OUT/ckpt-<step> atomically, keeps the newest `keep`. Returns its path.
  std::string save(const std::string& out_dir, int64_t keep);
  void set_rollback_dir(const std::string& out_dir) { rollback_dir_ = out_dir; }
  void set_steps(int64_t steps) { opt_.steps = steps; }  // extend/shorten a resumed run (changes the schedule)

  const TrainOptions& options() const { return opt_; }
  const ModelConfig& config() const { return config_; }
  const std::vector<float>& params() const { return params_; }
  float* mutable_params() { return params_.data(); }  // tools and tests (e.g. injecting a NaN)
  const LoaderState& loader() const { return loader_; }
  const TokenStream& stream() const { return stream_; }
  int64_t n_params() const { return static_cast<int64_t>(params_.size()); }

 private:
  Trainer(TrainOptions options, ModelConfig config);
  void load_state(const std::string& dir, bool restore_loader);
  float lr_at_step(int64_t s) const;
  void accumulate(std::vector<std::vector<float>>& stack, std::vector<int>& levels, std::vector<float>&& g) const;

  TrainOptions opt_;
  ModelConfig config_;
  ref::ModelOptions mopt_;
  TokenStream stream_;
  std::vector<float> params_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::vector<float*> router_bias_;  // per MoE block (model order)
  ref::ModelCache cache_;
  LoaderState loader_;
  int64_t step_ = 0, tokens_ = 0, attempts_ = 0;  // attempts: batches drawn (never rolled back)
  float spike_avg_ = 0;
  int64_t accepted_ = 0, consecutive_skips_ = 0, rollbacks_ = 0;
  std::string rollback_dir_;
};

std::string options_to_json(const TrainOptions& o);
TrainOptions options_from_json(const std::string& text);

}  // namespace preflight::train
