// Linear layer (y = x·Wᵀ + b): forward vs float64 oracle under the dot-product bound,
// every element bit-equal to the contract's dot, batch invariance, thread invariance,
// backward vs central finite differences of the float64 oracle.
// Legend: M = rows (tokens), K = input features, N = output features.
#include <bit>
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

TEST_P(Matmul, BackwardMatchesFiniteDifferencesOfFloat64Oracle) {
  const auto [M, N, K, has_bias] = GetParam();
  if (M * N * K > 200000) GTEST_SKIP() << "finite differences cover the smaller cases";
  const auto x = randn(M * K, 13), w = randn(N * K, 14), b = randn(N, 15), g = randn(M * N, 16);
  std::vector<float> dx(M * K), dw(N * K), db(N);
  matmul_backward(dx.data(), dw.data(), has_bias ? db.data() : nullptr, g.data(), x.data(), w.data(),
                  M, N, K);
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), gd = to_double(g);
  // L = Σ g ⊙ (x·Wᵀ + b) is linear in each input, so the central difference is exact up
  // to float64 rounding (step h = 1 loses nothing). The fp32 gradients are contract dots
  // of length N (dx) or M (dw, db): tolerance γ_{dot roundings + 1}·Σ|g|·max|operand|.
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                  const std::vector<double>& bv) {
    std::vector<double> y, mag;
    matmul_oracle(y, mag, xv, wv, has_bias ? bv.data() : nullptr, M, N, K);
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += gd[i] * y[i];
    return L;
  };
  double sum_g = 0, max_x = 0, max_w = 0;
  for (float v : g) sum_g += std::fabs(v);
  for (float v : x) max_x = std::max(max_x, double(std::fabs(v)));
  for (float v : w) max_w = std::max(max_w, double(std::fabs(v)));
  const double tol_dx = gamma32(dot_roundings(N) + 1) * sum_g * max_w + 1e-12;
  const double tol_dw = gamma32(dot_roundings(M) + 1) * sum_g * max_x + 1e-12;
  const double tol_db = gamma32(dot_roundings(M) + 1) * sum_g + 1e-12;
  expect_grad_matches_fd("dx", dx, [&](const auto& v) { return loss(v, wd, bd); }, xd, 1.0, tol_dx, 0);
  expect_grad_matches_fd("dw", dw, [&](const auto& v) { return loss(xd, v, bd); }, wd, 1.0, tol_dw, 0);
  if (has_bias)
    expect_grad_matches_fd("db", db, [&](const auto& v) { return loss(xd, wd, v); }, bd, 1.0, tol_db, 0);
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
