// FP8 (E4M3, E5M2) and UE8M0 formats, and the FP8 quantisation rule
// (docs/NUMERICS.md §2.2-2.4, contract version 1).
//
// float -> fp8 is "saturating finite, round to nearest even": the value is rounded to nearest
// even as if the exponent range were unbounded, then anything above the largest finite value
// (infinities included) becomes that value with the input's sign. Results below half the
// smallest subnormal become a zero that keeps the input's sign. Every NaN becomes 0x7F.
// This equals cuda_fp8.h's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt) for all 2^32 inputs
// (tests/numerics/test_formats_exhaustive.cpp checks that).
//
//   E4M3 ("fn"): bias 7, 3 mantissa bits, max 448 (0x7E), no infinities, NaN = S.1111.111.
//   E5M2:        bias 15, 2 mantissa bits, max 57344 (0x7B), +-inf = S.11111.00, NaN = S.11111.xx.
//
// fp8 -> float is exact; NaN codes decode to the canonical float NaN 0x7FFFFFFF.
// UE8M0 is an unsigned power of two 2^(b-127), b in [0, 254]; 0xFF is NaN.
#pragma once

#include <cstdint>

#include "reference/numerics/hd.hpp"

namespace preflight::num {

struct fp8_e4m3 {
  std::uint8_t bits;
};
struct fp8_e5m2 {
  std::uint8_t bits;
};
struct ue8m0 {
  std::uint8_t bits;
};

namespace detail {

// Mantissa width, exponent bias, float bit pattern of the largest finite value and its code.
template <int MantBits, int Bias, std::uint32_t MaxFloatBits, std::uint8_t MaxCode>
struct Fp8Spec {
  static constexpr int kMant = MantBits;
  static constexpr int kBias = Bias;
  static constexpr std::uint32_t kMaxFloatBits = MaxFloatBits;
  static constexpr std::uint8_t kMaxCode = MaxCode;
};
using E4M3Spec = Fp8Spec<3, 7, 0x43E00000u, 0x7Eu>;    // 448 = 1.75 * 2^8
using E5M2Spec = Fp8Spec<2, 15, 0x47600000u, 0x7Bu>;   // 57344 = 1.75 * 2^15

template <class Spec>
PF_HD std::uint8_t fp8_encode(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0x7Fu;
  // Saturate: everything at or above the largest finite value (which includes the half-way
  // points that would round past it) maps to it.
  if (a >= Spec::kMaxFloatBits) return static_cast<std::uint8_t>(sign | Spec::kMaxCode);

  constexpr std::uint32_t kMinNormalBits = static_cast<std::uint32_t>(128 - Spec::kBias) << 23;
  if (a >= kMinNormalBits) {
    // Normal target: re-bias the exponent in place, then drop 23-M mantissa bits rounding
    // half to even. A carry out of the mantissa correctly bumps the exponent.
    constexpr int kShift = 23 - Spec::kMant;
    std::uint32_t r = a - (static_cast<std::uint32_t>(127 - Spec::kBias) << 23);
    r += ((1u << (kShift - 1)) - 1u) + ((r >> kShift) & 1u);
    return static_cast<std::uint8_t>(sign | (r >> kShift));
  }

  // Subnormal target, in units of the smallest subnormal 2^(1-bias-M): the float's
  // significand shifted right by s, rounded half to even. A result of 2^M is the smallest
  // normal, whose code is the same integer.
  const int e = static_cast<int>(a >> 23);
  const std::uint32_t sig = (a & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u);
  const int s = 151 - Spec::kBias - Spec::kMant - (e != 0 ? e : 1);
  if (s > 24) return sign;  // sig < 2^24 <= half a unit: rounds to a signed zero
  std::uint32_t q = sig >> s;
  const std::uint32_t rem = sig & ((1u << s) - 1u);
  const std::uint32_t half = 1u << (s - 1);
  if (rem > half || (rem == half && (q & 1u) != 0u)) ++q;
  return static_cast<std::uint8_t>(sign | q);
}

template <class Spec>
PF_HD float fp8_decode(std::uint8_t c) {
  constexpr int kExpBits = 7 - Spec::kMant;
  constexpr std::uint32_t kExpMax = (1u << kExpBits) - 1u;
  const std::uint32_t sign = static_cast<std::uint32_t>(c & 0x80u) << 24;
  const std::uint32_t e = (c >> Spec::kMant) & kExpMax;
  const std::uint32_t m = c & ((1u << Spec::kMant) - 1u);
  if constexpr (Spec::kMaxCode == 0x7Eu) {  // E4M3: only S.1111.111 is special
    if ((c & 0x7Fu) == 0x7Fu) return canonical_nan();
  } else if (e == kExpMax) {  // E5M2: IEEE-style specials
    return m == 0u ? float_of(sign | 0x7F800000u) : canonical_nan();
  }
  if (e == 0u) {
    // m * 2^(1-bias-M) is exact in float.
    const float v = static_cast<float>(m) * pow2(1 - Spec::kBias - Spec::kMant);
    return float_of(bits_of(v) | sign);
  }
  return float_of(sign | ((e + 127u - Spec::kBias) << 23) | (m << (23 - Spec::kMant)));
}

}  // namespace detail

PF_HD fp8_e4m3 to_e4m3(float x) { return fp8_e4m3{detail::fp8_encode<detail::E4M3Spec>(x)}; }
PF_HD fp8_e5m2 to_e5m2(float x) { return fp8_e5m2{detail::fp8_encode<detail::E5M2Spec>(x)}; }
PF_HD float to_float(fp8_e4m3 v) { return detail::fp8_decode<detail::E4M3Spec>(v.bits); }
PF_HD float to_float(fp8_e5m2 v) { return detail::fp8_decode<detail::E5M2Spec>(v.bits); }

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE5M2Max = 57344.0f;

// UE8M0 from a positive float, rounding up to the next power of two (DeepGEMM's scale
// format): 2^ceil(log2 x). x <= 2^-127 (zeros included) gives 2^-127 (0x00); NaN, negative
// x and x > 2^127 (no power of two to round up to) give NaN (0xFF).
PF_HD ue8m0 to_ue8m0_ceil(float x) {
  const std::uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return ue8m0{0xFFu};
  if ((u & 0x7FFFFFFFu) == 0u) return ue8m0{0x00u};
  if ((u >> 31) != 0u) return ue8m0{0xFFu};
  if (u < 0x00800000u) return ue8m0{u <= 0x00400000u ? std::uint8_t{0x00} : std::uint8_t{0x01}};
  // Normal x = 2^(E-127) * 1.m: the biased exponent itself, plus one unless m == 0. E = 254
  // with m != 0 becomes 0xFF, and +inf (E = 255) stays 0xFF.
  const std::uint32_t biased = (u >> 23) + ((u & 0x7FFFFFu) != 0u ? 1u : 0u);
  return ue8m0{static_cast<std::uint8_t>(biased > 0xFFu ? 0xFFu : biased)};
}

PF_HD float to_float(ue8m0 s) {
  if (s.bits == 0xFFu) return canonical_nan();
  if (s.bits == 0x00u) return float_of(0x00400000u);  // 2^-127 is a float subnormal
  return float_of(static_cast<std::uint32_t>(s.bits) << 23);
}

// ---------------------------------------------------------------------------------------
// FP8 quantisation rule (per 1x128 activation tile / 128x128 weight block, DeepSeek-V3):
//   scale = max(amax, 1e-4) / 448        (one rounded division; NaN amax gives NaN)
//   q_i   = to_e4m3(x_i / scale)         (division, not multiplication by 1/scale)
//   x_i  ~= to_float(q_i) * scale
// The power-of-two variant rounds that scale up with to_ue8m0_ceil, so x_i / scale never
// exceeds 448 in magnitude and dividing by it is exact.
// ---------------------------------------------------------------------------------------
inline constexpr float kFp8AmaxFloor = 1e-4f;

PF_HD float fp8_e4m3_scale(float amax) {
  if (is_nan(amax)) return canonical_nan();
  const float clamped = amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor;
  return clamped / kE4M3Max;
}

PF_HD float fp8_e4m3_scale_pow2(float amax) { return to_float(to_ue8m0_ceil(fp8_e4m3_scale(amax))); }

PF_HD fp8_e4m3 quantize_e4m3(float x, float scale) { return to_e4m3(x / scale); }

// amax of a tile: max |x_i|, NaN if any x_i is NaN. Max is exact, so the order is free.
PF_HD float abs_max(const float* x, std::int64_t n) {
  float m = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) {
    if (is_nan(x[i])) return canonical_nan();
    const float a = abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

}  // namespace preflight::num
