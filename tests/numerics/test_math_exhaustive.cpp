// Measured error bounds of the elementwise functions (docs/NUMERICS.md §3.2): each function is
// compared with a double-precision reference (error of the reference below 2^-40 relative) and
// its error measured in float ulps at the exact value. Every float of the range where the
// function does real work is swept; the rest of the float line is sampled with a stride.
// Each test prints what it swept and the measured maxima, and fails above the documented bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "reference/numerics/math.hpp"
#include "tests/numerics/sweep.hpp"

namespace preflight::num {
namespace {

using test::BitRange;
using test::magnitudes;

// Documented bounds (docs/NUMERICS.md §3.2): for normal results, and for results in the
// subnormal range, where the final scaling can round twice (0.5 there: the function returns
// x itself, correctly rounded).
struct Bound {
  double normal;
  double subnormal;
};

// Every float pattern with this stride: a sample of the whole line (specials, huge, tiny).
BitRange whole_line(std::uint32_t stride = 1021) { return {0u, 0xFFFFFFFFu - 1021u, stride}; }

void both_signs(std::vector<BitRange>& plan, float lo, float hi, std::uint32_t stride = 1) {
  plan.push_back(magnitudes(lo, hi, false, stride));
  plan.push_back(magnitudes(lo, hi, true, stride));
}

template <class F, class Ref>
void check(const char* name, const std::vector<BitRange>& plan, const std::string& exhaustive, F f, Ref ref, Bound bound) {
  const test::UlpStats s = test::ulp_sweep(plan, f, ref);
  const float wn = float_of(s.worst_normal);
  const float ws = float_of(s.worst_subnormal);
  std::printf("[ ulp ] %s: max %.4f ulp (normal results, worst x=%s), %.4f ulp (subnormal results%s%s) over %llu inputs\n"
              "        exhaustive over %s; the rest of the float line sampled with a stride\n",
              name, s.max_normal, test::hex(wn).c_str(), s.max_subnormal,
              s.max_subnormal > 0 ? ", worst x=" : "", s.max_subnormal > 0 ? test::hex(ws).c_str() : "",
              static_cast<unsigned long long>(s.inputs), exhaustive.c_str());
  std::fflush(stdout);
  EXPECT_EQ(s.inputs, test::count(plan));
  EXPECT_LE(s.max_normal, bound.normal) << name << " at x=" << test::hex(wn) << " gives " << test::hex(f(wn));
  EXPECT_LE(s.max_subnormal, bound.subnormal) << name << " at x=" << test::hex(ws) << " gives " << test::hex(f(ws));
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// sin/cos(2 pi u) with the same exact quadrant reduction the contract uses (v = 4u is exact,
// and so is f = v - round(v)), so the reference is sin/cos(pi/2 f) of an exact f.
void sincos_2pi_ref(double u, double* s, double* c) {
  const double v = 4.0 * u;
  const double n = std::nearbyint(v);
  const double f = v - n;
  const double sp = std::sin(M_PI / 2 * f), cp = std::cos(M_PI / 2 * f);
  const long long q = std::fabs(n) < 0x1p62 ? static_cast<long long>(n) & 3 : 0;
  switch (q) {
    case 0: *s = sp; *c = cp; break;
    case 1: *s = cp; *c = -sp; break;
    case 2: *s = -sp; *c = -cp; break;
    default: *s = -cp; *c = sp; break;
  }
}

TEST(NumericsMathExhaustive, Exp) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 128.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  check("exp", plan, "|x| in [2^-16, 128)", [](float x) { return exp(x); }, [](double x) { return std::exp(x); },
        {0.60, 0.80});
}

TEST(NumericsMathExhaustive, Log) {
  std::vector<BitRange> plan{whole_line()};
  plan.push_back(magnitudes(0x1p-32f, 0x1p32f, false));
  plan.push_back({0x00000001u, 0x7F800000u, 64});
  check("log", plan, "x in [2^-32, 2^32)", [](float x) { return log(x); }, [](double x) { return std::log(x); },
        {0.65, 0.80});
}

TEST(NumericsMathExhaustive, Log1p) {
  std::vector<BitRange> plan{whole_line()};
  plan.push_back(magnitudes(0x1p-20f, 1.0f, true));
  plan.push_back(magnitudes(0x1p-20f, 0x1p32f, false));
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  plan.push_back({0x00000001u, 0x7F800000u, 64});
  check("log1p", plan, "x in (-1, -2^-20] and [2^-20, 2^32)", [](float x) { return log1p(x); },
        [](double x) { return std::log1p(x); }, {0.65, 0.5});
}

TEST(NumericsMathExhaustive, Sigmoid) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 128.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  check("sigmoid", plan, "|x| in [2^-16, 128)", [](float x) { return sigmoid(x); }, sigmoid_ref, {0.60, 0.80});
}

TEST(NumericsMathExhaustive, Silu) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 128.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  check("silu", plan, "|x| in [2^-16, 128)", [](float x) { return silu(x); },
        [](double x) { return x * sigmoid_ref(x); }, {0.60, 0.80});
}

TEST(NumericsMathExhaustive, SiluGrad) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 128.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  // Near the zero x0 = -1.2785 the double formula cancels: there the reference uses long
  // double (64-bit significand), elsewhere double.
  check("silu_grad", plan, "|x| in [2^-16, 128)", [](float x) { return silu_grad(x); },
        [](double x) {
          if (std::fabs(x + 1.2784645427610738) < 0x1p-8) {
            const long double lx = x;
            const long double s = 1.0L / (1.0L + std::exp(-lx)), c = 1.0L / (1.0L + std::exp(lx));
            return static_cast<double>(s * (1.0L + lx * c));
          }
          const double s = 1.0 / (1.0 + std::exp(-x)), c = 1.0 / (1.0 + std::exp(x));
          return s * std::fma(x, c, 1.0);
        },
        {0.65, 0.80});
}

TEST(NumericsMathExhaustive, Tanh) {
  std::vector<BitRange> plan{whole_line()};
  plan.push_back(magnitudes(0x1p-13f, 16.0f, false));
  plan.push_back(magnitudes(0x1p-13f, 16.0f, true, 16));  // tanh is odd by construction
  both_signs(plan, 0x1p-126f, 0x1p-13f, 64);
  check("tanh", plan, "x in [2^-13, 16)", [](float x) { return tanh(x); }, [](double x) { return std::tanh(x); },
        {0.65, 0.5});
}

TEST(NumericsMathExhaustive, Rsqrt) {
  // rsqrt(4x) = rsqrt(x)/2 bit for bit for x >= 2^-64 (every step scales exactly), so full
  // binades below, around and above the 2^-64 rescaling threshold cover the normal range.
  std::vector<BitRange> plan{whole_line()};
  plan.push_back(magnitudes(0x1p-72f, 0x1p-56f, false));
  plan.push_back(magnitudes(0.25f, 4.0f, false));
  plan.push_back(magnitudes(0x1p124f, 0x1p127f, false));
  plan.push_back({0x7F000000u, 0x7F7FFFFFu, 1});  // [2^127, max]
  plan.push_back({0x00000001u, 0x007FFFFFu, 16});  // subnormal inputs
  plan.push_back({0x00800000u, 0x7F800000u, 64});
  check("rsqrt", plan, "x in [2^-72, 2^-56), [1/4, 4), [2^124, max]", [](float x) { return rsqrt(x); },
        [](double x) { return 1.0 / std::sqrt(x); }, {0.51, 0.80});
}

TEST(NumericsMathExhaustive, Gelu) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 16.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  check("gelu", plan, "|x| in [2^-16, 16)", [](float x) { return gelu(x); },
        [](double x) {
          const double c0 = static_cast<double>(0x1.988454p-1f), c1 = static_cast<double>(0x1.6e4e26p-5f);
          const double u = c0 * (x + c1 * x * x * x);
          return x / (1.0 + std::exp(-2.0 * u));
        },
        {0.60, 0.80});
}

TEST(NumericsMathExhaustive, Softplus) {
  std::vector<BitRange> plan{whole_line()};
  both_signs(plan, 0x1p-16f, 32.0f);
  both_signs(plan, 0x1p-126f, 0x1p-16f, 64);
  check("softplus", plan, "|x| in [2^-16, 32)", [](float x) { return softplus(x); },
        [](double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }, {0.65, 0.80});
}

std::vector<BitRange> sincos_plan() {
  std::vector<BitRange> plan{whole_line()};
  plan.push_back(magnitudes(0x1p-24f, 1.0f, false));  // includes every Box-Muller u2 = k 2^-24
  plan.push_back(magnitudes(0x1p-126f, 0x1p-24f, false, 64));
  plan.push_back(magnitudes(1.0f, 0x1p30f, false, 64));
  plan.push_back(magnitudes(0x1p-126f, 0x1p30f, true, 64));
  return plan;
}

TEST(NumericsMathExhaustive, Sin2Pi) {
  check("sin_2pi", sincos_plan(), "u in [2^-24, 1)", [](float u) { return sin_2pi(u); },
        [](double u) {
          double s, c;
          sincos_2pi_ref(u, &s, &c);
          return s;
        },
        {0.60, 0.80});
}

TEST(NumericsMathExhaustive, Cos2Pi) {
  check("cos_2pi", sincos_plan(), "u in [2^-24, 1)", [](float u) { return cos_2pi(u); },
        [](double u) {
          double s, c;
          sincos_2pi_ref(u, &s, &c);
          return c;
        },
        {0.60, 0.80});
}

}  // namespace
}  // namespace preflight::num
