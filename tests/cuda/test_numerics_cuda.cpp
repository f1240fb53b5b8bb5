// CPU <-> GPU parity of the numerics core (docs/NUMERICS.md): every elementwise function,
// conversion, reduction and the Philox streams evaluated on the device must equal the host
// reference bit for bit. Also compares our fp8/bf16 conversions with the hardware cvt
// instructions. Every test skips when no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda/device.hpp"
#include "cuda/numerics_kernels.hpp"
#include "reference/numerics/numerics.hpp"

namespace preflight::num {
namespace {

using preflight::cuda::NumericsFn;

#define SKIP_WITHOUT_GPU()                                                     \
  do {                                                                         \
    if (preflight::cuda::visible_device_count() == 0) GTEST_SKIP() << "no GPU"; \
  } while (0)

// 2^24 inputs: every 256th float bit pattern (all signs, binades, subnormals, infinities and
// NaNs), each shifted by a varying low offset so the mantissas are not all alike, plus the
// Box-Muller grid k * 2^-24 in [0, 1) at a stride.
std::vector<float> parity_inputs() {
  std::vector<float> x;
  x.reserve((1u << 24) + (1u << 20));
  for (std::uint32_t i = 0; i < (1u << 24); ++i) x.push_back(float_of((i << 8) | ((i * 2654435761u) >> 24)));
  for (std::uint32_t k = 0; k < (1u << 24); k += 16) x.push_back(static_cast<float>(k) * 0x1p-24f);
  return x;
}

float host_apply(NumericsFn fn, float x) {
  switch (fn) {
    case NumericsFn::exp: return exp(x);
    case NumericsFn::log: return log(x);
    case NumericsFn::log1p: return log1p(x);
    case NumericsFn::sigmoid: return sigmoid(x);
    case NumericsFn::silu: return silu(x);
    case NumericsFn::silu_grad: return silu_grad(x);
    case NumericsFn::tanh: return tanh(x);
    case NumericsFn::rsqrt: return rsqrt(x);
    case NumericsFn::gelu: return gelu(x);
    case NumericsFn::softplus: return softplus(x);
    case NumericsFn::sin_2pi: return sin_2pi(x);
    case NumericsFn::cos_2pi: return cos_2pi(x);
  }
  return canonical_nan();
}

TEST(NumericsCuda, ElementwiseFunctionsMatchTheHostBitForBit) {
  SKIP_WITHOUT_GPU();
  const std::vector<float> x = parity_inputs();
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<float> y(x.size());
  for (int f = 0; f < preflight::cuda::kNumericsFnCount; ++f) {
    const auto fn = static_cast<NumericsFn>(f);
    preflight::cuda::eval_elementwise(fn, x.data(), y.data(), n);
    std::int64_t mismatches = 0, first = -1;
    for (std::int64_t i = 0; i < n; ++i) {
      if (bits_of(y[i]) != bits_of(host_apply(fn, x[i]))) {
        if (first < 0) first = i;
        ++mismatches;
      }
    }
    std::printf("[ parity ] %s: %lld inputs, %lld device/host mismatches\n", preflight::cuda::numerics_fn_name(fn),
                static_cast<long long>(n), static_cast<long long>(mismatches));
    EXPECT_EQ(mismatches, 0) << preflight::cuda::numerics_fn_name(fn) << " first at x=" << x[first > 0 ? first : 0];
  }
}

// Ours on the device equals ours on the host; ours equals the hardware conversion everywhere
// except possibly in how NaN inputs are encoded (both must give a NaN code; the count of
// differing NaN encodings is printed, and docs/NUMERICS.md §2 records it).
TEST(NumericsCuda, ConversionsMatchHostAndHardware) {
  SKIP_WITHOUT_GPU();
  const std::vector<float> x = parity_inputs();
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<std::uint8_t> ours(x.size()), hw(x.size());
  for (const bool e4m3 : {true, false}) {
    (e4m3 ? preflight::cuda::convert_e4m3 : preflight::cuda::convert_e5m2)(x.data(), ours.data(), hw.data(), n);
    std::int64_t host_mismatch = 0, hw_mismatch = 0, hw_nan_mismatch = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint8_t host = e4m3 ? to_e4m3(x[i]).bits : to_e5m2(x[i]).bits;
      host_mismatch += ours[i] != host;
      if (ours[i] != hw[i]) {
        const bool nan_code = e4m3 ? (hw[i] & 0x7F) == 0x7F : (hw[i] & 0x7F) > 0x7C;
        (is_nan(x[i]) && nan_code ? hw_nan_mismatch : hw_mismatch) += 1;
      }
    }
    std::printf("[ parity ] float->%s: %lld inputs, %lld device/host mismatches, %lld ours/hardware mismatches, "
                "%lld NaN inputs encoded as a different NaN code by the hardware\n",
                e4m3 ? "e4m3" : "e5m2", static_cast<long long>(n), static_cast<long long>(host_mismatch),
                static_cast<long long>(hw_mismatch), static_cast<long long>(hw_nan_mismatch));
    EXPECT_EQ(host_mismatch, 0);
    EXPECT_EQ(hw_mismatch, 0);
  }
  std::vector<std::uint16_t> ours16(x.size()), hw16(x.size());
  preflight::cuda::convert_bf16(x.data(), ours16.data(), hw16.data(), n);
  std::int64_t host_mismatch = 0, hw_mismatch = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    host_mismatch += ours16[i] != to_bf16(x[i]).bits;
    hw_mismatch += ours16[i] != hw16[i];
  }
  std::printf("[ parity ] float->bf16: %lld inputs, %lld device/host mismatches, %lld ours/hardware mismatches\n",
              static_cast<long long>(n), static_cast<long long>(host_mismatch), static_cast<long long>(hw_mismatch));
  EXPECT_EQ(host_mismatch, 0);
  EXPECT_EQ(hw_mismatch, 0);

  std::vector<std::uint8_t> enc(x.size());
  std::vector<float> dec(x.size());
  preflight::cuda::ue8m0_roundtrip(x.data(), enc.data(), dec.data(), n);
  std::int64_t ue_mismatch = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const ue8m0 e = to_ue8m0_ceil(x[i]);
    ue_mismatch += enc[i] != e.bits || bits_of(dec[i]) != bits_of(to_float(e));
  }
  EXPECT_EQ(ue_mismatch, 0);
}

TEST(NumericsCuda, Fp8DecodeMatchesHostAndHardware) {
  SKIP_WITHOUT_GPU();
  std::vector<float> a(256), b(256), c(256), d(256);
  preflight::cuda::decode_fp8_all(a.data(), b.data(), c.data(), d.data());
  for (int code = 0; code < 256; ++code) {
    const auto u = static_cast<std::uint8_t>(code);
    EXPECT_EQ(bits_of(a[code]), bits_of(to_float(fp8_e4m3{u}))) << code;
    EXPECT_EQ(bits_of(c[code]), bits_of(to_float(fp8_e5m2{u}))) << code;
    // The hardware widens through half precision; NaNs only need to stay NaN.
    if (is_nan(a[code])) {
      EXPECT_TRUE(is_nan(b[code])) << code;
    } else {
      EXPECT_EQ(bits_of(a[code]), bits_of(b[code])) << code;
    }
    if (is_nan(c[code])) {
      EXPECT_TRUE(is_nan(d[code])) << code;
    } else {
      EXPECT_EQ(bits_of(c[code]), bits_of(d[code])) << code;
    }
  }
}

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

TEST(NumericsCuda, ReductionsMatchTheHostBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {1, 31, 32, 33, 127, 128, 129, 1000, 4097, 7168}) {
    const std::int64_t rows = 97;
    const std::vector<float> a = gaussian(static_cast<std::size_t>(rows * n), 11);
    const std::vector<float> b = gaussian(static_cast<std::size_t>(rows * n), 12);
    std::vector<float> dot(rows), sum(rows), mx(rows), sq(rows);
    preflight::cuda::dot_k128_rows(a.data(), b.data(), dot.data(), rows, n);
    preflight::cuda::row_reduce_warp(a.data(), sum.data(), mx.data(), sq.data(), rows, n);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* ar = &a[static_cast<std::size_t>(r * n)];
      EXPECT_EQ(bits_of(dot[r]), bits_of(dot_k128(ar, &b[static_cast<std::size_t>(r * n)], n))) << "n=" << n;
      EXPECT_EQ(bits_of(sum[r]), bits_of(row_sum(ar, n))) << "n=" << n;
      EXPECT_EQ(bits_of(mx[r]), bits_of(row_max(ar, n))) << "n=" << n;
      EXPECT_EQ(bits_of(sq[r]), bits_of(row_sum_squares(ar, n))) << "n=" << n;
    }
    // FP8 with per-block scales.
    const std::int64_t nb = (n + 127) / 128;
    std::vector<std::uint8_t> qa(a.size()), qb(b.size());
    std::vector<float> sa(static_cast<std::size_t>(rows * nb)), sb(sa.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t kb = 0; kb < nb; ++kb) {
        const std::int64_t k0 = r * n + kb * 128, len = std::min<std::int64_t>(128, n - kb * 128);
        sa[r * nb + kb] = fp8_e4m3_scale(abs_max(&a[k0], len));
        sb[r * nb + kb] = fp8_e4m3_scale(abs_max(&b[k0], len));
        for (std::int64_t k = k0; k < k0 + len; ++k) {
          qa[k] = quantize_e4m3(a[k], sa[r * nb + kb]).bits;
          qb[k] = quantize_e4m3(b[k], sb[r * nb + kb]).bits;
        }
      }
    }
    std::vector<float> dot8(rows);
    preflight::cuda::dot_fp8_k128_rows(qa.data(), sa.data(), qb.data(), sb.data(), dot8.data(), rows, n);
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto* pa = reinterpret_cast<const fp8_e4m3*>(&qa[static_cast<std::size_t>(r * n)]);
      const auto* pb = reinterpret_cast<const fp8_e4m3*>(&qb[static_cast<std::size_t>(r * n)]);
      EXPECT_EQ(bits_of(dot8[r]), bits_of(dot_fp8_k128(pa, &sa[r * nb], pb, &sb[r * nb], n))) << "n=" << n;
    }
  }
  // Top-k with ties and NaNs (a router's view: 256 experts, top 8).
  const int rows = 500, n = 256, k = 8;
  std::vector<float> v = gaussian(static_cast<std::size_t>(rows) * n, 13);
  for (std::size_t i = 0; i < v.size(); i += 7) v[i] = std::round(v[i] * 4.0f) / 4.0f;  // ties
  v[5] = NAN;
  std::vector<int> idx(static_cast<std::size_t>(rows) * k), host(k);
  preflight::cuda::topk_rows(v.data(), idx.data(), rows, n, k);
  for (int r = 0; r < rows; ++r) {
    topk(&v[static_cast<std::size_t>(r) * n], n, k, host.data());
    for (int j = 0; j < k; ++j) EXPECT_EQ(idx[static_cast<std::size_t>(r) * k + j], host[j]) << "row " << r;
  }
}

TEST(NumericsCuda, PhiloxStreamsMatchTheHost) {
  SKIP_WITHOUT_GPU();
  const std::int64_t blocks = 1 << 20;
  for (const std::uint64_t seed : {0ull, 42ull, 0xFFFFFFFFFFFFFFFFull}) {
    const std::uint64_t stream = seed * 3 + 1, first = seed == 42 ? 0xFFFFFFFFull - 1000 : 0;  // crosses 2^32
    std::vector<std::uint32_t> w(4 * blocks);
    std::vector<float> u(4 * blocks), z(4 * blocks);
    preflight::cuda::philox_blocks(seed, stream, first, blocks, w.data(), u.data(), z.data());
    std::int64_t mismatches = 0;
    for (std::int64_t i = 0; i < blocks; ++i) {
      const std::uint64_t block = first + static_cast<std::uint64_t>(i);
      const U32x4 hw = philox_block(seed, stream, block);
      const F32x4 hz = normal4(seed, stream, block);
      for (int j = 0; j < 4; ++j) {
        mismatches += w[4 * i + j] != hw.w[j];
        mismatches += bits_of(u[4 * i + j]) != bits_of(uniform(seed, stream, 4 * block + j));
        mismatches += bits_of(z[4 * i + j]) != bits_of(hz.v[j]);
      }
    }
    std::printf("[ parity ] philox seed %llu: %lld blocks, %lld mismatches\n", static_cast<unsigned long long>(seed),
                static_cast<long long>(blocks), static_cast<long long>(mismatches));
    EXPECT_EQ(mismatches, 0);
  }
}

}  // namespace
}  // namespace preflight::num
