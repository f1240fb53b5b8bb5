// Layers only the GPT-style presets use (gpt-*.json: norm = layernorm, hidden_act = gelu,
// position_embedding = learned, biases): LayerNorm with bias, the GELU MLP, learned absolute
// position embeddings.
// Legend: T = rows (tokens), C = channels, H = MLP width, P = table positions.
#pragma once

#include <cstdint>

#include "reference/layers/fp8_linear.hpp"

namespace preflight::ref {

// LayerNorm, fp32 statistics, per row t (each line one rounding per element):
//   mean = row_sum(x) / C;   d_i = x_i − mean;   var = row_dot(d, d) / C   (two-pass variance)
//   rstd = rsqrt(var + eps);  y_i = (d_i · rstd) · w_i + b_i
void layernorm_forward(float* out,        // (T,C)
                       float* mean,       // (T)  cache
                       float* rstd,       // (T)  cache
                       const float* x,    // (T,C)
                       const float* w,    // (C)
                       const float* b,    // (C)
                       float eps, int64_t T, int64_t C);

// Backward, per row t, with xh_i = (x_i − mean) · rstd (rounded as in the forward):
//   g_i = dy_i · w_i;   a = row_sum(g) / C;   c = row_dot(g, xh) / C
//   dx_i += ((g_i − a) − xh_i · c) · rstd
//   dw_i += dot_k128 over t (ascending) of dy[t][i]·xh[t][i];   db_i += dot_k128 over t of dy[t][i]·1
// Any of dx, dw, db may be null.
void layernorm_backward(float* dx,          // (T,C) or null
                        float* dw,          // (C) or null
                        float* db,          // (C) or null
                        const float* dout,  // (T,C)
                        const float* x,     // (T,C)
                        const float* w,     // (C)
                        const float* mean,  // (T)
                        const float* rstd,  // (T)
                        int64_t T, int64_t C);

// d/dx of the tanh-approximation GELU (num::gelu), as this composition of contract functions
// (not correctly rounded; within a few ulps away from its zero near x = −0.75):
//   a = 2c0·(x + c1·((x·x)·x));  sp = sigmoid(a);  sm = sigmoid(−a)
//   gelu'(x) = sp + (x·(sp·sm)) · (2c0·(1 + (3c1)·(x·x)))
// with num::gelu's float constants c1 = 0x1.6e4e26p-5, 2c0 = 0x1.988454p+0, 3c1 = float(3·c1).
float gelu_grad(float x);

// GELU MLP (GPT / Megatron):  h = x·W1ᵀ + b1;  act = gelu(h);  y = act·W2ᵀ + b2
// (b1, b2 may be null; the linears run in precision p, fp8_linear.hpp).
void gelu_mlp_forward(float* out,         // (T,C)
                      float* h,           // (T,H) cache
                      float* act,         // (T,H) cache
                      const float* x,     // (T,C)
                      const float* w1,    // (H,C)
                      const float* b1,    // (H) or null
                      const float* w2,    // (C,H)
                      const float* b2,    // (C) or null
                      int64_t T, int64_t C, int64_t H, const LinearPrecision& p = {});

// Backward (gradients accumulated): dact = dy·W2 (+ dW2, db2);  dh_i = dact_i · gelu_grad(h_i);
// dx += dh·W1 (+ dW1, db1).
void gelu_mlp_backward(float* dx,          // (T,C) or null
                       float* dw1,         // (H,C)
                       float* db1,         // (H) or null
                       float* dw2,         // (C,H)
                       float* db2,         // (C) or null
                       const float* dout,  // (T,C)
                       const float* h,     // (T,H)
                       const float* act,   // (T,H)
                       const float* x,     // (T,C)
                       const float* w1,    // (H,C)
                       const float* w2,    // (C,H)
                       int64_t T, int64_t C, int64_t H, const LinearPrecision& p = {});

// Learned absolute positions, added in place: x[t][c] = x[t][c] + table[pos[t]][c] (one add).
// pos null = 0..T-1. Positions are range-checked against P.
void position_embedding_forward(float* x,            // (T,C)
                                const int32_t* pos,  // (T) or null
                                const float* table,  // (P,C)
                                int64_t T, int64_t C, int64_t P);
// dtable[pos[t]][c] += dout[t][c], one add per token in ascending t (embedding_backward).
void position_embedding_backward(float* dtable,       // (P,C)
                                 const float* dout,   // (T,C)
                                 const int32_t* pos,  // (T) or null
                                 int64_t T, int64_t C, int64_t P);

}  // namespace preflight::ref
