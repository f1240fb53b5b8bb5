// Linear layer in the project's one matmul convention: weights stored (out, in),
// y = x · Wᵀ (+ bias). Every element is the contract's K-blocked dot product
// (gemm_kernel.hpp), so results are batch-invariant and thread-count-invariant.
//
// Legend: M = rows (tokens), K = input features, N = output features.
#pragma once

#include <cstdint>

namespace preflight::ref {

// out[m][n] = dot_k128(x[m][:], w[n][:]) (+ bias[n], one add after the dot).
void matmul_forward(float* out,        // (M,N)
                    const float* x,    // (M,K)
                    const float* w,    // (N,K)
                    const float* bias, // (N) or null
                    int64_t M, int64_t N, int64_t K);

// Gradients, each ACCUMULATED into its buffer with one add per element (g = g + d):
//   dx[m][k]  += dot_k128 over n (ascending) of dout[m][n]·w[n][k]
//   dw[n][k]  += dot_k128 over m (ascending, the token dimension) of dout[m][n]·x[m][k]
//   dbias[n]  += dot_k128 over m of dout[m][n]·1  (= blocked sum over tokens)
// Any of dx, dw, dbias may be null (not needed).
void matmul_backward(float* dx,          // (M,K) or null
                     float* dw,          // (N,K) or null
                     float* dbias,       // (N) or null
                     const float* dout,  // (M,N)
                     const float* x,     // (M,K)
                     const float* w,     // (N,K)
                     int64_t M, int64_t N, int64_t K);

}  // namespace preflight::ref
