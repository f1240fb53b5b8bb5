// LM head + cross-entropy: forward vs float64 oracle under a derived bound, backward vs
// central finite differences of the oracle, ignore index / loss mask semantics, soft-cap,
// z-loss, empty batches, thread/repeat bit-identity, bad targets.
// Legend: T = tokens, C = hidden, V = vocabulary, N = counted tokens.
#include <cmath>
#include <string>
#include <vector>

#include "reference/core/error.hpp"
#include "reference/layers/loss.hpp"
#include "reference/layers/prims.hpp"
#include "tests/reference/oracle64_moe.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

struct CeCase {
  int64_t T, C, V;
  float softcap, z_coef;
  bool ignore;  // some targets −100 and a loss mask
  std::string name() const {
    return "T" + std::to_string(T) + "_C" + std::to_string(C) + "_V" + std::to_string(V) +
           (softcap > 0 ? "_cap" + std::to_string(int(softcap)) : "") + (z_coef > 0 ? "_zloss" : "") +
           (ignore ? "_masked" : "");
  }
};
const CeCase kCeCases[] = {
    {7, 16, 37, 0, 0, false}, {33, 33, 130, 30, 1e-2f, true}, {5, 64, 1000, 0, 1e-4f, true}, {1, 1, 1, 0, 0, false},
    {20, 24, 97, 3, 0.1f, false},  // a small cap so tanh's curvature matters
};

struct CeSetup {
  LossDims d;
  std::vector<float> h, w;
  std::vector<int32_t> tgt;
  std::vector<uint8_t> mask;
  oracle::CrossEntropy64 o;
  explicit CeSetup(const CeCase& k) {
    d = {k.T, k.C, k.V, k.softcap, k.z_coef};
    h = randn(k.T * k.C, 1);
    w = randn(k.V * k.C, 2, float(3.0 / std::sqrt(double(k.C))));  // logits of a few units
    const auto u = randu(k.T, 3, 0.0f, 1.0f);
    tgt.resize(k.T), mask.assign(k.T, 1);
    for (int64_t t = 0; t < k.T; ++t) {
      tgt[t] = int32_t((t * 131 + 7) % k.V);
      if (k.ignore && u[t] < 0.2f) tgt[t] = kIgnoreIndex;
      if (k.ignore && u[t] > 0.8f) mask[t] = 0;
    }
    o.T = k.T, o.C = k.C, o.V = k.V, o.softcap = k.softcap, o.z_coef = k.z_coef, o.targets = tgt;
    if (k.ignore) o.mask = mask;
  }
  const uint8_t* m(const CeCase& k) const { return k.ignore ? mask.data() : nullptr; }
};

class CrossEntropy : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropy, ForwardWithinDerivedBoundOfFloat64Oracle) {
  const auto& k = GetParam();
  CeSetup s(k);
  CeCache c;
  const CeLoss got = lm_head_ce_forward(c, s.h.data(), s.w.data(), s.tgt.data(), s.m(k), s.d);
  double ce = 0, zl = 0;
  s.o.loss(to_double(s.h), to_double(s.w), &ce, &zl);
  // Bound (u = 2^-24; px functions ≤ 1 ulp = 2u):
  //   raw: |δraw_v| ≤ Λ_v = γ(dot(C))·Σ|h||W|
  //   cap: |δz_v| ≤ Λ_v + u·|raw_v| (the divide, through tanh' ≤ 1) + 3u·|z_v| (tanh, multiply)
  //   lse: |δlse| ≤ max_v |δz_v| + u·max_v|z_v − m| + 2u + γ(⌈V/32⌉ + 5) + 2u·|log Z| + u·|lse|
  //   ce_t = lse − z_tgt: |δce_t| ≤ |δlse| + |δz_tgt| + u·|ce_t|;  zz_t: 2|lse|·|δlse| + u·lse²
  //   means: γ(dot(T))·Σ_t (terms ≥ 0) + Σ_t |δ·_t|, then / N (u), z-loss · coef (u).
  const Vec hd = to_double(s.h), wd = to_double(s.w);
  Vec ah(hd), aw(wd);
  for (auto& v : ah) v = std::fabs(v);
  for (auto& v : aw) v = std::fabs(v);
  const Vec raw = oracle::linear(hd, wd, k.T, k.V, k.C), lam = oracle::linear(ah, aw, k.T, k.V, k.C);
  double sce = 0, sdce = 0, szz = 0, sdzz = 0;
  int64_t n = 0;
  for (int64_t t = 0; t < k.T; ++t) {
    if (s.tgt[t] == kIgnoreIndex || (k.ignore && !s.mask[t])) continue;
    ++n;
    Vec z(k.V), dz(k.V);
    for (int64_t v = 0; v < k.V; ++v) {
      const double r = raw[t * k.V + v], l = gamma32(dot_roundings(k.C)) * lam[t * k.V + v];
      z[v] = k.softcap > 0 ? k.softcap * std::tanh(r / k.softcap) : r;
      dz[v] = l + (k.softcap > 0 ? kU32 * std::fabs(r) + 3 * kU32 * std::fabs(z[v]) : 0.0);
    }
    double m = -INFINITY, Z = 0, maxdz = 0, spread = 0;
    for (int64_t v = 0; v < k.V; ++v) m = std::max(m, z[v]), maxdz = std::max(maxdz, dz[v]);
    for (int64_t v = 0; v < k.V; ++v) Z += std::exp(z[v] - m), spread = std::max(spread, m - z[v]);
    const double lse = m + std::log(Z);
    const double dlse = maxdz + kU32 * spread + 2 * kU32 + gamma32(double((k.V + 31) / 32) + 5) +
                        2 * kU32 * std::fabs(std::log(Z)) + kU32 * std::fabs(lse);
    const double cet = lse - z[s.tgt[t]];
    sce += std::fabs(cet), sdce += dlse + dz[s.tgt[t]] + kU32 * std::fabs(cet);
    szz += lse * lse, sdzz += 2 * std::fabs(lse) * dlse + kU32 * lse * lse;
  }
  ASSERT_EQ(got.count, n);
  const double g = gamma32(dot_roundings(k.T));
  const double bce = (sdce + g * sce) / double(n) + kU32 * std::fabs(ce) + 1e-30;
  const double bz = k.z_coef * ((sdzz + g * szz) / double(n)) + 2 * kU32 * std::fabs(zl) + 1e-30;
  EXPECT_LE(std::fabs(got.ce - ce), bce) << "ce " << got.ce << " vs " << ce;
  EXPECT_LE(std::fabs(got.z - zl), bz) << "z " << got.z << " vs " << zl;
  RecordProperty("ce_err_over_bound", std::to_string(std::fabs(got.ce - ce) / bce));
}

TEST_P(CrossEntropy, BackwardMatchesFiniteDifferencesAndThreadsAgree) {
  const auto& k = GetParam();
  CeSetup s(k);
  const float dloss = 0.75f;  // an upstream weight (e.g. the MTP λ)
  auto run = [&] {
    CeCache c;
    const CeLoss l = lm_head_ce_forward(c, s.h.data(), s.w.data(), s.tgt.data(), s.m(k), s.d);
    std::vector<float> dh(k.T * k.C, 0.f), dw(k.V * k.C, 0.f);
    lm_head_ce_backward(dh.data(), dw.data(), c, s.h.data(), s.w.data(), s.tgt.data(), s.m(k), dloss, s.d);
    dh.insert(dh.end(), dw.begin(), dw.end());
    dh.push_back(l.ce), dh.push_back(l.z);
    return dh;
  };
  const auto r = with_threads(1, run);
  ASSERT_TRUE(bits_equal(r, with_threads(2, run)));
  ASSERT_TRUE(bits_equal(r, with_threads(2, run)));
  const std::vector<float> dh(r.begin(), r.begin() + k.T * k.C), dw(r.begin() + k.T * k.C, r.end() - 2);
  const Vec hd = to_double(s.h), wd = to_double(s.w);
  // h = 1e-3, logits O(3): truncation h²/6·|f'''| ≲ 1e-6·|W|³; the fp32 gradient is one
  // softmax (relative γ(V/32 + 10)) times a dot of length V or T (γ(dot)): well inside
  // 1e-5 absolute + 1e-3 relative.
  expect_grad_matches_fd("dh", dh, [&](const Vec& v) { return dloss * s.o.loss(v, wd); }, hd, 1e-3, 1e-5, 1e-3,
                         size_t(std::max<int64_t>(1, k.T * k.C / 200)));
  expect_grad_matches_fd("dW", dw, [&](const Vec& v) { return dloss * s.o.loss(hd, v); }, wd, 1e-3, 1e-5, 1e-3,
                         size_t(std::max<int64_t>(1, k.V * k.C / 300)) | 1);
}
INSTANTIATE_TEST_SUITE_P(Cases, CrossEntropy, ::testing::ValuesIn(kCeCases),
                         [](const auto& info) { return info.param.name(); });

// Ignored (−100) and masked tokens contribute nothing: the loss equals, bit for bit, the loss
// of the counted tokens alone (T ≤ 128: one token block, and adding +0 is exact), and their
// rows of dh are exactly 0.
TEST(CrossEntropyMask, IgnoredTokensAreExactlyAbsent) {
  const CeCase k = kCeCases[1];
  CeSetup s(k);
  CeCache c;
  const CeLoss all = lm_head_ce_forward(c, s.h.data(), s.w.data(), s.tgt.data(), s.mask.data(), s.d);
  std::vector<float> dh(k.T * k.C, 0.f);
  lm_head_ce_backward(dh.data(), nullptr, c, s.h.data(), s.w.data(), s.tgt.data(), s.mask.data(), 1.0f, s.d);
  std::vector<float> hs;
  std::vector<int32_t> ts;
  for (int64_t t = 0; t < k.T; ++t) {
    if (s.tgt[t] == kIgnoreIndex || !s.mask[t]) {
      for (int64_t i = 0; i < k.C; ++i) ASSERT_EQ(dh[t * k.C + i], 0.0f) << "token " << t;
      continue;
    }
    hs.insert(hs.end(), s.h.begin() + t * k.C, s.h.begin() + (t + 1) * k.C);
    ts.push_back(s.tgt[t]);
  }
  ASSERT_GT(ts.size(), 0u);
  ASSERT_LT(int64_t(ts.size()), k.T);
  LossDims d = s.d;
  d.T = int64_t(ts.size());
  CeCache c2;
  const CeLoss sub = lm_head_ce_forward(c2, hs.data(), s.w.data(), ts.data(), nullptr, d);
  EXPECT_EQ(all.ce, sub.ce);
  EXPECT_EQ(all.z, sub.z);
  EXPECT_EQ(all.count, sub.count);
}

TEST(CrossEntropyMask, NoCountedTokensGivesZeroLossAndZeroGradient) {
  const CeCase k = kCeCases[0];
  CeSetup s(k);
  std::vector<int32_t> none(k.T, kIgnoreIndex);
  CeCache c;
  const CeLoss l = lm_head_ce_forward(c, s.h.data(), s.w.data(), none.data(), nullptr, s.d);
  EXPECT_EQ(l.ce, 0.0f);
  EXPECT_EQ(l.count, 0);
  std::vector<float> dh(k.T * k.C, 0.f), dw(k.V * k.C, 0.f);
  lm_head_ce_backward(dh.data(), dw.data(), c, s.h.data(), s.w.data(), none.data(), nullptr, 1.0f, s.d);
  for (float v : dh) ASSERT_EQ(v, 0.0f);
  for (float v : dw) ASSERT_EQ(v, 0.0f);
}

TEST(CrossEntropyMask, TargetOutOfRangeThrowsNamingTheToken) {
  const CeCase k = kCeCases[0];
  CeSetup s(k);
  s.tgt[4] = int32_t(k.V);
  CeCache c;
  try {
    lm_head_ce_forward(c, s.h.data(), s.w.data(), s.tgt.data(), nullptr, s.d);
    FAIL() << "expected an error";
  } catch (const preflight::Error& e) {
    EXPECT_NE(std::string(e.what()).find("targets[4] = 37"), std::string::npos) << e.what();
  }
}

// The soft-cap bounds every logit by c, and the z-loss is coef·mean(lse²) exactly as defined.
TEST(CrossEntropySoftcap, LogitsBoundedAndZLossFollowsDefinition) {
  const CeCase k = kCeCases[4];
  CeSetup s(k);
  CeCache c;
  const CeLoss l = lm_head_ce_forward(c, s.h.data(), s.w.data(), s.tgt.data(), nullptr, s.d);
  for (float z : c.z) ASSERT_LE(std::fabs(z), k.softcap);
  std::vector<float> zz(k.T);
  for (int64_t t = 0; t < k.T; ++t) zz[t] = c.lse[t] * c.lse[t];
  const float one = 1.0f;
  EXPECT_EQ(l.z, (px::dot(zz.data(), 1, &one, 0, k.T) / float(k.T)) * k.z_coef);
}

}  // namespace
}  // namespace preflight::ref::test
