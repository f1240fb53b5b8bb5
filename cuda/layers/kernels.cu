// Deterministic CUDA kernels of the reference layers (see kernels.hpp and docs/CUDA.md).
//
// Rule of this file: a kernel body is the reference's loop body for ONE output element (or one
// row, where the reference computes a row statistic), written with the same reference/numerics
// functions, in the same order, with the same roundings. -fmad=false (cuda/CMakeLists.txt)
// keeps every `a*b+c` written here two roundings, as -ffp-contract=off does on the host.
#include "cuda/layers/kernels.hpp"

#include <cuda_runtime.h>

#include "cuda/check.cuh"
#include "reference/numerics/numerics.hpp"

namespace preflight::cuda::dev {
namespace {

using std::int64_t;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) ::preflight::fail("CUDA kernel launch failed: ", what, ": ", cudaGetErrorString(e));
}

// ------------------------------------------------------------------------------------------
// GEMM: one thread per output element c[m][n]. Operands are staged through shared memory in
// 32-wide K slices (32 divides the contract's 128-wide block), but each thread still runs the
// contract's chain: partial = fma(a_k, b_k, partial) for k ascending from +0 within a 128-block,
// then total = total + partial at every block end. The staging changes where operands come
// from, never the order of the arithmetic.
// ------------------------------------------------------------------------------------------
constexpr int kTile = 16;   // output tile kTile × kTile, one thread each
constexpr int kSlice = 32;  // K slice staged in shared memory

__global__ void gemm_nt_kernel(float* c, int64_t ldc, const float* a, int64_t a_row, int64_t a_col,
                               const float* b, int64_t b_row, int64_t b_col, const float* bias, bool accumulate,
                               int64_t M, int64_t N, int64_t K) {
  __shared__ float sA[kTile][kSlice + 1];  // (rows of A, k)
  __shared__ float sB[kTile][kSlice + 1];  // (rows of B, k)
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  const int64_t m = m0 + ty, n = n0 + tx;
  float total = 0.0f, partial = 0.0f;  // both from +0
  for (int64_t k0 = 0; k0 < K; k0 += kSlice) {
    for (int kk = tx; kk < kSlice; kk += kTile) {
      const int64_t k = k0 + kk;
      const int64_t ma = m0 + ty, nb = n0 + ty;
      sA[ty][kk] = (ma < M && k < K) ? a[ma * a_row + k * a_col] : 0.0f;
      sB[ty][kk] = (nb < N && k < K) ? b[nb * b_row + k * b_col] : 0.0f;
    }
    __syncthreads();
    const int kend = K - k0 < kSlice ? int(K - k0) : kSlice;
    for (int kk = 0; kk < kend; ++kk) partial = num::fma(sA[ty][kk], sB[tx][kk], partial);
    __syncthreads();
    const int64_t k1 = k0 + kSlice;
    if (k1 % num::kKBlock == 0 || k1 >= K) {  // end of a 128-block (or of K)
      total = total + partial;
      partial = 0.0f;
    }
  }
  if (m < M && n < N) {
    float d = total;
    if (bias) d = d + bias[n];
    float& out = c[m * ldc + n];
    out = num::canonicalize(accumulate ? out + d : d);
  }
}

__global__ void column_dot_kernel(float* out, const float* a, int64_t a_elem, int64_t a_step, const float* b,
                                  int64_t b_elem, int64_t b_step, int64_t n, int64_t count) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  out[i] = out[i] + num::dot_k128_strided(a + i * a_elem, a_step, b + i * b_elem, b_step, n);
}

__global__ void round_bf16_kernel(float* y, const float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = num::round_to_bf16(x[i]);
}

__global__ void transpose_kernel(float* y, const float* x, int64_t R, int64_t K) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * K) return;
  const int64_t r = i / K, k = i % K;
  y[k * R + r] = x[i];
}

// ------------------------------------------------------------------------------------------
// FP8: one thread per group computes amax (exact, so the order is free) and the scale; one
// thread per element encodes. The GEMM mirrors fp8_gemm_nt: per K block the partial is the
// canonical GEMM of one block (+0 + chain, canonicalised), then acc = fma(part, sa·sb, acc).
// ------------------------------------------------------------------------------------------
__global__ void fp8_scale_kernel(float* scale, const float* x, int64_t R, int64_t K, int64_t tile_rows, bool ue8m0) {
  const int64_t Kb = (K + num::kKBlock - 1) / num::kKBlock, Rb = (R + tile_rows - 1) / tile_rows;
  const int64_t gi = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (gi >= Rb * Kb) return;
  const int64_t rb = gi / Kb, cb = gi % Kb;
  const int64_t r0 = rb * tile_rows, r1 = r0 + tile_rows < R ? r0 + tile_rows : R;
  const int64_t c0 = cb * num::kKBlock, c1 = c0 + num::kKBlock < K ? c0 + num::kKBlock : K;
  float amax = 0.0f;  // num::abs_max over the group's valid elements
  for (int64_t r = r0; r < r1; ++r) {
    const float row_amax = num::abs_max(x + r * K + c0, c1 - c0);
    if (num::is_nan(row_amax)) {
      amax = row_amax;
      break;
    }
    if (row_amax > amax) amax = row_amax;
  }
  scale[gi] = ue8m0 ? num::fp8_e4m3_scale_pow2(amax) : num::fp8_e4m3_scale(amax);
}

__global__ void fp8_encode_kernel(std::uint8_t* q, const float* scale, const float* x, int64_t R, int64_t K,
                                  int64_t tile_rows) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * K) return;
  const int64_t Kb = (K + num::kKBlock - 1) / num::kKBlock;
  const int64_t r = i / K, k = i % K;
  q[i] = num::quantize_e4m3(x[i], scale[(r / tile_rows) * Kb + k / num::kKBlock]).bits;
}

__global__ void fp8_gemm_kernel(float* out, int64_t ldo, Fp8Operand a, Fp8Operand b, const float* bias,
                                bool accumulate, int64_t M, int64_t N, int64_t K) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * N) return;
  const int64_t m = i / N, n = i % N;
  float acc = 0.0f;
  for (int64_t k0 = 0, kb = 0; k0 < K; k0 += num::kKBlock, ++kb) {
    const int64_t k1 = K - k0 < num::kKBlock ? K : k0 + num::kKBlock;
    float partial = 0.0f;
    for (int64_t k = k0; k < k1; ++k) {
      const float x = num::to_float(num::fp8_e4m3{a.q[m * a.row + k * a.col]});
      const float y = num::to_float(num::fp8_e4m3{b.q[n * b.row + k * b.col]});
      partial = num::fma(x, y, partial);
    }
    const float part = num::canonicalize(0.0f + partial);  // gemm_nt_k128 over one block
    const float sa = a.scale[(m / a.group_rows) * a.scale_rs + kb * a.scale_cs];
    const float sb = b.scale[(n / b.group_rows) * b.scale_rs + kb * b.scale_cs];
    acc = num::fma(part, sa * sb, acc);
  }
  float d = acc;
  if (bias) d = d + bias[n];
  float& o = out[m * ldo + n];
  o = num::canonicalize(accumulate ? o + d : d);
}

// ------------------------------------------------------------------------------------------
// Embedding
// ------------------------------------------------------------------------------------------
__global__ void embedding_forward_kernel(float* out, const std::int32_t* tokens, const float* table, int64_t T,
                                         int64_t C) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * C) return;
  const int64_t t = i / C, c = i % C;
  out[i] = table[int64_t(tokens[t]) * C + c];
}

// One thread per channel walks the tokens in ascending order (the reference's loop nest).
__global__ void embedding_backward_kernel(float* dtable, const float* dout, const std::int32_t* tokens, int64_t T,
                                          int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int64_t t = 0; t < T; ++t) {
    float& g = dtable[int64_t(tokens[t]) * C + c];
    g = g + dout[t * C + c];
  }
}

// ------------------------------------------------------------------------------------------
// Norms: one thread per row, the reference's row loop verbatim.
// ------------------------------------------------------------------------------------------
__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* w, float eps, int64_t T,
                                       int64_t C) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* xr = x + t * C;
  const float ms = num::row_dot(xr, xr, C) / float(C);
  const float r = num::rsqrt(ms + eps);
  rstd[t] = r;
  for (int64_t i = 0; i < C; ++i) out[t * C + i] = (xr[i] * r) * w[i];
}

__global__ void rmsnorm_backward_dx_kernel(float* dx, float* g, const float* dout, const float* x, const float* w,
                                           const float* rstd, int64_t T, int64_t C) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* xr = x + t * C;
  const float* dy = dout + t * C;
  float* gr = g + t * C;
  for (int64_t i = 0; i < C; ++i) gr[i] = dy[i] * w[i];
  const float r = rstd[t];
  const float coef = (num::row_dot(gr, xr, C) / float(C)) * ((r * r) * r);
  for (int64_t i = 0; i < C; ++i) dx[t * C + i] = dx[t * C + i] + (r * gr[i] - coef * xr[i]);
}

__global__ void scale_rows_kernel(float* xn, const float* x, const float* rstd, int64_t T, int64_t C) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < T * C) xn[i] = x[i] * rstd[i / C];
}

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, float* dev, const float* x,
                                         const float* w, const float* b, float eps, int64_t T, int64_t C) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* xr = x + t * C;
  float* d = dev + t * C;
  const float mu = num::row_sum(xr, C) / float(C);
  for (int64_t i = 0; i < C; ++i) d[i] = xr[i] - mu;
  const float var = num::row_dot(d, d, C) / float(C);
  const float r = num::rsqrt(var + eps);
  mean[t] = mu, rstd[t] = r;
  for (int64_t i = 0; i < C; ++i) out[t * C + i] = (d[i] * r) * w[i] + b[i];
}

__global__ void layernorm_xhat_kernel(float* xh, const float* x, const float* mean, const float* rstd, int64_t T,
                                      int64_t C) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < T * C) xh[i] = (x[i] - mean[i / C]) * rstd[i / C];
}

__global__ void layernorm_backward_dx_kernel(float* dx, float* g, const float* dout, const float* xh, const float* w,
                                             const float* rstd, int64_t T, int64_t C) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* dy = dout + t * C;
  const float* xr = xh + t * C;
  float* gr = g + t * C;
  for (int64_t i = 0; i < C; ++i) gr[i] = dy[i] * w[i];
  const float a = num::row_sum(gr, C) / float(C);
  const float c = num::row_dot(gr, xr, C) / float(C);
  for (int64_t i = 0; i < C; ++i) dx[t * C + i] = dx[t * C + i] + ((gr[i] - a) - xr[i] * c) * rstd[t];
}

// ------------------------------------------------------------------------------------------
// RoPE: one thread per rotated pair.
// ------------------------------------------------------------------------------------------
__global__ void rope_kernel(float* x, const std::int32_t* pos, const float* cosv, const float* sinv, int64_t D,
                            int64_t T, int64_t NH, int64_t row, int64_t head, bool interleaved, bool backward) {
  const int64_t half = D / 2;
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= T * NH * half) return;
  const int64_t t = j / (NH * half), h = (j / half) % NH, i = j % half;
  float* v = x + t * row + h * head;
  const float c = cosv[int64_t(pos[t]) * half + i], s = sinv[int64_t(pos[t]) * half + i];
  const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
  const float x0 = v[i0], x1 = v[i1];
  if (!backward) {
    v[i0] = x0 * c - x1 * s;
    v[i1] = x0 * s + x1 * c;
  } else {
    v[i0] = x0 * c + x1 * s;
    v[i1] = x1 * c - x0 * s;
  }
}

// ------------------------------------------------------------------------------------------
// FFN elementwise steps
// ------------------------------------------------------------------------------------------
__global__ void swiglu_act_kernel(float* act, const float* h1, const float* h3, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) act[i] = num::silu(h1[i]) * h3[i];
}

__global__ void swiglu_grad_kernel(float* dh1, float* dh3, const float* dact, const float* h1, const float* h3,
                                   int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  dh1[i] = (dact[i] * h3[i]) * num::silu_grad(h1[i]);
  dh3[i] = dact[i] * num::silu(h1[i]);
}

__global__ void gelu_kernel(float* act, const float* h, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) act[i] = num::gelu(h[i]);
}

// ref::gelu_grad (gpt_layers.cpp) is host-only code; this is the same composition, line for line.
__device__ float gelu_grad(float x) {
  constexpr float kC1 = 0x1.6e4e26p-5f;
  constexpr float kTwoC0 = 0x1.988454p+0f;
  constexpr float kThreeC1 = 3.0f * kC1;
  const float x2 = x * x;
  const float a = kTwoC0 * (x + kC1 * (x2 * x));
  const float sp = num::sigmoid(a), sm = num::sigmoid(-a);
  return sp + (x * (sp * sm)) * (kTwoC0 * (1.0f + kThreeC1 * x2));
}

__global__ void gelu_backward_kernel(float* dh, const float* h, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dh[i] = dh[i] * gelu_grad(h[i]);
}

// ------------------------------------------------------------------------------------------
// Attention (attention.cpp): one thread per (h, t) row for the softmax and dS; one thread per
// output element for o, dq, dk, dv.
// ------------------------------------------------------------------------------------------
__global__ void attention_softmax_kernel(float* p, float* th, const float* q, const float* k, const int64_t* s0v,
                                         float scale, float cap, int64_t T, int64_t H, int64_t G, int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= H * T) return;
  const int64_t h = j / T, t = j % T, R = H / G, g = h / R, s0 = s0v[t], n = t - s0 + 1;
  float* l = p + (h * T + t) * T + s0;  // (n) logits, then probabilities in place
  for (int64_t s = s0; s <= t; ++s) {
    const float r = num::dot_k128_strided(q + (t * H + h) * Dh, 1, k + (s * G + g) * Dh, 1, Dh) * scale;
    if (cap > 0.0f) {
      const float tv = num::tanh(r / cap);
      th[(h * T + t) * T + s] = tv;
      l[s - s0] = cap * tv;
    } else {
      l[s - s0] = r;
    }
  }
  const float mx = num::row_max(l, n);
  for (int64_t i = 0; i < n; ++i) l[i] = num::exp(l[i] - mx);
  const float z = num::row_sum(l, n);
  for (int64_t i = 0; i < n; ++i) l[i] = l[i] / z;
}

__global__ void attention_pv_kernel(float* o, const float* p, const float* v, const int64_t* s0v, int64_t T,
                                    int64_t H, int64_t G, int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= T * H * Dh) return;
  const int64_t t = j / (H * Dh), h = (j / Dh) % H, e = j % Dh, g = h / (H / G), s0 = s0v[t];
  o[j] = num::dot_k128_strided(p + (h * T + t) * T + s0, 1, v + (s0 * G + g) * Dh + e, G * Dh, t - s0 + 1);
}

__global__ void attention_ds_kernel(float* dS, const float* dO, const float* v, const float* p, const float* th,
                                    const int64_t* s0v, float scale, float cap, int64_t T, int64_t H, int64_t G,
                                    int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= H * T) return;
  const int64_t h = j / T, t = j % T, g = h / (H / G), s0 = s0v[t], n = t - s0 + 1;
  float* dp = dS + (h * T + t) * T + s0;  // (n) dp first, then dS in place
  for (int64_t s = s0; s <= t; ++s)
    dp[s - s0] = num::dot_k128_strided(dO + (t * H + h) * Dh, 1, v + (s * G + g) * Dh, 1, Dh);
  const float* pr = p + (h * T + t) * T + s0;
  const float delta = num::row_dot(pr, dp, n);
  for (int64_t i = 0; i < n; ++i) {
    float dl = pr[i] * (dp[i] - delta);
    if (cap > 0.0f) {
      const float tv = th[(h * T + t) * T + s0 + i];
      dl = dl * (1.0f - tv * tv);
    }
    dp[i] = dl * scale;
  }
}

__global__ void attention_qkv_kernel(float* dq, float* dkh, float* dvh, const float* dS, const float* p,
                                     const float* dO, const float* q, const float* k, const int64_t* s0v,
                                     const int64_t* t1v, int64_t T, int64_t H, int64_t G, int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= T * H * Dh) return;
  const int64_t t = j / (H * Dh), h = (j / Dh) % H, i = j % Dh, g = h / (H / G), s0 = s0v[t];
  const int64_t HD = H * Dh, GD = G * Dh;
  dq[j] = num::dot_k128_strided(dS + (h * T + t) * T + s0, 1, k + (s0 * G + g) * Dh + i, GD, t - s0 + 1);
  const int64_t s = t, m = t1v[s] - s + 1;  // as a key/value position: queries u in [s, t1(s)]
  dkh[j] = num::dot_k128_strided(dS + (h * T + s) * T + s, T, q + (s * H + h) * Dh + i, HD, m);
  dvh[j] = num::dot_k128_strided(p + (h * T + s) * T + s, T, dO + (s * H + h) * Dh + i, HD, m);
}

__global__ void attention_group_sum_kernel(float* dk, float* dv, const float* dkh, const float* dvh, int64_t T,
                                           int64_t H, int64_t G, int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= T * G * Dh) return;
  const int64_t s = j / (G * Dh), g = (j / Dh) % G, i = j % Dh, R = H / G;
  float ak = 0.0f, av = 0.0f;
  for (int64_t h = g * R; h < (g + 1) * R; ++h) {
    ak = ak + dkh[(s * H + h) * Dh + i];
    av = av + dvh[(s * H + h) * Dh + i];
  }
  dk[j] = ak, dv[j] = av;
}

__global__ void gate_forward_kernel(float* gate, float* o, const float* a, const float* o_pre, int64_t TH, int64_t Dh) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= TH * Dh) return;
  const float gv = num::sigmoid(a[j / Dh]);
  if (j % Dh == 0) gate[j / Dh] = gv;
  o[j] = o_pre[j] * gv;
}

__global__ void gate_backward_kernel(float* dA, float* dO, const float* o_pre, const float* gate, const float* a,
                                     int64_t TH, int64_t Dh) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= TH) return;
  const float dgate = num::dot_k128_strided(dO + i * Dh, 1, o_pre + i * Dh, 1, Dh);
  dA[i] = dgate * (gate[i] * num::sigmoid(-a[i]));
  for (int64_t e = 0; e < Dh; ++e) dO[i * Dh + e] = dO[i * Dh + e] * gate[i];
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Launchers
// ------------------------------------------------------------------------------------------
#define PF_LAUNCH(kernel, n, ...)                                        \
  do {                                                                   \
    if ((n) > 0) {                                                       \
      kernel<<<blocks_for(n), kThreads>>>(__VA_ARGS__);                  \
      check_launch(#kernel);                                             \
    }                                                                    \
  } while (0)

void gemm_nt(float* c, int64_t ldc, const float* a, int64_t a_row, int64_t a_col, const float* b, int64_t b_row,
             int64_t b_col, const float* bias, bool accumulate, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(M >= 0 && N >= 0 && K >= 0, "cuda gemm: negative shape M=", M, " N=", N, " K=", K);
  PREFLIGHT_CHECK(ldc >= N, "cuda gemm: ldc=", ldc, " < N=", N);
  if (M == 0 || N == 0) return;
  const dim3 grid(static_cast<unsigned>((N + kTile - 1) / kTile), static_cast<unsigned>((M + kTile - 1) / kTile));
  const dim3 block(kTile, kTile);
  gemm_nt_kernel<<<grid, block>>>(c, ldc, a, a_row, a_col, b, b_row, b_col, bias, accumulate, M, N, K);
  check_launch("gemm_nt_kernel");
}

void column_dot_accumulate(float* out, const float* a, int64_t a_elem, int64_t a_step, const float* b,
                           int64_t b_elem, int64_t b_step, int64_t n, int64_t count) {
  PF_LAUNCH(column_dot_kernel, count, out, a, a_elem, a_step, b, b_elem, b_step, n, count);
}

void round_bf16(float* y, const float* x, int64_t n) { PF_LAUNCH(round_bf16_kernel, n, y, x, n); }

void transpose(float* y, const float* x, int64_t R, int64_t K) { PF_LAUNCH(transpose_kernel, R * K, y, x, R, K); }

void fp8_quantize(std::uint8_t* q, float* scale, const float* x, int64_t R, int64_t K, int64_t tile_rows,
                  bool ue8m0) {
  PREFLIGHT_CHECK(tile_rows == 1 || tile_rows == 128, "cuda fp8_quantize: tile_rows = ", tile_rows,
                  ", expected 1 or 128");
  const int64_t groups = ((R + tile_rows - 1) / tile_rows) * ((K + 127) / 128);
  PF_LAUNCH(fp8_scale_kernel, groups, scale, x, R, K, tile_rows, ue8m0);
  PF_LAUNCH(fp8_encode_kernel, R * K, q, scale, x, R, K, tile_rows);
}

void fp8_gemm_nt(float* out, int64_t ldo, const Fp8Operand& a, const Fp8Operand& b, const float* bias,
                 bool accumulate, int64_t M, int64_t N, int64_t K) {
  PF_LAUNCH(fp8_gemm_kernel, M * N, out, ldo, a, b, bias, accumulate, M, N, K);
}

void embedding_forward(float* out, const std::int32_t* tokens, const float* table, int64_t T, int64_t C) {
  PF_LAUNCH(embedding_forward_kernel, T * C, out, tokens, table, T, C);
}
void embedding_backward(float* dtable, const float* dout, const std::int32_t* tokens, int64_t T, int64_t C) {
  PF_LAUNCH(embedding_backward_kernel, C, dtable, dout, tokens, T, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, int64_t T, int64_t C) {
  PF_LAUNCH(rmsnorm_forward_kernel, T, out, rstd, x, w, eps, T, C);
}
void rmsnorm_backward_dx(float* dx, float* g, const float* dout, const float* x, const float* w, const float* rstd,
                         int64_t T, int64_t C) {
  PF_LAUNCH(rmsnorm_backward_dx_kernel, T, dx, g, dout, x, w, rstd, T, C);
}
void scale_rows(float* xn, const float* x, const float* rstd, int64_t T, int64_t C) {
  PF_LAUNCH(scale_rows_kernel, T * C, xn, x, rstd, T, C);
}

void layernorm_forward(float* out, float* mean, float* rstd, float* dev, const float* x, const float* w,
                       const float* b, float eps, int64_t T, int64_t C) {
  PF_LAUNCH(layernorm_forward_kernel, T, out, mean, rstd, dev, x, w, b, eps, T, C);
}
void layernorm_xhat(float* xh, const float* x, const float* mean, const float* rstd, int64_t T, int64_t C) {
  PF_LAUNCH(layernorm_xhat_kernel, T * C, xh, x, mean, rstd, T, C);
}
void layernorm_backward_dx(float* dx, float* g, const float* dout, const float* xh, const float* w,
                           const float* rstd, int64_t T, int64_t C) {
  PF_LAUNCH(layernorm_backward_dx_kernel, T, dx, g, dout, xh, w, rstd, T, C);
}

void rope(float* x, const std::int32_t* pos, const float* cosv, const float* sinv, int64_t D, int64_t T, int64_t NH,
          int64_t row, int64_t head, bool interleaved, bool backward) {
  PF_LAUNCH(rope_kernel, T * NH * (D / 2), x, pos, cosv, sinv, D, T, NH, row, head, interleaved, backward);
}

void swiglu_act(float* act, const float* h1, const float* h3, int64_t n) {
  PF_LAUNCH(swiglu_act_kernel, n, act, h1, h3, n);
}
void swiglu_grad(float* dh1, float* dh3, const float* dact, const float* h1, const float* h3, int64_t n) {
  PF_LAUNCH(swiglu_grad_kernel, n, dh1, dh3, dact, h1, h3, n);
}
void gelu(float* act, const float* h, int64_t n) { PF_LAUNCH(gelu_kernel, n, act, h, n); }
void gelu_backward(float* dh, const float* h, int64_t n) { PF_LAUNCH(gelu_backward_kernel, n, dh, h, n); }

void attention_forward(float* p, float* th, float* o, const float* q, const float* k, const float* v,
                       const int64_t* s0, float scale, float cap, int64_t T, int64_t H, int64_t G, int64_t Dh) {
  PF_LAUNCH(attention_softmax_kernel, H * T, p, th, q, k, s0, scale, cap, T, H, G, Dh);
  PF_LAUNCH(attention_pv_kernel, T * H * Dh, o, p, v, s0, T, H, G, Dh);
}
void attention_backward_ds(float* dS, const float* dO, const float* v, const float* p, const float* th,
                           const int64_t* s0, float scale, float cap, int64_t T, int64_t H, int64_t G, int64_t Dh) {
  PF_LAUNCH(attention_ds_kernel, H * T, dS, dO, v, p, th, s0, scale, cap, T, H, G, Dh);
}
void attention_backward_qkv(float* dq, float* dkh, float* dvh, const float* dS, const float* p, const float* dO,
                            const float* q, const float* k, const int64_t* s0, const int64_t* t1, int64_t T,
                            int64_t H, int64_t G, int64_t Dh) {
  PF_LAUNCH(attention_qkv_kernel, T * H * Dh, dq, dkh, dvh, dS, p, dO, q, k, s0, t1, T, H, G, Dh);
}
void attention_group_sum(float* dk, float* dv, const float* dkh, const float* dvh, int64_t T, int64_t H, int64_t G,
                         int64_t Dh) {
  PF_LAUNCH(attention_group_sum_kernel, T * G * Dh, dk, dv, dkh, dvh, T, H, G, Dh);
}
void gate_forward(float* gate, float* o, const float* a, const float* o_pre, int64_t TH, int64_t Dh) {
  PF_LAUNCH(gate_forward_kernel, TH * Dh, gate, o, a, o_pre, TH, Dh);
}
void gate_backward(float* dA, float* dO, const float* o_pre, const float* gate, const float* a, int64_t TH,
                   int64_t Dh) {
  PF_LAUNCH(gate_backward_kernel, TH, dA, dO, o_pre, gate, a, TH, Dh);
}

}  // namespace preflight::cuda::dev
