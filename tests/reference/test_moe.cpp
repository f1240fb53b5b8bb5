// MoE router and block: the published definition on hand-built inputs (one test per mistake
// listed in shared/facts/deepseek-v3.md), forward vs float64 oracle under a derived bound,
// backward vs central finite differences of the oracle, dispatch/combine order, batch
// invariance, thread/repeat bit-identity, balance losses, bias update, bad shapes.
// Legend: T = tokens, C = hidden, E = routed experts, K = top-k, G = groups, TG = kept groups,
//         I = expert width, S = shared width.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/moe.hpp"
#include "reference/layers/prims.hpp"
#include "reference/layers/router.hpp"
#include "reference/layers/swiglu.hpp"
#include "tests/reference/oracle64_moe.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

constexpr double kUlp = 2 * kU32;  // one ulp relative: every px:: elementwise function is ≤ 0.6 ulp

RouterDims router_dims(int64_t E, int64_t K, int64_t G, int64_t TG, bool norm = true, float scale = 1.0f) {
  RouterDims d;
  d.T = 1, d.C = 1, d.E = E, d.K = K, d.G = G, d.TG = TG, d.norm_topk = norm, d.route_scale = scale;
  return d;
}

std::vector<int32_t> select(const std::vector<float>& s, const std::vector<float>& bias, const RouterDims& d,
                            std::vector<float>* w = nullptr) {
  std::vector<int32_t> idx(d.K);
  std::vector<float> wt(d.K);
  float sigma = 0;
  router_select(idx.data(), wt.data(), &sigma, s.data(), bias.empty() ? nullptr : bias.data(), d);
  if (w) *w = wt;
  return idx;
}

// ---------------------------------------------------------------- the published definition
// Mistake 1 (facts): the selection bias used in the weights. Weights must be the UNBIASED
// scores of the selected experts, normalised, times route_scale.
TEST(MoeRouter, BiasSelectsButNeverWeighs) {
  const auto d = router_dims(4, 2, 1, 1, true, 2.5f);
  const std::vector<float> s = {0.9f, 0.5f, 0.6f, 0.1f}, bias = {-0.5f, 0.3f, 0.0f, 0.0f};
  std::vector<float> w;
  const auto idx = select(s, bias, d, &w);  // biased: {0.4, 0.8, 0.6, 0.1} → experts 1, 2
  ASSERT_EQ(idx, (std::vector<int32_t>{1, 2}));
  const float sigma = 0.5f + 0.6f;  // row_sum of two values: one add
  EXPECT_EQ(w[0], (0.5f / sigma) * 2.5f);
  EXPECT_EQ(w[1], (0.6f / sigma) * 2.5f);
  const float bsum = (0.5f + 0.3f) + 0.6f;  // the mistaken weights from biased scores
  EXPECT_NE(w[0], ((0.5f + 0.3f) / bsum) * 2.5f);
  // Without the bias the selection is the plain top-2 {0, 2}: the bias did change it.
  EXPECT_EQ(select(s, {}, d), (std::vector<int32_t>{0, 2}));
}

// Mistake 2 (facts): the group score is the sum of the top-2 biased scores, not the max and
// not the sum of the whole group. Three groups, each the winner under one of the rules.
TEST(MoeRouter, GroupScoreIsTopTwoSumNotMaxNorSumOfAll) {
  const auto d = router_dims(12, 2, 3, 1);
  const std::vector<float> s = {0.95f, 0.1f, 0.1f, 0.1f,   // top-2 1.05, max 0.95 (max wins), all 1.25
                                0.6f, 0.0f, 0.0f, 0.6f,    // top-2 1.20 (top-2 sum wins),   all 1.20
                                0.5f, 0.5f, 0.5f, 0.5f};   // top-2 1.00, max 0.5, all 2.00 (sum-of-all wins)
  EXPECT_EQ(select(s, {}, d), (std::vector<int32_t>{4, 7}));
  // What the mistaken rules would select (for the record): max → group 0 → {0, 1};
  // sum of all → group 2 → {8, 9}. Our answer is neither.
  EXPECT_NE(select(s, {}, d), (std::vector<int32_t>{0, 1}));
  EXPECT_NE(select(s, {}, d), (std::vector<int32_t>{8, 9}));
  // The biased scores decide the groups: a bias moves the choice to group 0.
  std::vector<float> bias(12, 0.0f);
  bias[1] = 0.3f;  // group 0 top-2: 0.95 + 0.4 = 1.35 > 1.2
  EXPECT_EQ(select(s, bias, d), (std::vector<int32_t>{0, 1}));
}

// Mistake 3 (facts): dropped groups masked to 0 instead of −inf. With a negative bias a
// kept expert's selection score is below 0, so 0-masking lets a dropped group's expert in.
TEST(MoeRouter, DroppedGroupsAreMinusInfinityNotZero_NegativeBias) {
  const auto d = router_dims(8, 4, 4, 2);  // K = 4 = every expert of the 2 kept groups
  const std::vector<float> s = {0.9f, 0.3f, 0.5f, 0.1f, 0.2f, 0.2f, 0.1f, 0.1f};
  const std::vector<float> bias = {0.0f, -0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  // group scores (top-2 of biased): 0.7, 0.6, 0.4, 0.2 → keep groups 0 and 1
  EXPECT_EQ(select(s, bias, d), (std::vector<int32_t>{0, 1, 2, 3}));
  // 0-masking would rank expert 4 (masked, 0) above expert 1 (−0.2): {0, 2, 3, 4}.
}

// The same mistake with sigmoid scores ≥ 0 and no bias: it shows only at a tie with 0, i.e.
// a kept expert whose score underflowed to 0 (sigmoid(−200) = 0) against a dropped expert of
// lower index masked to 0. −inf masking keeps the selection inside the kept group.
TEST(MoeRouter, DroppedGroupsAreMinusInfinityNotZero_UnderflowedScore) {
  const auto d = router_dims(4, 2, 2, 1);
  const std::vector<float> s = {0.1f, 0.1f, 0.9f, px::sigmoid(-200.0f)};
  ASSERT_EQ(s[3], 0.0f);
  EXPECT_EQ(select(s, {}, d), (std::vector<int32_t>{2, 3}));  // 0-masking: tie at 0 → {0, 2}
}

// Mistake 4 (facts): Megatron adds 1e-20 to the normalising sum; the official code adds
// nothing, and so do we. For σ near 1 the two agree in fp32 (1e-20 is below half an ulp);
// for tiny σ they differ.
TEST(MoeRouter, NormalisationAddsNoEpsilon) {
  const auto d = router_dims(4, 2, 1, 1, true, 1.0f);
  const std::vector<float> s = {1e-18f, 3e-19f, 1e-30f, 2e-30f};
  std::vector<float> w;
  ASSERT_EQ(select(s, {}, d, &w), (std::vector<int32_t>{0, 1}));
  const float sigma = s[0] + s[1];
  EXPECT_EQ(w[0], (s[0] / sigma) * 1.0f);
  EXPECT_NE(w[0], s[0] / (sigma + 1e-20f));  // Megatron's variant: 0.77% smaller here
  const std::vector<float> s2 = {0.7f, 0.2f, 0.05f, 0.01f};
  ASSERT_EQ(select(s2, {}, d, &w), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ((0.7f + 0.2f) + 1e-20f, 0.7f + 0.2f);  // why the variants agree for normal σ
}

TEST(MoeRouter, TiesGoToTheLowerIndexAndWeightsFollowAscendingExpertOrder) {
  const auto d = router_dims(6, 3, 1, 1, false, 1.0f);
  const std::vector<float> s = {0.2f, 0.5f, 0.5f, 0.9f, 0.5f, 0.1f};
  std::vector<float> w;
  EXPECT_EQ(select(s, {}, d, &w), (std::vector<int32_t>{1, 2, 3}));  // rank order 3, 1, 2 → ascending
  EXPECT_EQ(w, (std::vector<float>{0.5f, 0.5f, 0.9f}));
  // Group ties, too: equal group scores keep the lower group.
  const auto dg = router_dims(4, 1, 2, 1);
  EXPECT_EQ(select({0.3f, 0.2f, 0.2f, 0.3f}, {}, dg), (std::vector<int32_t>{0}));
}

TEST(MoeRouter, BiasUpdateIsExactIntegerComparison) {
  std::vector<float> bias = {0.0f, 0.5f, -0.25f, 1.0f};
  const std::vector<int64_t> counts = {3, 2, 1, 2};  // total 8, mean 2
  router_bias_update(bias.data(), counts.data(), 4, 0.001f);
  EXPECT_EQ(bias, (std::vector<float>{0.0f - 0.001f, 0.5f, -0.25f + 0.001f, 1.0f}));
}

// ---------------------------------------------------------------- MoE block vs the oracle
struct MoeCase {
  int64_t T, C, E, K, G, TG, I, S, seq;
  bool softmax, norm, bias;
  float scale;
  std::string name() const {
    return "T" + std::to_string(T) + "_C" + std::to_string(C) + "_E" + std::to_string(E) + "_K" +
           std::to_string(K) + "_G" + std::to_string(G) + "_TG" + std::to_string(TG) + "_I" + std::to_string(I) +
           "_S" + std::to_string(S) + "_seq" + std::to_string(seq) + (softmax ? "_softmax" : "_sigmoid") +
           (norm ? "_norm" : "") + (bias ? "_bias" : "");
  }
};

const MoeCase kMoeCases[] = {
    {45, 33, 8, 2, 4, 2, 20, 20, 15, false, true, true, 2.5f},   // tiny-like, 3 sequences, awkward sizes
    {10, 16, 6, 3, 1, 1, 8, 0, 10, true, false, false, 1.0f},    // softmax, no groups, no shared
    {20, 40, 16, 4, 4, 2, 12, 24, 10, false, true, true, 2.5f},  // 4 per group, 2 shared experts
    {16, 64, 8, 2, 4, 2, 32, 32, 8, false, true, true, 2.5f},    // tiny's MoE shape
    {9, 24, 6, 2, 1, 1, 10, 10, 3, true, true, true, 1.0f},      // softmax + normalised + bias
};

struct MoeSetup {
  MoeDims d;
  MoeLossOptions opt;
  std::vector<float> x, flat;
  MoeWeights w;
  oracle::Moe64 o;
  explicit MoeSetup(const MoeCase& k, uint64_t seed = 1) {
    d.r.T = k.T, d.r.C = k.C, d.r.E = k.E, d.r.K = k.K, d.r.G = k.G, d.r.TG = k.TG;
    d.r.score = k.softmax ? ScoringFunc::softmax : ScoringFunc::sigmoid;
    d.r.norm_topk = k.norm, d.r.route_scale = k.scale, d.r.use_bias = k.bias;
    d.I = k.I, d.S = k.S;
    opt.seq_len = k.seq, opt.seq_aux_alpha = 0.3f, opt.lb_coef = 0.2f, opt.z_coef = 0.05f;
    x = randn(k.T * k.C, seed);
    int64_t total = 0;
    for (auto s : moe_weight_sizes(d)) total += s;
    flat = randn(total, seed + 1, 0.3f);
    w = moe_weights_view(flat.data(), d);
    for (int64_t i = 0; i < k.E * k.C; ++i) w.gate[i] = w.gate[i] * float(2.0 / std::sqrt(double(k.C)));
    const auto b = randu(k.E, seed + 2, -0.1f, 0.1f);
    std::copy(b.begin(), b.end(), w.bias);
    o.r.E = k.E, o.r.K = k.K, o.r.G = k.G, o.r.TG = k.TG, o.r.sigmoid = !k.softmax, o.r.norm = k.norm;
    o.r.use_bias = k.bias, o.r.scale = double(k.scale);
    o.T = k.T, o.C = k.C, o.I = k.I, o.S = k.S, o.seq_len = k.seq;
    o.seq_alpha = double(opt.seq_aux_alpha), o.lb_coef = double(opt.lb_coef), o.z_coef = double(opt.z_coef);
  }
  std::vector<std::vector<int64_t>> selection(const MoeCache& c) const {
    std::vector<std::vector<int64_t>> sel(d.r.T);
    for (int64_t t = 0; t < d.r.T; ++t)
      for (int64_t j = 0; j < d.r.K; ++j) sel[t].push_back(c.router.idx[t * d.r.K + j]);
    return sel;
  }
};

// Forward error bound of one SwiGLU applied to rows x (T,C), per output element, from the
// magnitudes (derivation in test_basic_layers.cpp, SwiGlu.ForwardWithinDerivedBound).
Vec swiglu_bound(const Vec& x, const Vec& w1, const Vec& w3, const Vec& w2, int64_t T, int64_t C, int64_t H,
                 Vec* magnitude) {
  auto absv = [](Vec v) { for (auto& e : v) e = std::fabs(e); return v; };
  const auto m1 = oracle::linear(absv(x), absv(w1), T, H, C), m3 = oracle::linear(absv(x), absv(w3), T, H, C);
  const auto h1 = oracle::linear(x, w1, T, H, C), h3 = oracle::linear(x, w3, T, H, C);
  Vec dact(T * H), aact(T * H);
  for (int64_t i = 0; i < T * H; ++i) {
    const double s = oracle::silu(h1[i]);
    aact[i] = std::fabs(s * h3[i]);
    dact[i] = 1.1 * gamma32(dot_roundings(C)) * m1[i] * std::fabs(h3[i]) + std::fabs(s) * gamma32(dot_roundings(C)) * m3[i] +
              6 * kU32 * aact[i];
  }
  const auto aw2 = absv(w2);
  const auto b1 = oracle::linear(dact, aw2, T, C, H), b2 = oracle::linear(aact, aw2, T, C, H);
  Vec bound(T * C);
  for (int64_t i = 0; i < T * C; ++i) bound[i] = b1[i] + gamma32(dot_roundings(H)) * b2[i];
  if (magnitude) *magnitude = b2;
  return bound;
}

class Moe : public ::testing::TestWithParam<MoeCase> {};

TEST_P(Moe, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto& k = GetParam();
  MoeSetup s(k);
  std::vector<float> y(k.T * k.C);
  MoeCache cache;
  moe_forward(y.data(), cache, s.x.data(), s.w, s.opt, s.d);
  const Vec xd = to_double(s.x), fd = to_double(s.flat);
  std::vector<std::vector<int64_t>> sel;
  double margin = 0;
  oracle::Moe64Losses L;
  const Vec want = s.o.forward(xd, fd, &L, nullptr, &sel, &margin);
  ASSERT_GT(margin, 1e-4) << "test data too close to a routing tie";
  ASSERT_EQ(s.selection(cache), sel) << "selection differs from the float64 oracle";
  // Bound, per token t and channel c (u = 2^-24, one ulp = 2u for every px function):
  //   logits: |δl_e| ≤ Λ_e = γ(dot(C))·Σ|x||Wg|
  //   sigmoid: |δs|/s ≤ (1 − s)·Λ + 2u;  softmax: |δs|/s ≤ 2·maxΛ + u·max|l − m|·2 + γ(⌈E/32⌉+5) + 6u
  //   weights (R = max rel. error of the selected s): rel ≤ 2R + γ(K + 8) (σ: a row sum of K
  //     positive terms, then a divide and a multiply)
  //   expert outputs: B_j (SwiGLU bound) ; combine (fma chain of K): γ(K)·Σ|w_j o_j|
  //   |δy| ≤ Σ_j [(rel_w + γ(K))·|w_j|·|o_j| + |w_j|·B_j] + B_shared + u·(|r| + |sh|)
  const int64_t T = k.T, C = k.C, E = k.E, I = k.I;
  const double* gate = fd.data();
  const double* ex = gate + E * C + E;
  const double* sh = ex + E * 3 * I * C;
  const Vec logits = oracle::linear(xd, Vec(gate, gate + E * C), T, E, C);
  Vec ag(E * C), ax(T * C);
  for (int64_t i = 0; i < E * C; ++i) ag[i] = std::fabs(gate[i]);
  for (int64_t i = 0; i < T * C; ++i) ax[i] = std::fabs(xd[i]);
  const Vec lam = oracle::linear(ax, ag, T, E, C);
  Vec shb(T * C, 0.0), shm(T * C, 0.0);
  if (k.S > 0)
    shb = swiglu_bound(xd, Vec(sh, sh + k.S * C), Vec(sh + k.S * C, sh + 2 * k.S * C), Vec(sh + 2 * k.S * C, sh + 3 * k.S * C),
                       T, C, k.S, &shm);
  std::vector<double> bound(T * C);
  for (int64_t t = 0; t < T; ++t) {
    const Vec st = s.o.r.scores(&logits[t * E]);
    double R = 0, maxlam = 0, spread = 0;
    const double m = *std::max_element(logits.begin() + t * E, logits.begin() + (t + 1) * E);
    for (int64_t e = 0; e < E; ++e) {
      maxlam = std::max(maxlam, gamma32(dot_roundings(C)) * lam[t * E + e]);
      spread = std::max(spread, m - logits[t * E + e]);
    }
    for (auto e : sel[t]) {
      const double l = gamma32(dot_roundings(C)) * lam[t * E + e];
      R = std::max(R, k.softmax ? 2 * maxlam + 2 * kU32 * spread + gamma32(double((E + 31) / 32) + 5) + 6 * kU32
                                : (1 - st[e]) * l + kUlp);
    }
    const double relw = 2 * R + gamma32(double(k.K) + 8);
    const Vec wt = s.o.r.weights(st, sel[t]);
    const Vec xt(xd.begin() + t * C, xd.begin() + (t + 1) * C);
    Vec acc(C, 0.0), rmag(C, 0.0);
    for (size_t j = 0; j < sel[t].size(); ++j) {
      const double* p = ex + sel[t][j] * 3 * I * C;
      Vec om;
      const Vec b = swiglu_bound(xt, Vec(p, p + I * C), Vec(p + I * C, p + 2 * I * C), Vec(p + 2 * I * C, p + 3 * I * C),
                                 1, C, I, &om);
      for (int64_t c = 0; c < C; ++c) {
        acc[c] += (relw + gamma32(double(k.K))) * std::fabs(wt[j]) * om[c] + std::fabs(wt[j]) * b[c];
        rmag[c] += std::fabs(wt[j]) * om[c];
      }
    }
    for (int64_t c = 0; c < C; ++c)
      bound[t * C + c] = acc[c] + shb[t * C + c] + kU32 * (rmag[c] + shm[t * C + c]) + 1e-30;
  }
  const double worst = worst_ratio(y, want, bound);
  EXPECT_LE(worst, 1.0);
  RecordProperty("max_err_over_bound", std::to_string(worst));
  // The losses, bounded from the data (u = 2^-24; R = the largest relative error bound of ANY
  // router score, by the score rules above, since the losses use every score):
  //   balance loss (every term ≥ 0): s' = s/σ (sigmoid; σ a 32-lane row sum of E positive terms,
  //     ≤ ⌈E/32⌉ + 5 roundings, counted twice as it divides, plus the divide) or s' = s (softmax);
  //     P_i a contract dot over the group's tokens (dot(Tg)); Σ_i cnt_i·P_i a dot of length E (the
  //     counts are exact); times k = float(coef·E/(K·Tg²·ng)) (one rounding for k, one for the
  //     product); the group mean a row sum over ng groups (⌈ng/32⌉ + 5). Every rounding and every
  //     score error is a factor (1 + θ) on positive terms, so
  //       |L̂ − L| ≤ [(1 + R)/(1 − R)·(1 + γ(n)) − 1]·L   (sigmoid; softmax: (1 + R)(1 + γ(n)) − 1)
  //   router z-loss: lse_t = m + log Σ exp(l_e − m) from logits off by ≤ Λ_e: lse is 1-Lipschitz in
  //     the max norm (≤ max Λ); the subtraction (relative u on |l − m| ≤ spread + 2·max Λ, a factor
  //     e^(u·spread') on each exp), exp and log (≤ 1 ulp = 2u relative each), the row sum (γ(⌈E/32⌉+5))
  //     make the computed sum Ẑ_t = Z_t(1 + ε_t) and log off by −log(1 − ε_t) + 2u·log(E(1 + ε_t));
  //     the final add rounds once: δ_t ≤ δ' + u·(|lse_t| + δ'). Then coef/T·Σ lse_t² as a dot of
  //     length T and two roundings (the float coef/T and the product):
  //       |Ẑ − Z| ≤ c·(1 + γ(dot(T) + 2))·Σ(2|lse_t|δ_t + δ_t²) + c·γ(dot(T) + 2)·Σ lse_t²
  //   and the float64 oracle's own rounding, ≤ γ64(2E + T + 10) relative (its longest chain).
  double Rall = 0, zsum_err = 0, zsum = 0;
  for (int64_t t = 0; t < T; ++t) {
    const Vec st = s.o.r.scores(&logits[t * E]);
    double maxlam = 0, spread = 0;
    const double m = *std::max_element(logits.begin() + t * E, logits.begin() + (t + 1) * E);
    for (int64_t e = 0; e < E; ++e) {
      maxlam = std::max(maxlam, gamma32(dot_roundings(C)) * lam[t * E + e]);
      spread = std::max(spread, m - logits[t * E + e]);
    }
    for (int64_t e = 0; e < E; ++e) {
      const double l = gamma32(dot_roundings(C)) * lam[t * E + e];
      Rall = std::max(Rall, k.softmax ? 2 * maxlam + 2 * kU32 * spread + gamma32(double((E + 31) / 32) + 5) + 6 * kU32
                                      : (1 - st[e]) * l + kUlp);
    }
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += std::exp(logits[t * E + e] - m);
    const double lse = m + std::log(z);
    const double eps = std::exp(kU32 * (spread + 2 * maxlam)) * (1 + kUlp) * (1 + gamma32(double((E + 31) / 32) + 5)) - 1;
    const double dpre = maxlam - std::log1p(-eps) + kUlp * std::log(double(E) * (1 + eps));
    const double dt = dpre + kU32 * (std::fabs(lse) + dpre);
    zsum_err += 2 * std::fabs(lse) * dt + dt * dt;
    zsum += lse * lse;
  }
  const double g64 = (2.0 * E + T + 10) * 0x1p-53 / (1 - (2.0 * E + T + 10) * 0x1p-53);
  auto balance_bound = [&](int64_t group_len, double value) {
    const int64_t ng = T / group_len;
    const double nr = double((E + 31) / 32) + 5;
    const double n = (k.softmax ? 0.0 : 2 * nr + 1) + dot_roundings(group_len) + dot_roundings(E) + 2 +
                     double((ng + 31) / 32) + 5;
    const double f = k.softmax ? (1 + Rall) * (1 + gamma32(n)) - 1 : (1 + Rall) / (1 - Rall) * (1 + gamma32(n)) - 1;
    return (f + g64) * value;
  };
  const double zc = double(s.opt.z_coef) / double(T), zn = dot_roundings(T) + 2;
  const double bound_z = zc * (1 + gamma32(zn)) * zsum_err + zc * gamma32(zn) * zsum + g64 * L.z;
  const double bound_seq = balance_bound(k.seq, L.seq_aux), bound_lb = balance_bound(T, L.lb);
  EXPECT_NEAR(cache.losses.seq_aux, L.seq_aux, bound_seq);
  EXPECT_NEAR(cache.losses.lb, L.lb, bound_lb);
  EXPECT_NEAR(cache.losses.z, L.z, bound_z);
  std::printf("[ moe ] %s losses |err|/bound: seq_aux %.3g (bound %.3g rel), lb %.3g (%.3g rel), z %.3g (%.3g rel)\n",
              k.name().c_str(), std::fabs(cache.losses.seq_aux - L.seq_aux) / bound_seq, bound_seq / L.seq_aux,
              std::fabs(cache.losses.lb - L.lb) / bound_lb, bound_lb / L.lb, std::fabs(cache.losses.z - L.z) / bound_z,
              bound_z / L.z);
  int64_t total = 0;
  for (auto c : cache.counts) total += c;
  EXPECT_EQ(total, k.T * k.K);
}

TEST_P(Moe, BackwardMatchesFiniteDifferencesOfFloat64Oracle) {
  const auto& k = GetParam();
  MoeSetup s(k);
  std::vector<float> y(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
  MoeCache cache;
  moe_forward(y.data(), cache, s.x.data(), s.w, s.opt, s.d);
  const auto g = randn(k.T * k.C, 7);
  moe_backward(dx.data(), moe_weights_view(dflat.data(), s.d), g.data(), cache, s.x.data(), s.w, s.opt, 1.0f, s.d);
  const Vec xd = to_double(s.x), fd = to_double(s.flat), gd = to_double(g);
  std::vector<std::vector<int64_t>> sel;
  double margin = 0;
  s.o.forward(xd, fd, nullptr, nullptr, &sel, &margin);
  ASSERT_GT(margin, 1e-4);
  ASSERT_EQ(s.selection(cache), sel);
  // The selection is piecewise constant: differentiate the oracle with the selection frozen
  // (the derivative wherever it is defined). Loss = Σ g·y + seq_aux + lb + z.
  auto loss = [&](const Vec& xv, const Vec& fv) {
    oracle::Moe64Losses L;
    const Vec yv = s.o.forward(xv, fv, &L, &sel);
    return oracle::weighted_sum(gd, yv) + L.total();
  };
  // h = 1e-3 on O(1) inputs: truncation h²/6·|f'''| ≲ 1e-6 relative; the fp32 backward is a
  // chain of ≤ 6 dots of length ≤ max(C, I, E) (γ ≈ 1e-5 relative to the magnitude sums,
  // which exceed |grad| by ≲ 10 here): tolerance 2e-4 absolute + 1e-3 relative.
  expect_grad_matches_fd("dx", dx, [&](const Vec& v) { return loss(v, fd); }, xd, 1e-3, 2e-4, 1e-3,
                         size_t(std::max<int64_t>(1, k.T * k.C / 300)));
  expect_grad_matches_fd("dweights", dflat, [&](const Vec& v) { return loss(xd, v); }, fd, 1e-3, 2e-4, 1e-3,
                         size_t(std::max<size_t>(1, fd.size() / 600)) | 1);
  // The gate gets gradient only through the selected experts' weights and the losses; the
  // bias none at all (it only selects).
  const auto sz = moe_weight_sizes(s.d);
  for (int64_t e = 0; e < k.E; ++e) EXPECT_EQ(dflat[sz[0] + e], 0.0f) << "bias " << e;
}

TEST_P(Moe, OneAndTwoThreadsAndRepeatsBitIdentical) {
  const auto& k = GetParam();
  MoeSetup s(k);
  const auto g = randn(k.T * k.C, 7);
  auto run = [&] {
    std::vector<float> y(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
    MoeCache cache;
    moe_forward(y.data(), cache, s.x.data(), s.w, s.opt, s.d);
    moe_backward(dx.data(), moe_weights_view(dflat.data(), s.d), g.data(), cache, s.x.data(), s.w, s.opt, 1.0f, s.d);
    y.push_back(cache.losses.seq_aux), y.push_back(cache.losses.lb), y.push_back(cache.losses.z);
    for (auto* v : {&dx, &dflat}) y.insert(y.end(), v->begin(), v->end());
    return y;
  };
  const auto one = with_threads(1, run);
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
}

// A token's output is a function of that token alone: processed alone, or inside the batch
// in reverse order, it is the same bits.
TEST_P(Moe, TokenOutputIndependentOfBatchComposition) {
  const auto& k = GetParam();
  MoeSetup s(k);
  MoeLossOptions no_loss;
  std::vector<float> y(k.T * k.C);
  MoeCache cache;
  moe_forward(y.data(), cache, s.x.data(), s.w, no_loss, s.d);
  MoeDims d1 = s.d;
  d1.r.T = 1;
  for (int64_t t = 0; t < k.T; ++t) {
    std::vector<float> y1(k.C);
    MoeCache c1;
    moe_forward(y1.data(), c1, &s.x[t * k.C], s.w, no_loss, d1);
    ASSERT_TRUE(bits_equal(y1, std::vector<float>(y.begin() + t * k.C, y.begin() + (t + 1) * k.C))) << "token " << t;
  }
  std::vector<float> xr(k.T * k.C), yr(k.T * k.C);
  for (int64_t t = 0; t < k.T; ++t) std::copy_n(&s.x[t * k.C], k.C, &xr[(k.T - 1 - t) * k.C]);
  moe_forward(yr.data(), cache, xr.data(), s.w, no_loss, s.d);
  for (int64_t t = 0; t < k.T; ++t)
    ASSERT_TRUE(std::equal(&yr[(k.T - 1 - t) * k.C], &yr[(k.T - t) * k.C], &y[t * k.C])) << "token " << t;
}

// Dispatch groups rows by expert, ascending tokens inside; combine is the fma chain over the
// K experts in ascending expert index, then + shared: reproduced here exactly.
TEST_P(Moe, DispatchAndCombineFollowTheDefinedOrder) {
  const auto& k = GetParam();
  MoeSetup s(k);
  std::vector<float> y(k.T * k.C);
  MoeCache c;
  moe_forward(y.data(), c, s.x.data(), s.w, MoeLossOptions{}, s.d);
  for (int64_t e = 0; e < k.E; ++e)
    for (int64_t r = c.offsets[e]; r + 1 < c.offsets[e + 1]; ++r) ASSERT_LT(c.token_of[r], c.token_of[r + 1]);
  for (int64_t t = 0; t < k.T; ++t)
    for (int64_t j = 0; j < k.K; ++j) {
      const int64_t r = c.row_of[t * k.K + j];
      ASSERT_EQ(c.token_of[r], t);
      ASSERT_TRUE(r >= c.offsets[c.router.idx[t * k.K + j]] && r < c.offsets[c.router.idx[t * k.K + j] + 1]);
      if (j > 0) {
        ASSERT_LT(c.router.idx[t * k.K + j - 1], c.router.idx[t * k.K + j]);
      }
    }
  std::vector<float> sh(k.T * k.C, 0.f), h1(k.T * k.S), h3(k.T * k.S), act(k.T * k.S);
  if (k.S > 0) {
    // the shared expert alone (batch-invariant, so the same bits as inside moe_forward)
    swiglu_forward(sh.data(), h1.data(), h3.data(), act.data(), s.x.data(), s.w.shared_w1, s.w.shared_w3,
                   s.w.shared_w2, k.T, k.C, k.S);
  }
  for (int64_t t = 0; t < k.T; ++t)
    for (int64_t ch = 0; ch < k.C; ++ch) {
      float acc = 0.0f;
      for (int64_t j = 0; j < k.K; ++j) acc = std::fma(c.router.weights[t * k.K + j], c.o[(t * k.K + j) * k.C + ch], acc);
      const float want = k.S > 0 ? acc + sh[t * k.C + ch] : acc;
      ASSERT_EQ(y[t * k.C + ch], want) << "t " << t << " c " << ch;
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, Moe, ::testing::ValuesIn(kMoeCases), [](const auto& info) { return info.param.name(); });

// ---------------------------------------------------------------- losses in isolation
// The classic loss is the same formula over one group of all T tokens; the sequence-wise
// loss is the mean over sequences of it, which differs when sequences route differently.
TEST(MoeLosses, SequenceWiseIsPerSequenceMeanAndClassicIsGlobal) {
  MoeSetup s(kMoeCases[0]);
  MoeCache c;
  std::vector<float> y(s.d.r.T * s.d.r.C);
  moe_forward(y.data(), c, s.x.data(), s.w, MoeLossOptions{}, s.d);
  const float classic = balance_loss_forward(c.router, s.d.r.T, 0.5f, s.d.r);
  const float per_seq = balance_loss_forward(c.router, 15, 0.5f, s.d.r);
  EXPECT_NE(per_seq, classic);
  EXPECT_GT(classic, 0.0f);
  // Perfectly balanced assignment with uniform scores gives coef·1 (f_i = 1, P_i = 1/E·…):
  // E·Σ_i (1/E)·(1/E) = 1 for the classic normalisation.
  RouterDims d = router_dims(4, 1, 1, 1);
  d.T = 8;
  RouterCache rc;
  rc.scores.assign(8 * 4, 0.25f);
  rc.idx = {0, 1, 2, 3, 0, 1, 2, 3};
  EXPECT_FLOAT_EQ(balance_loss_forward(rc, 8, 1.0f, d), 1.0f);
  EXPECT_FLOAT_EQ(balance_loss_forward(rc, 4, 1.0f, d), 1.0f);
  EXPECT_THROW(balance_loss_forward(rc, 3, 1.0f, d), preflight::Error);
}

TEST(MoeLosses, BadShapesThrowNamingTheDimension) {
  MoeSetup s(kMoeCases[0]);
  std::vector<float> y(s.d.r.T * s.d.r.C);
  MoeCache c;
  MoeDims bad = s.d;
  bad.r.G = 3;  // does not divide 8
  EXPECT_THROW(moe_forward(y.data(), c, s.x.data(), s.w, s.opt, bad), preflight::Error);
  bad = s.d;
  bad.r.K = 5;  // more than the 2 kept groups × 2 experts
  EXPECT_THROW(moe_forward(y.data(), c, s.x.data(), s.w, s.opt, bad), preflight::Error);
  MoeLossOptions o = s.opt;
  o.seq_len = 7;  // does not divide T = 45
  try {
    moe_forward(y.data(), c, s.x.data(), s.w, o, s.d);
    FAIL() << "expected an error";
  } catch (const preflight::Error& e) {
    EXPECT_NE(std::string(e.what()).find("seq_len = 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace preflight::ref::test
