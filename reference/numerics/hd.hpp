// Host/device portability layer of the numerics core (docs/NUMERICS.md, contract version 1).
//
// Every function of reference/numerics/ is compiled twice: by the host C++ compiler for the
// CPU reference and by nvcc for the CUDA path, and the two must give the same bits. So this
// layer exposes only operations that IEEE 754 defines exactly (correctly rounded + - * / sqrt
// and fma, round-to-nearest-even) and bit moves, each written once for both sides.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PF_HD __host__ __device__ inline
#else
#define PF_HD inline
#endif

// Fast-math would let the compiler reassociate, contract and drop special values; the
// contract cannot hold under it, so refuse to build rather than silently differ.
#if defined(__FAST_MATH__) || defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
#error "reference/numerics requires IEEE semantics: do not build with -ffast-math / -ffinite-math-only"
#endif
#if defined(__CUDA_ARCH__) && defined(__USE_FAST_MATH__)
#error "reference/numerics requires IEEE semantics: do not build device code with -use_fast_math"
#endif

namespace preflight::num {

// Contract version of docs/NUMERICS.md that this code implements; bump both together.
inline constexpr int kContractVersion = 1;

PF_HD std::uint32_t bits_of(float x) {
  std::uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

PF_HD float float_of(std::uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

// The one NaN this library produces (sign 0, all payload bits set): it is what the GPU's
// arithmetic produces too, whereas x86 produces 0xFFC00000, so every path that can yield a
// NaN returns this value explicitly.
inline constexpr std::uint32_t kCanonicalNaNBits = 0x7FFFFFFFu;
PF_HD float canonical_nan() { return float_of(kCanonicalNaNBits); }

PF_HD bool is_nan(float x) { return (bits_of(x) & 0x7FFFFFFFu) > 0x7F800000u; }
PF_HD bool is_inf(float x) { return (bits_of(x) & 0x7FFFFFFFu) == 0x7F800000u; }
PF_HD bool sign_bit(float x) { return (bits_of(x) >> 31) != 0u; }
PF_HD float abs(float x) { return float_of(bits_of(x) & 0x7FFFFFFFu); }
PF_HD float copy_sign(float magnitude, float sign) {
  return float_of((bits_of(magnitude) & 0x7FFFFFFFu) | (bits_of(sign) & 0x80000000u));
}
PF_HD float canonicalize(float x) { return is_nan(x) ? canonical_nan() : x; }

// a*b+c with one rounding. The host build may or may not have an fma instruction; either way
// std::fma is correctly rounded, so the bits do not depend on it.
PF_HD float fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return ::fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// Correctly rounded square root (device: sqrt.rn regardless of -prec-sqrt).
PF_HD float sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

// 2^n as a float for n in [-126, 127] (normal range only; callers guarantee it).
PF_HD float pow2(int n) { return float_of(static_cast<std::uint32_t>(n + 127) << 23); }

// x * 2^n for n in [-252, 254], rounded once: the first multiply is exact whenever
// |x| * 2^(n/2) stays normal, which callers guarantee (|x| within [2^-20, 2^20]).
PF_HD float scale_by_pow2(float x, int n) {
  const int n1 = n >> 1;  // floor(n/2): both halves stay within the normal exponent range
  return (x * pow2(n1)) * pow2(n - n1);
}

}  // namespace preflight::num
