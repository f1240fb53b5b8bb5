// Muon for 2-D hidden matrices (docs/OPTIMIZERS.md §3), in the numerics contract.
//
// Legend: R = rows (out), C = cols (in) of the stored matrix; r = min(R,C), c = max(R,C).
//
// Newton-Schulz, 5 steps, (a, b, c) = (3.4445, −4.7750, 2.0315) as floats:
//   s   = dot_k128(G, G, R·C) over the matrix in its STORED row-major order (one chain)
//   nrm = sqrt(s);  den = nrm + float(1e-7)
//   X   = G / den elementwise (one division each), transposed (exact copy) when R > C: X (r,c)
//   repeat 5×:
//     A  = X·Xᵀ          (r,r)  project GEMM (gemm_nt_k128, every element a dot_k128 over c)
//     AA = A·Aᵀ (= A·A, A is bitwise symmetric)   (r,r)  dot_k128 over r
//     B  = b·A + c·AA     elementwise: two products, one add
//     BX = B·X            (r,c)  dot_k128 over r
//     X  = a·X + BX       elementwise: one product, one add
//   O = X, transposed back when R > C.
// NsPrecision::bf16 (the reference implementation's choice) rounds RNE to bf16 the normalised X
// and the result of EVERY step above (A, AA, b·A, c·AA, B, BX, a·X, X) — the semantics of bf16
// tensors whose matmuls accumulate in fp32. NsPrecision::fp32 rounds nothing extra.
//
// Momentum (buf fp32, zero at start), u = the matrix fed to Newton-Schulz:
//   sgd (Moonlight, torch.optim.Muon):  buf = μ·buf + g;   u = nesterov ? g + μ·buf : buf
//   ema (Keller Jordan's original):     buf = μ·buf + (1−μ)·g;  u = nesterov ? (1−μ)·g + μ·buf : buf
//   (each product rounded, then the add; μ and 1−μ as floats rounded from double).
// Update (decay = float(1 − lr·wd) with the UNADJUSTED lr, step = float(lr·scale) in double):
//   match_adamw_rms (default, Moonlight): scale = 0.2·√max(R,C)
//   original (Keller Jordan):             scale = √max(1, R/C)
//   p = p·decay;  p = p − step·O
#pragma once

#include <cstdint>
#include <vector>

namespace preflight::optim {

inline constexpr float kNsA = 3.4445f;
inline constexpr float kNsB = -4.7750f;
inline constexpr float kNsC = 2.0315f;
inline constexpr int kNsSteps = 5;

enum class NsPrecision { fp32, bf16 };
enum class MuonMomentum { sgd, ema };
enum class MuonScale { match_adamw_rms, original };

struct MuonConfig {
  double momentum = 0.95;
  MuonMomentum momentum_kind = MuonMomentum::sgd;
  bool nesterov = true;
  MuonScale scale = MuonScale::match_adamw_rms;
  double rms_match = 0.2;  // Moonlight's constant
  double weight_decay = 0.1;
  NsPrecision ns_precision = NsPrecision::fp32;
  int ns_steps = kNsSteps;
};

// O (R,C) = Newton-Schulz orthogonalisation of G (R,C) as above. work must hold
// 2·r·c + 3·r·r floats (it is resized). out may not alias g.
void newton_schulz(float* out, const float* g, int64_t R, int64_t C, NsPrecision precision, int steps,
                   std::vector<float>& work);

// The multiplier of lr for a matrix of R rows and C cols: float(lr · scale) computed in double.
float muon_step_size(const MuonConfig& cfg, float lr, int64_t R, int64_t C);

// One Muon step on one matrix: p (R,C), g (R,C), buf (R,C) momentum; decay on/off.
void muon_step(float* p, const float* g, float* buf, int64_t R, int64_t C, const MuonConfig& cfg, float lr,
               bool decay, std::vector<float>& work);

}  // namespace preflight::optim
