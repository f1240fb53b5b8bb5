// Pieces shared by the attention layers (mla.cpp, attention.cpp) and the CUDA path's host
// side, so the document masking and the softmax order are defined once.
#pragma once

#include <cstdint>
#include <vector>

namespace preflight::ref {

// Packed sequences: s0[t] = first token of t's document (the first key t may attend to);
// positions[t] = pos[t] when given, else t − s0[t] (RoPE restarts in each document).
// doc may be null (one document); doc ids must be non-decreasing. `layer` prefixes errors.
void resolve_documents(std::vector<int64_t>& s0, std::vector<int32_t>& positions, const int32_t* doc,
                       const int32_t* pos, int64_t T, const char* layer);

// p[0..n) = softmax(l[0..n)) in the contract's order: m = row_max(l), e = exp(l − m),
// z = row_sum(e), p = e / z.
void softmax_row(float* p, const float* l, int64_t n);

}  // namespace preflight::ref
