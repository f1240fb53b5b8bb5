#include "reference/layers/attention_common.hpp"

#include "reference/core/error.hpp"
#include "reference/layers/prims.hpp"

namespace preflight::ref {

void resolve_documents(std::vector<int64_t>& s0, std::vector<int32_t>& positions, const int32_t* doc,
                       const int32_t* pos, int64_t T, const char* layer) {
  s0.assign(T, 0);
  positions.assign(T, 0);
  for (int64_t t = 0; t < T; ++t) {
    if (doc && t > 0) {
      PREFLIGHT_CHECK(doc[t] >= doc[t - 1], layer, ": doc ids must be non-decreasing; doc[", t, "] = ", doc[t],
                      " < doc[", t - 1, "] = ", doc[t - 1]);
      s0[t] = doc[t] == doc[t - 1] ? s0[t - 1] : t;
    }
    positions[t] = pos ? pos[t] : int32_t(t - s0[t]);
  }
}

void softmax_row(float* p, const float* l, int64_t n) {
  const float m = px::row_max(l, n);
  for (int64_t i = 0; i < n; ++i) p[i] = px::exp(l[i] - m);
  const float z = px::row_sum(p, n);
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] / z;
}

}  // namespace preflight::ref
