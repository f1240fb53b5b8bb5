// FP8 against the bf16 GEMM path on the proxy-16b widths (label "heavy": 2–3 min on 2 cores;
// not part of the reference suite). proxy-16b itself (16B parameters) does not fit a test,
// so this truncates it: its real widths — hidden 2048, MLA (Rkv 512, 16 heads of 128+64, v 128),
// dense SwiGLU 10944, experts of width 1408, 2 shared, top-6 of sigmoid scores, one MTP depth —
// but 2 blocks (1 dense + 1 MoE), 16 routed experts in 4 groups (top-2 groups), vocabulary
// 8192, one sequence of 256 tokens. Prints `[ measured ] fp8 vs bf16 …` (docs/REFERENCE.md).
//   run: ctest --test-dir build-ref -L heavy --output-on-failure -V
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "reference/core/config_io.hpp"
#include "reference/layers/model.hpp"

namespace preflight::ref::test {
namespace {

double rel_fro(const std::vector<float>& a, const std::vector<float>& ref, int64_t off = 0, int64_t n = -1) {
  if (n < 0) n = int64_t(a.size());
  double num = 0, den = 0;
  for (int64_t i = off; i < off + n; ++i) num += std::pow(double(a[i]) - ref[i], 2), den += std::pow(double(ref[i]), 2);
  return std::sqrt(num / den);
}

struct PrecisionRun {
  ModelLoss loss;
  std::vector<float> grads;
  double seconds = 0;
};

TEST(HeavyFp8Report, TruncatedProxy16bFp8VsBf16) {
  ModelConfig c = load_model_config("proxy-16b");
  c.name = "proxy-16b-truncated";
  c.num_hidden_layers = 2, c.n_routed_experts = 16, c.n_group = 4, c.topk_group = 2, c.vocab_size = 8192;
  validate(c);
  const int64_t T = 256, V = c.vocab_size;
  std::vector<int32_t> stream(T + 1);
  for (int64_t i = 0; i <= T; ++i) stream[i] = int32_t((37 * i + 11 + 5 * i * i) % V);
  std::vector<int32_t> tokens(stream.begin(), stream.end() - 1), targets(stream.begin() + 1, stream.end());
  const ModelLayout lay = model_layout(c);
  std::vector<float> params(lay.total);
  model_init(params.data(), c, 1234);
  Batch b;
  b.B = 1, b.T = T, b.tokens = tokens.data(), b.targets = targets.data();
  auto run = [&](Precision p) {
    ModelOptions o;
    o.precision.kind = p;
    PrecisionRun r;
    const auto t0 = std::chrono::steady_clock::now();
    ModelCache cache;
    r.loss = model_forward(cache, params.data(), b, c, o);
    r.grads.assign(lay.total, 0.f);
    model_backward(r.grads.data(), cache, params.data(), b, c, o);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  };
  const PrecisionRun f32 = run(Precision::fp32), b16 = run(Precision::bf16), f8 = run(Precision::fp8);
  std::printf("[ measured ] %s: %lld parameters, 1×%lld tokens, fp32 activations; fwd+bwd %.1f s fp32, %.1f s bf16, "
              "%.1f s fp8\n",
              c.name.c_str(), static_cast<long long>(lay.total), static_cast<long long>(T), f32.seconds, b16.seconds,
              f8.seconds);
  std::printf("[ measured ] losses: fp32 %.7f, bf16 %.7f, fp8 %.7f\n", double(f32.loss.total), double(b16.loss.total),
              double(f8.loss.total));
  std::printf("[ measured ] bf16 vs fp32 (proxy-16b truncated): loss rel. %.3g, gradient rel. Frobenius %.3g\n",
              std::fabs(double(b16.loss.total) - f32.loss.total) / std::fabs(double(f32.loss.total)),
              rel_fro(b16.grads, f32.grads));
  std::printf("[ measured ] fp8 vs bf16 (proxy-16b truncated): loss rel. %.3g, gradient rel. Frobenius %.3g\n",
              std::fabs(double(f8.loss.total) - b16.loss.total) / std::fabs(double(b16.loss.total)),
              rel_fro(f8.grads, b16.grads));
  for (const auto& t : lay.tensors)
    if (t.trainable && t.size >= 1 << 20)
      std::printf("[ measured ]   fp8 vs bf16 gradient of %-28s rel. Frobenius %.3g\n", t.name.c_str(),
                  rel_fro(f8.grads, b16.grads, t.offset, t.size));
  // The same bound as the tiny test (test_model.cpp): ε_fp8·√P·2 with P = (L + D)·16 + 2.
  const double P = double(c.num_hidden_layers + c.num_nextn_predict_layers) * 16 + 2;
  EXPECT_LE(rel_fro(f8.grads, b16.grads), 2 * 3.75e-2 * std::sqrt(P));
}

}  // namespace
}  // namespace preflight::ref::test
