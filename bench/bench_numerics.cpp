// Cost of the numerics contract on the CPU (docs/NUMERICS.md): each elementwise function in
// ns/element next to the C library's (not bit-reproducible) equivalent, and the K-blocked dot
// product next to a plain sequential loop. Run: ./build/bench/bench_numerics
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "reference/numerics/numerics.hpp"

namespace {

namespace num = preflight::num;

constexpr int kElements = 4096;

std::vector<float> inputs(float lo, float hi) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(kElements);
  for (float& x : v) x = d(gen);
  return v;
}

template <class F>
void run_elementwise(benchmark::State& state, F f, float lo, float hi) {
  const std::vector<float> x = inputs(lo, hi);
  std::vector<float> y(kElements);
  for (auto _ : state) {
    for (int i = 0; i < kElements; ++i) y[i] = f(x[i]);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
  state.counters["ns/element"] = benchmark::Counter(static_cast<double>(state.iterations()) * kElements,
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

#define PAIR(name, ours, theirs, lo, hi)                                                                 \
  void BM_num_##name(benchmark::State& s) { run_elementwise(s, [](float x) { return ours; }, lo, hi); } \
  void BM_std_##name(benchmark::State& s) { run_elementwise(s, [](float x) { return theirs; }, lo, hi); } \
  BENCHMARK(BM_num_##name);                                                                              \
  BENCHMARK(BM_std_##name)

PAIR(exp, num::exp(x), std::exp(x), -20.0f, 20.0f);
PAIR(log, num::log(x), std::log(x), 1e-6f, 1e6f);
PAIR(log1p, num::log1p(x), std::log1p(x), -0.5f, 10.0f);
PAIR(sigmoid, num::sigmoid(x), 1.0f / (1.0f + std::exp(-x)), -20.0f, 20.0f);
PAIR(silu, num::silu(x), x / (1.0f + std::exp(-x)), -20.0f, 20.0f);
PAIR(silu_grad, num::silu_grad(x), [](float v) {
  const float s = 1.0f / (1.0f + std::exp(-v));
  return s * (1.0f + v * (1.0f - s));
}(x), -20.0f, 20.0f);
PAIR(tanh, num::tanh(x), std::tanh(x), -5.0f, 5.0f);
PAIR(rsqrt, num::rsqrt(x), 1.0f / std::sqrt(x), 1e-6f, 1e6f);
PAIR(gelu, num::gelu(x), 0.5f * x * (1.0f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x))), -8.0f, 8.0f);
PAIR(softplus, num::softplus(x), std::log1p(std::exp(x)), -20.0f, 20.0f);
PAIR(sin_2pi, num::sin_2pi(x), std::sin(6.283185307f * x), 0.0f, 1.0f);

#undef PAIR

// Dot products over K = state.range(0), 64 rows of a K-major weight matrix per iteration.
void run_dot(benchmark::State& state, bool blocked) {
  const auto K = static_cast<std::int64_t>(state.range(0));
  constexpr int kRows = 64;
  std::mt19937 gen(2);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(K)), w(static_cast<std::size_t>(K) * kRows);
  for (float& v : a) v = d(gen);
  for (float& v : w) v = d(gen);
  std::vector<float> out(kRows);
  for (auto _ : state) {
    for (int r = 0; r < kRows; ++r) {
      const float* wr = &w[static_cast<std::size_t>(r) * K];
      if (blocked) {
        out[r] = num::dot_k128(a.data(), wr, K);
      } else {
        float acc = 0.0f;
        for (std::int64_t k = 0; k < K; ++k) acc += a[k] * wr[k];
        out[r] = acc;
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kRows * K);
}

void BM_dot_k128(benchmark::State& s) { run_dot(s, true); }
void BM_dot_naive_loop(benchmark::State& s) { run_dot(s, false); }
BENCHMARK(BM_dot_k128)->Arg(128)->Arg(1000)->Arg(7168);
BENCHMARK(BM_dot_naive_loop)->Arg(128)->Arg(1000)->Arg(7168);

}  // namespace

BENCHMARK_MAIN();
