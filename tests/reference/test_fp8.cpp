// FP8 / bf16 linear layers (fp8_linear.hpp): the quantisation rule's properties, the FP8
// GEMM and its backward bit for bit against a scalar re-implementation of the definition,
// exact results on integer data, error against a float64 oracle within a derived bound,
// backward against finite differences of the float64 linear map, thread invariance, and a
// measured report of FP8's error against the bf16 path on tiny- and proxy-16b-sized GEMMs.
// Legend: M = rows (tokens), K = input features, N = output features.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/numerics/bf16.hpp"
#include "reference/numerics/fp8.hpp"
#include "reference/numerics/reduce.hpp"
#include "tests/reference/oracle64.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

// ------------------------------------------------------------ the definition, written out
// Decoded E4M3 values (exact floats) and one scale per group of tr × 128, re-implementing
// the rule of fp8.hpp: scale = max(amax, 1e-4)/448 (optionally rounded up to 2^k), q = x/scale.
struct QDef {
  int64_t R = 0, K = 0, tr = 1;
  std::vector<float> v;  // (R,K) decoded codes
  std::vector<float> s;  // (⌈R/tr⌉, ⌈K/128⌉)
  int64_t kb() const { return (K + 127) / 128; }
  float scale(int64_t r, int64_t b) const { return s[(r / tr) * kb() + b]; }
};

QDef quantize_def(const std::vector<float>& x, int64_t R, int64_t K, int64_t tr, bool ue8m0) {
  QDef q;
  q.R = R, q.K = K, q.tr = tr;
  q.v.resize(R * K);
  q.s.resize(((R + tr - 1) / tr) * q.kb());
  for (int64_t rb = 0; rb * tr < R; ++rb)
    for (int64_t b = 0; b < q.kb(); ++b) {
      float amax = 0.0f;
      for (int64_t r = rb * tr; r < std::min(R, rb * tr + tr); ++r)
        for (int64_t k = b * 128; k < std::min(K, b * 128 + 128); ++k) amax = std::max(amax, std::fabs(x[r * K + k]));
      float s = std::max(amax, 1e-4f) / 448.0f;
      if (ue8m0) s = std::exp2(std::ceil(std::log2(double(s))));  // exact for these s
      q.s[rb * q.kb() + b] = s;
      for (int64_t r = rb * tr; r < std::min(R, rb * tr + tr); ++r)
        for (int64_t k = b * 128; k < std::min(K, b * 128 + 128); ++k)
          q.v[r * K + k] = num::to_float(num::to_e4m3(x[r * K + k] / s));
    }
  return q;
}

// Σ over 128-blocks of fma(chain of exact products, sa·sb, acc): a row m of A (M,K),
// row n of B (N,K), both quantised along K.
float dot_def(const QDef& a, int64_t m, const QDef& b, int64_t n) {
  float acc = 0.0f;
  for (int64_t blk = 0; blk < a.kb(); ++blk) {
    float part = 0.0f;
    for (int64_t k = blk * 128; k < std::min(a.K, blk * 128 + 128); ++k)
      part = std::fma(a.v[m * a.K + k], b.v[n * b.K + k], part);
    acc = std::fma(part, a.scale(m, blk) * b.scale(n, blk), acc);
  }
  return acc;
}

std::vector<float> transpose(const std::vector<float>& x, int64_t R, int64_t C) {
  std::vector<float> t(R * C);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[c * R + r] = x[r * C + c];
  return t;
}

// Forward, dgrad, wgrad of the FP8 linear by the definition (no bias).
struct Fp8Def {
  std::vector<float> y, dx, dw;
  Fp8Def(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dy, int64_t M,
         int64_t N, int64_t K, bool ue8m0) {
    const QDef xq = quantize_def(x, M, K, 1, ue8m0), wq = quantize_def(w, N, K, 128, ue8m0);
    y.resize(M * N);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = dot_def(xq, m, wq, n);
    // dgrad: dx[m][k] = Σ_n dy[m][n]·W[n][k]; dy tiles along N, W's 128×128 blocks as they are.
    const QDef dyq = quantize_def(dy, M, N, 1, ue8m0);
    dx.resize(M * K);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        float acc = 0.0f;
        for (int64_t nb = 0; nb * 128 < N; ++nb) {
          float part = 0.0f;
          for (int64_t n = nb * 128; n < std::min(N, nb * 128 + 128); ++n)
            part = std::fma(dyq.v[m * N + n], wq.v[n * K + k], part);
          acc = std::fma(part, dyq.scale(m, nb) * wq.scale(nb * 128, k / 128), acc);
        }
        dx[m * K + k] = acc;
      }
    // wgrad: dW[n][k] = Σ_m dy[m][n]·x[m][k]; dyᵀ and xᵀ tiled along the tokens.
    const QDef dyt = quantize_def(transpose(dy, M, N), N, M, 1, ue8m0);
    const QDef xt = quantize_def(transpose(x, M, K), K, M, 1, ue8m0);
    dw.resize(N * K);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) dw[n * K + k] = dot_def(dyt, n, xt, k);
  }
};

// ------------------------------------------------------------ helpers
void run_fp8(std::vector<float>& y, std::vector<float>& dx, std::vector<float>& dw, const std::vector<float>& x,
             const std::vector<float>& w, const std::vector<float>& dy, int64_t M, int64_t N, int64_t K,
             const LinearPrecision& p) {
  y.assign(M * N, 0.0f);
  linear_forward(y.data(), x.data(), w.data(), nullptr, M, N, K, p);
  linear_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), w.data(), M, N, K, p);
}

struct Shape {
  int64_t M, N, K;
  std::string name() const { return "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K); }
};
const Shape kShapes[] = {{1, 1, 1}, {5, 7, 300}, {33, 130, 257}, {64, 64, 64}, {130, 200, 129}};

// ------------------------------------------------------------ quantisation rule
TEST(Fp8Quantize, AmaxMapsTo448AndRoundTripWithinHalfUlp) {
  // 1×128 tiles of K = 300 (last tile partial: 44 valid elements), magnitudes 1e-3..1e3.
  for (bool ue8m0 : {false, true})
    for (int seed = 0; seed < 6; ++seed) {
      const int64_t R = 7, K = 300;
      auto x = randn(R * K, 100 + seed, float(std::pow(10.0, seed - 3)));
      Fp8Matrix q;
      fp8_quantize(q, x.data(), K, 1, R, K, 1, ue8m0);
      ASSERT_EQ(q.scale.size(), size_t(R * 3));
      for (int64_t r = 0; r < R; ++r)
        for (int64_t b = 0; b < 3; ++b) {
          const int64_t k0 = b * 128, k1 = std::min<int64_t>(K, k0 + 128);
          float amax = 0;
          int64_t iam = k0;
          for (int64_t k = k0; k < k1; ++k)
            if (std::fabs(x[r * K + k]) > amax) amax = std::fabs(x[r * K + k]), iam = k;
          const float s = q.scale_at(r, b);
          if (!ue8m0) {
            ASSERT_EQ(s, amax / 448.0f) << "scale from the valid elements' amax";
            // The amax element's code is ±448 exactly (amax/s rounds to 448 within an ulp,
            // and E4M3's spacing at 448 is 32; above 448 saturates).
            ASSERT_EQ(num::to_float(q.q[r * K + iam]), std::copysign(448.0f, x[r * K + iam]));
          } else {
            ASSERT_EQ(s, std::exp2(std::ceil(std::log2(double(amax / 448.0f)))));
            const float top = std::fabs(num::to_float(q.q[r * K + iam]));
            ASSERT_GT(top, 224.0f - 16.0f);  // amax/s ∈ (224, 448], rounded to E4M3
            ASSERT_LE(top, 448.0f);
          }
          for (int64_t k = k0; k < k1; ++k) {
            // |decode(q)·s − x| ≤ 2^-4·|x| (E4M3 has 4 significant bits: half an ulp is at
            // most 2^-4 relative) + 2^-22·|x| (the rounded division x/s; 0 when s = 2^k)
            // + 2^-10·s (half the smallest subnormal 2^-9, for |x/s| < 2^-6).
            const double xv = x[r * K + k], back = double(num::to_float(q.q[r * K + k])) * s;
            ASSERT_LE(std::fabs(back - xv), (0x1p-4 + 0x1p-22) * std::fabs(xv) + 0x1p-10 * s) << r << "," << k;
          }
        }
    }
}

TEST(Fp8Quantize, ClampedScaleZeroTileNanTileAndPartialBlocks) {
  // amax below 1e-4: scale clamps to 1e-4/448 and nothing reaches 448.
  std::vector<float> x(128, 0.0f);
  x[3] = 5e-5f, x[9] = -2e-5f;
  Fp8Matrix q;
  fp8_quantize(q, x.data(), 128, 1, 1, 128, 1, false);
  EXPECT_EQ(q.scale[0], 1e-4f / 448.0f);
  EXPECT_EQ(num::to_float(q.q[3]), num::to_float(num::to_e4m3(5e-5f / (1e-4f / 448.0f))));
  EXPECT_LT(num::to_float(q.q[3]), 448.0f);
  EXPECT_EQ(q.q[0].bits, 0u);
  // A NaN in a tile makes its scale NaN and every code of the tile NaN (0x7F): a GEMM that
  // reads it returns the canonical NaN, never a silently finite value.
  x[50] = NAN;
  fp8_quantize(q, x.data(), 128, 1, 1, 128, 1, false);
  EXPECT_TRUE(std::isnan(q.scale[0]));
  EXPECT_EQ(q.q[0].bits, 0x7Fu);
  std::vector<float> w(128, 1.0f), y(1);
  linear_forward(y.data(), x.data(), w.data(), nullptr, 1, 1, 128, {Precision::fp8, false});
  EXPECT_EQ(num::bits_of(y[0]), num::kCanonicalNaNBits);
  x[50] = INFINITY;  // an infinite amax gives an infinite scale and inf/inf = NaN: the same
  linear_forward(y.data(), x.data(), w.data(), nullptr, 1, 1, 128, {Precision::fp8, false});
  EXPECT_EQ(num::bits_of(y[0]), num::kCanonicalNaNBits);
  // 128×128 blocks with partial edges: (130, 200) has a 2×72 corner block whose amax is its own.
  auto wbig = randn(130 * 200, 7);
  wbig[129 * 200 + 199] = 9.0f;  // the corner block's largest element, and the matrix's
  Fp8Matrix wq;
  fp8_quantize(wq, wbig.data(), 200, 1, 130, 200, 128, false);
  ASSERT_EQ(wq.scale.size(), 4u);
  EXPECT_EQ(wq.scale_at(129, 1), 9.0f / 448.0f);
  EXPECT_LT(wq.scale_at(0, 0), 9.0f / 448.0f);
  // Transposing the blocks is the same as quantising the transposed matrix.
  Fp8Matrix wt_direct;
  const auto wt = transpose(wbig, 130, 200);
  fp8_quantize(wt_direct, wt.data(), 130, 1, 200, 130, 128, false);
  const Fp8Matrix wt_moved = fp8_transpose_blocks(wq);
  ASSERT_EQ(wt_moved.rows, 200);
  EXPECT_TRUE(std::equal(wt_direct.q.begin(), wt_direct.q.end(), wt_moved.q.begin(),
                         [](auto a, auto b) { return a.bits == b.bits; }));
  EXPECT_TRUE(bits_equal(wt_direct.scale, wt_moved.scale));
  // The strided (transposed-source) quantisation reads the same elements.
  Fp8Matrix wt_strided;
  fp8_quantize(wt_strided, wbig.data(), 1, 200, 200, 130, 128, false);
  EXPECT_TRUE(bits_equal(wt_direct.scale, wt_strided.scale));
}

TEST(Precision, NamesRoundTripAndFp32PathIsMatmul) {
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp8})
    EXPECT_EQ(precision_from_string(to_string(p)), p);
  EXPECT_THROW(precision_from_string("fp16"), Error);
  const int64_t M = 9, N = 11, K = 140;
  const auto x = randn(M * K, 1), w = randn(N * K, 2), b = randn(N, 3), dy = randn(M * N, 4);
  std::vector<float> y1(M * N), y2(M * N), dx1(M * K, 0.5f), dx2(M * K, 0.5f), dw1(N * K, 0.f), dw2(N * K, 0.f),
      db1(N, 0.f), db2(N, 0.f);
  linear_forward(y1.data(), x.data(), w.data(), b.data(), M, N, K, {});
  matmul_forward(y2.data(), x.data(), w.data(), b.data(), M, N, K);
  EXPECT_TRUE(bits_equal(y1, y2));
  linear_backward(dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(), w.data(), M, N, K, {});
  matmul_backward(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(), w.data(), M, N, K);
  EXPECT_TRUE(bits_equal(dx1, dx2) && bits_equal(dw1, dw2) && bits_equal(db1, db2));
  // bf16: the fp32 GEMM of the rounded operands (bias and dbias in fp32).
  std::vector<float> xr(M * K), wr(N * K);
  for (size_t i = 0; i < xr.size(); ++i) xr[i] = num::round_to_bf16(x[i]);
  for (size_t i = 0; i < wr.size(); ++i) wr[i] = num::round_to_bf16(w[i]);
  linear_forward(y1.data(), x.data(), w.data(), b.data(), M, N, K, {Precision::bf16});
  matmul_forward(y2.data(), xr.data(), wr.data(), b.data(), M, N, K);
  EXPECT_TRUE(bits_equal(y1, y2));
  EXPECT_THROW(linear_forward(y1.data(), nullptr, w.data(), nullptr, M, N, K, {}), Error);
}

// ------------------------------------------------------------ FP8 GEMM vs definition
class Fp8Linear : public ::testing::TestWithParam<Shape> {};

TEST_P(Fp8Linear, ForwardAndBackwardEqualTheDefinitionBitForBit) {
  const auto [M, N, K] = GetParam();
  const auto x = randn(M * K, 11), w = randn(N * K, 12, 0.05f), dy = randn(M * N, 13, 0.01f);
  for (bool ue8m0 : {false, true}) {
    const Fp8Def def(x, w, dy, M, N, K, ue8m0);
    // Gradients accumulate into non-zero buffers: one add per element.
    std::vector<float> y, dx(M * K, 0.25f), dw(N * K, -0.5f);
    run_fp8(y, dx, dw, x, w, dy, M, N, K, {Precision::fp8, ue8m0});
    std::vector<float> dx_want(M * K), dw_want(N * K);
    for (int64_t i = 0; i < M * K; ++i) dx_want[i] = 0.25f + def.dx[i];
    for (int64_t i = 0; i < N * K; ++i) dw_want[i] = -0.5f + def.dw[i];
    EXPECT_TRUE(bits_equal(y, def.y)) << "forward, ue8m0=" << ue8m0;
    // ... and the numerics core's dot_fp8_k128 on the same codes and block scales.
    Fp8Matrix xq, wq;
    fp8_quantize(xq, x.data(), K, 1, M, K, 1, ue8m0);
    fp8_quantize(wq, w.data(), K, 1, N, K, 128, ue8m0);
    const int64_t Kb = xq.col_blocks();
    for (int64_t m = 0; m < M; m += std::max<int64_t>(1, M / 3))
      for (int64_t n = 0; n < N; n += std::max<int64_t>(1, N / 3))
        ASSERT_EQ(num::bits_of(y[m * N + n]),
                  num::bits_of(num::dot_fp8_k128(&xq.q[m * K], &xq.scale[m * Kb], &wq.q[n * K],
                                                 &wq.scale[(n / 128) * Kb], K)));
    EXPECT_TRUE(bits_equal(dx, dx_want)) << "dgrad, ue8m0=" << ue8m0;
    EXPECT_TRUE(bits_equal(dw, dw_want)) << "wgrad, ue8m0=" << ue8m0;
    // Bias: one add after the promoted dot.
    const auto b = randn(N, 14);
    std::vector<float> yb(M * N);
    linear_forward(yb.data(), x.data(), w.data(), b.data(), M, N, K, {Precision::fp8, ue8m0});
    for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(yb[i], def.y[i] + b[i % N]);
  }
}

TEST_P(Fp8Linear, IntegerDataGiveExactProducts) {
  // Integers |v| ≤ 15 have ≤ 4 significant bits, so v/2^-e is exact in E4M3 for any
  // power-of-two scale with amax/s ∈ (224, 448]; products and the ≤ 128-term partials are
  // integers far below 2^24, and promotion multiplies by a power of two: every step is exact.
  // With fp32 scales the same holds when each group's amax is exactly 448 (scale 1).
  const auto [M, N, K] = GetParam();
  auto ints = [](size_t n, uint64_t seed) {
    auto v = randu(n, seed, -15.99f, 15.99f);
    for (auto& e : v) e = std::trunc(e);
    return v;
  };
  for (bool ue8m0 : {true, false}) {
    auto x = ints(M * K, 21), w = ints(N * K, 22), dy = ints(M * N, 23);
    if (!ue8m0) {  // one 448 in every 1×128 tile of x and dy (along both axes: corner rows)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; k += 128) x[m * K + k] = 448.0f;
      for (int64_t m = 0; m < M; m += 128)  // wgrad's token tiles of x: row m0 has 448 in every column
        for (int64_t k = 0; k < K; ++k) x[m * K + k] = 448.0f;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; n += 128) dy[m * N + n] = 448.0f;
      for (int64_t m = 0; m < M; m += 128)
        for (int64_t n = 0; n < N; ++n) dy[m * N + n] = 448.0f;
      for (int64_t n = 0; n < N; n += 128)
        for (int64_t k = 0; k < K; k += 128) w[n * K + k] = 448.0f;
    }
    std::vector<float> y, dx(M * K, 0.f), dw(N * K, 0.f);
    run_fp8(y, dx, dw, x, w, dy, M, N, K, {Precision::fp8, ue8m0});
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(x[m * K + k]) * w[n * K + k];
        ASSERT_EQ(double(y[m * N + n]), s) << m << "," << n << " ue8m0=" << ue8m0;
      }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n) s += double(dy[m * N + n]) * w[n * K + k];
        ASSERT_EQ(double(dx[m * K + k]), s) << "dx " << m << "," << k;
      }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        double s = 0;
        for (int64_t m = 0; m < M; ++m) s += double(dy[m * N + n]) * x[m * K + k];
        ASSERT_EQ(double(dw[n * K + k]), s) << "dw " << n << "," << k;
      }
  }
}

// Derived bound of a quantised dot Σ_k â_k·b̂_k against the exact Σ a_k·b_k:
//   |â − a| ≤ ua·|a| + ta_k   (ua: relative, ta_k: absolute, per element from its group scale)
//   |âb̂ − ab| ≤ ea·|b| + (|a| + ea)·eb                      (exact algebra)
//   fp32 accumulation: ≤ γ(dot_roundings(K) + Kb + 1)·Σ|âb̂|  (chain + one block add, or the
//   promotion's rounded scale product and fma, per block)
struct QuantBound {
  double u, sub;  // relative unit, absolute unit times scale (E4M3: 2^-4+2^-22, 2^-10; bf16: 2^-8, 0)
  // a[k·as] with group scale sa[k·ss] (sa null: no absolute term), b likewise.
  double operator()(const double* a, int64_t as, const double* sa, int64_t ss, const double* b, int64_t bs,
                    const double* sb, int64_t ts, int64_t K) const {
    double q = 0, mag = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double A = std::fabs(a[k * as]), B = std::fabs(b[k * bs]);
      const double ea = u * A + (sa ? sub * sa[k * ss] : 0), eb = u * B + (sb ? sub * sb[k * ts] : 0);
      q += ea * B + (A + ea) * eb;
      mag += (A + ea) * (B + eb);
    }
    return q + gamma32(dot_roundings(K) + double((K + 127) / 128) + 1) * mag;
  }
};

// Per-element scale of each element of a (R,K) matrix quantised in tr×128 groups.
std::vector<double> elem_scales(const Fp8Matrix& q) {
  std::vector<double> s(q.rows * q.cols);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < q.cols; ++k) s[r * q.cols + k] = q.scale_at(r, k / 128);
  return s;
}

TEST_P(Fp8Linear, Fp8AndBf16WithinDerivedBoundOfFloat64AndBackwardMatchesFiniteDifferences) {
  const auto [M, N, K] = GetParam();
  const auto x = randn(M * K, 31), w = randn(N * K, 32, 0.05f), dy = randn(M * N, 33, 0.01f);
  const Vec xd = to_double(x), wd = to_double(w), dyd = to_double(dy);
  const Vec want = oracle::linear(xd, wd, M, N, K);
  auto L = [&](const Vec& xv, const Vec& wv) { return oracle::weighted_sum(dyd, oracle::linear(xv, wv, M, N, K)); };
  std::vector<int64_t> dx_idx, dw_idx;
  std::vector<double> fd_dx, fd_dw;
  for (int64_t i = 0; i < M * K; i += std::max<int64_t>(1, M * K / 29)) {
    dx_idx.push_back(i);
    fd_dx.push_back(central_diff([&](const Vec& v) { return L(v, wd); }, xd, i, 1e-3));
  }
  for (int64_t i = 0; i < N * K; i += std::max<int64_t>(1, N * K / 29)) {
    dw_idx.push_back(i);
    fd_dw.push_back(central_diff([&](const Vec& v) { return L(xd, v); }, wd, i, 1e-3));
  }
  for (Precision prec : {Precision::bf16, Precision::fp8}) {
    const bool f8 = prec == Precision::fp8;
    const QuantBound qb = f8 ? QuantBound{0x1p-4 + 0x1p-22, 0x1p-10} : QuantBound{0x1p-8, 0};
    std::vector<float> y, dx(M * K, 0.f), dw(N * K, 0.f);
    run_fp8(y, dx, dw, x, w, dy, M, N, K, {prec, false});
    // Scales of each operand as each GEMM quantises it (zeros for bf16: no absolute term).
    Fp8Matrix xq, wq, dyq, dyt, xt;
    fp8_quantize(xq, x.data(), K, 1, M, K, 1, false);
    fp8_quantize(wq, w.data(), K, 1, N, K, 128, false);
    fp8_quantize(dyq, dy.data(), N, 1, M, N, 1, false);
    fp8_quantize(dyt, dy.data(), 1, N, N, M, 1, false);
    fp8_quantize(xt, x.data(), 1, K, K, M, 1, false);
    const auto sx = elem_scales(xq), sw = elem_scales(wq), sdy = elem_scales(dyq), sdyt = elem_scales(dyt),
               sxt = elem_scales(xt);
    auto S = [&](const std::vector<double>& v, int64_t off) { return f8 ? v.data() + off : nullptr; };
    int bad = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const double B = qb(&xd[m * K], 1, S(sx, m * K), 1, &wd[n * K], 1, S(sw, n * K), 1, K);
        if (std::fabs(y[m * N + n] - want[m * N + n]) > B && bad++ < 3)
          ADD_FAILURE() << to_string(prec) << " y[" << m << "," << n << "] err "
                        << std::fabs(y[m * N + n] - want[m * N + n]) << " > bound " << B;
      }
    // Backward: the loss L = Σ dy·(x·Wᵀ) is bilinear, so its central differences (fd_dx,
    // fd_dw below) are exact up to double rounding (≈ 1e-16·Σ|dy·y|/h); the gradient must lie
    // within the same derived bound as a forward dot of its quantised operands (dgrad: dy row
    // · W column over N, wgrad: dy column · x column over M), plus 1e-9 for that difference.
    for (size_t j = 0; j < dx_idx.size(); ++j) {
      const int64_t i = dx_idx[j], m = i / K, k = i % K;
      const double B = qb(&dyd[m * N], 1, S(sdy, m * N), 1, &wd[k], K, S(sw, k), K, N) + 1e-9;
      if (std::fabs(dx[i] - fd_dx[j]) > B && bad++ < 6)
        ADD_FAILURE() << to_string(prec) << " dx[" << i << "] " << dx[i] << " vs fd " << fd_dx[j] << " bound " << B;
    }
    for (size_t j = 0; j < dw_idx.size(); ++j) {
      const int64_t i = dw_idx[j], n = i / K, k = i % K;
      const double B = qb(&dyd[n], N, S(sdyt, n * M), 1, &xd[k], K, S(sxt, k * M), 1, M) + 1e-9;
      if (std::fabs(dw[i] - fd_dw[j]) > B && bad++ < 9)
        ADD_FAILURE() << to_string(prec) << " dw[" << i << "] " << dw[i] << " vs fd " << fd_dw[j] << " bound " << B;
    }
    EXPECT_EQ(bad, 0) << to_string(prec);
  }
}

TEST_P(Fp8Linear, OneAndTwoThreadsAndRepeatsBitIdentical) {
  const auto [M, N, K] = GetParam();
  const auto x = randn(M * K, 41), w = randn(N * K, 42, 0.05f), dy = randn(M * N, 43), b = randn(N, 44);
  for (Precision prec : {Precision::bf16, Precision::fp8})
    for (bool ue8m0 : {false, true}) {
      auto run = [&] {
        std::vector<float> y(M * N), dx(M * K, 0.f), dw(N * K, 0.f), db(N, 0.f);
        linear_forward(y.data(), x.data(), w.data(), b.data(), M, N, K, {prec, ue8m0});
        linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), M, N, K, {prec, ue8m0});
        for (auto* v : {&dx, &dw, &db}) y.insert(y.end(), v->begin(), v->end());
        return y;
      };
      const auto one = with_threads(1, run);
      EXPECT_TRUE(bits_equal(one, with_threads(2, run))) << to_string(prec);
      EXPECT_TRUE(bits_equal(one, with_threads(2, run))) << to_string(prec);
    }
}

TEST_P(Fp8Linear, BatchInvariantRowByRow) {
  const auto [M, N, K] = GetParam();
  const auto x = randn(M * K, 51), w = randn(N * K, 52, 0.05f);
  std::vector<float> y(M * N), y1(N);
  linear_forward(y.data(), x.data(), w.data(), nullptr, M, N, K, {Precision::fp8});
  for (int64_t m = 0; m < M; m += std::max<int64_t>(1, M / 4)) {
    linear_forward(y1.data(), &x[m * K], w.data(), nullptr, 1, N, K, {Precision::fp8});
    ASSERT_TRUE(bits_equal(y1, std::vector<float>(y.begin() + m * N, y.begin() + (m + 1) * N))) << "row " << m;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Fp8Linear, ::testing::ValuesIn(kShapes),
                         [](const auto& info) { return info.param.name(); });

// ------------------------------------------------------------ measured report
// Relative Frobenius ‖a − b‖/‖b‖ and DeepGEMM's distance 1 − 2Σab/Σ(a² + b²), in float64.
struct Diff {
  double rel_fro, dist;
};
template <class A, class B>
Diff diff(const A& a, const B& b, size_t n) {
  double num = 0, den = 0, xy = 0, sq = 0;
  for (size_t i = 0; i < n; ++i) {
    const double u = a[i], v = b[i];
    num += (u - v) * (u - v), den += v * v, xy += u * v, sq += u * u + v * v;
  }
  return {std::sqrt(num / den), 1.0 - 2.0 * xy / sq};
}

void report(const char* what, int64_t M, int64_t N, int64_t K, double std_w) {
  const auto x = randn(M * K, 61), w = randn(N * K, 62, float(std_w)), dy = randn(M * N, 63, 1e-3f);
  std::vector<float> y[2], dx[2], dw[2];
  const Precision precs[2] = {Precision::bf16, Precision::fp8};
  double secs[2];
  for (int i = 0; i < 2; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    y[i].assign(M * N, 0.f), dx[i].assign(M * K, 0.f), dw[i].assign(N * K, 0.f);
    linear_forward(y[i].data(), x.data(), w.data(), nullptr, M, N, K, {precs[i]});
    linear_backward(dx[i].data(), dw[i].data(), nullptr, dy.data(), x.data(), w.data(), M, N, K, {precs[i]});
    secs[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // float64 truth on the first R rows of each output (all rows for small shapes).
  const int64_t R = std::min<int64_t>(M, 32), RN = std::min<int64_t>(N, 32);
  std::vector<double> y64(R * N), dx64(R * K), dw64(RN * K);
  for (int64_t m = 0; m < R; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[m * K + k]) * w[n * K + k];
      y64[m * N + n] = s;
    }
  for (int64_t m = 0; m < R; ++m)
    for (int64_t k = 0; k < K; ++k) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += double(dy[m * N + n]) * w[n * K + k];
      dx64[m * K + k] = s;
    }
  for (int64_t n = 0; n < RN; ++n)
    for (int64_t k = 0; k < K; ++k) {
      double s = 0;
      for (int64_t m = 0; m < M; ++m) s += double(dy[m * N + n]) * x[m * K + k];
      dw64[n * K + k] = s;
    }
  struct Row {
    const char* name;
    const std::vector<float>* v;
    const std::vector<double>* t;
    size_t n, nt;
  } rows[3] = {{"fwd  y = x·Wᵀ", y, &y64, size_t(M * N), size_t(R * N)},
               {"dgrad dx = dy·W", dx, &dx64, size_t(M * K), size_t(R * K)},
               {"wgrad dW = dyᵀ·x", dw, &dw64, size_t(N * K), size_t(RN * K)}};
  for (const auto& r : rows) {
    const Diff fb = diff(r.v[1], r.v[0], r.n), f64 = diff(r.v[1], *r.t, r.nt), b64 = diff(r.v[0], *r.t, r.nt);
    std::printf("[ measured ] fp8 vs bf16 %-9s M=%lld N=%lld K=%lld (w std %.3g) %-17s rel_fro %.3e  "
                "deepgemm_diff %.3e | vs float64: fp8 rel_fro %.3e diff %.3e, bf16 rel_fro %.3e diff %.3e\n",
                what, (long long)M, (long long)N, (long long)K, std_w, r.name, fb.rel_fro, fb.dist, f64.rel_fro,
                f64.dist, b64.rel_fro, b64.dist);
    // DeepGEMM accepts FP8×FP8 against BF16 below 1e-3.
    EXPECT_LT(fb.dist, 1e-3) << what << " " << r.name;
  }
  std::printf("[ measured ] %s fwd+bwd wall time: bf16 %.3f s, fp8 %.3f s (%d threads)\n", what, secs[0], secs[1],
              omp_get_max_threads());
}

TEST(Fp8Report, ErrorAgainstBf16OnTinyAndProxyShapes) {
  report("tiny", 64, 64, 64, 0.02);                   // tiny: hidden 64, init std 0.02
  report("tiny-ffn", 64, 128, 64, 0.02);              // tiny's dense FFN up-projection
  report("proxy-16b", 2048, 1408, 2048, 0.006);       // an expert's W1: 2048 tokens, hidden 2048 → 1408
}

}  // namespace
}  // namespace preflight::ref::test
