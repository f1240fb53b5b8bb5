// Shared helpers of the reference-layer tests: deterministic test data, float64
// oracles' plumbing, central finite differences, bitwise comparison, thread control.
//
// Test data comes from std::mt19937_64 (the data are inputs, not part of the numerics
// contract). Finite differences are taken of float64 oracles, with step h chosen per
// test; with a smooth oracle the central difference has truncation error
// h²/6·|f'''| and rounding error ≈ 2^-53·|L|/h, both far below the fp32 tolerances used.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace preflight::ref::test {

constexpr double kU32 = 0x1p-24;  // unit roundoff of fp32 (RNE)

// γ_n = n·u / (1 − n·u): the classic bound on n successive roundings.
inline double gamma32(double n) { return n * kU32 / (1.0 - n * kU32); }

// Rounding count of the contract's dot product of length K: at most 128 fma steps in
// the longest block plus one add per block into the total.
inline double dot_roundings(int64_t K) {
  return double(std::min<int64_t>(K, 128)) + double((K + 127) / 128);
}

inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<float> v(n);
  for (auto& x : v) x = float(dist(gen) * scale);
  return v;
}

inline std::vector<float> randu(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = float(dist(gen));
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

inline bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// Runs fn with exactly n OpenMP threads, restoring the previous setting.
template <typename Fn>
auto with_threads(int n, Fn&& fn) {
  const int old = omp_get_max_threads();
  omp_set_num_threads(n);
  auto r = fn();
  omp_set_num_threads(old);
  return r;
}

// Central difference of a scalar float64 function of x at index i.
inline double central_diff(const std::function<double(const std::vector<double>&)>& f,
                           std::vector<double> x, size_t i, double h) {
  const double x0 = x[i];
  x[i] = x0 + h;
  const double fp = f(x);
  x[i] = x0 - h;
  const double fm = f(x);
  return (fp - fm) / (2.0 * h);
}

// Checks every entry (or every `stride`-th) of an fp32 gradient against the central
// difference of the float64 loss `f`; |g − fd| ≤ atol + rtol·|fd|.
inline void expect_grad_matches_fd(const std::string& what, const std::vector<float>& grad,
                                   const std::function<double(const std::vector<double>&)>& f,
                                   const std::vector<double>& x, double h, double atol,
                                   double rtol, size_t stride = 1) {
  ASSERT_EQ(grad.size(), x.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const double fd = central_diff(f, x, i, h);
    const double err = std::fabs(double(grad[i]) - fd);
    if (err > atol + rtol * std::fabs(fd) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: backward " << grad[i] << " vs finite difference "
                    << fd << " (|err| " << err << " > " << atol + rtol * std::fabs(fd) << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " entries out of tolerance";
}

// Max over i of |a_i − b_i| / bound_i; ≤ 1 means within the derived bound.
inline double worst_ratio(const std::vector<float>& got, const std::vector<double>& want,
                          const std::vector<double>& bound) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    worst = std::max(worst, bound[i] > 0 ? e / bound[i] : (e > 0 ? INFINITY : 0.0));
  }
  return worst;
}

}  // namespace preflight::ref::test
