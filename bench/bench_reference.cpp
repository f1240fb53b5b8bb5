// Canonical reference GEMM (contract dot-product order, OpenMP over output tiles) vs
// Eigen's fp32 GEMM on the same shapes, both with all OpenMP threads.
// Run: ./build/bench/bench_reference --benchmark_filter=Gemm
// The ratio reference/Eigen is the quotient of the two items_per_second (FLOP/s) lines.
#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "reference/layers/matmul.hpp"

namespace {

std::vector<float> random_vector(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

void BM_ReferenceGemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_vector(n * n, 1), w = random_vector(n * n, 2);
  std::vector<float> y(n * n);
  for (auto _ : state) {
    preflight::ref::matmul_forward(y.data(), x.data(), w.data(), nullptr, n, n, n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * 2 * n * n * n);  // FLOPs
}

void BM_EigenGemm(benchmark::State& state) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = state.range(0);
  const auto xv = random_vector(n * n, 1), wv = random_vector(n * n, 2);
  const Mat x = Eigen::Map<const Mat>(xv.data(), n, n), w = Eigen::Map<const Mat>(wv.data(), n, n);
  Mat y(n, n);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();  // same convention: y = x·Wᵀ, W stored (out, in)
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * 2 * n * n * n);
}

void BM_ReferenceLinearBackward(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_vector(n * n, 1), w = random_vector(n * n, 2), g = random_vector(n * n, 3);
  std::vector<float> dx(n * n), dw(n * n);
  for (auto _ : state) {
    preflight::ref::matmul_backward(dx.data(), dw.data(), nullptr, g.data(), x.data(), w.data(), n, n, n);
    benchmark::DoNotOptimize(dw.data());
  }
  state.SetItemsProcessed(state.iterations() * 4 * n * n * n);
}

}  // namespace

BENCHMARK(BM_ReferenceGemm)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EigenGemm)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReferenceLinearBackward)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
