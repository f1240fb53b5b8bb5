// Token embedding. Legend: T = tokens, C = channels, V = vocabulary.
#include "reference/layers/embedding.hpp"

#include <cstring>

#include "reference/core/error.hpp"

namespace preflight::ref {

static void check_tokens(const int32_t* tokens, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t)
    PREFLIGHT_CHECK(tokens[t] >= 0 && tokens[t] < V, "embedding: tokens[", t, "] = ", tokens[t],
                    ", expected in [0, ", V, ")");
}

void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t T,
                       int64_t C, int64_t V) {
  check_tokens(tokens, T, V);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) std::memcpy(out + t * C, table + int64_t(tokens[t]) * C, C * 4);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t T,
                        int64_t C, int64_t V) {
  check_tokens(tokens, T, V);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < T; ++t) {
      float& g = dtable[int64_t(tokens[t]) * C + c];
      g = g + dout[t * C + c];
    }
}

}  // namespace preflight::ref
