// SwiGLU FFN forward/backward. Legend: T = tokens, C = channels, H = intermediate width.
#include "reference/layers/swiglu.hpp"

#include <vector>

#include "reference/layers/prims.hpp"

namespace preflight::ref {

void swiglu_forward(float* out, float* h1, float* h3, float* act, const float* x, const float* w1,
                    const float* w3, const float* w2, int64_t T, int64_t C, int64_t H,
                    const LinearPrecision& p) {
  linear_forward(h1, x, w1, nullptr, T, H, C, p);
  linear_forward(h3, x, w3, nullptr, T, H, C, p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < T * H; ++i) act[i] = px::silu(h1[i]) * h3[i];
  linear_forward(out, act, w2, nullptr, T, C, H, p);
}

void swiglu_backward(float* dx, float* dw1, float* dw3, float* dw2, const float* dout,
                     const float* h1, const float* h3, const float* act, const float* x,
                     const float* w1, const float* w3, const float* w2, int64_t T, int64_t C,
                     int64_t H, const LinearPrecision& p) {
  std::vector<float> dact(T * H, 0.0f), dh1(T * H), dh3(T * H);  // (T,H) each
  linear_backward(dact.data(), dw2, nullptr, dout, act, w2, T, C, H, p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < T * H; ++i) {
    dh1[i] = (dact[i] * h3[i]) * px::silu_grad(h1[i]);
    dh3[i] = dact[i] * px::silu(h1[i]);
  }
  linear_backward(dx, dw1, nullptr, dh1.data(), x, w1, T, H, C, p);
  linear_backward(dx, dw3, nullptr, dh3.data(), x, w3, T, H, C, p);
}

}  // namespace preflight::ref
