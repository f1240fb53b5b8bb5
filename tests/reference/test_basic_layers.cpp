// Embedding, RMSNorm, dense SwiGLU: forward vs float64 oracle under derived bounds,
// backward vs central finite differences of the oracle, thread/repeat bit-identity.
// Legend: T = tokens, C = channels, H = intermediate width, V = vocabulary.
#include <string>
#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/rmsnorm.hpp"
#include "reference/layers/swiglu.hpp"
#include "tests/reference/oracle64.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

// ---------------------------------------------------------------- embedding
TEST(Embedding, ForwardCopiesRowsAndBackwardSumsInTokenOrder) {
  const int64_t T = 37, C = 33, V = 5;
  std::vector<int32_t> tok(T);
  for (int64_t t = 0; t < T; ++t) tok[t] = int32_t((t * 7 + 3) % V);
  const auto table = randn(V * C, 1), g = randn(T * C, 2);
  std::vector<float> out(T * C), dtab(V * C, 0.0f);
  embedding_forward(out.data(), tok.data(), table.data(), T, C, V);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(out[t * C + c], table[tok[t] * C + c]);
  auto run = [&] {
    std::vector<float> d(V * C, 0.0f);
    embedding_backward(d.data(), g.data(), tok.data(), T, C, V);
    return d;
  };
  dtab = with_threads(1, run);
  EXPECT_TRUE(bits_equal(dtab, with_threads(2, run)));
  // The order is defined (sequential adds, ascending t): reproduce it exactly.
  for (int64_t v = 0; v < V; ++v)
    for (int64_t c = 0; c < C; ++c) {
      float s = 0.0f;
      for (int64_t t = 0; t < T; ++t)
        if (tok[t] == v) s = s + g[t * C + c];
      ASSERT_EQ(dtab[v * C + c], s);
    }
  tok[3] = int32_t(V);
  EXPECT_THROW(embedding_forward(out.data(), tok.data(), table.data(), T, C, V), preflight::Error);
}

// ---------------------------------------------------------------- RMSNorm
struct NormCase {
  int64_t T, C;
  std::string name() const { return "T" + std::to_string(T) + "_C" + std::to_string(C); }
};
const NormCase kNormCases[] = {{1, 1}, {3, 33}, {5, 130}, {2, 1000}, {17, 64}};
class RmsNorm : public ::testing::TestWithParam<NormCase> {};

TEST_P(RmsNorm, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto [T, C] = GetParam();
  const auto x = randn(T * C, 1), w = randn(C, 2);
  const float eps = 1e-6f;
  std::vector<float> y(T * C), rstd(T);
  rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), eps, T, C);
  const auto want = oracle::rmsnorm(to_double(x), to_double(w), double(eps), T, C);
  // Bound: Σx² takes C squarings and ⌈C/32⌉ + 5 adds on its longest path (32-lane row
  // reduction): relative error γ(⌈C/32⌉+6). /C and +eps: 2 more; rsqrt halves the relative
  // error and adds ≤ 1 ulp (2u); y = (x·rstd)·w: 2 roundings. Total relative bound
  // ½γ(⌈C/32⌉+8) + 4u on |x_i·w_i·rstd| (eps is rounded to fp32 on both sides).
  const double rel = 0.5 * gamma32(double((C + 31) / 32) + 8) + 4 * kU32;
  std::vector<double> bound(T * C);
  for (size_t i = 0; i < bound.size(); ++i) bound[i] = rel * std::fabs(want[i]) + 1e-30;
  EXPECT_LE(worst_ratio(y, want, bound), 1.0);
}

TEST_P(RmsNorm, BackwardMatchesFiniteDifferencesAndThreadsAgree) {
  const auto [T, C] = GetParam();
  const auto x = randn(T * C, 3), w = randn(C, 4), g = randn(T * C, 5);
  const float eps = 1e-6f;
  auto run = [&] {
    std::vector<float> y(T * C), rstd(T), dx(T * C, 0.0f), dw(C, 0.0f);
    rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), eps, T, C);
    rmsnorm_backward(dx.data(), dw.data(), g.data(), x.data(), w.data(), rstd.data(), T, C);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dw.begin(), dw.end());
    return y;
  };
  const auto all = with_threads(1, run);
  ASSERT_TRUE(bits_equal(all, with_threads(2, run)));
  ASSERT_TRUE(bits_equal(all, with_threads(2, run)));
  const std::vector<float> dx(all.begin() + T * C, all.begin() + 2 * T * C), dw(all.begin() + 2 * T * C, all.end());
  const auto xd = to_double(x), wd = to_double(w), gd = to_double(g);
  // Step h = 1e-3 on O(1) inputs: truncation h²/6·|f'''| ~ 1e-7 relative, rounding
  // 2^-53·|L|/h ~ 1e-13. The fp32 backward carries ~γ(C/32 + 10) relative error per term,
  // and dw sums T terms: tolerance 1e-5·max|g|·√C + 2e-5·|fd| covers both with margin.
  const double scale = 1e-5 * std::sqrt(double(C)) * 4.0;
  expect_grad_matches_fd("dx", dx, [&](const auto& v) { return oracle::weighted_sum(gd, oracle::rmsnorm(v, wd, eps, T, C)); },
                         xd, 1e-3, scale, 2e-5);
  expect_grad_matches_fd("dw", dw, [&](const auto& v) { return oracle::weighted_sum(gd, oracle::rmsnorm(xd, v, eps, T, C)); },
                         wd, 1e-3, scale * std::sqrt(double(T)), 2e-5);
}
INSTANTIATE_TEST_SUITE_P(Cases, RmsNorm, ::testing::ValuesIn(kNormCases),
                         [](const auto& info) { return info.param.name(); });

// ---------------------------------------------------------------- SwiGLU
struct FfnCase {
  int64_t T, C, H;
  std::string name() const {
    return "T" + std::to_string(T) + "_C" + std::to_string(C) + "_H" + std::to_string(H);
  }
};
const FfnCase kFfnCases[] = {{1, 1, 1}, {3, 33, 130}, {4, 64, 129}, {33, 16, 40}};
class SwiGlu : public ::testing::TestWithParam<FfnCase> {};

TEST_P(SwiGlu, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto [T, C, H] = GetParam();
  const auto x = randn(T * C, 1), w1 = randn(H * C, 2, 0.3f), w3 = randn(H * C, 3, 0.3f),
             w2 = randn(C * H, 4, 0.3f);
  std::vector<float> y(T * C), h1(T * H), h3(T * H), act(T * H);
  swiglu_forward(y.data(), h1.data(), h3.data(), act.data(), x.data(), w1.data(), w3.data(), w2.data(), T, C, H);
  const auto xd = to_double(x), w1d = to_double(w1), w3d = to_double(w3), w2d = to_double(w2);
  const auto want = oracle::swiglu(xd, w1d, w3d, w2d, T, C, H);
  // Bound, propagated in float64 from magnitudes:
  //   |δh| ≤ γ(dot(C))·Σ|x w|  (h1 and h3);
  //   |δact| ≤ max|silu'|(≤1.1)·|δh1|·|h3| + |silu(h1)|·|δh3| + (silu ≤ 2 ulp + 1 product) 6u·|act|;
  //   |δy| ≤ Σ_j |w2_j|·|δact_j| + γ(dot(H))·Σ|act w2|.
  auto absv = [](oracle::Vec v) { for (auto& e : v) e = std::fabs(e); return v; };
  const auto ax = absv(xd), aw1 = absv(w1d), aw3 = absv(w3d), aw2 = absv(w2d);
  const auto m1 = oracle::linear(ax, aw1, T, H, C), m3 = oracle::linear(ax, aw3, T, H, C);
  const auto h1d = oracle::linear(xd, w1d, T, H, C), h3d = oracle::linear(xd, w3d, T, H, C);
  oracle::Vec dact(T * H), aact(T * H);
  for (int64_t i = 0; i < T * H; ++i) {
    const double s = oracle::silu(h1d[i]);
    aact[i] = std::fabs(s * h3d[i]);
    dact[i] = 1.1 * gamma32(dot_roundings(C)) * m1[i] * std::fabs(h3d[i]) +
              std::fabs(s) * gamma32(dot_roundings(C)) * m3[i] + 6 * kU32 * aact[i];
  }
  const auto b1 = oracle::linear(dact, aw2, T, C, H), b2 = oracle::linear(aact, aw2, T, C, H);
  std::vector<double> bound(T * C);
  for (int64_t i = 0; i < T * C; ++i) bound[i] = b1[i] + gamma32(dot_roundings(H)) * b2[i] + 1e-30;
  EXPECT_LE(worst_ratio(y, want, bound), 1.0);
}

TEST_P(SwiGlu, BackwardMatchesFiniteDifferencesAndThreadsAgree) {
  const auto [T, C, H] = GetParam();
  const auto x = randn(T * C, 5), w1 = randn(H * C, 6, 0.3f), w3 = randn(H * C, 7, 0.3f),
             w2 = randn(C * H, 8, 0.3f), g = randn(T * C, 9);
  auto run = [&] {
    std::vector<float> y(T * C), h1(T * H), h3(T * H), act(T * H);
    std::vector<float> dx(T * C, 0.f), dw1(H * C, 0.f), dw3(H * C, 0.f), dw2(C * H, 0.f);
    swiglu_forward(y.data(), h1.data(), h3.data(), act.data(), x.data(), w1.data(), w3.data(), w2.data(), T, C, H);
    swiglu_backward(dx.data(), dw1.data(), dw3.data(), dw2.data(), g.data(), h1.data(), h3.data(), act.data(),
                    x.data(), w1.data(), w3.data(), w2.data(), T, C, H);
    return std::vector<std::vector<float>>{y, dx, dw1, dw3, dw2};
  };
  const auto r = with_threads(1, run), r2 = with_threads(2, run);
  for (size_t i = 0; i < r.size(); ++i) ASSERT_TRUE(bits_equal(r[i], r2[i])) << "output " << i;
  const auto xd = to_double(x), w1d = to_double(w1), w3d = to_double(w3), w2d = to_double(w2), gd = to_double(g);
  // Step h = 1e-3: truncation ~h²·|f'''| ≲ 1e-6·scale; fp32 gradients are chains of two
  // dots (lengths C and H, ~γ(260) ≈ 1.6e-5 relative to the magnitude sums). Tolerance
  // 1e-4·(1 + |fd|)·√max(C,H)/4 covers both.
  const double tol = 1e-4 * std::sqrt(double(std::max(C, H))) / 4 + 1e-5;
  const size_t stride = size_t(std::max<int64_t>(1, H * C / 400));
  expect_grad_matches_fd("dx", r[1], [&](const auto& v) { return oracle::weighted_sum(gd, oracle::swiglu(v, w1d, w3d, w2d, T, C, H)); }, xd, 1e-3, tol, tol, 1);
  expect_grad_matches_fd("dw1", r[2], [&](const auto& v) { return oracle::weighted_sum(gd, oracle::swiglu(xd, v, w3d, w2d, T, C, H)); }, w1d, 1e-3, tol, tol, stride);
  expect_grad_matches_fd("dw3", r[3], [&](const auto& v) { return oracle::weighted_sum(gd, oracle::swiglu(xd, w1d, v, w2d, T, C, H)); }, w3d, 1e-3, tol, tol, stride);
  expect_grad_matches_fd("dw2", r[4], [&](const auto& v) { return oracle::weighted_sum(gd, oracle::swiglu(xd, w1d, w3d, v, T, C, H)); }, w2d, 1e-3, tol, tol, stride);
}
INSTANTIATE_TEST_SUITE_P(Cases, SwiGlu, ::testing::ValuesIn(kFfnCases),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace preflight::ref::test
