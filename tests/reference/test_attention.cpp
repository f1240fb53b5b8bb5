// MHA / GQA / MQA attention (attention.hpp) and the GPT-style layers (gpt_layers.hpp):
// forward vs float64 oracle within a derived bound, backward vs central finite differences
// of the float64 oracle, 1 vs 2 threads and repeats bit-identical, packed documents equal to
// separate runs, GQA equal to MHA with duplicated key/value heads, both RoPE layouts.
// Legend: T = tokens, C = hidden, H = query heads, G = key/value heads, Dh = head_dim,
//         F = MLP width.
#include <cmath>
#include <string>
#include <vector>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/layers/attention.hpp"
#include "reference/layers/gpt_layers.hpp"
#include "reference/layers/rope.hpp"
#include "tests/reference/oracle64.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

RopeTable table_for(int64_t Dh, int64_t T, bool yarn) {
  ModelConfig c;
  c.rope_theta = 10000.0;
  if (yarn) c.rope_scaling.type = RopeScalingKind::yarn, c.rope_scaling.factor = 40.0;
  return rope_table(c, Dh, T);
}

// ---------------------------------------------------------------- RoPE layouts
TEST(RopeLayout, HalfRotatesPairsIAndIPlusHalfAndBackwardIsTranspose) {
  const auto table = table_for(8, 16, false);
  std::vector<int32_t> pos = {3, 7};
  auto x = randn(2 * 2 * 8, 1);  // (T=2, NH=2, D=8)
  const auto x0 = x;
  rope_forward(x.data(), pos.data(), table, 2, 2, 16, 8, RopeLayout::half);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 4; ++i) {
        const float c = table.cos[pos[t] * 4 + i], s = table.sin[pos[t] * 4 + i];
        const float a = x0[t * 16 + h * 8 + i], b = x0[t * 16 + h * 8 + i + 4];
        ASSERT_EQ(x[t * 16 + h * 8 + i], a * c - b * s);
        ASSERT_EQ(x[t * 16 + h * 8 + i + 4], a * s + b * c);  // = HF's b·c + a·s (addition commutes)
      }
  // The interleaved overload is rope.hpp's.
  auto y = x0, z = x0;
  rope_forward(y.data(), pos.data(), table, 2, 2, 16, 8, RopeLayout::interleaved);
  rope_forward(z.data(), pos.data(), table, 2, 2, 16, 8);
  EXPECT_TRUE(bits_equal(y, z));
  auto g = randn(32, 2);
  const auto g0 = g;
  rope_backward(g.data(), pos.data(), table, 2, 2, 16, 8, RopeLayout::half);
  double lhs = 0, rhs = 0;
  for (int i = 0; i < 32; ++i) lhs += double(x[i]) * g0[i], rhs += double(x0[i]) * g[i];
  EXPECT_NEAR(lhs, rhs, 1e-5);
}

// ---------------------------------------------------------------- float64 attention oracle
struct Gqa64 {
  GqaDims d;
  GqaOptions opt;
  std::vector<float> cos, sin;  // the float tables, used exactly (part of the definition)
  double scale = 0;
  std::vector<int64_t> s0;
  std::vector<int32_t> pos;
  mutable double max_raw_logit = 0;  // max |q·k·scale| of the last forward

  Vec forward(const Vec& x, const Vec& flat) const {
    const auto sz = gqa_weight_sizes(d, opt);
    std::vector<Vec> p;
    const double* cur = flat.data();
    for (auto s : sz) p.emplace_back(cur, cur + s), cur += s;
    const int64_t T = d.T, H = d.H, G = d.G, Dh = d.Dh, HD = H * Dh, GD = G * Dh, R = H / G, half = Dh / 2;
    const double eps = double(opt.eps), cap = double(opt.softcap);
    auto bias = [&](int i) { return opt.bias ? p[i].data() : nullptr; };
    Vec q = oracle::linear(x, p[0], T, HD, d.C, bias(4));
    Vec k = oracle::linear(x, p[1], T, GD, d.C, bias(5));
    const Vec v = oracle::linear(x, p[2], T, GD, d.C, bias(6));
    if (opt.qk_norm) {
      q = oracle::rmsnorm(q, p[8], eps, T * H, Dh);
      k = oracle::rmsnorm(k, p[9], eps, T * G, Dh);
    }
    auto rot = [&](double* vv, int64_t t) {
      for (int64_t i = 0; i < half; ++i) {
        const double c = cos[pos[t] * half + i], s = sin[pos[t] * half + i];
        double* a = opt.rope_layout == RopeLayout::half ? &vv[i] : &vv[2 * i];
        double* b = opt.rope_layout == RopeLayout::half ? &vv[i + half] : &vv[2 * i + 1];
        const double a0 = *a, b0 = *b;
        *a = a0 * c - b0 * s, *b = a0 * s + b0 * c;
      }
    };
    if (opt.rope)
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < H; ++h) rot(&q[(t * H + h) * Dh], t);
        for (int64_t g = 0; g < G; ++g) rot(&k[(t * G + g) * Dh], t);
      }
    Vec o(T * HD, 0.0);
    max_raw_logit = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t g = h / R;
        std::vector<double> l;
        double m = -INFINITY;
        for (int64_t s = s0[t]; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < Dh; ++i) dot += q[(t * H + h) * Dh + i] * k[(s * G + g) * Dh + i];
          double r = dot * scale;
          max_raw_logit = std::max(max_raw_logit, std::fabs(r));
          if (cap > 0) r = cap * std::tanh(r / cap);
          l.push_back(r), m = std::max(m, r);
        }
        double z = 0;
        for (auto& e : l) e = std::exp(e - m), z += e;
        for (int64_t s = s0[t]; s <= t; ++s)
          for (int64_t e = 0; e < Dh; ++e) o[(t * H + h) * Dh + e] += l[s - s0[t]] / z * v[(s * G + g) * Dh + e];
      }
    if (opt.output_gate) {
      const Vec a = oracle::linear(x, p[10], T, H, d.C);
      for (int64_t i = 0; i < T * HD; ++i) o[i] *= 1.0 / (1.0 + std::exp(-a[i / Dh]));
    }
    return oracle::linear(o, p[3], T, d.C, HD, bias(7));
  }
};

struct AttnCase {
  int64_t T, C, H, G, Dh;
  bool rope;
  RopeLayout layout;
  bool qk_norm, gate, bias;
  float cap;
  bool yarn;
  std::vector<int32_t> doc;  // empty = one document
  std::string name() const {
    std::string n = "T" + std::to_string(T) + "_C" + std::to_string(C) + "_H" + std::to_string(H) + "_G" +
                    std::to_string(G) + "_Dh" + std::to_string(Dh);
    n += G == H ? "_mha" : G == 1 ? "_mqa" : "_gqa";
    n += !rope ? "_norope" : layout == RopeLayout::half ? "_ropehalf" : "_ropeinterleaved";
    if (qk_norm) n += "_qknorm";
    if (gate) n += "_gate";
    if (bias) n += "_bias";
    if (cap > 0) n += "_softcap" + std::to_string(int(cap));
    if (yarn) n += "_yarn";
    if (!doc.empty()) n += "_docs" + std::to_string(doc.back() + 1);
    return n;
  }
};

const AttnCase kAttnCases[] = {
    {5, 16, 2, 2, 8, true, RopeLayout::half, false, false, false, 0.f, false, {}},
    {7, 24, 4, 2, 6, true, RopeLayout::interleaved, true, false, false, 0.f, false, {0, 0, 0, 1, 1, 2, 2}},
    {9, 12, 3, 1, 4, true, RopeLayout::half, false, true, true, 5.f, true, {}},
    {6, 20, 2, 2, 10, false, RopeLayout::half, false, false, true, 0.f, false, {}},  // GPT style
    {33, 40, 4, 2, 10, true, RopeLayout::half, true, true, true, 3.f, false,
     {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2}},
    {40, 64, 8, 2, 16, true, RopeLayout::half, true, false, false, 0.f, false, {}},  // forward/threads only
};

struct AttnSetup {
  GqaDims d;
  GqaOptions opt;
  RopeTable rope;
  std::vector<float> x, flat;
  GqaWeights w;
  Gqa64 o64;
  explicit AttnSetup(const AttnCase& k) {
    d = {k.T, k.C, k.H, k.G, k.Dh};
    opt.rope = k.rope, opt.rope_layout = k.layout, opt.qk_norm = k.qk_norm, opt.output_gate = k.gate;
    opt.bias = k.bias, opt.softcap = k.cap, opt.eps = 1e-6f;
    rope = table_for(k.Dh, k.T, k.yarn);
    x = randn(k.T * k.C, 1);
    const auto sz = gqa_weight_sizes(d, opt);
    int64_t total = 0;
    for (auto s : sz) total += s;
    flat = randn(total, 2, 0.3f);
    int64_t off = 0;
    for (int i = 0; i < 11; ++i) {  // norm weights around 1
      if (i == 8 || i == 9)
        for (int64_t j = 0; j < sz[i]; ++j) flat[off + j] = 1.0f + 0.2f * flat[off + j];
      off += sz[i];
    }
    w = gqa_weights_view(flat.data(), d, opt);
    o64.d = d, o64.opt = opt, o64.cos = rope.cos, o64.sin = rope.sin;
    o64.scale = double(gqa_softmax_scale(d, rope));
    o64.s0.assign(k.T, 0), o64.pos.assign(k.T, 0);
    for (int64_t t = 0; t < k.T; ++t) {
      if (!k.doc.empty() && t > 0) o64.s0[t] = k.doc[t] == k.doc[t - 1] ? o64.s0[t - 1] : t;
      o64.pos[t] = int32_t(t - o64.s0[t]);
    }
  }
  const int32_t* doc(const AttnCase& k) const { return k.doc.empty() ? nullptr : k.doc.data(); }
};

class Attention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(Attention, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto& k = GetParam();
  AttnSetup s(k);
  std::vector<float> y(k.T * k.C);
  GqaCache cache;
  gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, s.opt, s.d);
  const Vec want = s.o64.forward(to_double(s.x), to_double(s.flat));
  // Bound (as for MLA). The longest chain of roundings along x → q/k → logit → o → out is
  // the sum of the dot lengths' dot_roundings plus ~10 elementwise steps per stage (norm,
  // RoPE, scale, softcap's divide/tanh/multiply, exp, divide, gate): n = Σ + 40. Relative
  // errors of q and k enter the logits as δl ≤ |r|·rel (softcap's derivative is ≤ 1, so it
  // never amplifies), and the softmax amplifies by at most (1 + 2·max|r|). With M = max|out|:
  //   |out − exact| ≤ γ(n)·(1 + 2·max|r|)·M·4    (4: the norms' conditioning and Σ|·|/|Σ| slack)
  const double n = dot_roundings(k.C) + 2 * dot_roundings(k.Dh) + dot_roundings(k.T) + dot_roundings(k.H * k.Dh) + 40;
  double M = 0;
  for (double v : want) M = std::max(M, std::fabs(v));
  const double bound = gamma32(n) * (1 + 2 * s.o64.max_raw_logit) * M * 4;
  double err = 0;
  for (size_t i = 0; i < y.size(); ++i) err = std::max(err, std::fabs(y[i] - want[i]));
  EXPECT_LE(err, bound);
  if (k.cap > 0) {
    EXPECT_GT(s.o64.max_raw_logit, 0.5 * k.cap) << "the case should exercise the soft-cap";
  }
  RecordProperty("max_err_over_bound", std::to_string(err / bound));
}

TEST_P(Attention, OneAndTwoThreadsAndRepeatsBitIdenticalInEveryPrecision) {
  const auto& k = GetParam();
  AttnSetup s(k);
  for (Precision prec : {Precision::fp32, Precision::fp8}) {
    s.opt.precision.kind = prec;
    auto run = [&] {
      std::vector<float> y(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
      GqaCache cache;
      gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, s.opt, s.d);
      const auto g = randn(k.T * k.C, 3);
      gqa_backward(dx.data(), gqa_weights_view(dflat.data(), s.d, s.opt), g.data(), cache, s.x.data(), s.w, s.doc(k),
                   nullptr, s.rope, s.opt, s.d);
      for (auto* v : {&dx, &dflat}) y.insert(y.end(), v->begin(), v->end());
      return y;
    };
    const auto one = with_threads(1, run);
    EXPECT_TRUE(bits_equal(one, with_threads(2, run))) << to_string(prec);
    EXPECT_TRUE(bits_equal(one, with_threads(2, run))) << to_string(prec);
  }
}

// Cases a test applies to are chosen at instantiation (below), so a skipped test means "no GPU"
// and never "this case does not apply".
class AttentionPacked : public Attention {};  // cases with several documents
class AttentionGrouped : public Attention {};  // cases with G < H
class AttentionFd : public Attention {};  // cases a float64 finite difference of every entry fits (T·C·H ≤ 8000)

TEST_P(AttentionPacked, PackedDocumentsEqualSeparateRunsBitForBit) {
  const auto& k = GetParam();
  ASSERT_FALSE(k.doc.empty());
  AttnSetup s(k);
  std::vector<float> y(k.T * k.C);
  GqaCache cache;
  gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, s.opt, s.d);
  for (int64_t a = 0; a < k.T;) {
    int64_t b = a;
    while (b < k.T && k.doc[b] == k.doc[a]) ++b;
    GqaDims d1 = s.d;
    d1.T = b - a;
    std::vector<float> y1(d1.T * k.C);
    GqaCache c1;
    gqa_forward(y1.data(), c1, &s.x[a * k.C], s.w, nullptr, nullptr, s.rope, s.opt, d1);
    ASSERT_TRUE(bits_equal(y1, std::vector<float>(y.begin() + a * k.C, y.begin() + b * k.C))) << "doc at " << a;
    a = b;
  }
}

TEST_P(AttentionGrouped, GroupedHeadsEqualMhaWithDuplicatedKeyValueHeadsBitForBit) {
  const auto& k = GetParam();
  ASSERT_LT(k.G, k.H);
  AttnSetup s(k);
  std::vector<float> y(k.T * k.C), ym(k.T * k.C);
  GqaCache cache, cm;
  gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, s.opt, s.d);
  GqaDims dm = s.d;
  dm.G = k.H;
  std::vector<float> fm;
  for (auto sz : gqa_weight_sizes(dm, s.opt)) fm.resize(fm.size() + sz);
  GqaWeights wm = gqa_weights_view(fm.data(), dm, s.opt);
  const int64_t R = k.H / k.G, Dh = k.Dh, C = k.C, H = k.H;
  auto copy = [](float* dst, const float* src, int64_t n) { std::copy(src, src + n, dst); };
  copy(wm.wq, s.w.wq, H * Dh * C), copy(wm.wo, s.w.wo, C * H * Dh);
  for (int64_t h = 0; h < H; ++h) {  // head h gets key/value head h / R
    copy(wm.wk + h * Dh * C, s.w.wk + (h / R) * Dh * C, Dh * C);
    copy(wm.wv + h * Dh * C, s.w.wv + (h / R) * Dh * C, Dh * C);
    if (k.bias) copy(wm.bk + h * Dh, s.w.bk + (h / R) * Dh, Dh), copy(wm.bv + h * Dh, s.w.bv + (h / R) * Dh, Dh);
  }
  if (k.bias) copy(wm.bq, s.w.bq, H * Dh), copy(wm.bo, s.w.bo, C);
  if (k.qk_norm) copy(wm.q_norm, s.w.q_norm, Dh), copy(wm.k_norm, s.w.k_norm, Dh);
  if (k.gate) copy(wm.w_gate, s.w.w_gate, H * C);
  gqa_forward(ym.data(), cm, s.x.data(), wm, s.doc(k), nullptr, s.rope, s.opt, dm);
  EXPECT_TRUE(bits_equal(y, ym));
}

TEST_P(AttentionFd, BackwardMatchesFiniteDifferencesOfFloat64Oracle) {
  const auto& k = GetParam();
  AttnSetup s(k);
  std::vector<float> y(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
  GqaCache cache;
  gqa_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, s.opt, s.d);
  const auto g = randn(k.T * k.C, 3);
  gqa_backward(dx.data(), gqa_weights_view(dflat.data(), s.d, s.opt), g.data(), cache, s.x.data(), s.w, s.doc(k),
               nullptr, s.rope, s.opt, s.d);
  const Vec xd = to_double(s.x), fd = to_double(s.flat), gd = to_double(g);
  // h = 1e-3 on O(0.3-1) inputs and weights: truncation h²/6·|f'''| ≲ 1e-6 (the soft-cap's
  // tanh and the sigmoid gate are smooth with O(1) derivatives); the fp32 backward is a chain
  // of ~12 dots of length ≤ 40 (γ ≈ 3e-6 relative to magnitude sums that exceed |grad| by at
  // most ~30 here): tolerance 2e-4 abs + 1e-3 rel, as for MLA.
  expect_grad_matches_fd("dx", dx, [&](const Vec& v) { return oracle::weighted_sum(gd, s.o64.forward(v, fd)); }, xd,
                         1e-3, 2e-4, 1e-3);
  expect_grad_matches_fd("dweights", dflat,
                         [&](const Vec& v) { return oracle::weighted_sum(gd, s.o64.forward(xd, v)); }, fd, 1e-3, 2e-4,
                         1e-3, k.T > 20 ? 5 : 1);
}

template <class Pred>
std::vector<AttnCase> attn_cases_where(Pred keep) {
  std::vector<AttnCase> v;
  for (const AttnCase& k : kAttnCases)
    if (keep(k)) v.push_back(k);
  return v;
}
const auto attn_name = [](const auto& info) { return info.param.name(); };
INSTANTIATE_TEST_SUITE_P(Cases, Attention, ::testing::ValuesIn(kAttnCases), attn_name);
INSTANTIATE_TEST_SUITE_P(Cases, AttentionPacked,
                         ::testing::ValuesIn(attn_cases_where([](const AttnCase& k) { return !k.doc.empty(); })),
                         attn_name);
INSTANTIATE_TEST_SUITE_P(Cases, AttentionGrouped,
                         ::testing::ValuesIn(attn_cases_where([](const AttnCase& k) { return k.G < k.H; })), attn_name);
INSTANTIATE_TEST_SUITE_P(Cases, AttentionFd,
                         ::testing::ValuesIn(attn_cases_where([](const AttnCase& k) { return k.T * k.C * k.H <= 8000; })),
                         attn_name);

TEST(Attention, ShapeAndOptionMismatchesThrowNamingTheTensor) {
  GqaDims d{4, 8, 3, 2, 4};
  GqaOptions o;
  std::vector<float> flat(1000), x(32), y(32);
  GqaCache c;
  const auto rope = table_for(4, 4, false);
  try {
    gqa_forward(y.data(), c, x.data(), gqa_weights_view(flat.data(), d, o), nullptr, nullptr, rope, o, d);
    ADD_FAILURE() << "G = 2 does not divide H = 3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads 2 must divide num_attention_heads 3"), std::string::npos)
        << e.what();
  }
  d.H = 4;
  GqaOptions q = o;
  q.qk_norm = true;
  EXPECT_THROW(gqa_forward(y.data(), c, x.data(), gqa_weights_view(flat.data(), d, o), nullptr, nullptr, rope, q, d),
               Error);  // weights laid out without the norm tensors
  const auto rope8 = table_for(8, 4, false);
  EXPECT_THROW(gqa_forward(y.data(), c, x.data(), gqa_weights_view(flat.data(), d, o), nullptr, nullptr, rope8, o, d),
               Error);  // table dim 8 != head_dim 4
  ModelConfig cfg;
  cfg.attention = AttentionKind::mla;
  EXPECT_THROW(GqaDims::from(cfg, 4), Error);
}

TEST(Attention, OptionsFromPresets) {
  const auto llama = load_model_config("llama3-8b");
  const GqaDims d = GqaDims::from(llama, 16);
  EXPECT_EQ(d.H, 32);
  EXPECT_EQ(d.G, 8);
  EXPECT_EQ(d.Dh, 128);
  const GqaOptions o = GqaOptions::from(llama);
  EXPECT_TRUE(o.rope);
  EXPECT_EQ(o.rope_layout, RopeLayout::half);  // HF Llama checkpoints: rotate_half
  EXPECT_FALSE(o.bias || o.qk_norm || o.output_gate);
  EXPECT_EQ(o.softcap, 0.0f);
  const auto gpt = load_model_config("gpt-1.7b");
  const GqaOptions g = GqaOptions::from(gpt);
  EXPECT_FALSE(g.rope);  // learned absolute positions
  EXPECT_TRUE(g.bias);
  EXPECT_EQ(GqaDims::from(gpt, 4).G, GqaDims::from(gpt, 4).H);  // MHA
}

// ---------------------------------------------------------------- GPT-style layers
Vec layernorm64(const Vec& x, const Vec& w, const Vec& b, double eps, int64_t T, int64_t C) {
  Vec y(T * C);
  for (int64_t t = 0; t < T; ++t) {
    double mu = 0, var = 0;
    for (int64_t i = 0; i < C; ++i) mu += x[t * C + i];
    mu /= double(C);
    for (int64_t i = 0; i < C; ++i) var += (x[t * C + i] - mu) * (x[t * C + i] - mu);
    const double r = 1.0 / std::sqrt(var / double(C) + eps);
    for (int64_t i = 0; i < C; ++i) y[t * C + i] = (x[t * C + i] - mu) * r * w[i] + b[i];
  }
  return y;
}

double gelu64(double v) {  // the tanh approximation with num::gelu's float constants
  const double c1 = double(0x1.6e4e26p-5f), c0 = double(0x1.988454p+0f) / 2;
  return 0.5 * v * (1.0 + std::tanh(c0 * (v + c1 * v * v * v)));
}
// gelu'(v) = σ(a) + v·σ(a)·σ(−a)·a'(v), a = 2c0·(v + c1·v³): the sigmoid form keeps double
// accurate for v ≪ 0, where 1 + tanh would cancel. Returns the two terms' magnitude in *mag.
double gelu_grad64(double v, double* mag = nullptr) {
  const double c1 = double(0x1.6e4e26p-5f), c2 = double(0x1.988454p+0f);  // c2 = 2c0
  const double a = c2 * (v + c1 * v * v * v);
  const double sp = 1.0 / (1.0 + std::exp(-a)), sm = 1.0 / (1.0 + std::exp(a));
  const double t = v * sp * sm * c2 * (1 + 3 * c1 * v * v);
  if (mag) *mag = sp + std::fabs(t);
  return sp + t;
}

struct NormCase {
  int64_t T, C;
};
class LayerNorm : public ::testing::TestWithParam<NormCase> {};

TEST_P(LayerNorm, ForwardBoundBackwardFiniteDifferencesAndThreads) {
  const auto [T, C] = GetParam();
  auto x = randn(T * C, 5, 2.0f);
  for (auto& v : x) v += 3.0f;  // a mean far from 0: the two-pass variance must not cancel
  const auto w = randn(C, 6, 0.2f), b = randn(C, 7, 0.5f), g = randn(T * C, 8);
  std::vector<float> wv(w), y(T * C), mean(T), rstd(T);
  for (auto& v : wv) v += 1.0f;
  layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), wv.data(), b.data(), 1e-5f, T, C);
  const Vec want = layernorm64(to_double(x), to_double(wv), to_double(b), double(1e-5f), T, C);
  // Bound: mean: row_sum + divide (C/32 + 5 + 1 roundings, relative to Σ|x|/C ≤ max|x|);
  // d_i = x_i − mean carries that absolute error plus one rounding; var: row_dot of d (C/32
  // + 5 lane steps + divide); rsqrt, two products and the bias add: ~6 more. The normalised
  // value's error is ≤ γ(n)·(max|x − mean|/σ + |xh|)·|w| + |b|·u, n = C/32 + 20.
  for (int64_t t = 0; t < T; ++t) {
    double sig = 0, dm = 0;
    for (int64_t i = 0; i < C; ++i) dm = std::max(dm, std::fabs(double(x[t * C + i]))), sig += 0;
    const double r = double(rstd[t]);
    for (int64_t i = 0; i < C; ++i) {
      const double n = double(C) / 32 + 20;
      const double bound = gamma32(n) * (dm * r + std::fabs(want[t * C + i])) * std::fabs(wv[i]) * 2 +
                           kU32 * std::fabs(want[t * C + i]) * 2;
      ASSERT_LE(std::fabs(y[t * C + i] - want[t * C + i]), bound) << t << "," << i;
    }
  }
  auto run = [&] {
    std::vector<float> yy(T * C), mu(T), rs(T), dx(T * C, 0.f), dw(C, 0.f), db(C, 0.f);
    layernorm_forward(yy.data(), mu.data(), rs.data(), x.data(), wv.data(), b.data(), 1e-5f, T, C);
    layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), wv.data(), mu.data(), rs.data(), T, C);
    for (auto* v : {&dx, &dw, &db}) yy.insert(yy.end(), v->begin(), v->end());
    return yy;
  };
  const auto one = with_threads(1, run);
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, run()));
  const std::vector<float> dx(one.begin() + T * C, one.begin() + 2 * T * C),
      dw(one.begin() + 2 * T * C, one.begin() + 2 * T * C + C), db(one.begin() + 2 * T * C + C, one.end());
  const Vec xd = to_double(x), wd = to_double(wv), bd = to_double(b), gd = to_double(g);
  const double eps = double(1e-5f);
  // h = 1e-3 on inputs of spread 2 (σ ≈ 2): truncation h²/6·|f'''| ≲ 1e-6·|w|/σ³; the fp32
  // backward is two row reductions of length C and a T-long dot per weight: 1e-5 abs + 1e-4 rel.
  expect_grad_matches_fd("dx", dx, [&](const Vec& v) { return oracle::weighted_sum(gd, layernorm64(v, wd, bd, eps, T, C)); },
                         xd, 1e-3, 1e-5, 1e-4);
  expect_grad_matches_fd("dw", dw, [&](const Vec& v) { return oracle::weighted_sum(gd, layernorm64(xd, v, bd, eps, T, C)); },
                         wd, 1e-3, 1e-5, 1e-4);
  expect_grad_matches_fd("db", db, [&](const Vec& v) { return oracle::weighted_sum(gd, layernorm64(xd, wd, v, eps, T, C)); },
                         bd, 1e-3, 1e-5, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Cases, LayerNorm, ::testing::Values(NormCase{3, 7}, NormCase{5, 33}, NormCase{4, 130}),
                         [](const auto& info) {
                           return "T" + std::to_string(info.param.T) + "_C" + std::to_string(info.param.C);
                         });

TEST(GeluMlp, GeluGradWithinDerivedBoundOfFloat64Derivative) {
  // gelu_grad composes ~12 roundings and two sigmoids (each within a few ulps); its argument a
  // carries 4 roundings, and d log σ(±a)/da ≤ 1, so σ(±a) gain a relative error |a|·γ(4).
  // Absolute error ≤ γ(16)·(1 + |a|)·(|sp| + |x·sp·sm·a'|): relative to the magnitude of the two
  // terms, not to the result, which crosses zero near x = −0.75 (cancellation is the only
  // loss); plus 2^-126 absolute for x ≲ −10, where the products reach fp32's subnormal range.
  double worst = 0;
  for (int i = -24000; i <= 24000; ++i) {
    const float x = float(i) * 5e-4f;
    double mag = 0;
    const double want = gelu_grad64(double(x), &mag);
    const double err = std::fabs(gelu_grad(x) - want);
    const double a = double(0x1.988454p+0f) * (x + double(0x1.6e4e26p-5f) * double(x) * x * x);
    const double bound = gamma32(16) * (1 + std::fabs(a)) * mag + 0x1p-126;
    worst = std::max(worst, err / bound);
    ASSERT_LE(err, bound) << "x = " << x;
  }
  EXPECT_EQ(gelu_grad(20.0f), 1.0f);
  EXPECT_EQ(gelu_grad(-20.0f), 0.0f);
  RecordProperty("gelu_grad_worst_over_bound", std::to_string(worst));
}

TEST(GeluMlp, ForwardBoundBackwardFiniteDifferencesAndThreads) {
  const int64_t T = 7, C = 20, F = 36;
  const auto x = randn(T * C, 11), w1 = randn(F * C, 12, 0.3f), b1 = randn(F, 13, 0.3f), w2 = randn(C * F, 14, 0.3f),
             b2 = randn(C, 15, 0.3f), g = randn(T * C, 16);
  std::vector<float> y(T * C), h(T * F), act(T * F);
  gelu_mlp_forward(y.data(), h.data(), act.data(), x.data(), w1.data(), b1.data(), w2.data(), b2.data(), T, C, F);
  auto fwd64 = [&](const Vec& xv, const Vec& w1v, const Vec& b1v, const Vec& w2v, const Vec& b2v) {
    Vec hh = oracle::linear(xv, w1v, T, F, C, b1v.data());
    for (auto& v : hh) v = gelu64(v);
    return oracle::linear(hh, w2v, T, C, F, b2v.data());
  };
  const Vec xd = to_double(x), w1d = to_double(w1), b1d = to_double(b1), w2d = to_double(w2), b2d = to_double(b2),
            gd = to_double(g);
  const Vec want = fwd64(xd, w1d, b1d, w2d, b2d);
  // Bound: |h| error ≤ γ(dot_roundings(C)+1)·Σ|x w1|; gelu's relative error ≤ 2^-21 and
  // |gelu'| ≤ 1.13 carries h's error; then the W2 dot: γ(dot_roundings(F)+1)·Σ|act w2|.
  // Taken with the magnitude sums of the worst row, times 2 for the Σ|·| slack.
  double hmag = 0, amag = 0, M = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t f = 0; f < F; ++f) {
      double s = std::fabs(b1[f]);
      for (int64_t c = 0; c < C; ++c) s += std::fabs(x[t * C + c] * w1[f * C + c]);
      hmag = std::max(hmag, s);
    }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double s = std::fabs(b2[c]);
      for (int64_t f = 0; f < F; ++f) s += std::fabs(act[t * F + f] * w2[c * F + f]);
      amag = std::max(amag, s);
    }
  double w2row = 0;
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t f = 0; f < F; ++f) s += std::fabs(w2[c * F + f]);
    w2row = std::max(w2row, s);
  }
  for (double v : want) M = std::max(M, std::fabs(v));
  const double bound = 2 * (gamma32(dot_roundings(C) + 1) * hmag * 1.13 * w2row + 0x1p-21 * hmag * w2row +
                            gamma32(dot_roundings(F) + 1) * amag);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_LE(std::fabs(y[i] - want[i]), bound) << i;
  auto run = [&] {
    std::vector<float> yy(T * C), hh(T * F), aa(T * F), dx(T * C, 0.f), dw1(F * C, 0.f), db1(F, 0.f), dw2(C * F, 0.f),
        db2(C, 0.f);
    gelu_mlp_forward(yy.data(), hh.data(), aa.data(), x.data(), w1.data(), b1.data(), w2.data(), b2.data(), T, C, F);
    gelu_mlp_backward(dx.data(), dw1.data(), db1.data(), dw2.data(), db2.data(), g.data(), hh.data(), aa.data(),
                      x.data(), w1.data(), w2.data(), T, C, F);
    for (auto* v : {&dx, &dw1, &db1, &dw2, &db2}) yy.insert(yy.end(), v->begin(), v->end());
    return yy;
  };
  const auto one = with_threads(1, run);
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, run()));
  auto part = [&](size_t off, size_t n) { return std::vector<float>(one.begin() + off, one.begin() + off + n); };
  size_t off = T * C;
  const auto dx = part(off, T * C);
  const auto dw1 = part(off += T * C, F * C);
  const auto db1 = part(off += F * C, F);
  const auto dw2 = part(off += F, C * F);
  const auto db2 = part(off += C * F, C);
  // h = 1e-3: truncation h²/6·|f'''| ≲ 1e-6; fp32 chains of dots of length ≤ 36: 1e-4 abs + 1e-3 rel.
  auto L = [&](const Vec& a, const Vec& b, const Vec& c, const Vec& d2, const Vec& e) {
    return oracle::weighted_sum(gd, fwd64(a, b, c, d2, e));
  };
  expect_grad_matches_fd("dx", dx, [&](const Vec& v) { return L(v, w1d, b1d, w2d, b2d); }, xd, 1e-3, 1e-4, 1e-3);
  expect_grad_matches_fd("dw1", dw1, [&](const Vec& v) { return L(xd, v, b1d, w2d, b2d); }, w1d, 1e-3, 1e-4, 1e-3, 3);
  expect_grad_matches_fd("db1", db1, [&](const Vec& v) { return L(xd, w1d, v, w2d, b2d); }, b1d, 1e-3, 1e-4, 1e-3);
  expect_grad_matches_fd("dw2", dw2, [&](const Vec& v) { return L(xd, w1d, b1d, v, b2d); }, w2d, 1e-3, 1e-4, 1e-3, 3);
  expect_grad_matches_fd("db2", db2, [&](const Vec& v) { return L(xd, w1d, b1d, w2d, v); }, b2d, 1e-3, 1e-4, 1e-3);
}

TEST(PositionEmbedding, AddsRowsExactlyAndBackwardSumsInTokenOrder) {
  const int64_t T = 6, C = 5, P = 8;
  const auto table = randn(P * C, 21), x0 = randn(T * C, 22), g = randn(T * C, 23);
  const std::vector<int32_t> pos = {0, 1, 2, 0, 1, 7};  // two packed documents, then position 7
  auto x = x0;
  position_embedding_forward(x.data(), pos.data(), table.data(), T, C, P);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(x[t * C + c], x0[t * C + c] + table[pos[t] * C + c]);
  std::vector<float> dt(P * C, 0.f);
  position_embedding_backward(dt.data(), g.data(), pos.data(), T, C, P);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(dt[0 * C + c], (0.0f + g[0 * C + c]) + g[3 * C + c]);
    EXPECT_EQ(dt[7 * C + c], g[5 * C + c]);
    EXPECT_EQ(dt[5 * C + c], 0.0f);
  }
  auto y = x0;
  position_embedding_forward(y.data(), nullptr, table.data(), T, C, P);  // null = 0..T-1
  EXPECT_EQ(y[5 * C], x0[5 * C] + table[5 * C]);
  const std::vector<int32_t> bad = {0, 1, 2, 3, 4, 8};
  EXPECT_THROW(position_embedding_forward(y.data(), bad.data(), table.data(), T, C, P), Error);
}

}  // namespace
}  // namespace preflight::ref::test
