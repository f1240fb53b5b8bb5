// Reduction orders of docs/NUMERICS.md §4: exactness on integer data, cases where only the
// documented order gives the documented bits, awkward lengths against independent
// re-implementations of the written rules, the FP8 promotion against a float64 oracle with a
// derived bound, top-k ordering, and independence from the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "reference/numerics/fp8.hpp"
#include "reference/numerics/reduce.hpp"

namespace preflight::num {
namespace {

std::uint32_t bits(float x) { return bits_of(x); }

const std::int64_t kLengths[] = {1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4097};

std::vector<float> gaussian(std::int64_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(gen);
  return v;
}

std::vector<float> small_integers(std::int64_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(-8, 8);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = static_cast<float>(d(gen));
  return v;
}

// The dot-product rule restated independently: all block partials first, then their sum.
float dot_spec(const std::vector<float>& a, const std::vector<float>& b) {
  const std::size_t K = a.size();
  std::vector<float> partials((K + 127) / 128, 0.0f);
  for (std::size_t k = 0; k < K; ++k) partials[k / 128] = std::fma(a[k], b[k], partials[k / 128]);
  float acc = 0.0f;
  for (float p : partials) acc += p;
  return acc;
}

TEST(NumericsReduce, DotIsExactOnIntegerData) {
  for (std::int64_t K : kLengths) {
    const std::vector<float> a = small_integers(K, 1), b = small_integers(K, 2);
    std::int64_t exact = 0;
    for (std::int64_t k = 0; k < K; ++k) exact += static_cast<std::int64_t>(a[k]) * static_cast<std::int64_t>(b[k]);
    EXPECT_EQ(dot_k128(a.data(), b.data(), K), static_cast<float>(exact)) << "K=" << K;
  }
}

TEST(NumericsReduce, DotFollowsTheBlockOrder) {
  // 2^24 then 255 ones: inside block 0 every +1 is a tie that rounds back to 2^24 (even);
  // block 1 sums its 128 ones exactly, and 2^24 + 128 is representable. A plain sequential
  // loop would return 2^24; the exact sum is 2^24 + 255.
  std::vector<float> a(256, 1.0f), b(256, 1.0f);
  a[0] = 0x1p24f;
  EXPECT_EQ(dot_k128(a.data(), b.data(), 256), 16777344.0f);
  float sequential = 0.0f;
  for (int k = 0; k < 256; ++k) sequential = std::fma(a[k], b[k], sequential);
  EXPECT_EQ(sequential, 16777216.0f);
}

TEST(NumericsReduce, DotFusesEveryProduct) {
  // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is not a float; only an fma keeps its last bit.
  const float a[2] = {-1.0f, 1.0f + 0x1p-12f};
  const float b[2] = {1.0f + 0x1p-11f, 1.0f + 0x1p-12f};
  EXPECT_EQ(dot_k128(a, b, 2), 0x1p-24f);
  EXPECT_EQ(-1.0f * b[0] + a[1] * b[1], 0.0f);  // separate multiply and add lose it
}

TEST(NumericsReduce, DotMatchesTheWrittenRuleAtAwkwardLengths) {
  for (std::int64_t K : kLengths) {
    const std::vector<float> a = gaussian(K, 3), b = gaussian(K, 4);
    const float d = dot_k128(a.data(), b.data(), K);
    EXPECT_EQ(bits(d), bits(dot_spec(a, b))) << "K=" << K;
    // Strided access (a column of a row-major matrix) gives the same bits.
    std::vector<float> a3(static_cast<std::size_t>(3 * K), 7.0f), b2(static_cast<std::size_t>(2 * K), -5.0f);
    for (std::int64_t k = 0; k < K; ++k) {
      a3[static_cast<std::size_t>(3 * k)] = a[static_cast<std::size_t>(k)];
      b2[static_cast<std::size_t>(2 * k)] = b[static_cast<std::size_t>(k)];
    }
    EXPECT_EQ(bits(dot_k128_strided(a3.data(), 3, b2.data(), 2, K)), bits(d)) << "K=" << K;
  }
  EXPECT_EQ(bits(dot_k128(nullptr, nullptr, 0)), bits(0.0f));
  const float mz = -0.0f, one = 1.0f;
  EXPECT_EQ(bits(dot_k128(&mz, &one, 1)), bits(0.0f));  // partials and acc start at +0
}

// FP8 promotion against float64. Per block b: decoded products are exact, and the block's
// n_b terms are summed with n_b - 1 roundings, so |P_b - E_b| <= gamma(127) T_b, where E_b is
// the exact block sum, T_b = sum |a_k b_k| and gamma(n) = n u / (1 - n u), u = 2^-24. The
// scale product s_b = fl(sa_b sb_b) = sigma_b (1 + e), |e| <= u. The promotion
// acc = fma(P_b, s_b, acc) is a sequential sum of the nb terms P_b s_b with one rounding each,
// so the result is sum_b P_b s_b (1 + t_b), |t_b| <= gamma(nb). Together:
//   |result - sum_b sigma_b E_b| <= sum_b sigma_b T_b ((1 + gamma(127)) (1 + u) (1 + gamma(nb)) - 1).
// The oracle computes sum_b sigma_b E_b in double: each E_b exactly (fp8 products need 8 bits
// and span less than 2^45), each sigma_b exactly (two 24-bit factors), the outer sum with a
// relative error below nb 2^-53, added to the bound.
TEST(NumericsReduce, Fp8PromotionStaysWithinTheDerivedBound) {
  const double u = 0x1p-24;
  auto gamma = [u](double n) { return n * u / (1.0 - n * u); };
  double worst_ratio = 0.0;
  for (std::int64_t K : {128, 129, 1000, 4096, 7168}) {
    const std::int64_t nb = (K + 127) / 128;
    const std::vector<float> x = gaussian(K, 5), y = gaussian(K, 6);
    std::vector<fp8_e4m3> a(static_cast<std::size_t>(K)), b(static_cast<std::size_t>(K));
    std::vector<float> sa(static_cast<std::size_t>(nb)), sb(static_cast<std::size_t>(nb));
    for (std::int64_t kb = 0; kb < nb; ++kb) {
      const std::int64_t k0 = kb * 128, n = std::min<std::int64_t>(128, K - k0);
      sa[kb] = fp8_e4m3_scale(abs_max(&x[k0], n));
      sb[kb] = fp8_e4m3_scale(abs_max(&y[k0], n)) * 4.0f;  // scales of different magnitudes
      for (std::int64_t k = k0; k < k0 + n; ++k) {
        a[k] = quantize_e4m3(x[k], sa[kb]);
        b[k] = quantize_e4m3(y[k] * 0.25f, sb[kb]);
      }
    }
    const float got = dot_fp8_k128(a.data(), sa.data(), b.data(), sb.data(), K);
    double exact = 0.0, bound = 0.0;
    for (std::int64_t kb = 0; kb < nb; ++kb) {
      double e = 0.0, t = 0.0;
      for (std::int64_t k = kb * 128; k < std::min<std::int64_t>(K, kb * 128 + 128); ++k) {
        const double p = static_cast<double>(to_float(a[k])) * to_float(b[k]);
        e += p;
        t += std::fabs(p);
      }
      const double sigma = static_cast<double>(sa[kb]) * sb[kb];
      exact += sigma * e;
      bound += sigma * t * ((1 + gamma(127)) * (1 + u) * (1 + gamma(static_cast<double>(nb))) - 1);
    }
    bound += std::fabs(exact) * static_cast<double>(nb) * 0x1p-53;
    const double err = std::fabs(static_cast<double>(got) - exact);
    EXPECT_LE(err, bound) << "K=" << K;
    worst_ratio = std::max(worst_ratio, err / bound);
    // And the bits are those of the written rule.
    float acc = 0.0f;
    for (std::int64_t kb = 0; kb < nb; ++kb) {
      float partial = 0.0f;
      for (std::int64_t k = kb * 128; k < std::min<std::int64_t>(K, kb * 128 + 128); ++k) {
        partial = std::fma(to_float(a[k]), to_float(b[k]), partial);
      }
      acc = std::fma(partial, sa[kb] * sb[kb], acc);
    }
    EXPECT_EQ(bits(got), bits(acc)) << "K=" << K;
  }
  std::printf("[ bound ] fp8 promotion: largest error / derived bound = %.3f\n", worst_ratio);
}

// The 32-lane rule restated the way a warp executes it: every lane computes v[l] op v[l^off]
// at each step; all lanes must agree at the end.
template <class Op>
float warp_emulation(const std::vector<float>& x, float identity, Op op, bool squares = false) {
  float v[32];
  for (int l = 0; l < 32; ++l) v[l] = identity;
  for (std::size_t i = 0; i < x.size(); ++i) {
    v[i % 32] = squares ? std::fma(x[i], x[i], v[i % 32]) : op(v[i % 32], x[i]);
  }
  for (int off = 16; off >= 1; off /= 2) {
    float w[32];
    for (int l = 0; l < 32; ++l) w[l] = op(v[l], v[l ^ off]);
    std::copy(w, w + 32, v);
  }
  for (int l = 1; l < 32; ++l) EXPECT_EQ(bits(v[l]), bits(v[0])) << "lane " << l;
  return v[0];
}

TEST(NumericsReduce, RowReductionsMatchTheWarpRule) {
  const auto add = [](float a, float b) { return a + b; };
  const auto mx = [](float a, float b) { return max_nan(a, b); };
  for (std::int64_t n : kLengths) {
    const std::vector<float> x = gaussian(n, 7);
    EXPECT_EQ(bits(row_sum(x.data(), n)), bits(warp_emulation(x, -0.0f, add))) << n;
    EXPECT_EQ(bits(row_max(x.data(), n)), bits(warp_emulation(x, -INFINITY, mx))) << n;
    EXPECT_EQ(bits(row_sum_squares(x.data(), n)), bits(warp_emulation(x, -0.0f, add, true))) << n;
    EXPECT_EQ(row_max(x.data(), n), *std::max_element(x.begin(), x.end())) << n;
    const std::vector<float> ints = small_integers(n, 8);
    EXPECT_EQ(row_sum(ints.data(), n), std::accumulate(ints.begin(), ints.end(), 0.0f)) << n;
  }
}

TEST(NumericsReduce, RowSumFollowsTheLaneOrder) {
  // 2^24 then 63 ones: lane 0 holds 2^24 + 1 -> 2^24 (tie to even), lanes 1..31 hold 2 each;
  // the butterfly adds 2 + 4 + 8 + 16 + 32 exactly: 2^24 + 62. Sequential: 2^24.
  std::vector<float> x(64, 1.0f);
  x[0] = 0x1p24f;
  EXPECT_EQ(row_sum(x.data(), 64), 16777278.0f);
}

TEST(NumericsReduce, RowReductionSpecialValues) {
  const float mz[3] = {-0.0f, -0.0f, -0.0f};
  const float mixed[2] = {-0.0f, 0.0f};
  const float with_nan[3] = {1.0f, NAN, 2.0f};
  EXPECT_EQ(bits(row_sum(mz, 3)), bits(-0.0f));  // lanes start at -0: the exact identity
  EXPECT_EQ(bits(row_sum(mixed, 2)), bits(0.0f));
  EXPECT_EQ(bits(row_sum(nullptr, 0)), bits(-0.0f));
  EXPECT_EQ(bits(row_max(nullptr, 0)), bits(-INFINITY));
  EXPECT_EQ(bits(row_max(mixed, 2)), bits(0.0f));
  EXPECT_EQ(bits(row_sum(with_nan, 3)), kCanonicalNaNBits);
  EXPECT_EQ(bits(row_max(with_nan, 3)), kCanonicalNaNBits);
  const float inf_pair[2] = {INFINITY, -INFINITY};
  EXPECT_EQ(bits(row_sum(inf_pair, 2)), kCanonicalNaNBits);
}

std::vector<int> topk_spec(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    const bool na = std::isnan(v[a]), nb = std::isnan(v[b]);
    if (na || nb) return na && !nb;
    return v[a] > v[b];
  });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

TEST(NumericsReduce, TopkOrderTiesAndNaN) {
  const std::vector<float> v = {1.0f, 3.0f, 3.0f, NAN, -0.0f, 0.0f, INFINITY, NAN, 3.0f};
  int idx[9];
  topk(v.data(), 9, 9, idx);
  const int expected[9] = {3, 7, 6, 1, 2, 8, 0, 4, 5};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(idx[i], expected[i]) << i;
  topk(v.data(), 9, 0, idx);
  std::mt19937 gen(9);
  std::uniform_int_distribution<int> d(0, 6);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + trial % 300, k = trial % (n + 1);
    std::vector<float> w(static_cast<std::size_t>(n));
    for (float& x : w) x = static_cast<float>(d(gen)) * 0.5f;  // many ties
    std::vector<int> got(static_cast<std::size_t>(k));
    topk(w.data(), n, k, got.data());
    EXPECT_EQ(got, topk_spec(w, k)) << "n=" << n << " k=" << k;
  }
}

// Thread-count independence (docs/NUMERICS.md §4). The contract fixes each reduction's order, so
// work may be split over threads only along that order's independent pieces: a dot product's
// 128-wide K blocks (each block's fma chain whole; the block partials then added in block order
// from +0, as a multi-rank trainer splitting tokens at multiples of 128 does), a row reduction's
// 32 lanes (each lane folding l, l+32, ... in order; then the butterfly), and whole outputs
// (rows). Each split below runs with 1, 2, 3, 4 and 7 threads under static, dynamic and guided
// schedules of chunk 1 and 3, and must give the bits of the serial oracles dot_spec and
// warp_emulation, written independently above (and of the library). Data span 2^±12 in
// magnitude, so the order is visible in the bits: the test checks that splits the contract
// forbids (each thread totalling its own blocks or its own contiguous elements, then the
// thread totals added) change the bits of some case, i.e. that this comparison can fail.
std::vector<float> wide_range(std::int64_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::uniform_int_distribution<int> e(-12, 12);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = std::ldexp(d(gen), e(gen));
  return v;
}

// Allowed: blocks over threads, partials folded in block order.
float dot_blocks_over_threads(const std::vector<float>& a, const std::vector<float>& b, int threads) {
  const std::int64_t K = static_cast<std::int64_t>(a.size()), nb = (K + 127) / 128;
  std::vector<float> partial(static_cast<std::size_t>(nb), 0.0f);
#pragma omp parallel for num_threads(threads) schedule(runtime)
  for (std::int64_t kb = 0; kb < nb; ++kb) {
    float p = 0.0f;
    for (std::int64_t k = kb * 128; k < std::min<std::int64_t>(K, kb * 128 + 128); ++k) p = std::fma(a[k], b[k], p);
    partial[static_cast<std::size_t>(kb)] = p;
  }
  float acc = 0.0f;
  for (float p : partial) acc = acc + p;
  return acc;
}

// Allowed: lanes over threads, then the halving tree (lane 0 of the xor butterfly).
template <class Op>
float lanes_over_threads(const std::vector<float>& x, float identity, Op op, int threads) {
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  float v[32];
#pragma omp parallel for num_threads(threads) schedule(runtime)
  for (int l = 0; l < 32; ++l) {
    float s = identity;
    for (std::int64_t i = l; i < n; i += 32) s = op(s, x[static_cast<std::size_t>(i)]);
    v[l] = s;
  }
  for (int off = 16; off >= 1; off /= 2)
    for (int l = 0; l < off; ++l) v[l] = op(v[l], v[l + off]);
  return v[0];
}

// Forbidden: each of `threads` contiguous pieces of `n_items` totalled on its own, then the
// totals added in order (`item_sum(i0, i1)` sums items [i0, i1) in order from +0).
template <class ItemSum>
float totals_per_thread(std::int64_t n_items, int threads, ItemSum item_sum) {
  std::vector<float> total(static_cast<std::size_t>(threads), 0.0f);
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    total[static_cast<std::size_t>(t)] = item_sum(n_items * t / n, n_items * (t + 1) / n);
  }
  float acc = 0.0f;
  for (float v : total) acc = acc + v;
  return acc;
}

TEST(NumericsReduce, ContractSplitsOverThreadsGiveTheSerialBits) {
  const auto add = [](float a, float b) { return a + b; };
  const auto mx = [](float a, float b) { return max_nan(a, b); };
  const omp_sched_t kinds[] = {omp_sched_static, omp_sched_dynamic, omp_sched_guided};
  int forbidden_block_split_differs = 0, forbidden_element_split_differs = 0, compared = 0;
  for (std::int64_t n : kLengths) {
    const std::vector<float> a = wide_range(n, 11), b = wide_range(n, 12);
    const float dot_serial = dot_spec(a, b);
    const float sum_serial = warp_emulation(a, -0.0f, add), max_serial = warp_emulation(a, -INFINITY, mx);
    ASSERT_EQ(bits(dot_k128(a.data(), b.data(), n)), bits(dot_serial)) << "K=" << n;
    ASSERT_EQ(bits(row_sum(a.data(), n)), bits(sum_serial)) << "n=" << n;
    for (int threads : {1, 2, 3, 4, 7})
      for (omp_sched_t kind : kinds)
        for (int chunk : {1, 3}) {
          omp_set_schedule(kind, chunk);
          ++compared;
          EXPECT_EQ(bits(dot_blocks_over_threads(a, b, threads)), bits(dot_serial))
              << "K=" << n << " threads " << threads << " schedule " << kind << "," << chunk;
          EXPECT_EQ(bits(lanes_over_threads(a, -0.0f, add, threads)), bits(sum_serial))
              << "n=" << n << " threads " << threads << " schedule " << kind << "," << chunk;
          EXPECT_EQ(bits(lanes_over_threads(a, -INFINITY, mx, threads)), bits(max_serial))
              << "n=" << n << " threads " << threads << " schedule " << kind << "," << chunk;
        }
    for (int threads : {2, 3, 4}) {
      const float blocks = totals_per_thread((n + 127) / 128, threads, [&](std::int64_t b0, std::int64_t b1) {
        float acc = 0.0f;
        for (std::int64_t kb = b0; kb < b1; ++kb) {
          float p = 0.0f;
          for (std::int64_t k = kb * 128; k < std::min<std::int64_t>(n, kb * 128 + 128); ++k) p = std::fma(a[k], b[k], p);
          acc = acc + p;
        }
        return acc;
      });
      const float elements = totals_per_thread(n, threads, [&](std::int64_t i0, std::int64_t i1) {
        float acc = 0.0f;
        for (std::int64_t i = i0; i < i1; ++i) acc = acc + a[static_cast<std::size_t>(i)];
        return acc;
      });
      forbidden_block_split_differs += bits(blocks) != bits(dot_serial);
      forbidden_element_split_differs += bits(elements) != bits(sum_serial);
    }
  }
  EXPECT_GT(forbidden_block_split_differs, 0) << "no case tells a per-thread block total from the block order";
  EXPECT_GT(forbidden_element_split_differs, 0) << "no case tells a per-thread element total from the lane order";
  std::printf("[ threads ] %d split runs x 3 reductions bit-equal to the serial oracles; forbidden splits differ "
              "in %d (blocks) and %d (elements) of %zu cases\n",
              compared, forbidden_block_split_differs, forbidden_element_split_differs, 3 * std::size(kLengths));
}

// Independent outputs (rows) over threads in any chunking: every row has the serial oracles' bits.
TEST(NumericsReduce, RowsOverThreadsGiveTheSerialBits) {
  const auto add = [](float a, float b) { return a + b; };
  const auto mx = [](float a, float b) { return max_nan(a, b); };
  const int rows = 257, n = 999;
  const std::vector<float> x = wide_range(static_cast<std::int64_t>(rows) * n, 10);
  const std::vector<float> first(x.begin(), x.begin() + n);
  std::vector<float> want(static_cast<std::size_t>(3 * rows));
  for (int r = 0; r < rows; ++r) {
    const std::vector<float> row(x.begin() + static_cast<std::ptrdiff_t>(r) * n,
                                 x.begin() + static_cast<std::ptrdiff_t>(r + 1) * n);
    want[3 * r] = warp_emulation(row, -0.0f, add);
    want[3 * r + 1] = warp_emulation(row, -INFINITY, mx);
    want[3 * r + 2] = dot_spec(row, first);
  }
  for (int threads : {1, 2, 3, 7})
    for (int chunk : {1, 3, 64}) {
      std::vector<float> out(static_cast<std::size_t>(3 * rows));
#pragma omp parallel for num_threads(threads) schedule(dynamic, chunk)
      for (int r = 0; r < rows; ++r) {
        const float* row = &x[static_cast<std::size_t>(r) * n];
        out[3 * r] = row_sum(row, n);
        out[3 * r + 1] = row_max(row, n);
        out[3 * r + 2] = dot_k128(row, &x[0], n);
      }
      for (std::size_t i = 0; i < out.size(); ++i)
        ASSERT_EQ(bits(out[i]), bits(want[i])) << "output " << i << ", threads " << threads << ", chunk " << chunk;
    }
}

}  // namespace
}  // namespace preflight::num
