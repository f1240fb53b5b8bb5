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
//   spike (a robust rule; docs/TRAINING.md §4): after max(1, spike_warmup) accepted steps, a
//     step whose loss L exceeds spike_threshold × the running average A is a candidate. The
//     trainer then asks what changed, with two forward passes at the current parameters:
//       model: the last accepted batch, whose loss was L_prev when it was applied, now has
//              loss ≥ (L_prev + L)/2 → the model itself got worse: skip ("degraded-skip");
//       data:  the next batch (peeked; not consumed) has loss ≥ (A + L)/2 → the data changed
//              (a new kind of text): the step is applied as usual (event "data-shift");
//       else:  an isolated outlier batch (corrupt or garbage data): skip ("spike-skip").
//     A skip consumes the batch's data without an update. spike_max_skips consecutive skips →
//     roll back to the newest checkpoint of the output directory (parameters, optimizer,
//     biases, step, safeguard state) but KEEP the current data position, so the offending
//     data is not replayed.
//     Running average: A = float(0.9·A + 0.1·L) in double over accepted steps (the first
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
  double spike_threshold = 2.0;    // loss > threshold × running average is a spike candidate (0: off)
  int64_t spike_warmup = 20;       // accepted steps before spike detection starts
  int64_t spike_max_skips = 3;     // consecutive skips before rolling back (0: never roll back)
  int64_t checkpoint_every = 100;  // with an output directory: a checkpoint every N steps (0: only at the end)
  int64_t keep = 3;                // checkpoints kept, newest first (0: all)
  std::vector<int64_t> poison_steps;  // test hook: these step ATTEMPTS (0-based batches drawn, never rolled back) have every target of their first micro-batch replaced by vocab_size − 1 (a loss spike)
};

// Ranges of the options (the CLI's flags and trainer.json use the same ones).
namespace limits {
constexpr int64_t kMaxTokensPerStep = int64_t{1} << 24;  // K·B·T: a step of 16.8M tokens is hours on the CPU reference
constexpr int64_t kMaxCount = int64_t{1} << 20;          // B, T, K each
constexpr int64_t kMaxSteps = 1'000'000'000;             // steps, warm-up, checkpoint cadence
constexpr double kMaxLr = 10.0;
constexpr double kMaxWeight = 100.0;                     // weight decay, MTP λ, balance α
constexpr double kMaxGradNorm = 1e9;
constexpr double kMinQkTau = 1.0, kMaxQkTau = 1e6;       // a max attention logit
constexpr double kMaxSpikeThreshold = 1e6;
constexpr int64_t kMaxSpikeSkips = 1000;
constexpr int64_t kMaxKeep = 1'000'000;
constexpr int64_t kMaxAttempt = int64_t{1} << 40;       // poison-step attempts
}  // namespace limits

// Every range and cross-field rule (lr_min ≤ lr, warm-up below steps, K·B·T, names of the
// choices); `origin` prefixes the message ("" for command-line flags: "--lr -1: ...").
void validate_options(const TrainOptions& o, const std::string& origin = "");

struct StepReport {
  int64_t step = 0;       // the step just attempted (0-based)
  bool applied = false;   // false: skipped (spike or non-finite)
  std::string event;      // "", "data-shift" (applied), "spike-skip", "degraded-skip", "nonfinite-skip", "+rollback:ckpt-…"
  float loss = 0, ce = 0, mtp = 0, aux = 0;
  float grad_norm = 0, lr = 0;
  int64_t tokens = 0;     // tokens consumed so far (after this step)
  double seconds = 0;     // wall time of the step
  double load_max_over_min = 0;  // worst MoE block (inf when an expert got no token)
  double load_cv = 0;            // worst MoE block: std/mean of the expert loads
  float max_attn_logit = 0;      // max over layers and heads
  double step_ms_fwd_bwd = 0, step_ms_optim = 0;
};

// The last applied batch, for the spike rule's model check (saved in trainer.json, so a
// resumed run classifies a spike exactly as the uninterrupted one would).
struct AcceptedBatch {
  bool valid = false;
  LoaderState from;     // the loader state it was drawn from
  int64_t attempt = 0;  // its attempt index (poison hook)
  float loss = 0;       // its loss when it was applied
};

struct SavedState;  // a parsed, cross-checked checkpoint (trainer.cpp)

class Trainer {
 public:
  explicit Trainer(TrainOptions options);  // fresh run: model_init(seed)
  // Restores everything from a verified checkpoint (a ckpt-* directory).
  static std::unique_ptr<Trainer> resume(const std::string& checkpoint_dir);
  // The same, continuing with changed options: `change` edits a copy of the checkpoint's
  // options. Only what is safe mid-run may differ (docs/TRAINING.md §3): the schedule (steps,
  // lr, lr_min, warmup, schedule), the safeguards (on_nonfinite, spike_*), checkpoint_every,
  // keep, and data when the new path holds the same tokens (a moved copy: it is read instead
  // of the checkpoint's path, which may no longer exist). Any other difference throws naming
  // its flag. `changed` receives the changed fields' flags (as --name).
  static std::unique_ptr<Trainer> resume(const std::string& checkpoint_dir,
                                         const std::function<void(TrainOptions&)>& change,
                                         std::vector<std::string>& changed);

  StepReport step();  // one step (or a skip / rollback)
  bool done() const { return step_ >= opt_.steps; }
  int64_t step_index() const { return step_; }

  // Writes OUT/ckpt-<step> atomically, keeps the newest `keep`. Returns its path.
  std::string save(const std::string& out_dir, int64_t keep);
  void set_rollback_dir(const std::string& out_dir) { rollback_dir_ = out_dir; }

  const TrainOptions& options() const { return opt_; }
  const ModelConfig& config() const { return config_; }
  const std::vector<float>& params() const { return params_; }
  float* mutable_params() { return params_.data(); }  // tools and tests (e.g. injecting a NaN)
  const LoaderState& loader() const { return loader_; }
  const TokenStream& stream() const { return stream_; }
  int64_t n_params() const { return static_cast<int64_t>(params_.size()); }

 private:
  Trainer(TrainOptions options, ModelConfig config);
  // Restores a loaded checkpoint; restore_loader = false (a roll-back) keeps the data position,
  // the attempt counter and the options of the running trainer.
  void apply_state(const SavedState& s, bool restore_loader);
  float lr_at_step(int64_t s) const;
  // Loss (the step's micro-batch mean) of the batch drawn from `from` as attempt `attempt`, at
  // the current parameters, without touching any state; +inf when the forward pass throws.
  float batch_loss(LoaderState from, int64_t attempt);
  bool poisoned(int64_t attempt) const;
  void draw(PackedBatch& mb, LoaderState& st, bool poison) const;  // next micro-batch, poison hook applied
  float micro_mean(const std::vector<float>& v) const;             // the tree mean over micro-batches
  std::string classify_spike(float loss);  // "degraded-skip", "spike-skip" or "data-shift"

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
  AcceptedBatch last_;
  std::string rollback_dir_;
};

std::string options_to_json(const TrainOptions& o);
// Strict: every field present with its type, ranges checked; errors name `origin` and the field.
// `text` is the "options" object of a trainer.json.
TrainOptions options_from_json(const std::string& text, const std::string& origin = "trainer.json");

// The flags (as --name) whose values differ between a and b, split into those a resumed run
// may change (the schedule, the safeguards, checkpoint cadence; `data` is listed as safe here
// and checked for identical tokens by resume) and the rest.
struct OptionDiff {
  std::vector<std::string> safe, unsafe;
};
OptionDiff diff_options(const TrainOptions& a, const TrainOptions& b);

}  // namespace preflight::train
