// Blocked C = A·Bᵀ in the contract's dot-product order (see gemm_kernel.hpp).
//
// Structure (Goto-style, simplified): OpenMP over output tiles of MB×NB; inside a tile,
// for each 128-wide K block in ascending order, pack A (MR-row micro-panels) and B
// (NR-column micro-panels) k-major, run the MR×NR micro-kernel which keeps one fma
// chain per output element starting at +0, and add the block partial into the tile's
// running total (which itself started at +0). The epilogue adds the bias and stores.
#include "reference/layers/gemm_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PREFLIGHT_GEMM_AVX2 1
#endif

#include "reference/core/error.hpp"
#include "reference/numerics/hd.hpp"

namespace preflight::ref {
namespace {

constexpr int64_t MR = 6;     // micro-tile rows
constexpr int64_t NR = 16;    // micro-tile columns (two 8-lane vectors)
constexpr int64_t MB = 96;    // output tile rows per task (multiple of MR)
constexpr int64_t NB = 256;   // output tile columns per task (multiple of NR)
constexpr int64_t KC = kDotBlock;

// partial (MR,NR) of one K block, added into the tile total: tot[r][c] = tot[r][c] + p[r][c].
// ap: (kc, MR) k-major, bp: (kc, NR) k-major.
void micro_kernel(float* tot, int64_t ldt, const float* ap, const float* bp, int64_t kc) {
#ifdef PREFLIGHT_GEMM_AVX2
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();  // +0
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bp + k * NR);
    const __m256 b1 = _mm256_loadu_ps(bp + k * NR + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + k * MR + r);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* t = tot + r * ldt;
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_loadu_ps(t), acc[r][0]));
    _mm256_storeu_ps(t + 8, _mm256_add_ps(_mm256_loadu_ps(t + 8), acc[r][1]));
  }
#else
  float acc[MR][NR];
  for (auto& row : acc)
    for (float& v : row) v = 0.0f;  // +0
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c) acc[r][c] = std::fma(ap[k * MR + r], bp[k * NR + c], acc[r][c]);
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) tot[r * ldt + c] = tot[r * ldt + c] + acc[r][c];
#endif
}

}  // namespace

void gemm_nt_k128(float* c, int64_t ldc, const float* a, int64_t a_row, int64_t a_col,
                  const float* b, int64_t b_row, int64_t b_col, const float* bias,
                  GemmStore store, int64_t M, int64_t N, int64_t K) {
  PREFLIGHT_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative shape M=", M, " N=", N, " K=", K);
  PREFLIGHT_CHECK(ldc >= N, "gemm: ldc=", ldc, " < N=", N);
  if (M == 0 || N == 0) return;
  const int64_t mtiles = (M + MB - 1) / MB;
  const int64_t ntiles = (N + NB - 1) / NB;
  const int64_t ntasks = mtiles * ntiles;
#pragma omp parallel
  {
    std::vector<float> apack(MB * KC);  // (MB/MR) micro-panels of (KC,MR)
    std::vector<float> bpack(NB * KC);  // (NB/NR) micro-panels of (KC,NR)
    std::vector<float> tot(MB * NB);    // (MB,NB) running totals of this tile
#pragma omp for schedule(static)
    for (int64_t task = 0; task < ntasks; ++task) {
      const int64_t m0 = (task / ntiles) * MB, n0 = (task % ntiles) * NB;
      const int64_t mb = std::min(MB, M - m0), nb = std::min(NB, N - n0);
      const int64_t mpan = (mb + MR - 1) / MR, npan = (nb + NR - 1) / NR;
      std::fill(tot.begin(), tot.end(), 0.0f);  // +0 totals
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = std::min(KC, K - k0);
        for (int64_t p = 0; p < mpan; ++p)  // pack A: rows past mb are zero (never stored)
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t r = 0; r < MR; ++r) {
              const int64_t m = p * MR + r;
              apack[(p * KC + k) * MR + r] = m < mb ? a[(m0 + m) * a_row + (k0 + k) * a_col] : 0.0f;
            }
        for (int64_t p = 0; p < npan; ++p)  // pack B: columns past nb are zero (never stored)
          for (int64_t cc = 0; cc < NR; ++cc) {
            const int64_t n = p * NR + cc;
            float* dst = &bpack[p * KC * NR + cc];
            if (n < nb) {
              const float* src = b + (n0 + n) * b_row + k0 * b_col;
              for (int64_t k = 0; k < kc; ++k) dst[k * NR] = src[k * b_col];
            } else {
              for (int64_t k = 0; k < kc; ++k) dst[k * NR] = 0.0f;
            }
          }
        for (int64_t q = 0; q < npan; ++q)
          for (int64_t p = 0; p < mpan; ++p)
            micro_kernel(&tot[p * MR * NB + q * NR], NB, &apack[p * KC * MR], &bpack[q * KC * NR], kc);
      }
      for (int64_t m = 0; m < mb; ++m) {  // epilogue
        float* crow = c + (m0 + m) * ldc + n0;
        const float* trow = &tot[m * NB];
        for (int64_t n = 0; n < nb; ++n) {
          float d = trow[n];
          if (bias) d = d + bias[n0 + n];
          crow[n] = num::canonicalize(store == GemmStore::accumulate ? crow[n] + d : d);
        }
      }
    }
  }
}

}  // namespace preflight::ref
