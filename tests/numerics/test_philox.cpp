// Philox-4x32-10 known answers (Random123 distribution, kat_vectors) and the stream layout
// and distributions built on it (docs/NUMERICS.md §5).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "reference/numerics/philox.hpp"

namespace preflight::num {
namespace {

void expect_words(const U32x4& got, std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  EXPECT_EQ(got.w[0], a);
  EXPECT_EQ(got.w[1], b);
  EXPECT_EQ(got.w[2], c);
  EXPECT_EQ(got.w[3], d);
}

TEST(NumericsPhilox, KnownAnswers) {
  expect_words(philox4x32_10(U32x4{{0u, 0u, 0u, 0u}}, 0u, 0u), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
  expect_words(philox4x32_10(U32x4{{~0u, ~0u, ~0u, ~0u}}, ~0u, ~0u), 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u,
               0x6d5451fdu);
  // Digits of pi as counter and key.
  expect_words(philox4x32_10(U32x4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u),
               0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(NumericsPhilox, StreamLayout) {
  const std::uint64_t seed = 0x0123456789ABCDEFull, stream = 0xFEDCBA9876543210ull, block = 0x1122334455667788ull;
  const U32x4 w = philox_block(seed, stream, block);
  // counter = (block lo, block hi, stream lo, stream hi), key = (seed lo, seed hi)
  const U32x4 expected =
      philox4x32_10(U32x4{{0x55667788u, 0x11223344u, 0x76543210u, 0xFEDCBA98u}}, 0x89ABCDEFu, 0x01234567u);
  expect_words(w, expected.w[0], expected.w[1], expected.w[2], expected.w[3]);
  for (std::uint64_t j = 0; j < 4; ++j) {
    EXPECT_EQ(uniform(seed, stream, block * 4 + j), u01_closed_open(w.w[j]));
    float z[4];
    box_muller(w.w[0], w.w[1], &z[0], &z[1]);
    box_muller(w.w[2], w.w[3], &z[2], &z[3]);
    EXPECT_EQ(bits_of(normal(seed, stream, block * 4 + j)), bits_of(z[j]));
  }
  std::vector<float> filled(11);
  fill_normal(filled.data(), 11, 0.02f, seed, stream);
  for (std::uint64_t i = 0; i < 11; ++i) EXPECT_EQ(bits_of(filled[i]), bits_of(0.02f * normal(seed, stream, i)));
  EXPECT_NE(normal(seed, stream, 0), normal(seed, stream + 1, 0));
  EXPECT_NE(normal(seed, stream, 0), normal(seed + 1, stream, 0));
}

TEST(NumericsPhilox, UniformConversionsAreExactAndInRange) {
  EXPECT_EQ(u01_closed_open(0u), 0.0f);
  EXPECT_EQ(u01_closed_open(0xFFFFFFFFu), 1.0f - 0x1p-24f);
  EXPECT_EQ(u01_open_closed(0u), 0x1p-24f);
  EXPECT_EQ(u01_open_closed(0xFFFFFFFFu), 1.0f);
  EXPECT_EQ(u01_closed_open(0x12345678u), static_cast<float>(0x123456u) * 0x1p-24f);
  // Box-Muller extremes: u1 = 1 gives r = 0; u1 = 2^-24 gives the largest radius.
  float z0, z1;
  box_muller(0xFFFFFFFFu, 0u, &z0, &z1);
  EXPECT_EQ(z0, 0.0f);
  box_muller(0u, 0u, &z0, &z1);
  EXPECT_NEAR(z0, std::sqrt(-2.0 * std::log(0x1p-24)), 1e-5);
  EXPECT_EQ(z1, 0.0f);
}

// 10^6 draws: the sample mean has standard deviation 1/sqrt(N) = 1e-3 and the sample variance
// sqrt(2/N) = 1.41e-3 (exact normal moments: E z^4 = 3); 5 sigma bounds. The fourth moment and
// tail fractions are checked likewise (Var z^4 = 96, P(|z| > 3) = 0.0026998).
TEST(NumericsPhilox, NormalMomentsAreWithinDerivedBounds) {
  const std::int64_t n = 1000000;
  std::vector<float> z(static_cast<std::size_t>(n));
  fill_normal(z.data(), n, 1.0f, 42u, 7u);
  double s1 = 0, s2 = 0, s4 = 0;
  std::int64_t tail = 0;
  for (float v : z) {
    const double d = v;
    s1 += d;
    s2 += d * d;
    s4 += d * d * d * d;
    tail += std::fabs(d) > 3.0;
  }
  const double N = static_cast<double>(n);
  const double mean = s1 / N, var = s2 / N - mean * mean, m4 = s4 / N;
  const double p_tail = static_cast<double>(tail) / N;
  std::printf("[ philox ] normal: mean %.2e (bound %.1e), var %.5f (bound 1 +- %.2e), E z^4 %.4f (bound 3 +- %.3f), "
              "P(|z|>3) %.5f (bound %.5f +- %.5f)\n",
              mean, 5 / std::sqrt(N), var, 5 * std::sqrt(2 / N), m4, 5 * std::sqrt(96 / N), p_tail, 0.0026998,
              5 * std::sqrt(0.0026998 * (1 - 0.0026998) / N));
  EXPECT_LT(std::fabs(mean), 5 / std::sqrt(N));
  EXPECT_LT(std::fabs(var - 1), 5 * std::sqrt(2 / N));
  EXPECT_LT(std::fabs(m4 - 3), 5 * std::sqrt(96 / N));
  EXPECT_LT(std::fabs(p_tail - 0.0026998), 5 * std::sqrt(0.0026998 * (1 - 0.0026998) / N));
}

}  // namespace
}  // namespace preflight::num
