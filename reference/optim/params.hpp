// Parameter tensors of a flat fp32 buffer, as the optimizers see them (docs/OPTIMIZERS.md §1).
//
// The model owns one flat allocation of parameters and one of gradients with the same layout;
// it describes each named tensor by a ParamTensor (offset into the flat buffer, shape, kind).
// The kind decides the update rule (Muon for hidden matrices, AdamW otherwise, nothing for the
// router bias, which the balancing rule of schedules.hpp moves) and the default weight decay.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace preflight::optim {

enum class ParamKind : int {
  matrix_hidden = 0,  // 2-D weights inside the blocks (attention, FFN, experts, router gate): Muon
  embedding = 1,      // token embedding table: AdamW, no weight decay
  head = 2,           // output projection (LM head): AdamW, weight decay
  norm = 3,           // RMSNorm weights: AdamW, no weight decay
  bias = 4,           // linear biases: AdamW, no weight decay
  router_bias = 5,    // aux-loss-free routing bias: never touched by the optimizer
};
inline constexpr int kParamKinds = 6;
const char* to_string(ParamKind kind);

// One named tensor of the flat buffer. shape is row-major; for matrix_hidden the last two
// dimensions are (rows = out, cols = in) and any leading dimensions stack independent
// matrices (e.g. (n_experts, inter, dim)): Muon orthogonalises each matrix separately.
struct ParamTensor {
  std::string name;            // Hugging Face DeepseekV3 name, e.g. "model.layers.3.self_attn.q_b_proj.weight"
  int64_t offset = 0;          // first element in the flat buffer
  std::vector<int64_t> shape;  // e.g. {rows, cols}
  ParamKind kind = ParamKind::matrix_hidden;

  int64_t numel() const;
  int64_t rows() const;   // shape[-2] (matrix kinds)
  int64_t cols() const;   // shape[-1]
  int64_t count() const;  // product of the leading dimensions (1 for a plain matrix)
};

// Per kind: whether decoupled weight decay applies. Default: hidden matrices and the head decay;
// embeddings, norms and biases do not (router_bias is not optimised at all).
struct DecayPolicy {
  std::array<bool, kParamKinds> decay{true, false, true, false, false, false};
  bool operator()(ParamKind k) const { return decay[static_cast<int>(k)]; }
};

// Throws preflight::Error naming the tensor when a tensor is empty, leaves [0, n_params), a
// matrix_hidden tensor has fewer than 2 dimensions, or two tensors overlap.
void validate_tensors(const std::vector<ParamTensor>& tensors, int64_t n_params);

}  // namespace preflight::optim
