// Device evaluation of the numerics core (reference/numerics, docs/NUMERICS.md) for the
// CPU<->GPU parity tests. Host-only header: plain C++ callers pass host arrays; each call
// copies them to device 0, runs one kernel and copies the results back (a test harness, not
// a production path). Every function throws preflight::Error on a CUDA failure.
#pragma once

#include <cstdint>

namespace preflight::cuda {

// The elementwise functions of reference/numerics/math.hpp, by name.
enum class NumericsFn : int {
  exp,
  log,
  log1p,
  sigmoid,
  silu,
  silu_grad,
  tanh,
  rsqrt,
  gelu,
  softplus,
  sin_2pi,
  cos_2pi,
};
inline constexpr int kNumericsFnCount = 12;
const char* numerics_fn_name(NumericsFn fn);

// y[i] = fn(x[i]) for i < n, computed on the device with the shared header code.
void eval_elementwise(NumericsFn fn, const float* x, float* y, std::int64_t n);

// float -> fp8 / bf16 on the device: `ours` with reference/numerics, `hardware` with the
// sm_89+ conversion instructions (cvt.rn.satfinite.{e4m3,e5m2}x2.f32, cvt.rn.bf16.f32).
void convert_e4m3(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n);
void convert_e5m2(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n);
void convert_bf16(const float* x, std::uint16_t* ours, std::uint16_t* hardware, std::int64_t n);

// All 256 codes of each fp8 format decoded on the device: ours, and the hardware
// fp8 -> half conversion widened to float.
void decode_fp8_all(float* e4m3_ours, float* e4m3_hardware, float* e5m2_ours, float* e5m2_hardware);

// UE8M0 round-up encoding and decoding of x[i].
void ue8m0_roundtrip(const float* x, std::uint8_t* encoded, float* decoded, std::int64_t n);

// out[r] = dot_k128(a + r*K, b + r*K, K), one thread per output (each thread walks the
// contract's block order, as an MMA tile's accumulator does).
void dot_k128_rows(const float* a, const float* b, float* out, std::int64_t rows, std::int64_t K);

// out[r] = dot_fp8_k128 over E4M3 codes with per-128 scales (scale arrays rows x ceil(K/128)).
void dot_fp8_k128_rows(const std::uint8_t* a, const float* scale_a, const std::uint8_t* b, const float* scale_b,
                       float* out, std::int64_t rows, std::int64_t K);

// Row sums, maxima and sums of squares of a rows x n matrix, one warp per row using warp
// shuffles (lane l folds l, l+32, ...; then __shfl_xor_sync over 16, 8, 4, 2, 1).
void row_reduce_warp(const float* x, float* sum, float* max, float* sum_squares, std::int64_t rows, std::int64_t n);

// idx[r*k .. r*k+k) = topk of row r of a rows x n matrix, one thread per row.
void topk_rows(const float* v, int* idx, int rows, int n, int k);

// Philox words, uniforms and normals of blocks first_block .. first_block + blocks - 1:
// words/uniforms/normals hold 4 values per block.
void philox_blocks(std::uint64_t seed, std::uint64_t stream, std::uint64_t first_block, std::int64_t blocks,
                   std::uint32_t* words, float* uniforms, float* normals);

}  // namespace preflight::cuda
