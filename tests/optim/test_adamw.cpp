// AdamW against a float64 oracle, bf16 moments element by element (docs/OPTIMIZERS.md §2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "optim_test_util.hpp"
#include "reference/optim/adamw.hpp"

namespace preflight::optim {
namespace {

using test::kU;
using test::randn;

TEST(AdamW, PowIntIsExactForPowersOfTwoAndMatchesPow) {
  EXPECT_EQ(pow_int(0.5, 10), 1.0 / 1024);
  EXPECT_EQ(pow_int(0.9, 0), 1.0);
  EXPECT_NEAR(pow_int(0.95, 12345), std::pow(0.95, 12345), 1e-12 * std::pow(0.95, 12345) + 1e-300);
}

// Six steps of fp32 AdamW against the same steps in double. Error bound, per element, summed
// over steps (u = 2^-24, k = the step, M = Σ of |terms| of the m recursion, i.e. the moment of |g|):
//   m: each step 2 products + 1 add      -> |δm| <= 3ku·M           (cancellation-safe form)
//   v: all terms positive                -> |δv|/v <= 3ku
//   d = √v/bc2 + ε: one sqrt, one div, one add  -> |δd|/d <= (1.5k + 4)u
//   p·decay and the final subtract: 3u|p|; the scalars step_size, decay rounded once each: 2u
//   update step·m/d: step·((3kuM + 3u|m|)/d + |m|/d·(1.5k + 4)u)
// and the bound is twice that sum (slack for second-order terms).
TEST(AdamW, SixStepsWithinDerivedBoundOfFloat64Oracle) {
  const int64_t n = 4096;
  const AdamWConfig cfg;  // DeepSeek-V3: 0.9, 0.95, 1e-8, wd 0.1
  const float lr = 3e-3f;
  std::vector<float> p = randn(n, 1, 0.5f), m(n, 0.0f), v(n, 0.0f);
  std::vector<double> p64(p.begin(), p.end()), m64(n, 0), v64(n, 0), mabs(n, 0), bound(n, 0);
  double worst = 0;
  for (int k = 1; k <= 6; ++k) {
    const std::vector<float> g = randn(n, 100 + k, 1.0f + k);
    const AdamWScalars s = adamw_scalars(cfg, lr, k, true);
    adamw_step(p.data(), g.data(), m.data(), v.data(), n, s);
    const double bc1 = 1 - std::pow(cfg.beta1, k), bc2 = 1 - std::pow(cfg.beta2, k);
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g[i];
      m64[i] = cfg.beta1 * m64[i] + (1 - cfg.beta1) * gi;
      v64[i] = cfg.beta2 * v64[i] + (1 - cfg.beta2) * gi * gi;
      mabs[i] = cfg.beta1 * mabs[i] + (1 - cfg.beta1) * std::fabs(gi);
      const double d = std::sqrt(v64[i]) / std::sqrt(bc2) + cfg.eps;
      const double step = double(lr) / bc1;
      p64[i] = p64[i] * (1 - double(lr) * cfg.weight_decay) - step * m64[i] / d;
      bound[i] += 2 * (3 * kU * std::fabs(p64[i]) + 2 * kU * std::fabs(p64[i]) +
                       step * ((3 * k * kU * mabs[i] + 3 * kU * std::fabs(m64[i])) / d +
                               std::fabs(m64[i]) / d * (1.5 * k + 6) * kU));
      const double err = std::fabs(double(p[i]) - p64[i]);
      ASSERT_LE(err, bound[i]) << "step " << k << " element " << i;
      worst = std::max(worst, err / bound[i]);
    }
  }
  RecordProperty("worst_error_over_bound", std::to_string(worst));
  std::printf("AdamW fp32 vs float64, 6 steps: worst error / bound = %.3f\n", worst);
}

// The RNE rounding to bf16, written independently: the two bf16 neighbours of x (truncation
// and the next one up in magnitude), the nearer in double, ties to the even mantissa.
float bf16_rne_oracle(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t lo_bits = u & 0xFFFF0000u, hi_bits = lo_bits + 0x10000u;
  float lo, hi;
  std::memcpy(&lo, &lo_bits, 4);
  std::memcpy(&hi, &hi_bits, 4);
  const double dl = std::fabs(double(x) - lo), dh = std::fabs(double(hi) - x);
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return ((lo_bits >> 16) & 1u) ? hi : lo;
}

TEST(AdamW, Bf16MomentsRoundedOnceAfterTheFp32UpdateElementByElement) {
  const int64_t n = 20000;
  const AdamWConfig cfg;
  const std::vector<float> g = randn(n, 7), p0 = randn(n, 8), m0f = randn(n, 9, 0.1f), v0f = randn(n, 10, 0.1f);
  std::vector<num::bf16> m(n), v(n);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = num::to_bf16(m0f[i]);
    v[i] = num::to_bf16(v0f[i] * v0f[i]);
  }
  const std::vector<num::bf16> m_in = m, v_in = v;
  std::vector<float> p = p0;
  const AdamWScalars s = adamw_scalars(cfg, 1e-3f, 3, true);
  adamw_step(p.data(), g.data(), m.data(), v.data(), n, s);
  int64_t rounded = 0, used_rounded = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float mi = num::to_float(m_in[i]), vi = num::to_float(v_in[i]);
    const float mf = s.b1 * mi + s.c1 * g[i];
    const float vf = s.b2 * vi + s.c2 * (g[i] * g[i]);
    const float mr = bf16_rne_oracle(mf), vr = bf16_rne_oracle(vf);
    ASSERT_EQ(num::to_float(m[i]), mr) << i;
    ASSERT_EQ(num::to_float(v[i]), vr) << i;
    const float expect = p0[i] * s.decay - s.step_size * (mr / (num::sqrt(vr) / s.bc2_sqrt + s.eps));
    ASSERT_EQ(p[i], expect) << i;
    const float unrounded = p0[i] * s.decay - s.step_size * (mf / (num::sqrt(vf) / s.bc2_sqrt + s.eps));
    rounded += mr != mf;
    used_rounded += unrounded != expect;
  }
  EXPECT_GT(rounded, n / 2);       // the rounding really happened
  EXPECT_GT(used_rounded, n / 10);  // and the update saw the rounded value
}

TEST(AdamW, TiesRoundToEvenInTheStoredMoment) {
  // m_new = c1·g with m = 0: choose g so that c1·g is exactly a bf16 tie.
  const AdamWScalars s{0.0f, 1.0f, 0.0f, 1.0f, 1e-3f, 1.0f, 1.0f, 1e-8f};
  const float ties[2] = {1.0f + 0x1.0p-8f, 1.0f + 3 * 0x1.0p-8f};  // halfway cases
  for (float x : ties) {
    float p = 0.0f;
    num::bf16 m{0}, v{0};
    adamw_step(&p, &x, &m, &v, 1, s);
    EXPECT_EQ(num::to_float(m), bf16_rne_oracle(x));
    EXPECT_EQ(m.bits & 1u, 0u);
  }
}

}  // namespace
}  // namespace preflight::optim
