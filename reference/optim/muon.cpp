#include "reference/optim/muon.hpp"

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/layers/gemm_kernel.hpp"
#include "reference/numerics/bf16.hpp"
#include "reference/numerics/hd.hpp"
#include "reference/numerics/reduce.hpp"

namespace preflight::optim {

// Elementwise loops split over OpenMP threads only above this size (a parallel region costs
// more than a small tensor); elements are independent, so the split never changes a bit.
constexpr int64_t kParallelMin = 1 << 16;

namespace {

// Identity in fp32 mode, RNE bf16 round trip in bf16 mode.
struct Rounder {
  bool bf16;
  float operator()(float x) const { return bf16 ? num::round_to_bf16(x) : x; }
};

void round_all(float* x, int64_t n, Rounder rnd) {
  if (!rnd.bf16) return;
  for (int64_t i = 0; i < n; ++i) x[i] = rnd(x[i]);
}

}  // namespace

void newton_schulz(float* out, const float* g, int64_t R, int64_t C, NsPrecision precision, int steps,
                   std::vector<float>& work) {
  PREFLIGHT_CHECK(out && g && out != g, "newton_schulz: null or aliased buffers");
  PREFLIGHT_CHECK(R > 0 && C > 0 && steps >= 0, "newton_schulz: shape (", R, ", ", C, "), steps ", steps);
  const Rounder rnd{precision == NsPrecision::bf16};
  const bool transpose = R > C;
  const int64_t r = transpose ? C : R;
  const int64_t c = transpose ? R : C;
  work.resize(static_cast<size_t>(2 * r * c + 3 * r * r));
  float* X = work.data();      // (r,c)
  float* BX = X + r * c;       // (r,c)
  float* A = BX + r * c;       // (r,r)
  float* AA = A + r * r;       // (r,r)
  float* B = AA + r * r;       // (r,r)

  const float s = num::dot_k128(g, g, R * C);
  const float den = num::sqrt(s) + 1e-7f;
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) {
      const float x = rnd(g[i * C + j] / den);
      if (transpose) X[j * c + i] = x;
      else X[i * c + j] = x;
    }

  using ref::GemmStore;
  for (int it = 0; it < steps; ++it) {
    // A (r,r) = X·Xᵀ: A element (m,n) = dot(X[m,:], X[n,:]).
    ref::gemm_nt_k128(A, r, X, c, 1, X, c, 1, nullptr, GemmStore::overwrite, r, r, c);
    round_all(A, r * r, rnd);
    // AA (r,r) = A·Aᵀ.
    ref::gemm_nt_k128(AA, r, A, r, 1, A, r, 1, nullptr, GemmStore::overwrite, r, r, r);
    round_all(AA, r * r, rnd);
    for (int64_t i = 0; i < r * r; ++i) B[i] = rnd(rnd(kNsB * A[i]) + rnd(kNsC * AA[i]));
    // BX (r,c) = B·X: B-operand element (n,k) = X[k][n] -> b_row = 1, b_col = c.
    ref::gemm_nt_k128(BX, c, B, r, 1, X, 1, c, nullptr, GemmStore::overwrite, r, c, r);
    round_all(BX, r * c, rnd);
    for (int64_t i = 0; i < r * c; ++i) X[i] = rnd(rnd(kNsA * X[i]) + BX[i]);
  }
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) out[i * C + j] = transpose ? X[j * c + i] : X[i * c + j];
}

float muon_step_size(const MuonConfig& cfg, float lr, int64_t R, int64_t C) {
  const double rd = static_cast<double>(R), cd = static_cast<double>(C);
  double scale = 1.0;
  if (cfg.scale == MuonScale::match_adamw_rms) scale = cfg.rms_match * std::sqrt(rd > cd ? rd : cd);
  else scale = std::sqrt(rd / cd > 1.0 ? rd / cd : 1.0);
  return static_cast<float>(static_cast<double>(lr) * scale);
}

void muon_step(float* p, const float* g, float* buf, int64_t R, int64_t C, const MuonConfig& cfg, float lr,
               bool decay, std::vector<float>& work) {
  const int64_t n = R * C;
  const float mu = static_cast<float>(cfg.momentum);
  const float one_minus_mu = static_cast<float>(1.0 - cfg.momentum);
  std::vector<float> u(static_cast<size_t>(n)), o(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (cfg.momentum_kind == MuonMomentum::sgd) {
      buf[i] = mu * buf[i] + g[i];
      u[i] = cfg.nesterov ? g[i] + mu * buf[i] : buf[i];
    } else {
      buf[i] = mu * buf[i] + one_minus_mu * g[i];
      u[i] = cfg.nesterov ? one_minus_mu * g[i] + mu * buf[i] : buf[i];
    }
  }
  newton_schulz(o.data(), u.data(), R, C, cfg.ns_precision, cfg.ns_steps, work);
  const float step = muon_step_size(cfg, lr, R, C);
  const float dec = decay ? static_cast<float>(1.0 - static_cast<double>(lr) * cfg.weight_decay) : 1.0f;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float q = p[i] * dec;
    p[i] = q - step * o[i];
  }
}

}  // namespace preflight::optim
