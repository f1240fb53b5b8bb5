// Rotary position embedding with DeepSeek's INTERLEAVED pairs: element pairs (2i, 2i+1)
// are rotated by angle pos·freq_i (the complex-number view), not the two halves.
// Tables are computed once in double precision and rounded to float, so CPU and GPU
// share them bit for bit.
// Legend: T = tokens, P = table positions, D = rotary width (even), NH = rotated vectors per token.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/core/model_config.hpp"

namespace preflight::ref {

struct RopeTable {
  int64_t positions = 0, dim = 0;
  std::vector<float> cos, sin;  // (P, D/2) each
  double attention_mscale = 1.0;  // YaRN: multiply the softmax scale by this SQUARED
};

// freq_i = theta^(−2i/D) (double), adjusted by config.rope_scaling:
//   none:   unchanged.
//   yarn:   (DeepSeek-V3) low = max(⌊d(beta_fast)⌋, 0), high = min(⌈d(beta_slow)⌉, D−1) with
//           d(b) = D·ln(orig/(b·2π)) / (2·ln theta); ramp_i = clamp((i − low)/(high − low), 0, 1)
//           (high += 0.001 when equal); smooth = 1 − ramp; freq = freq/factor·(1 − smooth) + freq·smooth.
//           attention_mscale = 0.1·m·ln(factor) + 1 with m = mscale_all_dim if non-zero else mscale
//           (1 when factor ≤ 1); cos/sin are multiplied by
//           (0.1·mscale·ln f + 1)/(0.1·mscale_all_dim·ln f + 1) when mscale_all_dim ≠ 0 (HF form).
//   llama3: wavelength λ = 2π/freq; λ < orig/high_freq_factor: keep; λ > orig/low_freq_factor:
//           freq/factor; otherwise s = (orig/λ − low)/(high − low), freq = (1 − s)·freq/factor + s·freq.
// cos[p][i] = float(cos(p·freq_i)), sin likewise (double, rounded once).
RopeTable rope_table(const ModelConfig& config, int64_t dim, int64_t positions);

// Which elements form the rotated pairs (i = 0 .. D/2−1).
enum class RopeLayout {
  interleaved,  // (2i, 2i+1): DeepSeek
  half,         // (i, i + D/2): Hugging Face Llama "rotate_half"
};

// In place on x (T, NH, D) with row stride `row` floats between tokens and `head` between
// vectors of a token:  y0 = x0·c − x1·s,  y1 = x0·s + x1·c  (products rounded, then the sum).
// Without a layout argument: interleaved.
void rope_forward(float* x, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH,
                  int64_t row, int64_t head);
// The transpose (rotation by −angle), in place on dx:  d0 = g0·c + g1·s,  d1 = g1·c − g0·s.
void rope_backward(float* dx, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH,
                   int64_t row, int64_t head);
void rope_forward(float* x, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                  int64_t head, RopeLayout layout);
void rope_backward(float* dx, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                   int64_t head, RopeLayout layout);

}  // namespace preflight::ref
