// cuBLAS BF16 GEMM for fast mode and its derived error bound (see cublas_gemm.hpp).
#include "cuda/layers/cublas_gemm.hpp"

#include <cublas_v2.h>

#include <cmath>

#include "cuda/layers/device_buffer.hpp"
#include "reference/core/error.hpp"
#include "reference/numerics/bf16.hpp"

namespace preflight::cuda {
namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS call failed: ", what, " (status ", int(s), ")");
}

std::vector<std::uint16_t> bf16_bits(const float* x, std::int64_t n) {
  std::vector<std::uint16_t> b(std::size_t(n > 0 ? n : 0));
  for (std::int64_t i = 0; i < n; ++i) b[std::size_t(i)] = num::to_bf16(x[i]).bits;
  return b;
}

}  // namespace

CublasBf16Gemm::CublasBf16Gemm() {
  cublasHandle_t h = nullptr;
  check_cublas(cublasCreate(&h), "cublasCreate");
  handle_ = h;
}

CublasBf16Gemm::~CublasBf16Gemm() {
  if (handle_) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

void CublasBf16Gemm::run(float* c, const std::uint16_t* a, const std::uint16_t* b, std::int64_t M, std::int64_t N,
                         std::int64_t K) const {
  PREFLIGHT_CHECK(M > 0 && N > 0 && K > 0 && M < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31),
                  "cublas gemm: shape M=", M, " N=", N, " K=", K);
  const float alpha = 1.0f, beta = 0.0f;
  // Row-major C (M,N) is column-major Cᵀ (N,M) = B·Aᵀ: B (N,K) row-major is column-major (K,N),
  // transposed by the op; A (M,K) row-major is column-major (K,M) as it stands.
  check_cublas(cublasGemmEx(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K),
                            &alpha, b, CUDA_R_16BF, int(K), a, CUDA_R_16BF, int(K), &beta, c, CUDA_R_32F, int(N),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx(bf16, COMPUTE_32F)");
}

void matmul_forward_cublas_bf16(float* out, const float* x, const float* w, std::int64_t M, std::int64_t N,
                                std::int64_t K) {
  PREFLIGHT_CHECK(out && x && w, "matmul_forward_cublas_bf16: null tensor");
  const auto xb = bf16_bits(x, M * K), wb = bf16_bits(w, N * K);
  const DeviceBuffer<std::uint16_t> a(xb), b(wb);
  DeviceBuffer<float> c(M * N);
  CublasBf16Gemm gemm;
  gemm.run(c.get(), a.get(), b.get(), M, N, K);
  c.download(out);
}

std::vector<double> fast_gemm_bound(const float* x, const float* w, std::int64_t M, std::int64_t N, std::int64_t K) {
  const double u = std::ldexp(1.0, -24), k = double(K);
  const double gamma = k * u / (1.0 - k * u) + k * 2 * u / (1.0 - k * 2 * u);
  std::vector<double> xa(std::size_t(M * K)), wa(std::size_t(N * K));
  for (std::int64_t i = 0; i < M * K; ++i) xa[std::size_t(i)] = std::fabs(double(num::round_to_bf16(x[i])));
  for (std::int64_t i = 0; i < N * K; ++i) wa[std::size_t(i)] = std::fabs(double(num::round_to_bf16(w[i])));
  std::vector<double> bound(std::size_t(M * N));
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (std::int64_t i = 0; i < K; ++i) s += xa[std::size_t(m * K + i)] * wa[std::size_t(n * K + i)];
      bound[std::size_t(m * N + n)] = gamma * s * (1.0 + 1e-12);  // the double sum's own error
    }
  return bound;
}

}  // namespace preflight::cuda
