// Device-pointer launchers of the deterministic CUDA path (docs/CUDA.md). Host-only header:
// plain C++ (cuda/layers/*.cpp) calls these with pointers from DeviceBuffer; each launches one
// kernel on the default stream and checks the launch (errors throw preflight::Error).
//
// Every kernel here gives each output element to ONE thread, and that thread runs the same
// sequence of operations as the CPU reference (reference/layers/*.cpp) using the same
// header-only functions of reference/numerics compiled as device code (PF_HD): dot products
// are num::dot_k128_strided, row reductions num::row_dot / row_sum_by / row_max_by. There are
// no atomics and no cross-thread reductions, so results do not depend on the launch
// configuration, and equal the reference's bits by construction.
//
// Matmul convention as everywhere: C = A·Bᵀ, A element (m,k) at a[m*a_row + k*a_col],
// B element (n,k) at b[n*b_row + k*b_col].
#pragma once

#include <cstdint>

namespace preflight::cuda::dev {

// c[m*ldc+n] = canonical(dot_k128(A row m, B row n) (+ bias[n])), or with accumulate
// c = canonical(c + that). (reference/layers/gemm_kernel.hpp, bit for bit.)
void gemm_nt(float* c, std::int64_t ldc, const float* a, std::int64_t a_row, std::int64_t a_col, const float* b,
             std::int64_t b_row, std::int64_t b_col, const float* bias, bool accumulate, std::int64_t M,
             std::int64_t N, std::int64_t K);

// out[i] = out[i] + dot_k128_strided(a + i*a_elem, a_step, b + i*b_elem, b_step, n) for i < count
// (no canonicalisation of the sum: the reference's `dw[i] = dw[i] + px::dot(...)`).
void column_dot_accumulate(float* out, const float* a, std::int64_t a_elem, std::int64_t a_step, const float* b,
                           std::int64_t b_elem, std::int64_t b_step, std::int64_t n, std::int64_t count);

// y[i] = round_to_bf16(x[i]).
void round_bf16(float* y, const float* x, std::int64_t n);
// y (K,R) = transpose of x (R,K) (a copy).
void transpose(float* y, const float* x, std::int64_t R, std::int64_t K);

// FP8 E4M3 quantisation of the dense (R,K) matrix x in groups of tile_rows × 128
// (reference/layers/fp8_linear.cpp fp8_quantize): scale (⌈R/tile_rows⌉, ⌈K/128⌉), q (R,K).
void fp8_quantize(std::uint8_t* q, float* scale, const float* x, std::int64_t R, std::int64_t K,
                  std::int64_t tile_rows, bool ue8m0);

// FP8 GEMM (fp8_linear.cpp fp8_gemm_nt): A codes (M,K) dense with scale
// sa[(m / a_group)*sa_rs + kb*sa_cs]; B element (n,k) at qb[n*b_row + k*b_col] with scale
// sb[(n / b_group)*sb_rs + kb*sb_cs] (a transposed 128×128 block grid is a swap of strides).
struct Fp8Operand {
  const std::uint8_t* q;
  std::int64_t row, col;     // element strides
  const float* scale;
  std::int64_t group_rows;   // rows sharing a scale row (1 or 128)
  std::int64_t scale_rs, scale_cs;  // strides of the scale grid per row group / per K block
};
void fp8_gemm_nt(float* out, std::int64_t ldo, const Fp8Operand& a, const Fp8Operand& b, const float* bias,
                 bool accumulate, std::int64_t M, std::int64_t N, std::int64_t K);

// Embedding: out[t] = table[tok[t]]; dtable[tok[t]][c] += dout[t][c], t ascending per c.
void embedding_forward(float* out, const std::int32_t* tokens, const float* table, std::int64_t T, std::int64_t C);
void embedding_backward(float* dtable, const float* dout, const std::int32_t* tokens, std::int64_t T,
                        std::int64_t C);

// RMSNorm (rmsnorm.cpp), one thread per row; backward dx needs scratch g (T,C).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, std::int64_t T,
                     std::int64_t C);
void rmsnorm_backward_dx(float* dx, float* g, const float* dout, const float* x, const float* w,
                         const float* rstd, std::int64_t T, std::int64_t C);
// xn[t][i] = x[t][i] * rstd[t]
void scale_rows(float* xn, const float* x, const float* rstd, std::int64_t T, std::int64_t C);

// LayerNorm (gpt_layers.cpp), one thread per row; dev (T,C) scratch.
void layernorm_forward(float* out, float* mean, float* rstd, float* dev, const float* x, const float* w,
                       const float* b, float eps, std::int64_t T, std::int64_t C);
// xh[t][i] = (x[t][i] - mean[t]) * rstd[t]
void layernorm_xhat(float* xh, const float* x, const float* mean, const float* rstd, std::int64_t T,
                    std::int64_t C);
void layernorm_backward_dx(float* dx, float* g, const float* dout, const float* xh, const float* w,
                           const float* rstd, std::int64_t T, std::int64_t C);

// RoPE in place on (T, NH, D) vectors; interleaved pairs (2i, 2i+1) or half pairs (i, i+D/2).
// cos/sin: (P, D/2) tables on the device; pos (T) on the device.
void rope(float* x, const std::int32_t* pos, const float* cos, const float* sin, std::int64_t D, std::int64_t T,
          std::int64_t NH, std::int64_t row, std::int64_t head, bool interleaved, bool backward);

// Elementwise steps of the FFNs, each one line of the reference.
void swiglu_act(float* act, const float* h1, const float* h3, std::int64_t n);             // silu(h1)·h3
void swiglu_grad(float* dh1, float* dh3, const float* dact, const float* h1, const float* h3, std::int64_t n);
void gelu(float* act, const float* h, std::int64_t n);                                      // num::gelu
void gelu_backward(float* dh, const float* h, std::int64_t n);                              // dh·gelu_grad(h)

// Attention core (attention.cpp), one thread per (h, t) row or per output element.
// p, th: (H,T,T); q (T,H,Dh); k, v (T,G,Dh); s0 (T).
void attention_forward(float* p, float* th, float* o, const float* q, const float* k, const float* v,
                       const std::int64_t* s0, float scale, float cap, std::int64_t T, std::int64_t H,
                       std::int64_t G, std::int64_t Dh);
// dS (H,T,T) from dO (T,H,Dh), v, p, th.
void attention_backward_ds(float* dS, const float* dO, const float* v, const float* p, const float* th,
                           const std::int64_t* s0, float scale, float cap, std::int64_t T, std::int64_t H,
                           std::int64_t G, std::int64_t Dh);
// dq (T,H,Dh); dkh, dvh (T,H,Dh) per-head key/value contributions; t1 (T) last query of s's doc.
void attention_backward_qkv(float* dq, float* dkh, float* dvh, const float* dS, const float* p, const float* dO,
                            const float* q, const float* k, const std::int64_t* s0, const std::int64_t* t1,
                            std::int64_t T, std::int64_t H, std::int64_t G, std::int64_t Dh);
// dk, dv (T,G,Dh) = heads of each group summed ascending from +0.
void attention_group_sum(float* dk, float* dv, const float* dkh, const float* dvh, std::int64_t T, std::int64_t H,
                         std::int64_t G, std::int64_t Dh);
// Output gate: gate = sigmoid(a); o = o_pre · gate[t,h].
void gate_forward(float* gate, float* o, const float* a, const float* o_pre, std::int64_t TH, std::int64_t Dh);
// dA = dot(dO, o_pre, Dh)·(gate·sigmoid(−a)); dO = dO·gate.
void gate_backward(float* dA, float* dO, const float* o_pre, const float* gate, const float* a, std::int64_t TH,
                   std::int64_t Dh);

}  // namespace preflight::cuda::dev
