// Dense SwiGLU feed-forward: y = W2 · (SiLU(W1 x) ⊙ W3 x), all three in the matmul
// convention (weights stored (out, in)).
// Legend: T = tokens, C = channels (hidden), H = intermediate width.
//
// Forward:  h1 = x·W1ᵀ;  h3 = x·W3ᵀ;  act_i = silu(h1_i) · h3_i;  y = act·W2ᵀ
// The three GEMMs (forward, dgrad, wgrad) run in precision p (fp8_linear.hpp; fp32 = matmul.hpp).
#pragma once

#include <cstdint>

#include "reference/layers/fp8_linear.hpp"

namespace preflight::ref {

void swiglu_forward(float* out,        // (T,C)
                    float* h1,         // (T,H) cache
                    float* h3,         // (T,H) cache
                    float* act,        // (T,H) cache
                    const float* x,    // (T,C)
                    const float* w1,   // (H,C) gate projection
                    const float* w3,   // (H,C) up projection
                    const float* w2,   // (C,H) down projection
                    int64_t T, int64_t C, int64_t H, const LinearPrecision& p = {});

// Backward (gradients accumulated; scratch dact/dh1/dh3 allocated inside):
//   dact = dy·W2 ;  dW2 += dyᵀ·act
//   dh1_i = (dact_i · h3_i) · silu_grad(h1_i) ;  dh3_i = dact_i · silu(h1_i)
//   dx += dh1·W1, then dx += dh3·W3 (two separate accumulations, in that order)
//   dW1 += dh1ᵀ·x ;  dW3 += dh3ᵀ·x
void swiglu_backward(float* dx,          // (T,C) or null
                     float* dw1,         // (H,C)
                     float* dw3,         // (H,C)
                     float* dw2,         // (C,H)
                     const float* dout,  // (T,C)
                     const float* h1,    // (T,H)
                     const float* h3,    // (T,H)
                     const float* act,   // (T,H)
                     const float* x,     // (T,C)
                     const float* w1,    // (H,C)
                     const float* w3,    // (H,C)
                     const float* w2,    // (C,H)
                     int64_t T, int64_t C, int64_t H, const LinearPrecision& p = {});

}  // namespace preflight::ref
