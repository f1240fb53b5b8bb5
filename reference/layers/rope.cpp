// RoPE tables and interleaved rotation. Legend: T = tokens, D = rotary width.
#include "reference/layers/rope.hpp"

#include <algorithm>
#include <cmath>

#include "reference/core/error.hpp"

namespace preflight::ref {

RopeTable rope_table(const ModelConfig& config, int64_t dim, int64_t positions) {
  PREFLIGHT_CHECK(dim > 0 && dim % 2 == 0, "rope_table: rotary dim = ", dim, ", expected even > 0");
  const RopeScaling& rs = config.rope_scaling;
  const double theta = config.rope_theta, pi = 3.14159265358979323846;
  const int64_t half = dim / 2;
  std::vector<double> freq(half);
  for (int64_t i = 0; i < half; ++i) freq[i] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  RopeTable table;
  double amp = 1.0;  // multiplies cos and sin (HF's yarn _mscale ratio)
  if (rs.type == RopeScalingKind::yarn && rs.factor > 1.0) {
    const double orig = double(rs.original_max_position_embeddings);
    auto corr = [&](double b) { return dim * std::log(orig / (b * 2 * pi)) / (2 * std::log(theta)); };
    const double low = std::max(std::floor(corr(rs.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr(rs.beta_slow)), double(dim - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      const double smooth = 1.0 - ramp;
      freq[i] = freq[i] / rs.factor * (1.0 - smooth) + freq[i] * smooth;
    }
    auto yarn_mscale = [&](double m) { return 0.1 * m * std::log(rs.factor) + 1.0; };
    table.attention_mscale = yarn_mscale(rs.mscale_all_dim != 0.0 ? rs.mscale_all_dim : rs.mscale);
    if (rs.mscale_all_dim != 0.0) amp = yarn_mscale(rs.mscale) / yarn_mscale(rs.mscale_all_dim);
  } else if (rs.type == RopeScalingKind::llama3) {
    const double orig = double(rs.original_max_position_embeddings);
    const double low_wl = orig / rs.low_freq_factor, high_wl = orig / rs.high_freq_factor;
    for (int64_t i = 0; i < half; ++i) {
      const double wl = 2 * pi / freq[i];
      if (wl < high_wl) continue;
      if (wl > low_wl) {
        freq[i] = freq[i] / rs.factor;
      } else {
        const double s = (orig / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        freq[i] = (1.0 - s) * freq[i] / rs.factor + s * freq[i];
      }
    }
  }
  table.positions = positions;
  table.dim = dim;
  table.cos.resize(positions * half);
  table.sin.resize(positions * half);
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      table.cos[p * half + i] = float(amp * std::cos(double(p) * freq[i]));
      table.sin[p * half + i] = float(amp * std::sin(double(p) * freq[i]));
    }
  return table;
}

static void check_pos(const int32_t* pos, const RopeTable& table, int64_t T) {
  for (int64_t t = 0; t < T; ++t)
    PREFLIGHT_CHECK(pos[t] >= 0 && pos[t] < table.positions, "rope: pos[", t, "] = ", pos[t],
                    ", expected in [0, ", table.positions, ")");
}

namespace {

// Rotates each pair (a, b) of every vector by +angle (forward) or −angle (backward, the
// transpose). Pair i is (2i, 2i+1) interleaved or (i, i + D/2) half.
void rope_rotate(float* x, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                 int64_t head, RopeLayout layout, bool backward) {
  check_pos(pos, table, T);
  const int64_t half = table.dim / 2;
  const int64_t stride = layout == RopeLayout::interleaved ? 2 : 1;  // index of a in pair i = stride·i
  const int64_t offset = layout == RopeLayout::interleaved ? 1 : half;  // b = a + offset
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < NH; ++h) {
      float* v = x + t * row + h * head;  // (D)
      const float* c = &table.cos[pos[t] * half];
      const float* s = &table.sin[pos[t] * half];
      for (int64_t i = 0; i < half; ++i) {
        float& a = v[stride * i];
        float& b = v[stride * i + offset];
        const float x0 = a, x1 = b;
        if (!backward) {
          a = x0 * c[i] - x1 * s[i];
          b = x0 * s[i] + x1 * c[i];
        } else {
          a = x0 * c[i] + x1 * s[i];
          b = x1 * c[i] - x0 * s[i];
        }
      }
    }
}

}  // namespace

void rope_forward(float* x, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                  int64_t head, RopeLayout layout) {
  rope_rotate(x, pos, table, T, NH, row, head, layout, false);
}

void rope_backward(float* dx, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                   int64_t head, RopeLayout layout) {
  rope_rotate(dx, pos, table, T, NH, row, head, layout, true);
}

void rope_forward(float* x, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                  int64_t head) {
  rope_rotate(x, pos, table, T, NH, row, head, RopeLayout::interleaved, false);
}

void rope_backward(float* dx, const int32_t* pos, const RopeTable& table, int64_t T, int64_t NH, int64_t row,
                   int64_t head) {
  rope_rotate(dx, pos, table, T, NH, row, head, RopeLayout::interleaved, true);
}

}  // namespace preflight::ref
