// The canonical GEMM kernel of the CPU reference: C = A · Bᵀ where every output
// element is the contract's K-blocked dot product (docs/NUMERICS.md, `dot_k128`):
//
//   c[m][n] = Σ_b p_b,  p_b = fma-chain over k in block b (128 wide, last one shorter),
//             each p_b starting from +0 with k ascending, partials added to a +0
//             total in block order.
//
// Each output element has its own chain, so the result does not depend on M, on the
// tiling, or on the number of OpenMP threads (threads own whole output tiles; there
// is no cross-thread reduction). This file is the one place in reference/ that uses
// processor-specific instructions (AVX2 fma lanes when the build has them); lane j of
// a vector fma is exactly std::fma on element j, so the scalar path gives the same bits.
//
// Legend: M = rows of A and C, N = rows of B = columns of C, K = reduction length.
#pragma once

#include <cstdint>

namespace preflight::ref {

constexpr int64_t kDotBlock = 128;  // the contract's K block (N_C)

// How the finished dot product d is written into c[m][n].
enum class GemmStore {
  overwrite,   // c = d
  accumulate,  // c = c + d        (gradient accumulation: one add per call)
};

// A element (m, k) lives at a[m*a_row + k*a_col]; B element (n, k) at b[n*b_row + k*b_col];
// C element (m, n) at c[m*ldc + n]. Optional bias (N) is added after the dot: d = dot + bias[n].
void gemm_nt_k128(float* c, int64_t ldc,                                   // (M,N)
                  const float* a, int64_t a_row, int64_t a_col,            // (M,K)
                  const float* b, int64_t b_row, int64_t b_col,            // (N,K)
                  const float* bias,                                       // (N) or null
                  GemmStore store, int64_t M, int64_t N, int64_t K);

}  // namespace preflight::ref
