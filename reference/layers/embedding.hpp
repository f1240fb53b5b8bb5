// Token embedding lookup.
// Legend: T = tokens, C = channels (hidden size), V = vocabulary.
#pragma once

#include <cstdint>

namespace preflight::ref {

// out[t][:] = table[tokens[t]][:]  (a copy: exact). Token ids are checked against V.
void embedding_forward(float* out,            // (T,C)
                       const int32_t* tokens,  // (T)
                       const float* table,     // (V,C)
                       int64_t T, int64_t C, int64_t V);

// dtable[v][c] += dout[t][c] for every t with tokens[t] == v, one add per token in
// ascending t (a sequential chain per row; threads split the channel range).
void embedding_backward(float* dtable,          // (V,C)
                        const float* dout,      // (T,C)
                        const int32_t* tokens,  // (T)
                        int64_t T, int64_t C, int64_t V);

}  // namespace preflight::ref
