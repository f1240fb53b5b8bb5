// The reference layers on the GPU, deterministic mode (docs/CUDA.md). Host-only header: plain
// C++ callers pass HOST arrays with exactly the signature of the CPU reference function of the
// same name (reference/layers/*.hpp); each call copies its inputs to device 0, runs the layer's
// kernels (cuda/layers/kernels.hpp) in the reference's order and copies the outputs back.
// Backward functions ACCUMULATE into their gradient buffers like the reference (the current
// contents are uploaded first). A parity test calls ref::X and cuda::X on the same inputs and
// compares the outputs with memcmp: every function here promises the reference's bits.
//
// Errors (bad shapes, token ids, CUDA failures) throw preflight::Error.
#pragma once

#include <cstdint>

#include "reference/layers/attention.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/rope.hpp"

namespace preflight::cuda {

// ---- linear (matmul.hpp, fp8_linear.hpp)
void matmul_forward(float* out, const float* x, const float* w, const float* bias, std::int64_t M, std::int64_t N,
                    std::int64_t K);
void matmul_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                     std::int64_t M, std::int64_t N, std::int64_t K);
void linear_forward(float* out, const float* x, const float* w, const float* bias, std::int64_t M, std::int64_t N,
                    std::int64_t K, const ref::LinearPrecision& p);
void linear_backward(float* dx, float* dw, float* dbias, const float* dout, const float* x, const float* w,
                     std::int64_t M, std::int64_t N, std::int64_t K, const ref::LinearPrecision& p);

// ---- embedding.hpp
void embedding_forward(float* out, const std::int32_t* tokens, const float* table, std::int64_t T, std::int64_t C,
                       std::int64_t V);
void embedding_backward(float* dtable, const float* dout, const std::int32_t* tokens, std::int64_t T,
                        std::int64_t C, std::int64_t V);

// ---- rmsnorm.hpp
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, float eps, std::int64_t T,
                     std::int64_t C);
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      std::int64_t T, std::int64_t C);

// ---- rope.hpp / attention.hpp layouts (in place on host x)
void rope_forward(float* x, const std::int32_t* pos, const ref::RopeTable& table, std::int64_t T, std::int64_t NH,
                  std::int64_t row, std::int64_t head, ref::RopeLayout layout = ref::RopeLayout::interleaved);
void rope_backward(float* dx, const std::int32_t* pos, const ref::RopeTable& table, std::int64_t T,
                   std::int64_t NH, std::int64_t row, std::int64_t head,
                   ref::RopeLayout layout = ref::RopeLayout::interleaved);

// ---- swiglu.hpp
void swiglu_forward(float* out, float* h1, float* h3, float* act, const float* x, const float* w1, const float* w3,
                    const float* w2, std::int64_t T, std::int64_t C, std::int64_t H, const ref::LinearPrecision& p = {});
void swiglu_backward(float* dx, float* dw1, float* dw3, float* dw2, const float* dout, const float* h1,
                     const float* h3, const float* act, const float* x, const float* w1, const float* w3,
                     const float* w2, std::int64_t T, std::int64_t C, std::int64_t H, const ref::LinearPrecision& p = {});

// ---- gpt_layers.hpp
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       float eps, std::int64_t T, std::int64_t C);
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, std::int64_t T, std::int64_t C);
void gelu_mlp_forward(float* out, float* h, float* act, const float* x, const float* w1, const float* b1,
                      const float* w2, const float* b2, std::int64_t T, std::int64_t C, std::int64_t H,
                      const ref::LinearPrecision& p = {});
void gelu_mlp_backward(float* dx, float* dw1, float* db1, float* dw2, float* db2, const float* dout, const float* h,
                       const float* act, const float* x, const float* w1, const float* w2, std::int64_t T,
                       std::int64_t C, std::int64_t H, const ref::LinearPrecision& p = {});

// ---- attention.hpp (MHA / GQA / MQA); fills the same cache as the reference.
void gqa_forward(float* out, ref::GqaCache& cache, const float* x, const ref::GqaWeights& w, const std::int32_t* doc,
                 const std::int32_t* pos, const ref::RopeTable& rope, const ref::GqaOptions& opt,
                 const ref::GqaDims& d);
void gqa_backward(float* dx, const ref::GqaWeights& dw, const float* dout, const ref::GqaCache& cache,
                  const float* x, const ref::GqaWeights& w, const std::int32_t* doc, const std::int32_t* pos,
                  const ref::RopeTable& rope, const ref::GqaOptions& opt, const ref::GqaDims& d);

}  // namespace preflight::cuda
