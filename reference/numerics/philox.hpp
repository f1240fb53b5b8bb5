// Counter-based random numbers (docs/NUMERICS.md §5, contract version 1).
//
// Philox-4x32-10 (Salmon et al., SC'11): a keyed bijection of a 128-bit counter, so element i
// of any random tensor is a pure function of (seed, stream, i). Initialisation is therefore
// identical on every machine, thread count and on the GPU.
//
// Stream layout (a third party reproduces normal(seed, stream, i) from this alone):
//   key     = (seed & 0xFFFFFFFF, seed >> 32)
//   counter = (block & 0xFFFFFFFF, block >> 32, stream & 0xFFFFFFFF, stream >> 32),
//             block = i / 4; the four output words w0..w3 serve elements 4*block + 0..3.
//   uniform(seed, stream, i) = top 24 bits of w[i % 4] * 2^-24            in [0, 1)
//   normal(seed, stream, i): Box-Muller on the pairs (w0, w1) -> elements 0, 1 and
//             (w2, w3) -> elements 2, 3 of the block:
//               u1 = ((w_even >> 8) + 1) * 2^-24 in (0, 1],  u2 = (w_odd >> 8) * 2^-24 in [0, 1)
//               r = sqrt(-2 * log(u1));  z_even = r * cos(2 pi u2),  z_odd = r * sin(2 pi u2)
//             with num::log, num::sqrt and num::sincos_2pi.
#pragma once

#include <cstdint>

#include "reference/numerics/hd.hpp"
#include "reference/numerics/math.hpp"

namespace preflight::num {

struct U32x4 {
  std::uint32_t w[4];
};

inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

PF_HD U32x4 philox4x32_10(U32x4 ctr, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * ctr.w[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * ctr.w[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = U32x4{{hi1 ^ ctr.w[1] ^ k0, lo1, hi0 ^ ctr.w[3] ^ k1, lo0}};
  }
  return ctr;
}

// The four words of block `block` of stream `stream` under `seed`.
PF_HD U32x4 philox_block(std::uint64_t seed, std::uint64_t stream, std::uint64_t block) {
  const U32x4 ctr{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                   static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Top 24 bits scaled by 2^-24: exact, so every value is a multiple of 2^-24.
PF_HD float u01_closed_open(std::uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }  // [0, 1)
PF_HD float u01_open_closed(std::uint32_t w) { return static_cast<float>((w >> 8) + 1u) * 0x1.0p-24f; }  // (0, 1]

PF_HD float uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return u01_closed_open(philox_block(seed, stream, index >> 2).w[index & 3u]);
}

// Box-Muller on one pair of words: (r cos 2 pi u2, r sin 2 pi u2).
PF_HD void box_muller(std::uint32_t w_even, std::uint32_t w_odd, float* z_even, float* z_odd) {
  const float u1 = u01_open_closed(w_even);
  const float u2 = u01_closed_open(w_odd);
  const float r = sqrt(-2.0f * log(u1));
  float s, c;
  sincos_2pi(u2, &s, &c);
  *z_even = r * c;
  *z_odd = r * s;
}

struct F32x4 {
  float v[4];
};

// The four standard normals of one block.
PF_HD F32x4 normal4(std::uint64_t seed, std::uint64_t stream, std::uint64_t block) {
  const U32x4 w = philox_block(seed, stream, block);
  F32x4 z;
  box_muller(w.w[0], w.w[1], &z.v[0], &z.v[1]);
  box_muller(w.w[2], w.w[3], &z.v[2], &z.v[3]);
  return z;
}

PF_HD float normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return normal4(seed, stream, index >> 2).v[index & 3u];
}

// out[i] = std_dev * normal(seed, stream, i), i in [0, n): the weight-initialisation rule
// (one rounded multiply; a zero-mean init needs no add).
inline void fill_normal(float* out, std::int64_t n, float std_dev, std::uint64_t seed, std::uint64_t stream) {
  for (std::int64_t b = 0; b * 4 < n; ++b) {
    const F32x4 z = normal4(seed, stream, static_cast<std::uint64_t>(b));
    for (std::int64_t j = 0; j < 4 && b * 4 + j < n; ++j) out[b * 4 + j] = std_dev * z.v[j];
  }
}

}  // namespace preflight::num
