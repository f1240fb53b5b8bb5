// Reduction orders of the numerics contract (docs/NUMERICS.md §4, contract version 1).
//
// Floating-point sums depend on their order, so each reduction has exactly one, chosen to map
// onto a GPU (a K-tile of 128 per MMA stage, a 32-lane warp per row) and to vectorise on a CPU
// across independent outputs. Any implementation (CPU loop, SIMD, warp shuffles) must perform
// these operations in this order; parallelism may only split independent outputs, never one
// reduction, so results do not depend on the thread count.
//
//   dot_k128       blocks of 128 along K; per block a sequential fma chain from +0.0f;
//                  block partials added in block order: acc = acc + partial, from +0.0f.
//   dot_fp8_k128   the same blocks over decoded fp8 products (exact in float), each partial
//                  promoted as acc = fma(partial, scale_a[b] * scale_b[b], acc).
//   row_*          32 lanes; lane l folds elements l, l+32, l+64, ... in order, starting from
//                  -0.0f (sum: the exact additive identity) or -inf (max); then a butterfly
//                  over offsets 16, 8, 4, 2, 1: v[l] = v[l] op v[l ^ off]; the result is lane 0.
//   topk           descending value, ties to the lower index, NaN above +inf.
//
// NaN results of sums and dot products are returned as the canonical NaN 0x7FFFFFFF.
#pragma once

#include <cstdint>

#include "reference/numerics/fp8.hpp"
#include "reference/numerics/hd.hpp"
#include "reference/numerics/math.hpp"

namespace preflight::num {

inline constexpr std::int64_t kKBlock = 128;
inline constexpr int kLanes = 32;

// ---------------------------------------------------------------------------------------
// K-blocked dot products
// ---------------------------------------------------------------------------------------

// sum_k a[k*sa] * b[k*sb] over k in [0, K), in the blocked order above.
PF_HD float dot_k128_strided(const float* a, std::int64_t sa, const float* b, std::int64_t sb,
                             std::int64_t K) {
  float acc = 0.0f;
  for (std::int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const std::int64_t k1 = K - k0 < kKBlock ? K : k0 + kKBlock;
    float partial = 0.0f;
    for (std::int64_t k = k0; k < k1; ++k) partial = fma(a[k * sa], b[k * sb], partial);
    acc = acc + partial;
  }
  return canonicalize(acc);
}

PF_HD float dot_k128(const float* a, const float* b, std::int64_t K) { return dot_k128_strided(a, 1, b, 1, K); }

// FP8 GEMM inner product with DeepSeek-V3's promotion every 128 elements: a and b are fp8
// (E4M3 or E5M2, each decoded exactly), scale_a[kb] and scale_b[kb] the dequantisation scales
// of K-block kb (for a 128x128 weight block the caller passes that output row's scales).
// Products of two fp8 values are exact in float, so each block partial is a sequential sum
// of exact products, rounded once per step.
template <class FpA, class FpB>
PF_HD float dot_fp8_k128(const FpA* a, const float* scale_a, const FpB* b, const float* scale_b, std::int64_t K) {
  float acc = 0.0f;
  for (std::int64_t k0 = 0, kb = 0; k0 < K; k0 += kKBlock, ++kb) {
    const std::int64_t k1 = K - k0 < kKBlock ? K : k0 + kKBlock;
    float partial = 0.0f;
    for (std::int64_t k = k0; k < k1; ++k) partial = fma(to_float(a[k]), to_float(b[k]), partial);
    acc = fma(partial, scale_a[kb] * scale_b[kb], acc);
  }
  return canonicalize(acc);
}

// ---------------------------------------------------------------------------------------
// 32-lane row reductions. load(i) yields element i of the row (a functor, so layers can
// reduce computed values such as exp(x_i - max) without a temporary).
// ---------------------------------------------------------------------------------------
namespace detail {

template <class Op>
PF_HD float butterfly(float (&v)[kLanes], Op op) {
  // Lane l of a warp computes v[l] op v[l ^ off] for every l at once. Each op below is
  // commutative bit for bit (NaNs aside, which the callers canonicalise), so lanes l and
  // l ^ off hold the same value afterwards and lane 0 only needs the halving tree.
  for (int off = kLanes / 2; off >= 1; off /= 2) {
    for (int l = 0; l < off; ++l) v[l] = op(v[l], v[l + off]);
  }
  return v[0];
}

struct AddOp {
  PF_HD float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  PF_HD float operator()(float a, float b) const { return max_nan(a, b); }
};

}  // namespace detail

template <class Load>
PF_HD float row_sum_by(std::int64_t n, Load load) {
  float v[kLanes];
  for (int l = 0; l < kLanes; ++l) v[l] = -0.0f;
  for (std::int64_t base = 0; base < n; base += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      if (base + l < n) v[l] = v[l] + load(base + l);
    }
  }
  return canonicalize(detail::butterfly(v, detail::AddOp{}));
}

template <class Load>
PF_HD float row_max_by(std::int64_t n, Load load) {
  float v[kLanes];
  for (int l = 0; l < kLanes; ++l) v[l] = -kInf;
  for (std::int64_t base = 0; base < n; base += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      if (base + l < n) v[l] = max_nan(v[l], load(base + l));
    }
  }
  return detail::butterfly(v, detail::MaxOp{});
}

// sum_i a[i] * b[i] in the row order, each lane accumulating with fma (v = fma(a, b, v)).
PF_HD float row_dot(const float* a, const float* b, std::int64_t n) {
  float v[kLanes];
  for (int l = 0; l < kLanes; ++l) v[l] = -0.0f;
  for (std::int64_t base = 0; base < n; base += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      if (base + l < n) v[l] = fma(a[base + l], b[base + l], v[l]);
    }
  }
  return canonicalize(detail::butterfly(v, detail::AddOp{}));
}

namespace detail {
struct ArrayLoad {
  const float* x;
  PF_HD float operator()(std::int64_t i) const { return x[i]; }
};
}  // namespace detail

PF_HD float row_sum(const float* x, std::int64_t n) { return row_sum_by(n, detail::ArrayLoad{x}); }
PF_HD float row_max(const float* x, std::int64_t n) { return row_max_by(n, detail::ArrayLoad{x}); }
PF_HD float row_sum_squares(const float* x, std::int64_t n) { return row_dot(x, x, n); }

// ---------------------------------------------------------------------------------------
// Top-k selection
// ---------------------------------------------------------------------------------------

// The selection order: larger first; NaN ranks above every number (NaNs among themselves and
// equal numbers, +0 and -0 included, by index); the lower index first on ties.
PF_HD bool ranks_before(float a, int ia, float b, int ib) {
  const bool a_nan = is_nan(a);
  const bool b_nan = is_nan(b);
  if (a_nan || b_nan) return a_nan && b_nan ? ia < ib : a_nan;
  if (a > b) return true;
  if (a < b) return false;
  return ia < ib;
}

// idx[0..k) = indices of the k first elements of v[0..n) in that order (requires 0 <= k <= n).
// Insertion into a sorted list of k: the result is fully determined by the order, so any
// other selection algorithm must return the same indices.
PF_HD void topk(const float* v, int n, int k, int* idx) {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    int pos;
    if (count < k) {
      pos = count++;
    } else if (k > 0 && ranks_before(v[i], i, v[idx[k - 1]], idx[k - 1])) {
      pos = k - 1;
    } else {
      continue;
    }
    while (pos > 0 && ranks_before(v[i], i, v[idx[pos - 1]], idx[pos - 1])) {
      idx[pos] = idx[pos - 1];
      --pos;
    }
    idx[pos] = i;
  }
}

}  // namespace preflight::num
