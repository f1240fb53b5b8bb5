// Muon and Newton-Schulz against float64 (docs/OPTIMIZERS.md §3).
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "optim_test_util.hpp"
#include "reference/numerics/bf16.hpp"
#include "reference/numerics/reduce.hpp"
#include "reference/optim/muon.hpp"

namespace preflight::optim {
namespace {

using test::kU;
using test::randn;

// Newton-Schulz in the textbook order: plain sequential sums, no fma, each product one rounding
// (T = float) or exact-ish (T = double); with bf16 = true every intermediate is rounded to bf16.
template <class T>
std::vector<T> ns_plain(const std::vector<float>& g, int64_t R, int64_t C, bool bf16 = false) {
  auto rnd = [&](T x) { return bf16 ? T(num::round_to_bf16(float(x))) : x; };
  const bool tr = R > C;
  const int64_t r = tr ? C : R, c = tr ? R : C;
  T ss = 0;
  for (float x : g) ss += T(x) * T(x);
  const T den = std::sqrt(ss) + T(1e-7f);
  std::vector<T> X(r * c), A(r * r), AA(r * r), B(r * r), BX(r * c);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) (tr ? X[j * c + i] : X[i * c + j]) = rnd(T(g[i * C + j]) / den);
  const T a = T(kNsA), b = T(kNsB), cc = T(kNsC);
  for (int it = 0; it < kNsSteps; ++it) {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < r; ++j) {
        T s = 0;
        for (int64_t k = 0; k < c; ++k) s += X[i * c + k] * X[j * c + k];
        A[i * r + j] = rnd(s);
      }
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < r; ++j) {
        T s = 0;
        for (int64_t k = 0; k < r; ++k) s += A[i * r + k] * A[k * r + j];
        AA[i * r + j] = rnd(s);
      }
    for (int64_t i = 0; i < r * r; ++i) B[i] = rnd(rnd(b * A[i]) + rnd(cc * AA[i]));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) {
        T s = 0;
        for (int64_t k = 0; k < r; ++k) s += B[i * r + k] * X[k * c + j];
        BX[i * c + j] = rnd(s);
      }
    for (int64_t i = 0; i < r * c; ++i) X[i] = rnd(rnd(a * X[i]) + BX[i]);
  }
  std::vector<T> out(R * C);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) out[i * C + j] = tr ? X[j * c + i] : X[i * c + j];
  return out;
}

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

struct NsCase {
  int64_t R, C;
};
std::string ns_name(const ::testing::TestParamInfo<NsCase>& i) {
  return "R" + std::to_string(i.param.R) + "_C" + std::to_string(i.param.C);
}
class NewtonSchulz : public ::testing::TestWithParam<NsCase> {};

// Tolerance derived the flash-attention way: the textbook fp32 (resp. bf16) iteration, whose
// rounding is the plain one, sets the scale; ours must be within twice its gap to float64.
TEST_P(NewtonSchulz, Fp32AndBf16WithinTwiceTheTextbookGapToFloat64) {
  const auto [R, C] = GetParam();
  const std::vector<float> g = randn(R * C, 17 + R, 0.02f);
  const std::vector<double> o64 = ns_plain<double>(g, R, C);
  std::vector<float> o(R * C), work;
  newton_schulz(o.data(), g.data(), R, C, NsPrecision::fp32, kNsSteps, work);
  const double gap32 = max_abs_diff(ns_plain<float>(g, R, C), o64);
  const double err32 = max_abs_diff(o, o64);
  EXPECT_LE(err32, 2 * gap32 + 8 * kU);
  newton_schulz(o.data(), g.data(), R, C, NsPrecision::bf16, kNsSteps, work);
  const double gap16 = max_abs_diff(ns_plain<float>(g, R, C, true), o64);
  const double err16 = max_abs_diff(o, o64);
  EXPECT_LE(err16, 2 * gap16);
  std::printf("NS %lldx%lld: fp32 err %.3g (textbook %.3g), bf16 err %.3g (textbook %.3g)\n", (long long)R,
              (long long)C, err32, gap32, err16, gap16);
}

// Singular values of O = the scalar quintic p(s) = a s + b s^3 + c s^5 applied 5 times to the
// normalised singular values of G (Newton-Schulz acts on each singular value alone). Singular
// values from a Jacobi eigen-decomposition of M Mᵀ in double.
std::vector<double> singular_values(const std::vector<double>& M, int64_t r, int64_t c) {
  std::vector<double> S(r * r, 0);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t k = 0; k < c; ++k) S[i * r + j] += M[i * c + k] * M[j * c + k];
  for (int sweep = 0; sweep < 60; ++sweep)
    for (int64_t p = 0; p < r; ++p)
      for (int64_t q = p + 1; q < r; ++q) {
        if (std::fabs(S[p * r + q]) < 1e-300) continue;
        const double th = 0.5 * std::atan2(2 * S[p * r + q], S[q * r + q] - S[p * r + p]);
        const double cs = std::cos(th), sn = std::sin(th);
        for (int64_t k = 0; k < r; ++k) {  // rotate columns p, q
          const double a = S[k * r + p], b = S[k * r + q];
          S[k * r + p] = cs * a - sn * b, S[k * r + q] = sn * a + cs * b;
        }
        for (int64_t k = 0; k < r; ++k) {  // and rows
          const double a = S[p * r + k], b = S[q * r + k];
          S[p * r + k] = cs * a - sn * b, S[q * r + k] = sn * a + cs * b;
        }
      }
  std::vector<double> sv(r);
  for (int64_t i = 0; i < r; ++i) sv[i] = std::sqrt(std::max(0.0, S[i * r + i]));
  std::sort(sv.begin(), sv.end());
  return sv;
}

TEST_P(NewtonSchulz, SingularValuesFollowTheScalarQuinticAndLandNearOne) {
  const auto [R, C] = GetParam();
  const int64_t r = std::min(R, C), c = std::max(R, C);
  const std::vector<float> g = randn(R * C, 5 + C);
  std::vector<float> o(R * C), work;
  newton_schulz(o.data(), g.data(), R, C, NsPrecision::fp32, kNsSteps, work);
  auto as_rc = [&](const auto& m) {  // (r,c) view in double
    std::vector<double> x(r * c);
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < C; ++j) (R > C ? x[j * c + i] : x[i * c + j]) = double(m[i * C + j]);
    return x;
  };
  std::vector<double> sg = singular_values(as_rc(g), r, c);
  double fro = 0;
  for (float x : g) fro += double(x) * x;
  for (double& s : sg) {
    s /= std::sqrt(fro) + 1e-7;
    for (int k = 0; k < kNsSteps; ++k) s = kNsA * s + kNsB * s * s * s + kNsC * s * s * s * s * s;
  }
  std::sort(sg.begin(), sg.end());
  const std::vector<double> so = singular_values(as_rc(o), r, c);
  // 1e-4 is NOT derived (issue 10; kept, not widened). The deviation is bounded by Weyl's
  // inequality, |σ_i(Ô) − σ_i(O)| ≤ ‖Ô − O‖₂ (plus the float64 Gram/Jacobi error, ~1e-13), but no
  // a priori bound on ‖Ô − O‖₂ for 5 fp32 steps reaches it: each step's rounding is
  // γ(dot(c))·|X||Xᵀ| per entry of A and the quintic's slope (≤ 3.9 on [0, 1.2]) amplifies it
  // five times, so worst-case component-wise or Frobenius bounds come to ≳ 1e-2 at 96×256, where
  // the measured deviation is ~1e-6. Bounding ‖Ô − O‖ by the measured gap to float64 instead
  // would make the check vacuous (it would then only test the float64 oracle).
  for (int64_t i = 0; i < r; ++i) {
    EXPECT_NEAR(so[i], sg[i], 1e-4) << i;
    EXPECT_GE(so[i], 0.6);
    EXPECT_LE(so[i], 1.2);
  }
  std::printf("NS %lldx%lld singular values in [%.4f, %.4f]\n", (long long)R, (long long)C, so.front(), so.back());
}

INSTANTIATE_TEST_SUITE_P(Shapes, NewtonSchulz,
                         ::testing::Values(NsCase{8, 32}, NsCase{32, 8}, NsCase{16, 16}, NsCase{17, 130},
                                           NsCase{130, 33}, NsCase{96, 256}),
                         ns_name);

TEST(Muon, StepSizeFormulas) {
  MuonConfig cfg;
  EXPECT_EQ(muon_step_size(cfg, 0.02f, 64, 256), float(double(0.02f) * 0.2 * 16.0));
  cfg.scale = MuonScale::original;
  EXPECT_EQ(muon_step_size(cfg, 0.02f, 64, 256), 0.02f);
  EXPECT_EQ(muon_step_size(cfg, 0.02f, 256, 64), float(double(0.02f) * 2.0));
}

// With zero Newton-Schulz steps the orthogonaliser is the normalisation alone, so each
// momentum rule can be checked exactly against its written formula.
TEST(Muon, MomentumRulesExactlyAsWritten) {
  const int64_t R = 6, C = 10, n = R * C;
  for (MuonMomentum kind : {MuonMomentum::sgd, MuonMomentum::ema})
    for (bool nesterov : {false, true}) {
      MuonConfig cfg;
      cfg.momentum_kind = kind, cfg.nesterov = nesterov, cfg.ns_steps = 0;
      std::vector<float> p = randn(n, 1), buf = randn(n, 2), work;
      const std::vector<float> g = randn(n, 3), p0 = p, b0 = buf;
      muon_step(p.data(), g.data(), buf.data(), R, C, cfg, 0.01f, true, work);
      const float mu = 0.95f, omu = float(1.0 - 0.95);
      std::vector<float> u(n), b1(n);
      for (int64_t i = 0; i < n; ++i) {
        b1[i] = kind == MuonMomentum::sgd ? mu * b0[i] + g[i] : mu * b0[i] + omu * g[i];
        u[i] = !nesterov ? b1[i] : kind == MuonMomentum::sgd ? g[i] + mu * b1[i] : omu * g[i] + mu * b1[i];
      }
      const float den = num::sqrt(num::dot_k128(u.data(), u.data(), n)) + 1e-7f;
      const float step = muon_step_size(cfg, 0.01f, R, C), dec = float(1.0 - double(0.01f) * 0.1);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(buf[i], b1[i]);
        ASSERT_EQ(p[i], p0[i] * dec - step * (u[i] / den)) << i;
      }
    }
}

// Three Muon steps against float64 (momentum, Newton-Schulz and update all in double). Bound per
// step: 3u|p| for decay and subtract, plus step · 2 · (the textbook fp32 NS gap on that step's
// input), plus step · 4 · (momentum relative error 3ku) · |O|max.
TEST(Muon, ThreeStepsWithinDerivedBoundOfFloat64Oracle) {
  const int64_t R = 24, C = 40, n = R * C;
  const MuonConfig cfg;
  const float lr = 0.01f;
  std::vector<float> p = randn(n, 11, 0.1f), buf(n, 0.0f), work;
  std::vector<double> p64(p.begin(), p.end()), b64(n, 0.0);
  double bound = 0;
  for (int k = 1; k <= 3; ++k) {
    const std::vector<float> g = randn(n, 50 + k, 0.01f);
    muon_step(p.data(), g.data(), buf.data(), R, C, cfg, lr, true, work);
    std::vector<float> uf(n);
    for (int64_t i = 0; i < n; ++i) {
      b64[i] = 0.95 * b64[i] + g[i];
      uf[i] = float(g[i] + 0.95 * b64[i]);
    }
    // u in double rounded once to float feeds both NS probes (that rounding, u|u|, sits inside
    // the momentum term of the bound)
    const std::vector<float>& u_in = uf;
    const std::vector<double> o64 = ns_plain<double>(u_in, R, C);
    const double gap = max_abs_diff(ns_plain<float>(u_in, R, C), o64);
    const double step = double(lr) * 0.2 * std::sqrt(40.0);
    double pmax = 0;
    for (int64_t i = 0; i < n; ++i) {
      p64[i] = p64[i] * (1 - double(lr) * 0.1) - step * o64[i];
      pmax = std::max(pmax, std::fabs(p64[i]));
    }
    bound += 3 * kU * pmax + step * (2 * gap + 4 * 3 * k * kU * 1.2 + 2 * kU);
    double err = 0;
    for (int64_t i = 0; i < n; ++i) err = std::max(err, std::fabs(double(p[i]) - p64[i]));
    EXPECT_LE(err, bound) << "step " << k;
    std::printf("Muon step %d: max error %.3g, bound %.3g\n", k, err, bound);
  }
}

TEST(Muon, OneAndTwoThreadsAndRepeatsBitIdentical) {
  const int64_t R = 130, C = 200, n = R * C;
  const std::vector<float> g = randn(n, 3);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 2}) {
    omp_set_num_threads(threads);
    std::vector<float> p = randn(n, 1), buf(n, 0.0f), work;
    for (int k = 0; k < 2; ++k) muon_step(p.data(), g.data(), buf.data(), R, C, MuonConfig{}, 0.02f, true, work);
    results.push_back(p);
  }
  omp_set_num_threads(2);
  EXPECT_TRUE(test::same_bits(results[0], results[1]));
  EXPECT_TRUE(test::same_bits(results[1], results[2]));
}

}  // namespace
}  // namespace preflight::optim
