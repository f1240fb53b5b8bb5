// The optimizer the trainer calls once per step (docs/OPTIMIZERS.md §7):
//   clip the gradients by global norm (grad_clip.hpp), then update every tensor by its kind:
//   matrix_hidden → Muon (muon.hpp) when use_muon, else AdamW; embedding, head, norm, bias →
//   AdamW (adamw.hpp); router_bias → untouched (schedules.hpp: update_router_bias).
// Tensors are updated in list order; each update only touches its own elements and state, so
// the order does not change any bit. QK-Clip (qk_clip.hpp) runs after step(), by the trainer,
// with the max logits the forward pass recorded.
//
// State (for checkpoints): the step count t and, per tensor, in list order
//   AdamW: "<name>.exp_avg", "<name>.exp_avg_sq"   fp32 or bf16, numel elements each
//   Muon:  "<name>.momentum_buffer"                  fp32, numel elements
// Restoring those bytes and t resumes bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reference/numerics/bf16.hpp"
#include "reference/optim/adamw.hpp"
#include "reference/optim/grad_clip.hpp"
#include "reference/optim/muon.hpp"
#include "reference/optim/params.hpp"

namespace preflight::optim {

struct OptimizerConfig {
  bool use_muon = true;       // Muon for matrix_hidden (false: AdamW everywhere)
  AdamWConfig adamw;
  MuonConfig muon;
  DecayPolicy decay;
  double max_grad_norm = 1.0;  // <= 0: no clipping (the norm is still reported)
};

enum class StateDtype { fp32, bf16 };
struct StateTensor {
  std::string name;
  void* data = nullptr;
  int64_t numel = 0;
  StateDtype dtype = StateDtype::fp32;
  int64_t bytes() const { return numel * (dtype == StateDtype::fp32 ? 4 : 2); }
};

struct StepResult {
  float grad_norm = 0.0f;  // before clipping
  float clip_coef = 1.0f;
  bool skipped = false;    // non-finite gradient norm: nothing was updated, t unchanged
};

class Optimizer {
 public:
  Optimizer(std::vector<ParamTensor> tensors, int64_t n_params, OptimizerConfig cfg);

  // One step at learning rate lr (the float a schedule returned): clips grads in place, updates
  // params, t ← t + 1. A non-finite gradient norm skips the update (result.skipped).
  StepResult step(float* params, float* grads, float lr);

  int64_t step_count() const { return t_; }
  void set_step_count(int64_t t) { t_ = t; }  // when restoring a checkpoint
  std::vector<StateTensor> state_tensors();
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const OptimizerConfig& config() const { return cfg_; }
  bool uses_muon(const ParamTensor& t) const;

 private:
  std::vector<ParamTensor> tensors_;
  int64_t n_params_;
  OptimizerConfig cfg_;
  int64_t t_ = 0;
  std::vector<int64_t> state_offset_;  // per tensor: first element in its state arrays (-1: none)
  std::vector<float> m32_, v32_, mom_;
  std::vector<num::bf16> m16_, v16_;
  std::vector<float> work_;
};

}  // namespace preflight::optim
