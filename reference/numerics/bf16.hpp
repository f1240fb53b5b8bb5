// bfloat16 storage and conversions (docs/NUMERICS.md §2.1, contract version 1).
//
// bf16 is the top half of an IEEE binary32. float -> bf16 rounds to nearest, ties to even,
// overflowing to infinity like any IEEE narrowing; every NaN becomes 0x7FFF (the value CUDA's
// cuda_bf16.h host path and the sm_80+ cvt.rn.bf16.f32 instruction both produce).
// bf16 -> float is exact (a shift); a bf16 NaN keeps its bits in the upper half.
#pragma once

#include <cstdint>

#include "reference/numerics/hd.hpp"

namespace preflight::num {

struct bf16 {
  std::uint16_t bits;
};

PF_HD bf16 to_bf16(float x) {
  const std::uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bf16{0x7FFFu};
  // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the
  // dropped half is above one half, or equal to it with an odd kept half: round half to even.
  const std::uint32_t lsb = (u >> 16) & 1u;
  return bf16{static_cast<std::uint16_t>((u + 0x7FFFu + lsb) >> 16)};
}

PF_HD float to_float(bf16 h) { return float_of(static_cast<std::uint32_t>(h.bits) << 16); }

// The float that a bf16 round trip leaves (used where a layer stores an activation in bf16).
PF_HD float round_to_bf16(float x) { return to_float(to_bf16(x)); }

}  // namespace preflight::num
