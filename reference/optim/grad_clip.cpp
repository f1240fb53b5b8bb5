#include "reference/optim/grad_clip.hpp"

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/numerics/reduce.hpp"

namespace preflight::optim {

// Elementwise loops split over OpenMP threads only above this size (a parallel region costs
// more than a small tensor); elements are independent, so the split never changes a bit.
constexpr int64_t kParallelMin = 1 << 16;

std::vector<float> tensor_square_sums(const float* grad, const std::vector<ParamTensor>& tensors) {
  PREFLIGHT_CHECK(grad, "tensor_square_sums: null gradient buffer");
  std::vector<float> sums(tensors.size());
  const int64_t n = static_cast<int64_t>(tensors.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    const float* g = grad + tensors[i].offset;
    sums[i] = num::dot_k128(g, g, tensors[i].numel());
  }
  return sums;
}

float global_norm_from_sums(const std::vector<float>& sums) {
  double total = 0.0;
  for (float s : sums) total += static_cast<double>(s);
  return static_cast<float>(std::sqrt(total));
}

ClipResult clip_grad_norm(float* grad, const std::vector<ParamTensor>& tensors, double max_norm) {
  ClipResult r;
  r.norm = global_norm_from_sums(tensor_square_sums(grad, tensors));
  if (max_norm <= 0.0 || !std::isfinite(r.norm)) return r;
  const double c = max_norm / (static_cast<double>(r.norm) + 1e-6);
  if (c >= 1.0) return r;
  r.coef = static_cast<float>(c);
  for (const ParamTensor& t : tensors) {
    float* g = grad + t.offset;
    const int64_t m = t.numel();
#pragma omp parallel for schedule(static) if (m >= kParallelMin)
    for (int64_t i = 0; i < m; ++i) g[i] = g[i] * r.coef;
  }
  return r;
}

}  // namespace preflight::optim
