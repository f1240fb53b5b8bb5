#include "reference/optim/optimizer.hpp"

#include <cmath>

#include "reference/core/error.hpp"

namespace preflight::optim {

Optimizer::Optimizer(std::vector<ParamTensor> tensors, int64_t n_params, OptimizerConfig cfg)
    : tensors_(std::move(tensors)), n_params_(n_params), cfg_(cfg) {
  validate_tensors(tensors_, n_params_);
  int64_t adam = 0, muon = 0;
  for (const ParamTensor& t : tensors_) {
    if (t.kind == ParamKind::router_bias) {
      state_offset_.push_back(-1);
    } else if (uses_muon(t)) {
      state_offset_.push_back(muon);
      muon += t.numel();
    } else {
      state_offset_.push_back(adam);
      adam += t.numel();
    }
  }
  mom_.assign(static_cast<size_t>(muon), 0.0f);
  if (cfg_.adamw.moments == MomentDtype::fp32) {
    m32_.assign(static_cast<size_t>(adam), 0.0f);
    v32_.assign(static_cast<size_t>(adam), 0.0f);
  } else {
    m16_.assign(static_cast<size_t>(adam), num::bf16{0});
    v16_.assign(static_cast<size_t>(adam), num::bf16{0});
  }
}

bool Optimizer::uses_muon(const ParamTensor& t) const {
  return cfg_.use_muon && t.kind == ParamKind::matrix_hidden;
}

StepResult Optimizer::step(float* params, float* grads, float lr) {
  PREFLIGHT_CHECK(params && grads, "Optimizer::step: null params or grads");
  StepResult result;
  const ClipResult clip = clip_grad_norm(grads, tensors_, cfg_.max_grad_norm);
  result.grad_norm = clip.norm;
  result.clip_coef = clip.coef;
  if (!std::isfinite(clip.norm)) {
    result.skipped = true;
    return result;
  }
  const int64_t t = t_ + 1;
  const AdamWScalars with_decay = adamw_scalars(cfg_.adamw, lr, t, true);
  const AdamWScalars no_decay = adamw_scalars(cfg_.adamw, lr, t, false);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const ParamTensor& tn = tensors_[i];
    if (tn.kind == ParamKind::router_bias) continue;
    float* p = params + tn.offset;
    const float* g = grads + tn.offset;
    const int64_t so = state_offset_[i];
    const bool decay = cfg_.decay(tn.kind);
    if (uses_muon(tn)) {
      const int64_t R = tn.rows(), C = tn.cols(), mat = R * C;
      for (int64_t k = 0; k < tn.count(); ++k)
        muon_step(p + k * mat, g + k * mat, mom_.data() + so + k * mat, R, C, cfg_.muon, lr, decay, work_);
    } else if (cfg_.adamw.moments == MomentDtype::fp32) {
      adamw_step(p, g, m32_.data() + so, v32_.data() + so, tn.numel(), decay ? with_decay : no_decay);
    } else {
      adamw_step(p, g, m16_.data() + so, v16_.data() + so, tn.numel(), decay ? with_decay : no_decay);
    }
  }
  t_ = t;
  return result;
}

std::vector<StateTensor> Optimizer::state_tensors() {
  std::vector<StateTensor> out;
  const bool bf16 = cfg_.adamw.moments == MomentDtype::bf16;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const ParamTensor& tn = tensors_[i];
    const int64_t so = state_offset_[i];
    if (so < 0) continue;
    if (uses_muon(tn)) {
      out.push_back({tn.name + ".momentum_buffer", mom_.data() + so, tn.numel(), StateDtype::fp32});
    } else if (bf16) {
      out.push_back({tn.name + ".exp_avg", m16_.data() + so, tn.numel(), StateDtype::bf16});
      out.push_back({tn.name + ".exp_avg_sq", v16_.data() + so, tn.numel(), StateDtype::bf16});
    } else {
      out.push_back({tn.name + ".exp_avg", m32_.data() + so, tn.numel(), StateDtype::fp32});
      out.push_back({tn.name + ".exp_avg_sq", v32_.data() + so, tn.numel(), StateDtype::fp32});
    }
  }
  return out;
}

}  // namespace preflight::optim
