// Format rules of docs/NUMERICS.md §2: the 256 fp8 codes of each format against CUDA's host
// decoder, the documented special cases of every conversion, UE8M0 and the FP8 scale rule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "reference/numerics/bf16.hpp"
#include "reference/numerics/fp8.hpp"

#if defined(PREFLIGHT_HAVE_CUDA_FP8_HEADERS)
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#endif

namespace preflight::num {
namespace {

std::uint32_t bits(float x) { return bits_of(x); }

#if defined(PREFLIGHT_HAVE_CUDA_FP8_HEADERS)
float cuda_decode(std::uint8_t code, __nv_fp8_interpretation_t fmt) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(code, fmt)));
}

TEST(NumericsFormats, AllFp8CodesDecodeLikeCudaHost) {
  int mismatches = 0;
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const float ours4 = to_float(fp8_e4m3{code});
    const float ours5 = to_float(fp8_e5m2{code});
    mismatches += bits(ours4) != bits(cuda_decode(code, __NV_E4M3));
    mismatches += bits(ours5) != bits(cuda_decode(code, __NV_E5M2));
    EXPECT_EQ(bits(ours4), bits(cuda_decode(code, __NV_E4M3))) << "e4m3 code 0x" << std::hex << c;
    EXPECT_EQ(bits(ours5), bits(cuda_decode(code, __NV_E5M2))) << "e5m2 code 0x" << std::hex << c;
  }
  std::printf("[ exhaustive ] fp8->float: 256 e4m3 + 256 e5m2 codes, %d mismatches\n", mismatches);
}
#elif defined(PREFLIGHT_REQUIRE_CUDA_FP8_HEADERS)
// A CUDA-enabled build must have the oracle (tests/numerics/CMakeLists.txt): failing, not skipping.
TEST(NumericsFormats, AllFp8CodesDecodeLikeCudaHost) {
  FAIL() << "CUDA-enabled build without cuda_fp8.h / cuda_bf16.h: set PREFLIGHT_CUDA_INCLUDE_DIR";
}
#endif  // a build without CUDA and without the headers has no oracle to run: no test

TEST(NumericsFormats, Fp8CodesReencodeToThemselves) {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const bool nan4 = (c & 0x7F) == 0x7F;
    const bool nan5 = (c & 0x7F) > 0x7C;
    const bool inf5 = (c & 0x7F) == 0x7C;  // saturating conversion maps inf to max finite
    EXPECT_EQ(to_e4m3(to_float(fp8_e4m3{code})).bits, nan4 ? 0x7F : c) << c;
    EXPECT_EQ(to_e5m2(to_float(fp8_e5m2{code})).bits, nan5 ? 0x7F : inf5 ? (c & 0x80) | 0x7B : c) << c;
  }
}

TEST(NumericsFormats, E4M3SpecialCases) {
  EXPECT_EQ(to_e4m3(448.0f).bits, 0x7E);
  EXPECT_EQ(to_e4m3(464.0f).bits, 0x7E);  // half-way to the (NaN) code above: saturates
  EXPECT_EQ(to_e4m3(1e30f).bits, 0x7E);
  EXPECT_EQ(to_e4m3(INFINITY).bits, 0x7E);
  EXPECT_EQ(to_e4m3(-INFINITY).bits, 0xFE);
  EXPECT_EQ(to_e4m3(NAN).bits, 0x7F);
  EXPECT_EQ(to_e4m3(-NAN).bits, 0x7F);  // NaN sign is not kept
  EXPECT_EQ(to_e4m3(0.0f).bits, 0x00);
  EXPECT_EQ(to_e4m3(-0.0f).bits, 0x80);
  EXPECT_EQ(to_e4m3(0x1p-10f).bits, 0x00);          // half the smallest subnormal: ties to even (0)
  EXPECT_EQ(to_e4m3(-0x1p-10f).bits, 0x80);         // underflow keeps the sign
  EXPECT_EQ(to_e4m3(0x1.000002p-10f).bits, 0x01);   // just above half: rounds up
  EXPECT_EQ(to_e4m3(0x1.8p-9f).bits, 0x02);         // 1.5 units: ties to even (2)
  EXPECT_EQ(to_e4m3(0x1.cp-7f).bits, 0x07);         // 7 units: the largest subnormal
  EXPECT_EQ(to_e4m3(0x1.ep-7f).bits, 0x08);         // 7.5 units: ties to even, into the smallest normal
  EXPECT_EQ(to_e4m3(0x1p-6f).bits, 0x08);
  EXPECT_EQ(to_e4m3(1.0f).bits, 0x38);
  EXPECT_EQ(to_e4m3(1.0625f).bits, 0x38);  // half-way between 1 and 1.125: even
  EXPECT_EQ(to_e4m3(1.1875f).bits, 0x3A);  // half-way between 1.125 and 1.25: even
  EXPECT_EQ(to_float(fp8_e4m3{0x7E}), 448.0f);
  EXPECT_EQ(to_float(fp8_e4m3{0x01}), 0x1p-9f);
  EXPECT_EQ(bits(to_float(fp8_e4m3{0xFF})), kCanonicalNaNBits);
}

TEST(NumericsFormats, E5M2SpecialCases) {
  EXPECT_EQ(to_e5m2(57344.0f).bits, 0x7B);
  EXPECT_EQ(to_e5m2(61440.0f).bits, 0x7B);  // would round to inf without saturation
  EXPECT_EQ(to_e5m2(INFINITY).bits, 0x7B);
  EXPECT_EQ(to_e5m2(-INFINITY).bits, 0xFB);
  EXPECT_EQ(to_e5m2(NAN).bits, 0x7F);
  EXPECT_EQ(to_e5m2(-NAN).bits, 0x7F);
  EXPECT_EQ(to_e5m2(0x1p-17f).bits, 0x00);
  EXPECT_EQ(to_e5m2(-0x1p-17f).bits, 0x80);
  EXPECT_EQ(to_e5m2(0x1p-16f).bits, 0x01);
  EXPECT_EQ(to_e5m2(1.0f).bits, 0x3C);
  EXPECT_EQ(to_float(fp8_e5m2{0x7C}), INFINITY);
  EXPECT_EQ(to_float(fp8_e5m2{0xFC}), -INFINITY);
  EXPECT_EQ(bits(to_float(fp8_e5m2{0x7D})), kCanonicalNaNBits);
  EXPECT_EQ(to_float(fp8_e5m2{0x7B}), 57344.0f);
}

TEST(NumericsFormats, Bf16SpecialCases) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(to_bf16(float_of(0x3F808000u)).bits, 0x3F80);  // tie, even stays
  EXPECT_EQ(to_bf16(float_of(0x3F818000u)).bits, 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(to_bf16(float_of(0x3F808001u)).bits, 0x3F81);
  EXPECT_EQ(to_bf16(float_of(0x7F7FFFFFu)).bits, 0x7F80);  // max float rounds to inf
  EXPECT_EQ(to_bf16(INFINITY).bits, 0x7F80);
  EXPECT_EQ(to_bf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_bf16(NAN).bits, 0x7FFF);
  EXPECT_EQ(to_bf16(float_of(0xFF800001u)).bits, 0x7FFF);  // signalling, negative: still 0x7FFF
  EXPECT_EQ(bits(to_float(bf16{0x7FC0})), 0x7FC00000u);    // bf16 -> float keeps the bits
  EXPECT_EQ(round_to_bf16(3.14159265f), 3.140625f);
}

TEST(NumericsFormats, Ue8m0RoundsUpToPowersOfTwo) {
  EXPECT_EQ(to_ue8m0_ceil(1.0f).bits, 127);
  EXPECT_EQ(to_ue8m0_ceil(1.5f).bits, 128);
  EXPECT_EQ(to_ue8m0_ceil(0x1.000002p0f).bits, 128);
  EXPECT_EQ(to_ue8m0_ceil(0.75f).bits, 127);
  EXPECT_EQ(to_ue8m0_ceil(0x1p127f).bits, 254);
  EXPECT_EQ(to_ue8m0_ceil(0x1.8p127f).bits, 0xFF);  // 2^128 does not exist
  EXPECT_EQ(to_ue8m0_ceil(INFINITY).bits, 0xFF);
  EXPECT_EQ(to_ue8m0_ceil(NAN).bits, 0xFF);
  EXPECT_EQ(to_ue8m0_ceil(-1.0f).bits, 0xFF);
  EXPECT_EQ(to_ue8m0_ceil(0.0f).bits, 0x00);
  EXPECT_EQ(to_ue8m0_ceil(-0.0f).bits, 0x00);
  EXPECT_EQ(to_ue8m0_ceil(0x1p-127f).bits, 0x00);
  EXPECT_EQ(to_ue8m0_ceil(0x1p-149f).bits, 0x00);
  EXPECT_EQ(to_ue8m0_ceil(0x1.000004p-127f).bits, 0x01);
  EXPECT_EQ(to_ue8m0_ceil(0x1p-126f).bits, 0x01);
  EXPECT_EQ(to_float(ue8m0{0x00}), 0x1p-127f);
  EXPECT_EQ(bits(to_float(ue8m0{0xFF})), kCanonicalNaNBits);
  for (int b = 0; b < 255; ++b) {
    const float v = to_float(ue8m0{static_cast<std::uint8_t>(b)});
    EXPECT_EQ(v, std::ldexp(1.0f, b - 127));
    EXPECT_EQ(to_ue8m0_ceil(v).bits, b);
    if (b > 0 && b < 254) {
      EXPECT_EQ(to_ue8m0_ceil(v * 1.0000001f).bits, b + 1);
    }
  }
}

TEST(NumericsFormats, Fp8ScaleRule) {
  EXPECT_EQ(fp8_e4m3_scale(448.0f), 1.0f);
  EXPECT_EQ(fp8_e4m3_scale(0.0f), 1e-4f / 448.0f);
  EXPECT_EQ(fp8_e4m3_scale(5e-5f), 1e-4f / 448.0f);
  EXPECT_EQ(bits(fp8_e4m3_scale(NAN)), kCanonicalNaNBits);
  // The tile maximum lands on (or within an ulp of) 448 and never saturates past it.
  for (float amax : {1.0f, 3.3f, 0.0123f, 1234.5f, 2e-4f, 7.0e4f}) {
    const float s = fp8_e4m3_scale(amax);
    EXPECT_EQ(quantize_e4m3(amax, s).bits, to_e4m3(amax / s).bits);
    EXPECT_EQ(to_float(quantize_e4m3(amax, s)), 448.0f) << amax;
    EXPECT_EQ(to_float(quantize_e4m3(-amax, s)), -448.0f) << amax;
    const float p = fp8_e4m3_scale_pow2(amax);
    EXPECT_GE(p, s);
    EXPECT_LE(amax / p, 448.0f);
    EXPECT_EQ(to_ue8m0_ceil(p).bits, to_ue8m0_ceil(s).bits);
  }
  const float x[5] = {1.0f, -3.0f, 0.5f, -0.0f, 2.5f};
  EXPECT_EQ(abs_max(x, 5), 3.0f);
  const float y[2] = {1.0f, NAN};
  EXPECT_EQ(bits(abs_max(y, 2)), kCanonicalNaNBits);
}

}  // namespace
}  // namespace preflight::num
