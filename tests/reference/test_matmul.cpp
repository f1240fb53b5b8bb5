// Linear layer (y = x·Wᵀ + b): forward vs float64 oracle under the dot-product bound,
// every element bit-equal to the contract's dot, batch invariance, thread invariance,
// backward vs central finite differences of the float64 oracle.
// Legend: M = rows (tokens), K = input features, N = output features.
#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "reference/layers/gemm_kernel.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/numerics/reduce.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

struct MatmulCase {
  int64_t M, N, K;
  bool bias;
  std::string name() const {
    return "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K) +
           (bias ? "_bias" : "");
  }
};

const MatmulCase kCases[] = {
    {1, 1, 1, false},   {3, 5, 7, true},      {33, 17, 130, true},   {130, 33, 257, false},
    {7, 300, 128, true}, {97, 19, 129, true}, {2, 3, 2, true},       {5, 1, 1000, false},
};

// float64 oracle: out = x·Wᵀ + b, and the magnitude Σ|x·w| + |b| that bounds the error.
void matmul_oracle(std::vector<double>& out, std::vector<double>& mag, const std::vector<double>& x,
                   const std::vector<double>& w, const double* b, int64_t M, int64_t N, int64_t K) {
  out.assign(M * N, 0.0);
  mag.assign(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += x[m * K + k] * w[n * K + k];
        a += std::fabs(x[m * K + k] * w[n * K + k]);
      }
      out[m * N + n] = s + (b ? b[n] : 0.0);
      mag[m * N + n] = a + (b ? std::fabs(b[n]) : 0.0);
    }
}

class Matmul : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(Matmul, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto [M, N, K, has_bias] = GetParam();
  const auto x = randn(M * K, 1), w = randn(N * K, 2, 0.1f), b = randn(N, 3);
  std::vector<float> y(M * N);
  matmul_forward(y.data(), x.data(), w.data(), has_bias ? b.data() : nullptr, M, N, K);
  std::vector<double> want, mag;
  const auto bd = to_double(b);
  matmul_oracle(want, mag, to_double(x), to_double(w), has_bias ? bd.data() : nullptr, M, N, K);
  // Bound: the dot is ≤ 128 fma roundings in a block plus one add per block, and the
  // bias add one more: |y − exact| ≤ γ_{min(K,128) + ⌈K/128⌉ + 1} · (Σ|x_k w_k| + |b|).
  std::vector<double> bound(mag.size());
  for (size_t i = 0; i < mag.size(); ++i) bound[i] = gamma32(dot_roundings(K) + 1) * mag[i];
  EXPECT_LE(worst_ratio(y, want, bound), 1.0);
}

TEST_P(Matmul, EveryElementIsTheContractDot) {
  const auto [M, N, K, has_bias] = GetParam();
  const auto x = randn(M * K, 4), w = randn(N * K, 5);
  std::vector<float> y(M * N);
  matmul_forward(y.data(), x.data(), w.data(), nullptr, M, N, K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const float d = num::dot_k128_strided(&x[m * K], 1, &w[n * K], 1, K);
      ASSERT_EQ(std::bit_cast<uint32_t>(y[m * N + n]), std::bit_cast<uint32_t>(d)) << m << "," << n;
    }
}

TEST_P(Matmul, BatchInvariantRowByRow) {
  const auto [M, N, K, has_bias] = GetParam();
  const auto x = randn(M * K, 6), w = randn(N * K, 7), b = randn(N, 8);
  const float* bias = has_bias ? b.data() : nullptr;
  std::vector<float> y(M * N), row(N);
  matmul_forward(y.data(), x.data(), w.data(), bias, M, N, K);
  for (int64_t m = 0; m < M; ++m) {
    matmul_forward(row.data(), &x[m * K], w.data(), bias, 1, N, K);
    ASSERT_TRUE(bits_equal(row, std::vector<float>(y.begin() + m * N, y.begin() + (m + 1) * N)))
        << "row " << m;
  }
}

TEST_P(Matmul, OneAndTwoThreadsAndRepeatsBitIdentical) {
  const auto [M, N, K, has_bias] = GetParam();
  const auto x = randn(M * K, 9), w = randn(N * K, 10), b = randn(N, 11), g = randn(M * N, 12);
  auto run = [&] {
    std::vector<float> y(M * N), dx(M * K), dw(N * K), db(N);
    matmul_forward(y.data(), x.data(), w.data(), has_bias ? b.data() : nullptr, M, N, K);
    matmul_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), M, N, K);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dw.begin(), dw.end());
    y.insert(y.end(), db.begin(), db.end());
    return y;
  };
  const auto one = with_threads(1, run);
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, with_threads(1, run)));
}

// Every shape, including those whose gradient dots cross a 128-wide block (N = 300: dx; M =
// 130: dw, db): those are where a wrong block order shows. Probed entries: ~40 per gradient,
// evenly spread and including the last (the partial block), so each case stays well under a
// second on one core.
TEST_P(Matmul, BackwardMatchesFiniteDifferencesOfFloat64Oracle) {
  const auto [M, N, K, has_bias] = GetParam();
  const auto x = randn(M * K, 13), w = randn(N * K, 14), b = randn(N, 15), g = randn(M * N, 16);
  std::vector<float> dx(M * K), dw(N * K), db(N);
  matmul_backward(dx.data(), dw.data(), has_bias ? db.data() : nullptr, g.data(), x.data(), w.data(),
                  M, N, K);
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), gd = to_double(g);
  // L = Σ g ⊙ (x·Wᵀ + b) is linear in each input, so the central difference with step h = 1
  // has no truncation error. Its float64 error: L is a sum of M·N terms g·y, each y a sum of
  // K products and a bias, so |L̂ − L| ≤ γ64(K + M·N + 2)·S with S = Σ|g|·(Σ|x·w| + |b|) (+ the
  // probe's h·Σ|g|·max|operand|); the difference of two such values over 2h, plus the rounding
  // of v ± h (≤ u64·(|v| + h), relative to the step) times |∂L| ≤ Σ_n|g·w| (resp. Σ_m|g·x|, Σ|g|).
  // fp32 side, per entry: dx[m][k] = 0 + dot over n of g[m][n]·w[n][k], a contract dot of
  // length N (one add into the zeroed buffer): |dx − ∂L| ≤ γ(dot(N) + 1)·Σ_n |g[m][n]·w[n][k]|;
  // dw[n][k] likewise over the M tokens with |g[m][n]·x[m][k]|; db[n] over M with |g[m][n]|.
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                  const std::vector<double>& bv) {
    std::vector<double> y, mag;
    matmul_oracle(y, mag, xv, wv, has_bias ? bv.data() : nullptr, M, N, K);
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += gd[i] * y[i];
    return L;
  };
  constexpr double kU64 = 0x1p-53, h = 1.0;
  auto gamma64 = [](double n) { return n * kU64 / (1 - n * kU64); };
  double S = 0, sum_g = 0, max_x = 0, max_w = 0;
  {
    std::vector<double> y, mag;
    matmul_oracle(y, mag, xd, wd, has_bias ? bd.data() : nullptr, M, N, K);
    for (size_t i = 0; i < mag.size(); ++i) S += std::fabs(gd[i]) * mag[i], sum_g += std::fabs(gd[i]);
  }
  for (float v : x) max_x = std::max(max_x, double(std::fabs(v)));
  for (float v : w) max_w = std::max(max_w, double(std::fabs(v)));
  const double fd_err = 2 * gamma64(double(K + M * N + 2)) * (S + h * sum_g * std::max({max_x, max_w, 1.0})) / (2 * h);
  int probed = 0;
  auto check = [&](const char* what, const std::vector<float>& grad, const std::vector<double>& at,
                   const std::function<double(const std::vector<double>&)>& f,
                   const std::function<std::pair<double, double>(size_t)>& magnitude_and_len) {
    const size_t n = grad.size(), stride = std::max<size_t>(1, n / 40);
    int bad = 0;
    for (size_t i = 0; i < n; i = (i + 1 < n && i + stride >= n) ? n - 1 : i + stride) {
      const auto [mag, len] = magnitude_and_len(i);
      const double fd = central_diff(f, at, i, h);
      const double tol = gamma32(dot_roundings(int64_t(len)) + 1) * mag + fd_err + kU64 * mag * (std::fabs(at[i]) + h) / h;
      ++probed;
      if (std::fabs(double(grad[i]) - fd) > tol && bad++ < 5)
        ADD_FAILURE() << what << "[" << i << "]: backward " << grad[i] << " vs finite difference " << fd << " (tol " << tol
                      << ")";
      if (i == n - 1) break;
    }
    EXPECT_EQ(bad, 0) << what;
  };
  check("dx", dx, xd, [&](const auto& v) { return loss(v, wd, bd); }, [&](size_t i) {
    const int64_t m = int64_t(i) / K, k = int64_t(i) % K;
    double a = 0;
    for (int64_t n = 0; n < N; ++n) a += std::fabs(gd[m * N + n] * wd[n * K + k]);
    return std::pair<double, double>(a, double(N));
  });
  check("dw", dw, wd, [&](const auto& v) { return loss(xd, v, bd); }, [&](size_t i) {
    const int64_t n = int64_t(i) / K, k = int64_t(i) % K;
    double a = 0;
    for (int64_t m = 0; m < M; ++m) a += std::fabs(gd[m * N + n] * xd[m * K + k]);
    return std::pair<double, double>(a, double(M));
  });
  if (has_bias)
    check("db", db, bd, [&](const auto& v) { return loss(xd, wd, v); }, [&](size_t i) {
      double a = 0;
      for (int64_t m = 0; m < M; ++m) a += std::fabs(gd[m * N + int64_t(i)]);
      return std::pair<double, double>(a, double(M));
    });
  RecordProperty("probed_entries", std::to_string(probed));
}

TEST(MatmulBackward, WeightGradientIsContractDotOverTokens) {
  const int64_t M = 133, N = 5, K = 3;
  const auto x = randn(M * K, 17), g = randn(M * N, 18), w = randn(N * K, 19);
  std::vector<float> dw(N * K);
  matmul_backward(nullptr, dw.data(), nullptr, g.data(), x.data(), w.data(), M, N, K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      ASSERT_EQ(std::bit_cast<uint32_t>(dw[n * K + k]),
                std::bit_cast<uint32_t>(0.0f + num::dot_k128_strided(&g[n], N, &x[k], K, M)));
}

INSTANTIATE_TEST_SUITE_P(Cases, Matmul, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace preflight::ref::test
