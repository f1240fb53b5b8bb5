// Fast mode (docs/CUDA.md §Fast mode): the linear forward as a cuBLAS BF16 GEMM
// (cublasGemmEx, bf16 inputs, CUBLAS_COMPUTE_32F, fp32 output). Its summation order is
// cuBLAS's, so it is NOT bit-equal to the reference; parity checks it against the reference's
// bf16 path under the derived bound of fast_gemm_bound(). Host-only header.
#pragma once

#include <cstdint>
#include <vector>

namespace preflight::cuda {

// A cuBLAS handle (RAII) running C (M,N) fp32 = A (M,K) bf16 · B (N,K) bf16 ᵀ on device
// pointers (bf16 as raw uint16 bits, row-major, the project's matmul convention).
class CublasBf16Gemm {
 public:
  CublasBf16Gemm();
  ~CublasBf16Gemm();
  CublasBf16Gemm(const CublasBf16Gemm&) = delete;
  CublasBf16Gemm& operator=(const CublasBf16Gemm&) = delete;
  void run(float* c, const std::uint16_t* a, const std::uint16_t* b, std::int64_t M, std::int64_t N,
           std::int64_t K) const;

 private:
  void* handle_ = nullptr;  // cublasHandle_t
};

// Host arrays: out (M,N) = bf16(x) (M,K) · bf16(w) (N,K)ᵀ through cuBLAS (no bias).
void matmul_forward_cublas_bf16(float* out, const float* x, const float* w, std::int64_t M, std::int64_t N,
                                std::int64_t K);

// The derived per-element bound on |fast − reference(bf16)| (docs/CUDA.md): both sides sum
// the same K exact products p_k = bf16(x)·bf16(w) (each exact in fp32) in different orders,
// so |fast − ref| ≤ (γ_K(u) + γ_K(2u)) · Σ_k |p_k|, u = 2^-24 (the reference's round-to-
// nearest fp32 adds) and 2u for the tensor-core accumulator (allowed to truncate).
// bound[m*N+n], computed in double.
std::vector<double> fast_gemm_bound(const float* x, const float* w, std::int64_t M, std::int64_t N, std::int64_t K);

}  // namespace preflight::cuda
