// The combined optimizer: routing by kind, decay policy, clipping, resume and threads
// (docs/OPTIMIZERS.md §4, §7).
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "optim_test_util.hpp"
#include "reference/core/error.hpp"
#include "reference/numerics/reduce.hpp"
#include "reference/optim/optimizer.hpp"

namespace preflight::optim {
namespace {

using test::randn;

// A miniature model layout: every kind once, a stacked expert tensor, awkward sizes.
std::vector<ParamTensor> layout(int64_t& n) {
  std::vector<ParamTensor> t;
  n = 0;
  auto add = [&](const char* name, std::vector<int64_t> shape, ParamKind kind) {
    ParamTensor p{name, n, shape, kind};
    n += p.numel();
    t.push_back(p);
  };
  add("model.embed_tokens.weight", {50, 24}, ParamKind::embedding);
  add("model.layers.0.input_layernorm.weight", {24}, ParamKind::norm);
  add("model.layers.0.self_attn.q_proj.weight", {36, 24}, ParamKind::matrix_hidden);
  add("model.layers.0.mlp.experts.w1", {3, 20, 24}, ParamKind::matrix_hidden);
  add("model.layers.0.mlp.gate.e_score_correction_bias", {3}, ParamKind::router_bias);
  add("model.layers.0.mlp.bias", {20}, ParamKind::bias);
  add("lm_head.weight", {50, 24}, ParamKind::head);
  return t;
}

TEST(Optimizer, ZeroGradientLeavesOnlyDecayAndPolicyByKind) {
  int64_t n = 0;
  const auto tensors = layout(n);
  Optimizer opt(tensors, n, OptimizerConfig{});
  std::vector<float> p = randn(n, 1), g(n, 0.0f);
  const std::vector<float> p0 = p;
  const StepResult r = opt.step(p.data(), g.data(), 0.01f);
  EXPECT_EQ(r.grad_norm, 0.0f);
  EXPECT_EQ(opt.step_count(), 1);
  const float dec = float(1.0 - double(0.01f) * 0.1);
  for (const ParamTensor& t : tensors)
    for (int64_t i = t.offset; i < t.offset + t.numel(); ++i) {
      const bool decays = t.kind == ParamKind::matrix_hidden || t.kind == ParamKind::head;
      ASSERT_EQ(p[i], decays ? p0[i] * dec : p0[i]) << t.name;
    }
}

TEST(Optimizer, RoutesMuonAndAdamWAndNamesState) {
  int64_t n = 0;
  const auto tensors = layout(n);
  Optimizer opt(tensors, n, OptimizerConfig{});
  std::vector<std::string> names;
  for (const StateTensor& s : opt.state_tensors()) names.push_back(s.name);
  const std::vector<std::string> want = {
      "model.embed_tokens.weight.exp_avg", "model.embed_tokens.weight.exp_avg_sq",
      "model.layers.0.input_layernorm.weight.exp_avg", "model.layers.0.input_layernorm.weight.exp_avg_sq",
      "model.layers.0.self_attn.q_proj.weight.momentum_buffer", "model.layers.0.mlp.experts.w1.momentum_buffer",
      "model.layers.0.mlp.bias.exp_avg", "model.layers.0.mlp.bias.exp_avg_sq", "lm_head.weight.exp_avg",
      "lm_head.weight.exp_avg_sq"};
  EXPECT_EQ(names, want);
  // Each stacked expert matrix is orthogonalised on its own: the same step on expert 1 alone.
  std::vector<float> p = randn(n, 2), g = randn(n, 3, 0.01f);
  const ParamTensor& e = tensors[3];
  std::vector<float> pe(p.begin() + e.offset + 480, p.begin() + e.offset + 960);
  std::vector<float> ge(g.begin() + e.offset + 480, g.begin() + e.offset + 960), buf(480, 0.0f), work;
  OptimizerConfig cfg;
  cfg.max_grad_norm = 0;
  Optimizer opt2(tensors, n, cfg);
  opt2.step(p.data(), g.data(), 0.01f);
  muon_step(pe.data(), ge.data(), buf.data(), 20, 24, cfg.muon, 0.01f, true, work);
  for (int64_t i = 0; i < 480; ++i) ASSERT_EQ(p[e.offset + 480 + i], pe[i]);
}

// Norm: per-tensor dot_k128 sums in float, added in double in list order. Oracle: the float64
// sum of squares; each tensor's blocked sum has relative error <= (128 + numel/128)·u.
TEST(Optimizer, GlobalNormOrderAndClipCoefficient) {
  int64_t n = 0;
  const auto tensors = layout(n);
  std::vector<float> g = randn(n, 5, 0.3f);
  const std::vector<float> g0 = g;
  double ss = 0, bound = 0;
  std::vector<float> sums = tensor_square_sums(g.data(), tensors);
  for (size_t i = 0; i < tensors.size(); ++i) {
    double s = 0;
    for (int64_t j = 0; j < tensors[i].numel(); ++j) s += double(g[tensors[i].offset + j]) * g[tensors[i].offset + j];
    EXPECT_EQ(sums[i], num::dot_k128(&g[tensors[i].offset], &g[tensors[i].offset], tensors[i].numel()));
    ss += s;
    bound += (130 + tensors[i].numel() / 128.0) * test::kU * s;
  }
  const ClipResult r = clip_grad_norm(g.data(), tensors, 1.0);
  EXPECT_NEAR(r.norm, std::sqrt(ss), 0.5 * bound / std::sqrt(ss) + 2 * test::kU * std::sqrt(ss));
  EXPECT_EQ(r.coef, float(1.0 / (double(r.norm) + 1e-6)));
  for (const ParamTensor& t : tensors)
    for (int64_t i = t.offset; i < t.offset + t.numel(); ++i) ASSERT_EQ(g[i], g0[i] * r.coef);
  // Below the threshold nothing is touched.
  std::vector<float> h = g0;
  const ClipResult r2 = clip_grad_norm(h.data(), tensors, 1e6);
  EXPECT_EQ(r2.coef, 1.0f);
  EXPECT_TRUE(test::same_bits(h, g0));
}

TEST(Optimizer, NonFiniteGradientSkipsTheStep) {
  int64_t n = 0;
  const auto tensors = layout(n);
  Optimizer opt(tensors, n, OptimizerConfig{});
  std::vector<float> p = randn(n, 1), g = randn(n, 2);
  g[tensors[2].offset + 7] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> p0 = p;
  EXPECT_TRUE(opt.step(p.data(), g.data(), 0.01f).skipped);
  EXPECT_TRUE(test::same_bits(p, p0));
  EXPECT_EQ(opt.step_count(), 0);
}

// Five steps in one go == three steps, state copied out, a new optimizer restored, two steps.
TEST(Optimizer, ResumeFromCopiedStateIsBitExact) {
  for (MomentDtype md : {MomentDtype::fp32, MomentDtype::bf16}) {
    int64_t n = 0;
    const auto tensors = layout(n);
    OptimizerConfig cfg;
    cfg.adamw.moments = md;
    auto grads = [&](int k) { return randn(n, 40 + k, 0.05f); };
    std::vector<float> pa = randn(n, 1);
    std::vector<float> pb = pa;
    Optimizer a(tensors, n, cfg);
    for (int k = 0; k < 5; ++k) {
      auto g = grads(k);
      a.step(pa.data(), g.data(), 0.01f);
    }
    Optimizer b(tensors, n, cfg);
    for (int k = 0; k < 3; ++k) {
      auto g = grads(k);
      b.step(pb.data(), g.data(), 0.01f);
    }
    std::vector<std::vector<char>> saved;
    for (const StateTensor& s : b.state_tensors()) {
      saved.emplace_back(s.bytes());
      std::memcpy(saved.back().data(), s.data, s.bytes());
    }
    Optimizer c(tensors, n, cfg);
    c.set_step_count(b.step_count());
    auto st = c.state_tensors();
    for (size_t i = 0; i < st.size(); ++i) std::memcpy(st[i].data, saved[i].data(), st[i].bytes());
    for (int k = 3; k < 5; ++k) {
      auto g = grads(k);
      c.step(pb.data(), g.data(), 0.01f);
    }
    EXPECT_TRUE(test::same_bits(pa, pb));
  }
}

TEST(Optimizer, OneAndTwoThreadsBitIdentical) {
  int64_t n = 0;
  const auto tensors = layout(n);
  std::vector<std::vector<float>> out;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Optimizer opt(tensors, n, OptimizerConfig{});
    std::vector<float> p = randn(n, 1);
    for (int k = 0; k < 3; ++k) {
      auto g = randn(n, 60 + k);
      opt.step(p.data(), g.data(), 0.02f);
    }
    out.push_back(p);
  }
  omp_set_num_threads(2);
  EXPECT_TRUE(test::same_bits(out[0], out[1]));
}

TEST(Optimizer, BadLayoutsAreRefusedByName) {
  std::vector<ParamTensor> t = {{"a", 0, {4, 4}, ParamKind::matrix_hidden}, {"b", 10, {8}, ParamKind::norm}};
  try {
    Optimizer opt(t, 100, OptimizerConfig{});
    FAIL() << "overlap accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a' and 'b' overlap"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Optimizer({{"c", 90, {4, 4}, ParamKind::matrix_hidden}}, 100, OptimizerConfig{}), Error);
  EXPECT_THROW(Optimizer({{"d", 0, {16}, ParamKind::matrix_hidden}}, 100, OptimizerConfig{}), Error);
}

}  // namespace
}  // namespace preflight::optim
