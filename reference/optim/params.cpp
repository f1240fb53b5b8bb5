#include "reference/optim/params.hpp"

#include <algorithm>

#include "reference/core/error.hpp"

namespace preflight::optim {

const char* to_string(ParamKind kind) {
  switch (kind) {
    case ParamKind::matrix_hidden: return "matrix_hidden";
    case ParamKind::embedding: return "embedding";
    case ParamKind::head: return "head";
    case ParamKind::norm: return "norm";
    case ParamKind::bias: return "bias";
    case ParamKind::router_bias: return "router_bias";
  }
  return "?";
}

int64_t ParamTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}
int64_t ParamTensor::rows() const { return shape.size() >= 2 ? shape[shape.size() - 2] : 1; }
int64_t ParamTensor::cols() const { return shape.empty() ? 1 : shape.back(); }
int64_t ParamTensor::count() const {
  int64_t n = 1;
  for (size_t i = 0; i + 2 < shape.size(); ++i) n *= shape[i];
  return n;
}

void validate_tensors(const std::vector<ParamTensor>& tensors, int64_t n_params) {
  std::vector<std::pair<int64_t, size_t>> spans;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const ParamTensor& t = tensors[i];
    for (int64_t s : t.shape)
      if (s <= 0) fail("parameter tensor '", t.name, "': dimension ", s, " is not positive");
    if (t.shape.empty()) fail("parameter tensor '", t.name, "': empty shape");
    if (t.offset < 0 || t.offset + t.numel() > n_params)
      fail("parameter tensor '", t.name, "': [", t.offset, ", ", t.offset + t.numel(),
           ") leaves the flat buffer of ", n_params, " parameters");
    if (t.kind == ParamKind::matrix_hidden && t.shape.size() < 2)
      fail("parameter tensor '", t.name, "': kind matrix_hidden needs >= 2 dimensions, has ",
           t.shape.size());
    spans.push_back({t.offset, i});
  }
  std::sort(spans.begin(), spans.end());
  for (size_t j = 1; j < spans.size(); ++j) {
    const ParamTensor& a = tensors[spans[j - 1].second];
    const ParamTensor& b = tensors[spans[j].second];
    if (a.offset + a.numel() > b.offset)
      fail("parameter tensors '", a.name, "' and '", b.name, "' overlap at offset ", b.offset);
  }
}

}  // namespace preflight::optim
