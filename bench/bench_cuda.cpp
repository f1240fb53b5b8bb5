// GPU GEMM throughput (built only with the CUDA path; every benchmark skips with a message
// when no GPU is visible). Deterministic mode: the contract-order SIMT kernel
// (cuda/layers/kernels.hpp gemm_nt, one thread per output, fp32 fma chains). Fast mode:
// cuBLAS BF16 (cublasGemmEx, CUBLAS_COMPUTE_32F). DeepSeek-V3 shapes (M tokens × N × K):
// 4096×7168×16384 and 4096×2048×7168. Counters: TFLOP/s (2·M·N·K per iteration).
//
//   ./build/bench/bench_cuda --benchmark_filter=Cublas     (seconds)
//   ./build/bench/bench_cuda --benchmark_filter=Deterministic  (minutes: a SIMT fp32 kernel)
#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cuda/device.hpp"
#include "cuda/layers/cublas_gemm.hpp"
#include "cuda/layers/device_buffer.hpp"
#include "cuda/layers/kernels.hpp"

namespace {

using preflight::cuda::DeviceBuffer;

bool have_gpu(benchmark::State& state) {
  if (preflight::cuda::visible_device_count() > 0) return true;
  state.SkipWithError("no CUDA device visible: GPU benchmarks skipped");
  return false;
}

void report(benchmark::State& state, double M, double N, double K) {
  state.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * M * N * K * double(state.iterations()) * 1e-12, benchmark::Counter::kIsRate);
}

void DeterministicGemm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const std::int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  std::vector<float> h(std::size_t(std::max(M, N) * K));
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(int(i % 17) - 8) * 0.125f;  // exact small values
  const DeviceBuffer<float> a(h.data(), M * K), b(h.data(), N * K);
  DeviceBuffer<float> c(M * N);
  for (auto _ : state) {
    preflight::cuda::dev::gemm_nt(c.get(), N, a.get(), K, 1, b.get(), K, 1, nullptr, false, M, N, K);
    cudaDeviceSynchronize();
  }
  report(state, double(M), double(N), double(K));
}

void CublasBf16Gemm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const std::int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  std::vector<std::uint16_t> h(std::size_t(std::max(M, N) * K));
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = std::uint16_t(0x3F80u + (i % 7));  // bf16 values near 1
  const DeviceBuffer<std::uint16_t> a(h.data(), M * K), b(h.data(), N * K);
  DeviceBuffer<float> c(M * N);
  const preflight::cuda::CublasBf16Gemm gemm;
  gemm.run(c.get(), a.get(), b.get(), M, N, K);  // warm-up (heuristics, workspace)
  cudaDeviceSynchronize();
  for (auto _ : state) {
    gemm.run(c.get(), a.get(), b.get(), M, N, K);
    cudaDeviceSynchronize();
  }
  report(state, double(M), double(N), double(K));
}

}  // namespace

BENCHMARK(DeterministicGemm)->Args({4096, 7168, 16384})->Args({4096, 2048, 7168})->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(CublasBf16Gemm)->Args({4096, 7168, 16384})->Args({4096, 2048, 7168})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
