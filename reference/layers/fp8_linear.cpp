// Linear layers in fp32 / bf16 / FP8 operand precision (see fp8_linear.hpp for the exact
// definitions). Legend: M = rows (tokens), K = input features, N = output features.
#include "reference/layers/fp8_linear.hpp"

#include <algorithm>
#include <cstring>

#include "reference/core/error.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/prims.hpp"
#include "reference/numerics/bf16.hpp"

namespace preflight::ref {

const char* to_string(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::bf16: return "bf16";
    case Precision::fp8: return "fp8";
  }
  return "?";
}

Precision precision_from_string(const char* name) {
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp8})
    if (std::strcmp(name, to_string(p)) == 0) return p;
  fail("precision '", name, "': expected fp32, bf16 or fp8");
}

void fp8_quantize(Fp8Matrix& out, const float* x, int64_t row_stride, int64_t col_stride, int64_t R,
                  int64_t K, int64_t tile_rows, bool ue8m0) {
  PREFLIGHT_CHECK(tile_rows == 1 || tile_rows == kFp8Tile, "fp8_quantize: tile_rows = ", tile_rows,
                  ", expected 1 or 128");
  PREFLIGHT_CHECK(R >= 0 && K >= 0, "fp8_quantize: shape (", R, ",", K, ")");
  // A strided (e.g. transposed) source is first copied into a row-major (R,K) buffer in
  // 64×64 blocks (a pure copy: the values and therefore the result are unchanged).
  std::vector<float> dense;
  if (col_stride != 1 || row_stride != K) {
    dense.resize(R * K);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t r0 = 0; r0 < R; r0 += 64)
      for (int64_t k0 = 0; k0 < K; k0 += 64)
        for (int64_t k = k0; k < std::min(K, k0 + 64); ++k)
          for (int64_t r = r0; r < std::min(R, r0 + 64); ++r) dense[r * K + k] = x[r * row_stride + k * col_stride];
    x = dense.data();
  }
  out.rows = R, out.cols = K, out.tile_rows = tile_rows;
  const int64_t Kb = out.col_blocks(), Rb = (R + tile_rows - 1) / tile_rows;
  out.q.assign(R * K, num::fp8_e4m3{0});
  out.scale.assign(Rb * Kb, 0.0f);
#pragma omp parallel
  {
    std::vector<float> g(tile_rows * kFp8Tile);  // one group's valid elements
#pragma omp for collapse(2) schedule(static)
    for (int64_t rb = 0; rb < Rb; ++rb)
      for (int64_t cb = 0; cb < Kb; ++cb) {
        const int64_t r0 = rb * tile_rows, r1 = std::min(R, r0 + tile_rows);
        const int64_t c0 = cb * kFp8Tile, c1 = std::min(K, c0 + kFp8Tile);
        int64_t n = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) g[n++] = x[r * K + c];
        const float amax = num::abs_max(g.data(), n);
        const float s = ue8m0 ? num::fp8_e4m3_scale_pow2(amax) : num::fp8_e4m3_scale(amax);
        out.scale[rb * Kb + cb] = s;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) out.q[r * K + c] = num::quantize_e4m3(x[r * K + c], s);
      }
  }
}

Fp8Matrix fp8_transpose_blocks(const Fp8Matrix& w) {
  PREFLIGHT_CHECK(w.tile_rows == kFp8Tile, "fp8_transpose_blocks: tile_rows = ", w.tile_rows,
                  ", expected 128 (only 128x128 blocks transpose without re-quantisation)");
  Fp8Matrix t;
  t.rows = w.cols, t.cols = w.rows, t.tile_rows = kFp8Tile;
  t.q.resize(w.q.size());
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < w.cols; c0 += 64)
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t c = c0; c < std::min(w.cols, c0 + 64); ++c) t.q[c * w.rows + r] = w.q[r * w.cols + c];
  const int64_t Rb = (w.rows + kFp8Tile - 1) / kFp8Tile, Cb = w.col_blocks();
  t.scale.resize(w.scale.size());
  for (int64_t rb = 0; rb < Rb; ++rb)
    for (int64_t cb = 0; cb < Cb; ++cb) t.scale[cb * Rb + rb] = w.scale[rb * Cb + cb];
  return t;
}

void fp8_gemm_nt(float* out, int64_t ldo, const Fp8Matrix& a, const Fp8Matrix& b, const float* bias,
                 GemmStore store) {
  PREFLIGHT_CHECK(a.cols == b.cols, "fp8_gemm_nt: a is (", a.rows, ",", a.cols, "), b is (", b.rows, ",",
                  b.cols, "): expected the same K");
  const int64_t M = a.rows, N = b.rows, K = a.cols;
  PREFLIGHT_CHECK(ldo >= N, "fp8_gemm_nt: ldo = ", ldo, " < N = ", N);
  if (M == 0 || N == 0) return;
  // Decoding is exact, so the block partials below are the contract's fma chains over the
  // exact fp8 products; the canonical GEMM kernel computes each (one K block: 0 + chain).
  float lut[256];  // every E4M3 code decoded
  for (int c = 0; c < 256; ++c) lut[c] = num::to_float(num::fp8_e4m3{uint8_t(c)});
  std::vector<float> af(M * K), bf(N * K);  // (M,K), (N,K) decoded codes
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M * K; ++i) af[i] = lut[a.q[i].bits];
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N * K; ++i) bf[i] = lut[b.q[i].bits];
  std::vector<float> acc(M * N, 0.0f), part(M * N), sb(N);  // (M,N), (M,N), (N); acc from +0
  for (int64_t k0 = 0, kb = 0; k0 < K; k0 += kFp8Tile, ++kb) {
    const int64_t kc = std::min(kFp8Tile, K - k0);
    gemm_nt_k128(part.data(), N, af.data() + k0, K, 1, bf.data() + k0, K, 1, nullptr, GemmStore::overwrite,
                 M, N, kc);
    for (int64_t n = 0; n < N; ++n) sb[n] = b.scale_at(n, kb);
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float sa = a.scale_at(m, kb);
      float* accr = &acc[m * N];
      const float* pr = &part[m * N];
      for (int64_t n = 0; n < N; ++n) accr[n] = px::fma(pr[n], sa * sb[n], accr[n]);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float d = acc[m * N + n];
      if (bias) d = d + bias[n];
      float& o = out[m * ldo + n];
      o = num::canonicalize(store == GemmStore::accumulate ? o + d : d);
    }
}

namespace {

std::vector<float> rounded_bf16(const float* x, int64_t n) {
  std::vector<float> r(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) r[i] = num::round_to_bf16(x[i]);
  return r;
}

void check_linear(const float* x, const float* w, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(x && w, "linear: null tensor (x or w)");
  PREFLIGHT_CHECK(M >= 0 && N > 0 && K > 0, "linear: shape M=", M, " N=", N, " K=", K);
}

}  // namespace

void linear_forward(float* out, const float* x, const float* w, const float* bias, int64_t M, int64_t N,
                    int64_t K, const LinearPrecision& p) {
  check_linear(x, w, M, N, K);
  switch (p.kind) {
    case Precision::fp32:
      matmul_forward(out, x, w, bias, M, N, K);
      return;
    case Precision::bf16: {
      const auto xr = rounded_bf16(x, M * K), wr = rounded_bf16(w, N * K);
      matmul_forward(out, xr.data(), wr.data(), bias, M, N, K);
      return;
    }
    case Precision::fp8: {
      Fp8Matrix xq, wq;
      fp8_quantize(xq, x, K, 1, M, K, 1, p.ue8m0_scales);          // 1×128 tiles along K
      fp8_quantize(wq, w, K, 1, N, K, kFp8Tile, p.ue8m0_scales);   // 128×128 blocks
      fp8_gemm_nt(out, N, xq, wq, bias, GemmStore::overwrite);
      return;
    }
  }
}

void linear_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                     int64_t M, int64_t N, int64_t K, const LinearPrecision& p) {
  check_linear(x, w, M, N, K);
  PREFLIGHT_CHECK(dout, "linear_backward: null dout");
  if (p.kind == Precision::fp32) {
    matmul_backward(dx, dw, dbias, dout, x, w, M, N, K);
    return;
  }
  if (dbias) matmul_backward(nullptr, nullptr, dbias, dout, x, w, M, N, K);  // fp32 dy
  if (!dx && !dw) return;
  if (p.kind == Precision::bf16) {
    const auto dyr = rounded_bf16(dout, M * N);
    const auto wr = dx ? rounded_bf16(w, N * K) : std::vector<float>{};
    const auto xr = dw ? rounded_bf16(x, M * K) : std::vector<float>{};
    if (dx) matmul_backward(dx, nullptr, nullptr, dyr.data(), x, wr.data(), M, N, K);
    if (dw) matmul_backward(nullptr, dw, nullptr, dyr.data(), xr.data(), w, M, N, K);
    return;
  }
  if (dx) {  // dgrad: dy 1×128 along N, W's forward blocks transposed to (K,N)
    Fp8Matrix dyq, wq;
    fp8_quantize(dyq, dout, N, 1, M, N, 1, p.ue8m0_scales);
    fp8_quantize(wq, w, K, 1, N, K, kFp8Tile, p.ue8m0_scales);
    fp8_gemm_nt(dx, K, dyq, fp8_transpose_blocks(wq), nullptr, GemmStore::accumulate);
  }
  if (dw) {  // wgrad: dyᵀ (N,M) and xᵀ (K,M), both 1×128 along M (128 tokens per tile)
    Fp8Matrix dyt, xt;
    fp8_quantize(dyt, dout, 1, N, N, M, 1, p.ue8m0_scales);
    fp8_quantize(xt, x, 1, K, K, M, 1, p.ue8m0_scales);
    fp8_gemm_nt(dw, K, dyt, xt, nullptr, GemmStore::accumulate);
  }
}

}  // namespace preflight::ref
