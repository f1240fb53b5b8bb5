// Sweep helpers for the numerics tests: iterate over float bit patterns (split over OpenMP
// threads; the merged result does not depend on the thread count), measure errors in ulps
// against a double-precision reference, and describe what was swept.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "reference/numerics/hd.hpp"

namespace preflight::num::test {

// Bit patterns first, first + stride, ... <= last (inclusive, as uint32 patterns).
struct BitRange {
  std::uint32_t first;
  std::uint32_t last;
  std::uint32_t stride;
};

inline std::uint32_t bits(float x) { return bits_of(x); }

// Magnitudes [lo, hi) with the given sign bit, every `stride`-th pattern.
inline BitRange magnitudes(float lo, float hi, bool negative, std::uint32_t stride = 1) {
  const std::uint32_t s = negative ? 0x80000000u : 0u;
  return {s | bits(lo), s | (bits(hi) - 1u), stride};
}

inline std::uint64_t count(const std::vector<BitRange>& ranges) {
  std::uint64_t n = 0;
  for (const BitRange& r : ranges) n += (static_cast<std::uint64_t>(r.last) - r.first) / r.stride + 1;
  return n;
}

// Runs visit(u, state) for every pattern of every range, split over the OpenMP threads in
// static chunks; each thread folds into its own State (no shared writes in the loop) and the
// per-thread states are returned for the caller to merge.
template <class State, class Visit>
std::vector<State> for_each_pattern(const std::vector<BitRange>& ranges, Visit visit) {
  std::vector<State> states(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel
  {
    State local{};
    for (const BitRange& r : ranges) {
      const std::int64_t n = (static_cast<std::int64_t>(r.last) - r.first) / r.stride + 1;
#pragma omp for schedule(static, 65536)
      for (std::int64_t i = 0; i < n; ++i) visit(r.first + static_cast<std::uint32_t>(i) * r.stride, local);
    }
    states[static_cast<std::size_t>(omp_get_thread_num())] = local;
  }
  return states;
}

// Error of `got` against the exact value `ref` (a double), in units of the float ulp at ref:
// 2^(floor(log2 |ref|) - 23), or 2^-149 below 2^-126. An infinite `got` counts as 2^128 when
// the reference is finite and would not itself round to infinity. NaN results must be the
// canonical NaN; a mismatch in NaN-ness or an invalid NaN is reported as an infinite error.
inline double ulp_error(float got, double ref) {
  if (std::isnan(ref)) return bits_of(got) == kCanonicalNaNBits ? 0.0 : INFINITY;
  if (std::isnan(got)) return INFINITY;
  if (std::fabs(ref) >= 0x1.ffffffp127) return std::isinf(got) && ((got > 0) == (ref > 0)) ? 0.0 : INFINITY;
  const double g = std::isinf(got) ? std::copysign(0x1p128, static_cast<double>(got)) : static_cast<double>(got);
  const double a = std::fabs(ref);
  double ulp = 0x1p-149;
  if (a >= 0x1p-126) {
    std::uint64_t b;
    std::memcpy(&b, &a, sizeof b);
    const std::uint64_t e = (b >> 52) & 0x7FFu;  // biased double exponent of ref
    const std::uint64_t ub = (e - 23u) << 52;    // 2^(exponent - 23), always a normal double
    std::memcpy(&ulp, &ub, sizeof ulp);
  }
  return std::fabs(g - ref) / ulp;
}

struct UlpStats {
  double max_normal = 0.0;     // results with |ref| >= 2^-126
  double max_subnormal = 0.0;  // results below 2^-126 (the subnormal grid)
  std::uint32_t worst_normal = 0;
  std::uint32_t worst_subnormal = 0;
  std::uint64_t inputs = 0;

  void add(std::uint32_t u, double err, double ref) {
    ++inputs;
    const bool sub = std::fabs(ref) < 0x1p-126;
    double& m = sub ? max_subnormal : max_normal;
    std::uint32_t& w = sub ? worst_subnormal : worst_normal;
    if (err > m || (err == m && err > 0.0 && u < w)) {
      m = err;
      w = u;
    }
  }
  void merge(const UlpStats& o) {
    inputs += o.inputs;
    if (o.max_normal > max_normal || (o.max_normal == max_normal && o.worst_normal < worst_normal)) {
      max_normal = o.max_normal;
      worst_normal = o.worst_normal;
    }
    if (o.max_subnormal > max_subnormal || (o.max_subnormal == max_subnormal && o.worst_subnormal < worst_subnormal)) {
      max_subnormal = o.max_subnormal;
      worst_subnormal = o.worst_subnormal;
    }
  }
};

// Measures f against ref over the ranges.
template <class F, class Ref>
UlpStats ulp_sweep(const std::vector<BitRange>& ranges, F f, Ref ref) {
  const std::vector<UlpStats> per_thread = for_each_pattern<UlpStats>(ranges, [&](std::uint32_t u, UlpStats& s) {
    const float x = float_of(u);
    const double r = ref(static_cast<double>(x));
    s.add(u, ulp_error(f(x), r), r);
  });
  UlpStats total;
  for (const UlpStats& s : per_thread) total.merge(s);
  return total;
}

inline std::string hex(float x) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(x));
  return buf;
}

}  // namespace preflight::num::test
