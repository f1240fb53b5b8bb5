// Global-norm gradient clipping (docs/OPTIMIZERS.md §4).
//
// Order, chosen so a multi-rank trainer can reproduce it bit for bit:
//   s_i   = dot_k128(g_i, g_i, numel_i) in fp32, per tensor i over its flat elements (one chain;
//           a rank holding part of a tensor must hand its running block total on, or gather the
//           per-128-block partials, so the blocks are added in order from +0)
//   total = Σ_i double(s_i), in the order of the tensor list, from 0.0 (double adds)
//   norm  = float(√total)  (double sqrt, rounded once)
//   coef  = float(min(1, max_norm / (double(norm) + 1e-6)))  in double, rounded once
//   g     = g·coef per element, only when coef < 1 (so unclipped gradients are untouched).
// A non-finite norm scales nothing: the caller sees it in the result and skips the step.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/optim/params.hpp"

namespace preflight::optim {

// The fp32 sum of squares of each tensor (the s_i above), in list order.
std::vector<float> tensor_square_sums(const float* grad, const std::vector<ParamTensor>& tensors);
// norm from the s_i, in list order.
float global_norm_from_sums(const std::vector<float>& sums);

struct ClipResult {
  float norm = 0.0f;  // the global norm before clipping
  float coef = 1.0f;  // the factor applied (1: not clipped)
};
// Clips grad in place over the listed tensors; max_norm <= 0 disables clipping (norm still computed).
ClipResult clip_grad_norm(float* grad, const std::vector<ParamTensor>& tensors, double max_norm);

}  // namespace preflight::optim
