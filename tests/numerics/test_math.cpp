// Special values, symmetries and monotonicity of the elementwise functions
// (docs/NUMERICS.md §3.1). Accuracy is measured in test_math_exhaustive.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "reference/numerics/math.hpp"
#include "tests/numerics/sweep.hpp"

namespace preflight::num {
namespace {

constexpr float kNegNaN = -__builtin_nanf("");

std::uint32_t bits(float x) { return bits_of(x); }

// Same bits, so +0/-0 and NaN payloads are checked too.
#define EXPECT_BITS(actual, expected) EXPECT_EQ(bits(actual), bits(expected)) << #actual

using Fn = float (*)(float);
struct Named {
  const char* name;
  Fn f;
};
const std::vector<Named>& all_functions() {
  static const std::vector<Named> fns = {
      {"exp", [](float x) { return exp(x); }},         {"log", [](float x) { return log(x); }},
      {"log1p", [](float x) { return log1p(x); }},     {"sigmoid", [](float x) { return sigmoid(x); }},
      {"silu", [](float x) { return silu(x); }},       {"silu_grad", [](float x) { return silu_grad(x); }},
      {"tanh", [](float x) { return tanh(x); }},       {"rsqrt", [](float x) { return rsqrt(x); }},
      {"gelu", [](float x) { return gelu(x); }},       {"softplus", [](float x) { return softplus(x); }},
      {"sin_2pi", [](float x) { return sin_2pi(x); }}, {"cos_2pi", [](float x) { return cos_2pi(x); }},
  };
  return fns;
}

TEST(NumericsMath, EveryNaNResultIsCanonical) {
  for (const Named& fn : all_functions()) {
    for (std::uint32_t nan_bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFFFFFFFu, 0x7FFFFFFFu}) {
      EXPECT_EQ(bits(fn.f(float_of(nan_bits))), kCanonicalNaNBits) << fn.name << " of NaN 0x" << std::hex << nan_bits;
    }
  }
  EXPECT_BITS(log(-1.0f), canonical_nan());
  EXPECT_BITS(log(-INFINITY), canonical_nan());
  EXPECT_BITS(log1p(-2.0f), canonical_nan());
  EXPECT_BITS(rsqrt(-1.0f), canonical_nan());
  EXPECT_BITS(sin_2pi(INFINITY), canonical_nan());
  EXPECT_BITS(cos_2pi(-INFINITY), canonical_nan());
  EXPECT_BITS(max_nan(1.0f, kNegNaN), canonical_nan());
}

TEST(NumericsMath, SpecialValues) {
  EXPECT_BITS(exp(0.0f), 1.0f);
  EXPECT_BITS(exp(-0.0f), 1.0f);
  EXPECT_BITS(exp(INFINITY), INFINITY);
  EXPECT_BITS(exp(-INFINITY), 0.0f);
  EXPECT_BITS(exp(89.0f), INFINITY);
  EXPECT_BITS(exp(-104.0f), 0.0f);
  EXPECT_BITS(exp(-103.0f), 0x1p-149f);  // e^-103 = 1.32 * 2^-149: the smallest subnormal
  EXPECT_BITS(log(1.0f), 0.0f);
  EXPECT_BITS(log(0.0f), -INFINITY);
  EXPECT_BITS(log(-0.0f), -INFINITY);
  EXPECT_BITS(log(INFINITY), INFINITY);
  EXPECT_BITS(log1p(0.0f), 0.0f);
  EXPECT_BITS(log1p(-0.0f), -0.0f);
  EXPECT_BITS(log1p(-1.0f), -INFINITY);
  EXPECT_BITS(log1p(INFINITY), INFINITY);
  EXPECT_BITS(log1p(0x1p-149f), 0x1p-149f);
  EXPECT_BITS(sigmoid(0.0f), 0.5f);
  EXPECT_BITS(sigmoid(-0.0f), 0.5f);
  EXPECT_BITS(sigmoid(INFINITY), 1.0f);
  EXPECT_BITS(sigmoid(-INFINITY), 0.0f);
  EXPECT_BITS(silu(0.0f), 0.0f);
  EXPECT_BITS(silu(-0.0f), -0.0f);
  EXPECT_BITS(silu(INFINITY), INFINITY);
  EXPECT_BITS(silu(-INFINITY), -0.0f);
  EXPECT_BITS(silu_grad(0.0f), 0.5f);
  EXPECT_BITS(silu_grad(INFINITY), 1.0f);
  EXPECT_BITS(silu_grad(-INFINITY), -0.0f);
  EXPECT_BITS(tanh(0.0f), 0.0f);
  EXPECT_BITS(tanh(-0.0f), -0.0f);
  EXPECT_BITS(tanh(INFINITY), 1.0f);
  EXPECT_BITS(tanh(-INFINITY), -1.0f);
  EXPECT_BITS(rsqrt(0.0f), INFINITY);
  EXPECT_BITS(rsqrt(-0.0f), -INFINITY);
  EXPECT_BITS(rsqrt(INFINITY), 0.0f);
  EXPECT_BITS(rsqrt(4.0f), 0.5f);
  EXPECT_BITS(rsqrt(0x1p-148f), 0x1p74f);
  EXPECT_BITS(gelu(0.0f), 0.0f);
  EXPECT_BITS(gelu(-0.0f), -0.0f);
  EXPECT_BITS(gelu(INFINITY), INFINITY);
  EXPECT_BITS(gelu(-INFINITY), -0.0f);
  EXPECT_BITS(softplus(INFINITY), INFINITY);
  EXPECT_BITS(softplus(-INFINITY), 0.0f);
  EXPECT_BITS(softplus(0.0f), 0x1.62e43p-1f);  // ln 2
  EXPECT_BITS(sin_2pi(0.0f), 0.0f);
  EXPECT_BITS(sin_2pi(-0.0f), -0.0f);
  EXPECT_BITS(cos_2pi(0.0f), 1.0f);
  EXPECT_BITS(sin_2pi(0.25f), 1.0f);
  EXPECT_BITS(cos_2pi(0.25f), 0.0f);
  EXPECT_BITS(sin_2pi(0.5f), 0.0f);
  EXPECT_BITS(cos_2pi(0.5f), -1.0f);
  EXPECT_BITS(sin_2pi(0.75f), -1.0f);
  EXPECT_BITS(cos_2pi(0.75f), 0.0f);
  EXPECT_BITS(sin_2pi(1e9f), 0.0f);
  EXPECT_BITS(cos_2pi(-3.0f), 1.0f);
  EXPECT_BITS(max_nan(0.0f, -0.0f), 0.0f);
  EXPECT_BITS(max_nan(-0.0f, 0.0f), 0.0f);
  EXPECT_BITS(max_nan(-0.0f, -0.0f), -0.0f);
  EXPECT_BITS(max_nan(-INFINITY, -1.0f), -1.0f);
}

// Odd and even functions are exactly so: the negative half needs no separate contract.
TEST(NumericsMath, SymmetriesAreExact) {
  for (std::uint32_t u = 0; u < 0x7F800000u; u += 4099u) {
    const float x = float_of(u);
    EXPECT_EQ(bits(tanh(-x)), bits(tanh(x)) ^ 0x80000000u) << x;
    EXPECT_EQ(bits(sin_2pi(-x)), bits(sin_2pi(x)) ^ (sin_2pi(x) == 0.0f && x != 0.0f ? 0u : 0x80000000u)) << x;
    EXPECT_EQ(bits(cos_2pi(-x)), bits(cos_2pi(x))) << x;
  }
}

// Sampled monotonicity over consecutive floats. The functions are not correctly rounded, so
// where a function changes by much less than an ulp per input step (next to the minima of silu
// and gelu) two neighbours can come out one ulp in the wrong order; the ranges below are those
// where each step moves the value by about an ulp or more.
TEST(NumericsMath, MonotoneWhereTheFunctionIs) {
  struct Case {
    const char* name;
    Fn f;
    float lo, hi;
    int direction;  // +1 non-decreasing, -1 non-increasing
  };
  const Case cases[] = {
      {"exp", [](float x) { return exp(x); }, -104.0f, 89.0f, +1},
      {"log", [](float x) { return log(x); }, 0x1p-149f, 0x1p127f, +1},
      {"log1p", [](float x) { return log1p(x); }, -0.99999994f, 0x1p127f, +1},
      {"sigmoid", [](float x) { return sigmoid(x); }, -110.0f, 110.0f, +1},
      {"silu", [](float x) { return silu(x); }, 0.0f, 100.0f, +1},
      {"silu", [](float x) { return silu(x); }, -100.0f, -3.0f, -1},
      {"tanh", [](float x) { return tanh(x); }, -12.0f, 12.0f, +1},
      {"rsqrt", [](float x) { return rsqrt(x); }, 0x1p-149f, 0x1p127f, -1},
      {"softplus", [](float x) { return softplus(x); }, -110.0f, 100.0f, +1},
      {"gelu", [](float x) { return gelu(x); }, 0.0f, 100.0f, +1},
      {"gelu", [](float x) { return gelu(x); }, -10.0f, -2.0f, -1},
  };
  for (const Case& c : cases) {
    // Windows of 4096 consecutive floats spread over [lo, hi].
    std::vector<float> starts;
    for (int w = 0; w <= 64; ++w) starts.push_back(c.lo + (c.hi - c.lo) * static_cast<float>(w) / 64.0f);
    int violations = 0;
    for (float s : starts) {
      float x = s;
      float prev = c.f(x);
      for (int i = 0; i < 4096 && x < c.hi; ++i) {
        x = std::nextafter(x, INFINITY);
        const float y = c.f(x);
        if (c.direction * (y - prev) < 0.0f) ++violations;
        prev = y;
      }
    }
    EXPECT_EQ(violations, 0) << c.name;
  }
}

// Box-Muller only ever sees u = k * 2^-24: the identities sin^2 + cos^2 ~ 1 and the
// quarter-turn shift hold to the measured accuracy on all of them.
TEST(NumericsMath, SinCosOnTheUniformGrid) {
  double worst = 0.0;
  for (std::uint32_t k = 0; k < (1u << 24); k += 7) {
    const float u = static_cast<float>(k) * 0x1p-24f;
    float s, c;
    sincos_2pi(u, &s, &c);
    worst = std::fmax(worst, std::fabs(static_cast<double>(s) * s + static_cast<double>(c) * c - 1.0));
    if (k < (3u << 22)) {
      EXPECT_EQ(bits(c), bits(sin_2pi(u + 0.25f))) << u;  // u + 1/4 is exact here
    }
  }
  EXPECT_LT(worst, 0x1p-22);
}

}  // namespace
}  // namespace preflight::num
