// Linear layer forward/backward on top of the canonical GEMM kernel.
// Legend: M = rows (tokens), K = input features, N = output features.
#include "reference/layers/matmul.hpp"

#include "reference/core/error.hpp"
#include "reference/layers/gemm_kernel.hpp"

namespace preflight::ref {

void matmul_forward(float* out, const float* x, const float* w, const float* bias, int64_t M,
                    int64_t N, int64_t K) {
  PREFLIGHT_CHECK(out && x && w, "matmul_forward: null tensor (out, x or w)");
  gemm_nt_k128(out, N, x, K, 1, w, K, 1, bias, GemmStore::overwrite, M, N, K);
}

void matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x,
                     const float* w, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(dout && x && w, "matmul_backward: null tensor (dout, x or w)");
  // dx (M,K) = dout (M,N) · [w viewed (K,N)]ᵀ: B element (k, n) = w[n*K + k].
  if (dx) gemm_nt_k128(dx, K, dout, N, 1, w, 1, K, nullptr, GemmStore::accumulate, M, K, N);
  // dw (N,K) = [doutᵀ (N,M)] · [xᵀ (K,M)]ᵀ: reduction over the token dimension m.
  if (dw) gemm_nt_k128(dw, K, dout, 1, N, x, 1, K, nullptr, GemmStore::accumulate, N, K, M);
  if (dbias) {
    const float one = 1.0f;  // (1,M) row of ones with stride 0
    gemm_nt_k128(dbias, 1, dout, 1, N, &one, 0, 0, nullptr, GemmStore::accumulate, N, 1, M);
  }
}

}  // namespace preflight::ref
