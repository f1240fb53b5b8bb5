// The numerics primitives the reference layers use, in one place. Every exp, log,
// rsqrt, reduction and dot product of reference/layers goes through these names, so the
// layers follow docs/NUMERICS.md by construction and switching the implementation is a
// one-file change.
//
#pragma once

#include <cmath>
#include <cstdint>

#include "reference/numerics/hd.hpp"
#include "reference/numerics/math.hpp"
#include "reference/numerics/reduce.hpp"

namespace preflight::ref::px {

inline float fma(float a, float b, float c) { return num::fma(a, b, c); }
inline float sqrt(float x) { return num::sqrt(x); }

inline float exp(float x) { return num::exp(x); }
inline float log(float x) { return num::log(x); }
inline float tanh(float x) { return num::tanh(x); }
inline float rsqrt(float x) { return num::rsqrt(x); }
inline float sigmoid(float x) { return num::sigmoid(x); }
inline float silu(float x) { return num::silu(x); }
inline float silu_grad(float x) { return num::silu_grad(x); }  // d/dx silu
inline float gelu(float x) { return num::gelu(x); }  // tanh approximation (GPT-2)

// 32-lane row reductions (lane l folds l, l+32, ... from -0 / -inf, then the xor butterfly).
inline float row_sum(const float* x, int64_t n) { return num::row_sum(x, n); }
inline float row_max(const float* x, int64_t n) { return num::row_max(x, n); }
// Σ a_i·b_i in the row order, each lane an fma chain (also Σ x_i² for RMSNorm).
inline float row_dot(const float* a, const float* b, int64_t n) { return num::row_dot(a, b, n); }
template <class Load>
float row_sum_by(int64_t n, Load load) { return num::row_sum_by(n, load); }
template <class Load>
float row_max_by(int64_t n, Load load) { return num::row_max_by(n, load); }

// The contract's K-blocked dot product (dot_k128) of two strided vectors.
inline float dot(const float* x, int64_t xs, const float* y, int64_t ys, int64_t n) {
  return num::dot_k128_strided(x, xs, y, ys, n);
}

// Indices of the k largest of v[0..n), descending, ties to the lower index.
inline void topk(const float* v, int n, int k, int* idx) { num::topk(v, n, k, idx); }

}  // namespace preflight::ref::px
