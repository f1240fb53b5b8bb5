// CPU <-> GPU parity of the reference layers (docs/CUDA.md): every layer's deterministic CUDA
// path (cuda/layers/layers.hpp) must give the CPU reference's bits, forward and backward, for
// each case of a table named from its parameters (sizes deliberately not multiples of 32 or
// 128); each deterministic layer rerun 3 times must give the same bits; fast mode (cuBLAS BF16)
// must stay within its derived bound. Every test skips when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/device.hpp"
#include "cuda/layers/cublas_gemm.hpp"
#include "cuda/layers/layers.hpp"
#include "reference/core/model_config.hpp"
#include "reference/layers/attention.hpp"
#include "reference/layers/embedding.hpp"
#include "reference/layers/fp8_linear.hpp"
#include "reference/layers/gpt_layers.hpp"
#include "reference/layers/matmul.hpp"
#include "reference/layers/rmsnorm.hpp"
#include "reference/layers/rope.hpp"
#include "reference/layers/swiglu.hpp"

namespace preflight {
namespace {

using std::int64_t;
using Vec = std::vector<float>;

#define SKIP_WITHOUT_GPU()                                                                      \
  do {                                                                                          \
    if (preflight::cuda::visible_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"; \
  } while (0)

Vec randn(int64_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Vec v(std::size_t(n > 0 ? n : 0));
  for (float& x : v) x = d(g);
  return v;
}

// "" when a and b hold the same bits, else where and how they first differ.
std::string bit_diff(const Vec& a, const Vec& b) {
  if (a.size() != b.size()) return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  if (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0) return "";
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::uint32_t x, y;
    std::memcpy(&x, &a[i], 4), std::memcpy(&y, &b[i], 4);
    if (x != y) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "first difference at %zu: cpu %.9g (0x%08x) gpu %.9g (0x%08x)", i, a[i], x, b[i], y);
      return buf;
    }
  }
  return "";
}
#define EXPECT_BITS(cpu, gpu, what) EXPECT_EQ(bit_diff(cpu, gpu), "") << (what)

// ------------------------------------------------------------------ linear
struct GemmCase {
  int64_t M, N, K;
  std::string name() const { return "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K); }
};
const GemmCase kGemmCases[] = {{1, 1, 1}, {1, 33, 130}, {33, 130, 257}, {130, 257, 33}, {257, 33, 130}, {7, 129, 384}};

struct PrecisionCase {
  const char* name;
  ref::LinearPrecision p;
};
const PrecisionCase kPrecisions[] = {{"fp32", {ref::Precision::fp32, false}},
                                     {"bf16", {ref::Precision::bf16, false}},
                                     {"fp8", {ref::Precision::fp8, false}},
                                     {"fp8_ue8m0", {ref::Precision::fp8, true}}};

TEST(LayersCuda, LinearForwardBackwardMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const PrecisionCase& pc : kPrecisions)
    for (const GemmCase& c : kGemmCases) {
      const std::string name = std::string("Linear_") + pc.name + "_" + c.name();
      SCOPED_TRACE(name);
      const Vec x = randn(c.M * c.K, 1), w = randn(c.N * c.K, 2, 0.05f), b = randn(c.N, 3), dy = randn(c.M * c.N, 4);
      Vec y_ref(c.M * c.N), y_gpu(c.M * c.N);
      ref::linear_forward(y_ref.data(), x.data(), w.data(), b.data(), c.M, c.N, c.K, pc.p);
      cuda::linear_forward(y_gpu.data(), x.data(), w.data(), b.data(), c.M, c.N, c.K, pc.p);
      EXPECT_BITS(y_ref, y_gpu, name + " forward");
      // Gradients accumulate: start both from the same non-zero contents.
      Vec dx_ref = randn(c.M * c.K, 5), dw_ref = randn(c.N * c.K, 6), db_ref = randn(c.N, 7);
      Vec dx_gpu = dx_ref, dw_gpu = dw_ref, db_gpu = db_ref;
      ref::linear_backward(dx_ref.data(), dw_ref.data(), db_ref.data(), dy.data(), x.data(), w.data(), c.M, c.N, c.K,
                           pc.p);
      cuda::linear_backward(dx_gpu.data(), dw_gpu.data(), db_gpu.data(), dy.data(), x.data(), w.data(), c.M, c.N, c.K,
                            pc.p);
      EXPECT_BITS(dx_ref, dx_gpu, name + " dx");
      EXPECT_BITS(dw_ref, dw_gpu, name + " dw");
      EXPECT_BITS(db_ref, db_gpu, name + " dbias");
    }
}

TEST(LayersCuda, MatmulWithoutBiasMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const GemmCase& c : kGemmCases) {
    SCOPED_TRACE("Matmul_nobias_" + c.name());
    const Vec x = randn(c.M * c.K, 11), w = randn(c.N * c.K, 12);
    Vec y_ref(c.M * c.N), y_gpu(c.M * c.N);
    ref::matmul_forward(y_ref.data(), x.data(), w.data(), nullptr, c.M, c.N, c.K);
    cuda::matmul_forward(y_gpu.data(), x.data(), w.data(), nullptr, c.M, c.N, c.K);
    EXPECT_BITS(y_ref, y_gpu, "forward");
  }
}

// ------------------------------------------------------------------ embedding, norms, rope
struct RowCase {
  int64_t T, C;
  std::string name() const { return "T" + std::to_string(T) + "_C" + std::to_string(C); }
};
const RowCase kRowCases[] = {{1, 1}, {1, 33}, {33, 130}, {130, 257}, {257, 33}, {5, 1000}};

TEST(LayersCuda, EmbeddingMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const RowCase& c : kRowCases) {
    SCOPED_TRACE("Embedding_" + c.name());
    const int64_t V = 37;
    std::vector<std::int32_t> tok(c.T);
    for (int64_t t = 0; t < c.T; ++t) tok[t] = std::int32_t((t * 7 + 3) % V);  // repeats: accumulation order
    const Vec table = randn(V * c.C, 21), dy = randn(c.T * c.C, 22);
    Vec y_ref(c.T * c.C), y_gpu(c.T * c.C);
    ref::embedding_forward(y_ref.data(), tok.data(), table.data(), c.T, c.C, V);
    cuda::embedding_forward(y_gpu.data(), tok.data(), table.data(), c.T, c.C, V);
    EXPECT_BITS(y_ref, y_gpu, "forward");
    Vec g_ref = randn(V * c.C, 23), g_gpu = g_ref;
    ref::embedding_backward(g_ref.data(), dy.data(), tok.data(), c.T, c.C, V);
    cuda::embedding_backward(g_gpu.data(), dy.data(), tok.data(), c.T, c.C, V);
    EXPECT_BITS(g_ref, g_gpu, "backward");
  }
}

TEST(LayersCuda, RmsNormMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const RowCase& c : kRowCases) {
    SCOPED_TRACE("RmsNorm_" + c.name());
    const Vec x = randn(c.T * c.C, 31), w = randn(c.C, 32), dy = randn(c.T * c.C, 33);
    Vec y_ref(c.T * c.C), y_gpu(c.T * c.C), r_ref(c.T), r_gpu(c.T);
    ref::rmsnorm_forward(y_ref.data(), r_ref.data(), x.data(), w.data(), 1e-6f, c.T, c.C);
    cuda::rmsnorm_forward(y_gpu.data(), r_gpu.data(), x.data(), w.data(), 1e-6f, c.T, c.C);
    EXPECT_BITS(y_ref, y_gpu, "forward");
    EXPECT_BITS(r_ref, r_gpu, "rstd");
    Vec dx_ref = randn(c.T * c.C, 34), dw_ref = randn(c.C, 35), dx_gpu = dx_ref, dw_gpu = dw_ref;
    ref::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), r_ref.data(), c.T, c.C);
    cuda::rmsnorm_backward(dx_gpu.data(), dw_gpu.data(), dy.data(), x.data(), w.data(), r_ref.data(), c.T, c.C);
    EXPECT_BITS(dx_ref, dx_gpu, "dx");
    EXPECT_BITS(dw_ref, dw_gpu, "dw");
  }
}

TEST(LayersCuda, LayerNormMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const RowCase& c : kRowCases) {
    SCOPED_TRACE("LayerNorm_" + c.name());
    const Vec x = randn(c.T * c.C, 41), w = randn(c.C, 42), b = randn(c.C, 43), dy = randn(c.T * c.C, 44);
    Vec y_ref(c.T * c.C), y_gpu(c.T * c.C), m_ref(c.T), m_gpu(c.T), r_ref(c.T), r_gpu(c.T);
    ref::layernorm_forward(y_ref.data(), m_ref.data(), r_ref.data(), x.data(), w.data(), b.data(), 1e-5f, c.T, c.C);
    cuda::layernorm_forward(y_gpu.data(), m_gpu.data(), r_gpu.data(), x.data(), w.data(), b.data(), 1e-5f, c.T, c.C);
    EXPECT_BITS(y_ref, y_gpu, "forward");
    EXPECT_BITS(m_ref, m_gpu, "mean");
    EXPECT_BITS(r_ref, r_gpu, "rstd");
    Vec dx_ref = randn(c.T * c.C, 45), dw_ref = randn(c.C, 46), db_ref = randn(c.C, 47);
    Vec dx_gpu = dx_ref, dw_gpu = dw_ref, db_gpu = db_ref;
    ref::layernorm_backward(dx_ref.data(), dw_ref.data(), db_ref.data(), dy.data(), x.data(), w.data(), m_ref.data(),
                            r_ref.data(), c.T, c.C);
    cuda::layernorm_backward(dx_gpu.data(), dw_gpu.data(), db_gpu.data(), dy.data(), x.data(), w.data(), m_ref.data(),
                             r_ref.data(), c.T, c.C);
    EXPECT_BITS(dx_ref, dx_gpu, "dx");
    EXPECT_BITS(dw_ref, dw_gpu, "dw");
    EXPECT_BITS(db_ref, db_gpu, "db");
  }
}

ref::RopeTable yarn_table(int64_t dim, int64_t positions) {
  ModelConfig c;
  c.rope_theta = 10000.0;
  c.rope_scaling.type = RopeScalingKind::yarn;
  c.rope_scaling.factor = 40.0;
  c.rope_scaling.original_max_position_embeddings = 64;
  return ref::rope_table(c, dim, positions);
}

TEST(LayersCuda, RopeMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int64_t T, NH, D;
    ref::RopeLayout layout;
  };
  const Case cases[] = {{1, 1, 2, ref::RopeLayout::interleaved},
                        {33, 3, 64, ref::RopeLayout::interleaved},
                        {130, 5, 18, ref::RopeLayout::half},
                        {257, 1, 128, ref::RopeLayout::half}};
  for (const Case& c : cases) {
    const bool il = c.layout == ref::RopeLayout::interleaved;
    SCOPED_TRACE(std::string("Rope_") + (il ? "interleaved" : "half") + "_T" + std::to_string(c.T) + "_NH" +
                 std::to_string(c.NH) + "_D" + std::to_string(c.D));
    const ref::RopeTable table = yarn_table(c.D, c.T + 3);
    std::vector<std::int32_t> pos(c.T);
    for (int64_t t = 0; t < c.T; ++t) pos[t] = std::int32_t((t * 5) % (c.T + 3));
    // Rows padded by 7 floats: row/head strides as attention uses them, padding untouched.
    const int64_t row = c.NH * c.D + 7;
    Vec x_ref = randn(c.T * row, 51), x_gpu = x_ref;
    ref::rope_forward(x_ref.data(), pos.data(), table, c.T, c.NH, row, c.D, c.layout);
    cuda::rope_forward(x_gpu.data(), pos.data(), table, c.T, c.NH, row, c.D, c.layout);
    EXPECT_BITS(x_ref, x_gpu, "forward");
    ref::rope_backward(x_ref.data(), pos.data(), table, c.T, c.NH, row, c.D, c.layout);
    cuda::rope_backward(x_gpu.data(), pos.data(), table, c.T, c.NH, row, c.D, c.layout);
    EXPECT_BITS(x_ref, x_gpu, "backward");
  }
}

// ------------------------------------------------------------------ FFNs
struct FfnCase {
  int64_t T, C, H;
  std::string name() const { return "T" + std::to_string(T) + "_C" + std::to_string(C) + "_H" + std::to_string(H); }
};
const FfnCase kFfnCases[] = {{1, 33, 130}, {33, 130, 257}, {130, 33, 129}};

TEST(LayersCuda, SwigluMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const FfnCase& c : kFfnCases) {
    SCOPED_TRACE("Swiglu_" + c.name());
    const int64_t TC = c.T * c.C, TH = c.T * c.H, HC = c.H * c.C;
    const Vec x = randn(TC, 61), w1 = randn(HC, 62, 0.1f), w3 = randn(HC, 63, 0.1f), w2 = randn(HC, 64, 0.1f),
              dy = randn(TC, 65);
    Vec y_r(TC), h1_r(TH), h3_r(TH), a_r(TH), y_g(TC), h1_g(TH), h3_g(TH), a_g(TH);
    ref::swiglu_forward(y_r.data(), h1_r.data(), h3_r.data(), a_r.data(), x.data(), w1.data(), w3.data(), w2.data(),
                        c.T, c.C, c.H);
    cuda::swiglu_forward(y_g.data(), h1_g.data(), h3_g.data(), a_g.data(), x.data(), w1.data(), w3.data(), w2.data(),
                         c.T, c.C, c.H);
    EXPECT_BITS(y_r, y_g, "forward");
    EXPECT_BITS(a_r, a_g, "act");
    Vec dx_r = randn(TC, 66), dw1_r(HC, 0.f), dw3_r(HC, 0.f), dw2_r(HC, 0.f);
    Vec dx_g = dx_r, dw1_g = dw1_r, dw3_g = dw3_r, dw2_g = dw2_r;
    ref::swiglu_backward(dx_r.data(), dw1_r.data(), dw3_r.data(), dw2_r.data(), dy.data(), h1_r.data(), h3_r.data(),
                         a_r.data(), x.data(), w1.data(), w3.data(), w2.data(), c.T, c.C, c.H);
    cuda::swiglu_backward(dx_g.data(), dw1_g.data(), dw3_g.data(), dw2_g.data(), dy.data(), h1_r.data(), h3_r.data(),
                          a_r.data(), x.data(), w1.data(), w3.data(), w2.data(), c.T, c.C, c.H);
    EXPECT_BITS(dx_r, dx_g, "dx");
    EXPECT_BITS(dw1_r, dw1_g, "dw1");
    EXPECT_BITS(dw3_r, dw3_g, "dw3");
    EXPECT_BITS(dw2_r, dw2_g, "dw2");
  }
}

TEST(LayersCuda, GeluMlpMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const PrecisionCase& pc : kPrecisions)
    for (const FfnCase& c : kFfnCases) {
      SCOPED_TRACE(std::string("GeluMlp_") + pc.name + "_" + c.name());
      const int64_t TC = c.T * c.C, TH = c.T * c.H, HC = c.H * c.C;
      const Vec x = randn(TC, 71), w1 = randn(HC, 72, 0.1f), b1 = randn(c.H, 73), w2 = randn(HC, 74, 0.1f),
                b2 = randn(c.C, 75), dy = randn(TC, 76);
      Vec y_r(TC), h_r(TH), a_r(TH), y_g(TC), h_g(TH), a_g(TH);
      ref::gelu_mlp_forward(y_r.data(), h_r.data(), a_r.data(), x.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                            c.T, c.C, c.H, pc.p);
      cuda::gelu_mlp_forward(y_g.data(), h_g.data(), a_g.data(), x.data(), w1.data(), b1.data(), w2.data(),
                             b2.data(), c.T, c.C, c.H, pc.p);
      EXPECT_BITS(y_r, y_g, "forward");
      EXPECT_BITS(h_r, h_g, "h");
      Vec dx_r(TC, 0.f), dw1_r(HC, 0.f), db1_r(c.H, 0.f), dw2_r(HC, 0.f), db2_r(c.C, 0.f);
      Vec dx_g = dx_r, dw1_g = dw1_r, db1_g = db1_r, dw2_g = dw2_r, db2_g = db2_r;
      ref::gelu_mlp_backward(dx_r.data(), dw1_r.data(), db1_r.data(), dw2_r.data(), db2_r.data(), dy.data(),
                             h_r.data(), a_r.data(), x.data(), w1.data(), w2.data(), c.T, c.C, c.H, pc.p);
      cuda::gelu_mlp_backward(dx_g.data(), dw1_g.data(), db1_g.data(), dw2_g.data(), db2_g.data(), dy.data(),
                              h_r.data(), a_r.data(), x.data(), w1.data(), w2.data(), c.T, c.C, c.H, pc.p);
      EXPECT_BITS(dx_r, dx_g, "dx");
      EXPECT_BITS(dw1_r, dw1_g, "dw1");
      EXPECT_BITS(db1_r, db1_g, "db1");
      EXPECT_BITS(dw2_r, dw2_g, "dw2");
      EXPECT_BITS(db2_r, db2_g, "db2");
    }
}

// ------------------------------------------------------------------ attention
struct GqaCase {
  const char* name;
  ref::GqaDims d;
  bool qk_norm, gate, bias, docs;
  float softcap;
  ref::RopeLayout layout;
  ref::Precision precision;
};
const GqaCase kGqaCases[] = {
    {"MHA_T1_C33_H2_Dh16", {1, 33, 2, 2, 16}, false, false, false, false, 0.0f, ref::RopeLayout::half,
     ref::Precision::fp32},
    {"GQA_T33_C40_H4_G2_Dh18_docs", {33, 40, 4, 2, 18}, false, false, false, true, 0.0f,
     ref::RopeLayout::interleaved, ref::Precision::fp32},
    {"GQA_T130_C33_H6_G3_Dh10_qknorm_gate_bias_softcap", {130, 33, 6, 3, 10}, true, true, true, true, 30.0f,
     ref::RopeLayout::half, ref::Precision::fp32},
    {"MQA_T57_C64_H4_G1_Dh32_bf16", {57, 64, 4, 1, 32}, false, false, false, false, 0.0f, ref::RopeLayout::half,
     ref::Precision::bf16},
    {"GQA_T40_C130_H2_G1_Dh16_fp8_docs", {40, 130, 2, 1, 16}, true, false, false, true, 0.0f,
     ref::RopeLayout::interleaved, ref::Precision::fp8},
};

struct GqaSetup {
  ref::GqaOptions opt;
  Vec flat, x, dy;
  ref::GqaWeights w;
  ref::RopeTable rope;
  std::vector<std::int32_t> doc;
  explicit GqaSetup(const GqaCase& c) {
    opt.rope_layout = c.layout, opt.qk_norm = c.qk_norm, opt.output_gate = c.gate, opt.bias = c.bias;
    opt.softcap = c.softcap, opt.precision.kind = c.precision;
    int64_t total = 0;
    for (int64_t s : ref::gqa_weight_sizes(c.d, opt)) total += s;
    flat = randn(total, 81, 0.1f);
    w = ref::gqa_weights_view(flat.data(), c.d, opt);
    x = randn(c.d.T * c.d.C, 82), dy = randn(c.d.T * c.d.C, 83);
    rope = yarn_table(c.d.Dh, c.d.T);
    if (c.docs)
      for (int64_t t = 0; t < c.d.T; ++t) doc.push_back(std::int32_t(t / 11));
  }
  const std::int32_t* doc_ptr() const { return doc.empty() ? nullptr : doc.data(); }
};

TEST(LayersCuda, GqaForwardBackwardMatchesReferenceBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const GqaCase& c : kGqaCases) {
    SCOPED_TRACE(c.name);
    const GqaSetup s(c);
    const int64_t TC = c.d.T * c.d.C;
    Vec y_r(TC), y_g(TC);
    ref::GqaCache cr, cg;
    ref::gqa_forward(y_r.data(), cr, s.x.data(), s.w, s.doc_ptr(), nullptr, s.rope, s.opt, c.d);
    cuda::gqa_forward(y_g.data(), cg, s.x.data(), s.w, s.doc_ptr(), nullptr, s.rope, s.opt, c.d);
    EXPECT_BITS(y_r, y_g, "forward");
    EXPECT_BITS(cr.q, cg.q, "q");
    EXPECT_BITS(cr.k, cg.k, "k");
    EXPECT_BITS(cr.v, cg.v, "v");
    EXPECT_BITS(cr.p, cg.p, "p");
    EXPECT_BITS(cr.o, cg.o, "o");
    Vec dx_r(TC, 0.f), dx_g(TC, 0.f), dflat_r(s.flat.size(), 0.f), dflat_g(s.flat.size(), 0.f);
    const ref::GqaWeights dw_r = ref::gqa_weights_view(dflat_r.data(), c.d, s.opt);
    const ref::GqaWeights dw_g = ref::gqa_weights_view(dflat_g.data(), c.d, s.opt);
    ref::gqa_backward(dx_r.data(), dw_r, s.dy.data(), cr, s.x.data(), s.w, s.doc_ptr(), nullptr, s.rope, s.opt, c.d);
    cuda::gqa_backward(dx_g.data(), dw_g, s.dy.data(), cr, s.x.data(), s.w, s.doc_ptr(), nullptr, s.rope, s.opt, c.d);
    EXPECT_BITS(dx_r, dx_g, "dx");
    EXPECT_BITS(dflat_r, dflat_g, "weight gradients (flat)");
  }
}

// ------------------------------------------------------------------ determinism
TEST(LayersCuda, DeterministicKernelsGiveTheSameBitsOnEveryRun) {
  SKIP_WITHOUT_GPU();
  const GemmCase c{130, 257, 300};
  const Vec x = randn(c.M * c.K, 91), w = randn(c.N * c.K, 92), dy = randn(c.M * c.N, 93);
  for (const PrecisionCase& pc : kPrecisions) {
    SCOPED_TRACE(pc.name);
    Vec first_y, first_dw;
    for (int run = 0; run < 3; ++run) {
      Vec y(c.M * c.N), dw(c.N * c.K, 0.f);
      cuda::linear_forward(y.data(), x.data(), w.data(), nullptr, c.M, c.N, c.K, pc.p);
      cuda::linear_backward(nullptr, dw.data(), nullptr, dy.data(), x.data(), w.data(), c.M, c.N, c.K, pc.p);
      if (run == 0) {
        first_y = y, first_dw = dw;
      } else {
        EXPECT_BITS(first_y, y, "forward run " + std::to_string(run));
        EXPECT_BITS(first_dw, dw, "wgrad run " + std::to_string(run));
      }
    }
  }
  const GqaSetup s(kGqaCases[2]);
  const ref::GqaDims& d = kGqaCases[2].d;
  Vec first;
  for (int run = 0; run < 3; ++run) {
    Vec y(d.T * d.C);
    ref::GqaCache cache;
    cuda::gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc_ptr(), nullptr, s.rope, s.opt, d);
    if (run == 0) first = y;
    else EXPECT_BITS(first, y, "gqa forward run " + std::to_string(run));
  }
}

// ------------------------------------------------------------------ fast mode
TEST(LayersCuda, CublasBf16GemmStaysWithinItsDerivedBound) {
  SKIP_WITHOUT_GPU();
  for (const GemmCase& c : kGemmCases) {
    SCOPED_TRACE("CublasBf16_" + c.name());
    const Vec x = randn(c.M * c.K, 101), w = randn(c.N * c.K, 102, 0.05f);
    Vec y_ref(c.M * c.N), y_fast(c.M * c.N);
    ref::linear_forward(y_ref.data(), x.data(), w.data(), nullptr, c.M, c.N, c.K, {ref::Precision::bf16, false});
    cuda::matmul_forward_cublas_bf16(y_fast.data(), x.data(), w.data(), c.M, c.N, c.K);
    const std::vector<double> bound = cuda::fast_gemm_bound(x.data(), w.data(), c.M, c.N, c.K);
    for (std::size_t i = 0; i < y_ref.size(); ++i)
      ASSERT_LE(std::fabs(double(y_fast[i]) - double(y_ref[i])), bound[i]) << "element " << i;
  }
}

}  // namespace
}  // namespace preflight
