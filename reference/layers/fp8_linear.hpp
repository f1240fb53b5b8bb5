// Linear layers in a selectable GEMM precision: fp32 (matmul.hpp as is), bf16 operands, or
// FP8 (E4M3) operands with DeepSeek-V3's fine-grained scaling and per-128 promotion.
// Weights stored (out, in), y = x·Wᵀ (+ b), as everywhere in the project.
//
// Legend: M = rows (tokens), K = input features, N = output features; a "tile" is 1×128 and a
// "block" 128×128; Kb = ⌈K/128⌉, Nb = ⌈N/128⌉, Mb = ⌈M/128⌉.
//
// Quantisation (docs/NUMERICS.md §2.4, reference/numerics/fp8.hpp), per group G of elements:
//   amax  = max |x_i| over the VALID elements of G (a partial last tile/block has fewer)
//   scale = max(amax, 1e-4) / 448                      (one rounded division)
//           or, with ue8m0 scales, that value rounded UP to a power of two
//   q_i   = to_e4m3(x_i / scale)                       (a rounded division, then RNE, saturating)
// The quantised matrix carries the E4M3 codes and one float scale per group.
//
// FP8 GEMM (the contract's dot_fp8_k128): out[m][n] = Σ over K blocks b, ascending, of
//   partial_b = sequential fma chain from +0 of decode(qa[m][k])·decode(qb[n][k]), k ∈ b
//               (each product of two E4M3 values is exact in fp32; each step rounds once)
//   acc       = fma(partial_b, sa(m,b) · sb(n,b), acc),  acc from +0   (the "promotion")
// then + bias[n] (one add), canonical NaN.
//
// What is quantised how (forward, dgrad, wgrad), FP8:
//   forward  y  = x·Wᵀ     x: 1×128 tiles along K (per token);  W: 128×128 blocks.
//   dgrad    dx = dy·W     dy: 1×128 tiles along N (per token); W: the SAME blocks as the
//                          forward, transposed (a 128×128 block grid is symmetric under
//                          transposition, so this equals quantising Wᵀ in 128×128 blocks).
//   wgrad    dW = dyᵀ·x    dy and x both re-quantised in 128×1 tiles along M (per output /
//                          input channel, 128 consecutive tokens), so the reduction over
//                          tokens is promoted every 128 tokens like the forward's K.
//   dbias    Σ_m dy[m][n]  in fp32 (matmul.hpp's blocked sum of the unquantised dy).
// Simplification against the report: the reference re-quantises wgrad's x from the fp32
// activation it keeps, where DeepSeek re-tiles the FP8 copy cached by the forward
// (dequantise 1×128, re-quantise 128×1); dy is also quantised from fp32, as in the report.
//
// bf16: every operand element rounded to bf16 (RNE, bf16.hpp), then the fp32 contract GEMM
// (dot_k128) of matmul.hpp on the rounded values; for dgrad round(dy), round(W); for wgrad
// round(dy), round(x); dbias from the unrounded dy.
//
// Every element has its own chain, so all paths are batch-invariant and independent of the
// thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/layers/gemm_kernel.hpp"
#include "reference/numerics/fp8.hpp"

namespace preflight::ref {

// The GEMM input precision of a run (one switch for the whole model).
enum class Precision {
  fp32,  // operands as they are (matmul.hpp)
  bf16,  // operands rounded to bf16, fp32 accumulation in the contract's order
  fp8,   // E4M3 operands, 1×128 / 128×128 scales, promotion every 128 (DeepSeek-V3)
};
const char* to_string(Precision p);
Precision precision_from_string(const char* name);  // "fp32" | "bf16" | "fp8", else throws

struct LinearPrecision {
  Precision kind = Precision::fp32;
  bool ue8m0_scales = false;  // fp8 only: scales rounded up to powers of two (UE8M0)
};

constexpr int64_t kFp8Tile = 128;  // the 128 of 1×128 tiles and 128×128 blocks

// A (rows, cols) matrix quantised to E4M3 in groups of tile_rows × 128 (tile_rows = 1: tiles
// along the columns; 128: blocks). Element (r, c) is q[r·cols + c]; its scale is
// scale[(r / tile_rows)·col_blocks() + c / 128].
struct Fp8Matrix {
  int64_t rows = 0, cols = 0, tile_rows = 1;
  std::vector<num::fp8_e4m3> q;  // (rows,cols)
  std::vector<float> scale;      // (⌈rows/tile_rows⌉, ⌈cols/128⌉)
  int64_t col_blocks() const { return (cols + kFp8Tile - 1) / kFp8Tile; }
  float scale_at(int64_t r, int64_t cb) const { return scale[(r / tile_rows) * col_blocks() + cb]; }
};

// Quantises the (R, K) matrix whose element (r, k) is x[r·row_stride + k·col_stride] (a
// transpose is a swap of the strides) in groups of tile_rows × 128. tile_rows is 1 or 128.
void fp8_quantize(Fp8Matrix& out, const float* x, int64_t row_stride, int64_t col_stride, int64_t R,
                  int64_t K, int64_t tile_rows, bool ue8m0);

// The transpose of a 128×128-block quantised matrix: codes and the scale grid transposed
// (exact; identical to quantising the transposed float matrix).
Fp8Matrix fp8_transpose_blocks(const Fp8Matrix& w);

// out[m][n] = dot_fp8_k128(a row m, b row n) (+ bias[n]); a (M,K), b (N,K), same K.
// store = overwrite (out = d) or accumulate (out = out + d, one add).
void fp8_gemm_nt(float* out,          // (M,N), row stride ldo
                 int64_t ldo, const Fp8Matrix& a, const Fp8Matrix& b,
                 const float* bias,   // (N) or null
                 GemmStore store);

// y = x·Wᵀ (+ b) with the operands in precision p (see the header comment).
void linear_forward(float* out,        // (M,N)
                    const float* x,    // (M,K)
                    const float* w,    // (N,K)
                    const float* bias, // (N) or null
                    int64_t M, int64_t N, int64_t K, const LinearPrecision& p);

// Gradients ACCUMULATED (g = g + d, one add per element; callers zero them first), any of
// dx, dw, dbias may be null. dgrad and wgrad as described in the header comment.
void linear_backward(float* dx,          // (M,K) or null
                     float* dw,          // (N,K) or null
                     float* dbias,       // (N) or null
                     const float* dout,  // (M,N)
                     const float* x,     // (M,K)
                     const float* w,     // (N,K)
                     int64_t M, int64_t N, int64_t K, const LinearPrecision& p);

}  // namespace preflight::ref
