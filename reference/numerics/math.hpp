// Elementwise functions of the numerics contract (docs/NUMERICS.md §3, contract version 1).
//
// Each function is a fixed sequence of IEEE-exact operations (+ - * / sqrt fma, round to
// nearest even, no library calls), so the CPU reference and the CUDA path give the same bits.
// Range reductions are exact; the polynomials were fitted (minimax, then rounded to float) for
// the reduced intervals named beside them. Measured error bounds against a double-precision
// reference are in docs/NUMERICS.md and enforced by tests/numerics/test_math_exhaustive.cpp.
//
// Special values are handled before any arithmetic and every NaN result is the canonical
// 0x7FFFFFFF, so no path depends on how a processor propagates NaN payloads.
#pragma once

#include <cstdint>

#include "reference/numerics/hd.hpp"

namespace preflight::num {

inline constexpr float kInf = __builtin_huge_valf();

namespace detail {

// An unevaluated sum hi + lo, |lo| small next to |hi|: the extra precision the compositions
// below carry between steps so that each function rounds (close to) once at the end.
struct Float2 {
  float hi;
  float lo;
};

// a + b = s + e exactly (Knuth), any magnitudes.
PF_HD Float2 two_sum(float a, float b) {
  const float s = a + b;
  const float bb = s - a;
  const float e = (a - (s - bb)) + (b - bb);
  return {s, e};
}

// a + b = s + e exactly when |a| >= |b| (Dekker).
PF_HD Float2 fast_two_sum(float a, float b) {
  const float s = a + b;
  return {s, b - (s - a)};
}

// a * b = p + e exactly (no underflow).
PF_HD Float2 two_prod(float a, float b) {
  const float p = a * b;
  return {p, fma(a, b, -p)};
}

// (n.hi + n.lo) / (d.hi + d.lo), within about half an ulp: q = n.hi/d.hi, and the exact
// remainder n.hi - q*d.hi (an fma gives it exactly) plus the low parts correct q once.
PF_HD float div2(Float2 n, Float2 d) {
  const float q = n.hi / d.hi;
  float r = fma(-q, d.hi, n.hi);
  r = r + n.lo;
  r = fma(-q, d.lo, r);
  return q + r / d.hi;
}

// Constants (hex float so no decimal conversion is involved).
inline constexpr float kLog2e = 0x1.715476p+0f;
inline constexpr float kLn2Hi = 0x1.62e430p-1f;     // float(ln 2): k * kLn2Hi is exact in an fma
inline constexpr float kLn2Lo = -0x1.05c610p-29f;   // float(ln 2 - kLn2Hi)
inline constexpr float kLn2Hi16 = 0x1.62e4p-1f;     // ln 2 to 16 bits: e * kLn2Hi16 exact, |e| < 2^8
inline constexpr float kLn2Lo16 = 0x1.7f7d1cp-20f;  // float(ln 2 - kLn2Hi16)
inline constexpr float kRoundMagic = 0x1.8p23f;     // (t + M) - M rounds |t| < 2^22 to an integer

// e^(x + tail) = 2^k * (hi + lo), relative error below 2^-27, for |x| <= 2^20 and |tail| at
// most a few ulps of x.
//   k = round(x / ln2) (round half even, by the magic-number add),
//   r = (x - k*ln2_hi) - k*ln2_lo + tail, where x - k*ln2_hi is exact in one fma (the
//       difference is a multiple of min(ulp(x), 2^-24) below 0.35, so it fits 24 bits),
//   e^r = 1 + r + r^2 * Q(r), Q degree 5 minimax on |r| <= 0.3467 (error 2^-32.5).
struct ExpParts {
  float hi;
  float lo;
  int k;
};

PF_HD ExpParts exp_parts(float x, float tail) {
  const float kf = (x * kLog2e + kRoundMagic) - kRoundMagic;
  const float r_hi = fma(-kf, kLn2Hi, x);
  const float r_lo = fma(-kf, kLn2Lo, tail);
  const Float2 r = two_sum(r_hi, r_lo);
  float q = 0x1.a17e3cp-13f;
  q = fma(q, r.hi, 0x1.6d4352p-10f);
  q = fma(q, r.hi, 0x1.1110acp-7f);
  q = fma(q, r.hi, 0x1.5554e8p-5f);
  q = fma(q, r.hi, 0x1.555556p-3f);
  q = fma(q, r.hi, 0x1.0p-1f);
  const Float2 r2 = two_prod(r.hi, r.hi);
  // r^2 Q(r) + r.lo (1 + r.hi): the low part of r enters to first order.
  const float c = fma(r2.lo, q, fma(r.hi, r.lo, r.lo));
  const float t = fma(r2.hi, q, c);
  const Float2 s = two_sum(r.hi, t);
  const Float2 h = fast_two_sum(1.0f, s.hi);
  return {h.hi, h.lo + s.lo, static_cast<int>(kf)};
}

// The two halves of 2^k * (hi + lo) as floats (the low half may lose bits to underflow,
// harmlessly: it only feeds corrections).
PF_HD Float2 scaled(const ExpParts& p) {
  return {scale_by_pow2(p.hi, p.k), p.lo == 0.0f ? 0.0f : scale_by_pow2(p.lo, p.k)};
}

// 1 + t for 0 <= t <= 1 given as hi + lo, kept as an unevaluated sum.
PF_HD Float2 one_plus(Float2 t) {
  Float2 d = fast_two_sum(1.0f, t.hi);
  d.lo = d.lo + t.lo;
  return d;
}

// log(u + c) = hi + lo for a positive normal u and a correction |c| <= ulp(u) (what a
// rounding dropped), plus e_adj added to u's exponent.
//   u = 2^e * m, m in [sqrt(1/2), sqrt(2)), f = m - 1 exact (Sterbenz),
//   log(1+f) = f - h + s*(h + R(s^2)), s = f / (2 + f), h = f^2/2 (an identity: 2 atanh s),
//   R(z) = z * (a0 + a1 z + a2 z^2 + a3 z^3) minimax on z <= 0.02944 (relative 2^-35.8),
//   e * ln2 = e * ln2_hi16 (exact) + e * ln2_lo16, and log(1 + c/u) ~= c/u.
PF_HD Float2 log_parts(float u, float c, int e_adj) {
  const std::uint32_t ub = bits_of(u);
  int e = static_cast<int>(ub >> 23) - 127;
  std::uint32_t mb = (ub & 0x7FFFFFu) | 0x3F800000u;
  if (mb > 0x3FB504F3u) {  // m > float(sqrt 2): use m/2 so |f| <= 0.4143
    mb -= 0x00800000u;
    e += 1;
  }
  e += e_adj;
  const float f = float_of(mb) - 1.0f;
  // s = f / (2 + f), corrected once for the rounding of 2 + f and of the quotient.
  const Float2 den = fast_two_sum(2.0f, f);
  const float s0 = f / den.hi;
  const float s = s0 + fma(-s0, den.lo, fma(-s0, den.hi, f)) / den.hi;
  const float z = s * s;
  float p = 0x1.ddd8d6p-3f;
  p = fma(p, z, 0x1.245c0cp-2f);
  p = fma(p, z, 0x1.9999ecp-2f);
  p = fma(p, z, 0x1.555556p-1f);
  const float R = z * p;
  const float hf = 0.5f * f;
  const Float2 h = two_prod(hf, f);
  const float ef = static_cast<float>(e);
  const float small = fma(s, h.hi + R, fma(ef, kLn2Lo16, c / u));
  // e ln2_hi + f - h exactly as hi + lo, then the small terms: only the final add of the
  // caller rounds anything of the result's magnitude.
  const Float2 y = two_sum(ef * kLn2Hi16, f);
  const Float2 w = two_sum(y.hi, -h.hi);
  return {w.hi, ((y.lo + w.lo) - h.lo) + small};
}

// sin(pi/2 * f) and cos(pi/2 * f) for |f| <= 1/2.
//   sin: f * pi/2 + f^3 * P(f^2), P degree 3 minimax (relative 2^-35.7), pi/2 as hi + lo;
//   cos: 1 - (pi^2/8) f^2 + f^4 * C'(f^2), C' degree 3 minimax (2^-39.5), pi^2/8 as hi + lo.
PF_HD float sin_halfpi(float f) {
  // f pi/2 + f^3 P(g): the leading product and f^3 are formed exactly (two_prod) so that only
  // P's own rounding and the final add are of consequence.
  constexpr float kHalfPiHi = 0x1.921fb6p+0f;
  constexpr float kHalfPiLo = -0x1.777a5cp-25f;
  const Float2 g = two_prod(f, f);
  float p = 0x1.4cb79ep-13f;
  p = fma(p, g.hi, -0x1.32ce1ep-8f);
  p = fma(p, g.hi, 0x1.466bc2p-4f);
  p = fma(p, g.hi, -0x1.4abbcep-1f);
  const Float2 f3 = two_prod(f, g.hi);
  const Float2 a = two_prod(f3.hi, p);
  const Float2 b = two_prod(f, kHalfPiHi);
  const Float2 s = fast_two_sum(b.hi, a.hi);
  const float rest = fma(fma(f, g.lo, f3.lo), p, fma(f, kHalfPiLo, b.lo + a.lo));
  return s.hi + (s.lo + rest);
}

PF_HD float cos_halfpi(float f) {
  // 1 + C0 g + g^2 C'(g), g = f^2 (as hi + lo), C0 = -pi^2/8 as hi + lo, C' degree 3
  // minimax on g <= 1/4 (2^-39.5); the leading product and the add to 1 are exact.
  constexpr float kC0Hi = -0x1.3bd3ccp+0f;
  constexpr float kC0Lo = -0x1.37c8bcp-25f;
  const Float2 g = two_prod(f, f);
  float c = -0x1.a2e336p-16f;
  c = fma(c, g.hi, 0x1.e1f01ep-11f);
  c = fma(c, g.hi, -0x1.55d3c6p-6f);
  c = fma(c, g.hi, 0x1.03c1f0p-2f);
  const Float2 a = two_prod(g.hi, kC0Hi);
  const float b = fma(g.hi * g.hi, c, fma(g.hi, kC0Lo, g.lo * kC0Hi));
  const Float2 one = fast_two_sum(1.0f, a.hi);
  return one.hi + (one.lo + (a.lo + b));
}

// log1p(t) as hi + lo for t = t.hi + t.lo >= -1/2:
//   |t| < 2^-7: t - t^2/2 + t^3/3 - t^4/4 + t^5/5 (Taylor; the next term is below 2^-37 t),
//   otherwise:  u = 1 + t with its exact rounding error, then log(u + c).
PF_HD Float2 log1p_parts(Float2 t) {
  if (abs(t.hi) < 0x1.0p-7f) {
    float p = fma(t.hi, 0.2f, -0.25f);
    p = fma(t.hi, p, 0x1.555556p-2f);
    p = fma(t.hi, p, -0.5f);
    return {t.hi, fma(t.hi * t.hi, p, t.lo)};
  }
  Float2 u = abs(t.hi) <= 1.0f ? fast_two_sum(1.0f, t.hi) : fast_two_sum(t.hi, 1.0f);
  u.lo = u.lo + t.lo;
  return log_parts(u.hi, u.lo, 0);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// exp: NaN -> NaN, +inf -> +inf, -inf -> +0, x > 89 -> +inf, x < -104 -> +0 (both beyond
// the float range), otherwise 2^k * (hi + lo) rounded once into the final scaling.
// ---------------------------------------------------------------------------------------
PF_HD float exp(float x) {
  if (is_nan(x)) return canonical_nan();
  if (x > 89.0f) return kInf;
  if (x < -104.0f) return 0.0f;
  const detail::ExpParts p = detail::exp_parts(x, 0.0f);
  return scale_by_pow2(p.hi + p.lo, p.k);
}

// log: NaN and x < 0 -> NaN, +-0 -> -inf, +inf -> +inf, log(1) = +0. Subnormal inputs are
// scaled by 2^23 first (exact).
PF_HD float log(float x) {
  if (is_nan(x) || x < 0.0f) return canonical_nan();
  if (x == 0.0f) return -kInf;
  if (is_inf(x)) return kInf;
  int e_adj = 0;
  if (x < 0x1.0p-126f) {
    x = x * 0x1.0p23f;
    e_adj = -23;
  }
  const detail::Float2 r = detail::log_parts(x, 0.0f, e_adj);
  return r.hi + r.lo;
}

// log1p: NaN and x < -1 -> NaN, -1 -> -inf, +inf -> +inf, |x| < 2^-24 -> x (correctly
// rounded there, signed zeros kept). Otherwise u = 1 + x with its exact rounding error c,
// then log(u + c).
PF_HD float log1p(float x) {
  if (is_nan(x) || x < -1.0f) return canonical_nan();
  if (x == -1.0f) return -kInf;
  if (is_inf(x)) return kInf;
  if (abs(x) < 0x1.0p-24f) return x;
  const detail::Float2 r = detail::log1p_parts({x, 0.0f});
  return r.hi + r.lo;
}

// sigmoid(x) = 1 / (1 + e^-x). NaN -> NaN, +inf -> 1, -inf -> +0.
//   x >= 0: 1 / (1 + t), t = e^-x;  x < 0: t / (1 + t), t = e^x (no cancellation either way),
// with t carried as hi + lo and one compensated division.
PF_HD float sigmoid(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  if (x >= 0.0f) {
    if (x > 88.0f) return 1.0f;
    const ExpParts t = exp_parts(-x, 0.0f);
    return div2({1.0f, 0.0f}, one_plus(scaled(t)));
  }
  if (x < -104.0f) return 0.0f;
  const ExpParts t = exp_parts(x, 0.0f);
  return scale_by_pow2(div2({t.hi, t.lo}, one_plus(scaled(t))), t.k);
}

// silu(x) = x * sigmoid(x). NaN -> NaN, +-0 -> +-0, +inf -> +inf, -inf -> -0.
PF_HD float silu(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  if (x == 0.0f) return x;
  if (x > 0.0f) {
    if (x > 88.0f) return x;
    const ExpParts t = exp_parts(-x, 0.0f);
    return div2({x, 0.0f}, one_plus(scaled(t)));
  }
  if (x < -120.0f) return -0.0f;  // |x| e^x < 2^-150
  const ExpParts t = exp_parts(x, 0.0f);
  Float2 n = two_prod(x, t.hi);
  n.lo = fma(x, t.lo, n.lo);
  return scale_by_pow2(div2(n, one_plus(scaled(t))), t.k);
}

// silu'(x) = sigmoid(x) * (1 + x * (1 - sigmoid(x))), the derivative used by backward.
// NaN -> NaN, +inf -> 1, -inf -> -0. With d = 1 + t:
//   x >= 0, t = e^-x:  (d + x t) / d^2          (all terms positive)
//   x < 0,  t = e^x:   t (1 + x + t) / d^2      (1 + x + t cancels near the zero x0)
// silu' has a zero at x0 = -1 - W(1/e) = -1.27846454...; for |x - x0| < 1/16 it is
// evaluated as (x - x0) * P(x - x0), P degree 4 minimax (relative 2^-34.7), x0 as hi + lo,
// so the result keeps its relative accuracy all the way to the zero.
PF_HD float silu_grad(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  if (x > 40.0f) return 1.0f;  // x e^-x < 2^-50
  if (x < -120.0f) return -0.0f;
  constexpr float kX0Hi = -0x1.474974p+0f;
  constexpr float kX0Lo = 0x1.bdf6fap-27f;
  const float dx = x - kX0Hi;  // exact (Sterbenz) inside the window
  if (abs(dx) < 0.0625f) {
    // d = dx + dlo exactly; d * P(d) = d * p0 + d^2 * P1(d) with p0 = p0_hi + p0_lo:
    // the leading product is exact inside the last fma, the rest is a small correction.
    const float dlo = -kX0Lo;
    const float d = dx + dlo;
    float p = -0x1.b09fdcp-8f;
    p = fma(p, d, -0x1.f2cbb2p-7f);
    p = fma(p, d, 0x1.353eacp-6f);
    p = fma(p, d, 0x1.2c5634p-3f);
    const float inner = fma(d, p, 0x1.186efcp-29f);  // d * P1(d) + p0_lo
    constexpr float kP0Hi = 0x1.be1410p-3f;
    return fma(dx, kP0Hi, fma(dlo, kP0Hi, d * inner));
  }
  if (x >= 0.0f) {
    const ExpParts tp = exp_parts(-x, 0.0f);
    const Float2 t = scaled(tp);
    const Float2 d = one_plus(t);
    Float2 xt = two_prod(x, t.hi);
    xt.lo = fma(x, t.lo, xt.lo);
    Float2 n = two_sum(d.hi, xt.hi);
    n.lo = n.lo + (d.lo + xt.lo);
    Float2 d2 = two_prod(d.hi, d.hi);
    d2.lo = fma(2.0f * d.hi, d.lo, d2.lo);
    return div2(n, d2);
  }
  const ExpParts tp = exp_parts(x, 0.0f);
  const Float2 t = scaled(tp);
  const Float2 d = one_plus(t);
  // 1 + x + t: 1 + x first (exact for x in [-2, -0.5], else carried by two_sum).
  const Float2 a = two_sum(1.0f, x);
  Float2 s = two_sum(a.hi, t.hi);
  s.lo = s.lo + (a.lo + t.lo);
  // numerator t * s, with t unscaled (hi + lo) so no bits are lost before the final scaling
  Float2 n = two_prod(tp.hi, s.hi);
  n.lo = n.lo + fma(tp.hi, s.lo, tp.lo * s.hi);
  Float2 d2 = two_prod(d.hi, d.hi);
  d2.lo = fma(2.0f * d.hi, d.lo, d2.lo);
  return scale_by_pow2(div2(n, d2), tp.k);
}

// tanh: NaN -> NaN, +-0 -> +-0, +-inf -> +-1, odd.
//   |x| < 0.625:  x + x^3 T(x^2), T degree 6 minimax (2^-35 relative to tanh);
//   |x| >= 0.625: (1 - t) / (1 + t), t = e^-2|x|, numerator and denominator as hi + lo;
//   |x| > 10:     +-1 (1 - tanh < 2^-57).
PF_HD float tanh(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  const float a = abs(x);
  if (a < 0.625f) {
    if (a < 0x1.0p-12f) return x;  // x^3/3 is below half an ulp of x
    // x^3 T is up to a tenth of the result, so x^3 and its product with T are formed
    // exactly and added to x once.
    const Float2 g = two_prod(x, x);
    float p = -0x1.c545acp-11f;
    p = fma(p, g.hi, 0x1.b1b710p-9f);
    p = fma(p, g.hi, -0x1.201a64p-7f);
    p = fma(p, g.hi, 0x1.662812p-6f);
    p = fma(p, g.hi, -0x1.ba1a64p-5f);
    p = fma(p, g.hi, 0x1.111110p-3f);
    p = fma(p, g.hi, -0x1.555556p-2f);
    const Float2 x3 = two_prod(x, g.hi);
    const Float2 a = two_prod(x3.hi, p);
    const Float2 s = fast_two_sum(x, a.hi);
    return s.hi + (s.lo + fma(fma(x, g.lo, x3.lo), p, a.lo));
  }
  if (a > 10.0f) return copy_sign(1.0f, x);
  const Float2 t = scaled(exp_parts(-2.0f * a, 0.0f));
  Float2 n = fast_two_sum(1.0f, -t.hi);
  n.lo = n.lo - t.lo;
  return copy_sign(div2(n, one_plus(t)), x);
}

// rsqrt(x) = 1/sqrt(x): NaN and x < 0 -> NaN, +0 -> +inf, -0 -> -inf, +inf -> +0.
// y = 1/s with s = sqrt(x), then one correction from the two exact residuals
// 1 - y*s and x - s*s (both representable, each one fma): r = y + y*(d - e/(2x)).
// Inputs below 2^-64 are scaled by 2^64 (and the result by 2^32) to keep x - s*s exact.
PF_HD float rsqrt(float x) {
  if (is_nan(x) || x < 0.0f) return canonical_nan();
  if (x == 0.0f) return copy_sign(kInf, x);
  if (is_inf(x)) return 0.0f;
  float post = 1.0f;
  if (x < 0x1.0p-64f) {
    x = x * 0x1.0p64f;
    post = 0x1.0p32f;
  }
  const float s = sqrt(x);
  const float y = 1.0f / s;
  const float d = fma(-y, s, 1.0f);
  const float e = fma(-s, s, x);
  const float c = fma(-0.5f, e / x, d);
  return fma(y, c, y) * post;
}

// gelu, tanh approximation (GPT-2, PyTorch approximate="tanh"):
//   gelu(x) = 0.5 x (1 + tanh(c0 (x + c1 x^3))) = x * sigmoid(2u), u = c0 (x + c1 x^3),
// with the float constants c0 = float(sqrt(2/pi)) = 0x1.988454p-1 and c1 = float(0.044715)
// = 0x1.6e4e26p-5 taken as exact. The sigmoid form avoids the cancellation of 1 + tanh for
// x < 0; 2u is carried as hi + lo because for x << 0 the result is ~ x e^(2u) and any
// rounding of 2u would be amplified by |2u|.
// NaN -> NaN, +-0 -> +-0, +inf -> +inf, -inf -> -0, x >= 10 -> x, x < -11 -> -0.
PF_HD float gelu(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  if (x == 0.0f) return x;
  if (x >= 10.0f) return x;
  if (x < -11.0f) return -0.0f;  // |x| e^(2u) < 2^-150
  constexpr float kC1 = 0x1.6e4e26p-5f;
  constexpr float kTwoC0 = 0x1.988454p+0f;  // 2 * c0, exact
  const Float2 x2 = two_prod(x, x);
  Float2 x3 = two_prod(x2.hi, x);
  x3.lo = fma(x2.lo, x, x3.lo);
  Float2 p = two_prod(kC1, x3.hi);
  p.lo = fma(kC1, x3.lo, p.lo);
  Float2 s = two_sum(x, p.hi);
  s.lo = s.lo + p.lo;
  Float2 a = two_prod(kTwoC0, s.hi);  // a = 2u
  a.lo = fma(kTwoC0, s.lo, a.lo);
  if (a.hi >= 0.0f) {
    const ExpParts t = exp_parts(-a.hi, -a.lo);
    return div2({x, 0.0f}, one_plus(scaled(t)));
  }
  const ExpParts t = exp_parts(a.hi, a.lo);
  Float2 n = two_prod(x, t.hi);
  n.lo = fma(x, t.lo, n.lo);
  return scale_by_pow2(div2(n, one_plus(scaled(t))), t.k);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), with e^-|x| and the log carried
// as hi + lo. NaN -> NaN, +inf -> +inf, -inf -> +0, x > 20 -> x, x < -20 -> exp(x)
// (log1p(t) = t (1 - t/2 ...) and t < 2^-28 there).
PF_HD float softplus(float x) {
  using namespace detail;
  if (is_nan(x)) return canonical_nan();
  if (x > 20.0f) return x;
  if (x < -20.0f) return exp(x);
  const bool positive = x >= 0.0f;
  const Float2 l = log1p_parts(scaled(exp_parts(positive ? -x : x, 0.0f)));
  if (!positive) return l.hi + l.lo;
  const Float2 s = two_sum(x, l.hi);
  return s.hi + (s.lo + l.lo);
}

// sin(2 pi u) and cos(2 pi u) for any float u (Box-Muller uses u in [0, 1)).
// Exact reduction: v = 4u (exact), n = nearest integer to v (ties: toward zero's side as
// produced by truncation then one adjustment, i.e. |f| <= 1/2), f = v - n (exact), then
// the quadrant n mod 4 selects +-sin/cos(pi/2 f). For |v| >= 2^31, v is a multiple of 4.
// NaN and +-inf -> NaN. Exact zeros are +0, except sin(2 pi * -0) = -0.
PF_HD void sincos_2pi(float u, float* sin_out, float* cos_out) {
  using namespace detail;
  if (is_nan(u) || is_inf(u)) {
    *sin_out = canonical_nan();
    *cos_out = canonical_nan();
    return;
  }
  float f = 0.0f;
  std::uint32_t q = 0;
  if (abs(u) < 0x1.0p29f) {
    const float v = 4.0f * u;
    std::int32_t n = static_cast<std::int32_t>(v);  // truncation: v - n is exact, |v - n| < 1
    f = v - static_cast<float>(n);
    if (f > 0.5f) {
      f = f - 1.0f;
      n += 1;
    } else if (f < -0.5f) {
      f = f + 1.0f;
      n -= 1;
    }
    q = static_cast<std::uint32_t>(n) & 3u;
  }
  if (f == 0.0f) {  // exact multiples of pi/2
    const float zero_sin = u == 0.0f ? u : 0.0f;
    *sin_out = q == 0 ? zero_sin : q == 1 ? 1.0f : q == 2 ? 0.0f : -1.0f;
    *cos_out = q == 0 ? 1.0f : q == 1 ? 0.0f : q == 2 ? -1.0f : 0.0f;
    return;
  }
  // Tiny f: evaluate at f * 2^64 and scale back, so the small correction term of sin_halfpi
  // is not rounded to the subnormal grid before it reaches the result.
  const bool tiny = abs(f) < 0x1.0p-100f;
  const float sp = tiny ? sin_halfpi(f * 0x1.0p64f) * 0x1.0p-64f : sin_halfpi(f);
  const float cp = cos_halfpi(f);
  switch (q) {
    case 0: *sin_out = sp; *cos_out = cp; break;
    case 1: *sin_out = cp; *cos_out = -sp; break;
    case 2: *sin_out = -sp; *cos_out = -cp; break;
    default: *sin_out = -cp; *cos_out = sp; break;
  }
}

PF_HD float sin_2pi(float u) {
  float s, c;
  sincos_2pi(u, &s, &c);
  return s;
}

PF_HD float cos_2pi(float u) {
  float s, c;
  sincos_2pi(u, &s, &c);
  return c;
}

// max with a defined NaN rule (any NaN operand gives the canonical NaN) and a symmetric
// zero rule (max(+0, -0) = max(-0, +0) = +0), so a butterfly gives the same bits on every lane.
PF_HD float max_nan(float a, float b) {
  if (is_nan(a) || is_nan(b)) return canonical_nan();
  if (a > b) return a;
  if (b > a) return b;
  return float_of(bits_of(a) & bits_of(b));  // equal: same bits, or +-0 whose AND is +0
}

}  // namespace preflight::num
