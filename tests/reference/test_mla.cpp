// RoPE tables and MLA: naive forward vs float64 oracle, absorbed vs naive, packed
// documents bit-identical to separate runs, thread invariance, backward vs finite
// differences of the float64 oracle.
// Legend: T = tokens, C = hidden, H = heads, Rq/Rkv = q/kv LoRA ranks, Dn/Dr/Dv head widths.
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "reference/layers/mla.hpp"
#include "reference/layers/rope.hpp"
#include "tests/reference/oracle64.hpp"
#include "tests/reference/test_util.hpp"

namespace preflight::ref::test {
namespace {

using oracle::Vec;

ModelConfig rope_config(RopeScalingKind kind) {
  ModelConfig c;
  c.rope_theta = 10000.0;
  c.rope_scaling.type = kind;
  c.rope_scaling.factor = kind == RopeScalingKind::none ? 1.0 : 40.0;
  if (kind == RopeScalingKind::llama3) c.rope_scaling.factor = 8.0, c.rope_scaling.original_max_position_embeddings = 8192;
  return c;
}

TEST(Rope, YarnMscaleAndTablesRoundedOnceFromDouble) {
  const auto t = rope_table(rope_config(RopeScalingKind::yarn), 64, 40);
  EXPECT_NEAR(t.attention_mscale, 0.1 * std::log(40.0) + 1.0, 1e-15);  // 1.3689 for factor 40
  EXPECT_NEAR(t.attention_mscale, 1.3689, 1e-4);
  const auto n = rope_table(rope_config(RopeScalingKind::none), 64, 40);
  EXPECT_EQ(n.attention_mscale, 1.0);
  for (int64_t p = 0; p < 40; ++p)
    for (int64_t i = 0; i < 32; ++i) {
      const double f = 1.0 / std::pow(10000.0, 2.0 * i / 64.0);
      ASSERT_EQ(n.cos[p * 32 + i], float(std::cos(p * f)));
      ASSERT_EQ(n.sin[p * 32 + i], float(std::sin(p * f)));
    }
  // YaRN leaves the fastest pair (i = 0, inside beta_fast) and divides the slowest by factor.
  EXPECT_EQ(t.sin[1 * 32 + 0], n.sin[1 * 32 + 0]);
  const double slow = 1.0 / std::pow(10000.0, 62.0 / 64.0) / 40.0;
  EXPECT_EQ(t.sin[1 * 32 + 31], float(std::sin(slow)));
  const auto l = rope_table(rope_config(RopeScalingKind::llama3), 128, 2);
  EXPECT_EQ(l.sin[1 * 64 + 0], float(std::sin(1.0)));  // high frequency kept
  EXPECT_EQ(l.sin[1 * 64 + 63], float(std::sin(1.0 / std::pow(10000.0, 126.0 / 128.0) / 8.0)));
}

TEST(Rope, InterleavedPairsAndBackwardIsTranspose) {
  const auto table = rope_table(rope_config(RopeScalingKind::none), 8, 16);
  std::vector<int32_t> pos = {3, 7};
  auto x = randn(2 * 8, 1);
  const auto x0 = x;
  rope_forward(x.data(), pos.data(), table, 2, 1, 8, 0);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t i = 0; i < 4; ++i) {  // adjacent pair (2i, 2i+1), not (i, i + D/2)
      const float c = table.cos[pos[t] * 4 + i], s = table.sin[pos[t] * 4 + i];
      const float a = x0[t * 8 + 2 * i], b = x0[t * 8 + 2 * i + 1];
      ASSERT_EQ(x[t * 8 + 2 * i], a * c - b * s);
      ASSERT_EQ(x[t * 8 + 2 * i + 1], a * s + b * c);
    }
  // <R x, g> == <x, Rᵀ g> exactly for the float table's R (any matrix and its transpose), so
  // the two sides differ only by roundings. Each rotated component is fl(fl(p1) ± fl(p2)) of
  // two exact products, off by ≤ γ(2)·(|p1| + |p2|); the float64 sums of 16 exact products
  // add ≤ γ64(15)·Σ|·|. Bound, from the data:
  //   |lhs − rhs| ≤ γ(2)·Σ_pairs [(|a c| + |b s|)·|g_a| + (|a s| + |b c|)·|g_b|]        (forward)
  //              + γ(2)·Σ_pairs [(|g_a c| + |g_b s|)·|a| + (|g_b c| + |g_a s|)·|b|]    (backward)
  //              + γ64(15)·(Σ|Rx·g| + Σ|x·Rᵀg|)
  auto g = randn(16, 2);
  const auto g0 = g;
  rope_backward(g.data(), pos.data(), table, 2, 1, 8, 0);
  double lhs = 0, rhs = 0, mag = 0, dsum = 0;
  for (int i = 0; i < 16; ++i) {
    lhs += double(x[i]) * g0[i], rhs += double(x0[i]) * g[i];
    dsum += std::fabs(double(x[i]) * g0[i]) + std::fabs(double(x0[i]) * g[i]);
  }
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t i = 0; i < 4; ++i) {
      const double c = table.cos[pos[t] * 4 + i], sn = table.sin[pos[t] * 4 + i];
      const double a = x0[t * 8 + 2 * i], b = x0[t * 8 + 2 * i + 1];
      const double ga = g0[t * 8 + 2 * i], gb = g0[t * 8 + 2 * i + 1];
      mag += (std::fabs(a * c) + std::fabs(b * sn)) * std::fabs(ga) + (std::fabs(a * sn) + std::fabs(b * c)) * std::fabs(gb);
      mag += (std::fabs(ga * c) + std::fabs(gb * sn)) * std::fabs(a) + (std::fabs(gb * c) + std::fabs(ga * sn)) * std::fabs(b);
    }
  const double bound = gamma32(2) * mag + 15 * 0x1p-53 / (1 - 15 * 0x1p-53) * dsum;
  EXPECT_NE(lhs, rhs);  // the roundings happened (a bound of 0 would not be tested)
  EXPECT_LE(std::fabs(lhs - rhs), bound);
  std::printf("[ rope ] |<Rx, g> - <x, R^T g>| = %.3g, derived bound %.3g\n", std::fabs(lhs - rhs), bound);
}

// ---------------------------------------------------------------- float64 MLA oracle
struct Mla64 {
  MlaDims d;
  std::vector<float> cos, sin;  // the float tables, used exactly (part of the definition)
  double scale, eps;
  std::vector<int64_t> s0;
  std::vector<int32_t> pos;
  // weights in MlaWeights order, as one flat double vector
  Vec forward(const Vec& x, const Vec& flat) const {
    const auto sz = mla_weight_sizes(d);
    std::vector<const double*> p;
    const double* cur = flat.data();
    for (auto s : sz) p.push_back(cur), cur += s;
    const int64_t T = d.T, H = d.H, D = d.D(), VB = d.Dn + d.Dv, KA = d.Rkv + d.Dr, half = d.Dr / 2;
    Vec q;
    if (d.Rq > 0) {
      const Vec qa = oracle::linear(x, Vec(p[0], p[0] + sz[0]), T, d.Rq, d.C);
      const Vec qan = oracle::rmsnorm(qa, Vec(p[1], p[1] + sz[1]), eps, T, d.Rq);
      q = oracle::linear(qan, Vec(p[2], p[2] + sz[2]), T, H * D, d.Rq);
    } else {
      q = oracle::linear(x, Vec(p[3], p[3] + sz[3]), T, H * D, d.C);
    }
    Vec kv = oracle::linear(x, Vec(p[4], p[4] + sz[4]), T, KA, d.C);
    Vec cc(T * d.Rkv);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < d.Rkv; ++r) cc[t * d.Rkv + r] = kv[t * KA + r];
    const Vec cn = oracle::rmsnorm(cc, Vec(p[5], p[5] + sz[5]), eps, T, d.Rkv);
    const Vec kvb = oracle::linear(cn, Vec(p[6], p[6] + sz[6]), T, H * VB, d.Rkv);
    auto rot = [&](double* v, int64_t t) {
      for (int64_t i = 0; i < half; ++i) {
        const double c = cos[pos[t] * half + i], s = sin[pos[t] * half + i], a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c - b * s, v[2 * i + 1] = a * s + b * c;
      }
    };
    for (int64_t t = 0; t < T; ++t) {
      rot(&kv[t * KA + d.Rkv], t);
      for (int64_t h = 0; h < H; ++h) rot(&q[(t * H + h) * D + d.Dn], t);
    }
    Vec o(T * H * d.Dv, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> l;
        double m = -INFINITY;
        for (int64_t s = s0[t]; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < d.Dn; ++i) dot += q[(t * H + h) * D + i] * kvb[(s * H + h) * VB + i];
          for (int64_t i = 0; i < d.Dr; ++i) dot += q[(t * H + h) * D + d.Dn + i] * kv[s * KA + d.Rkv + i];
          l.push_back(dot * scale), m = std::max(m, dot * scale);
        }
        double z = 0;
        for (auto& v : l) v = std::exp(v - m), z += v;
        for (int64_t s = s0[t]; s <= t; ++s)
          for (int64_t e = 0; e < d.Dv; ++e)
            o[(t * H + h) * d.Dv + e] += l[s - s0[t]] / z * kvb[(s * H + h) * VB + d.Dn + e];
      }
    return oracle::linear(o, Vec(p[7], p[7] + sz[7]), T, d.C, H * d.Dv);
  }
};

struct MlaCase {
  int64_t T, C, H, Rq, Rkv, Dn, Dr, Dv;
  bool yarn;
  std::vector<int32_t> doc;  // empty = one document
  std::string name() const {
    return "T" + std::to_string(T) + "_C" + std::to_string(C) + "_H" + std::to_string(H) + "_Rq" +
           std::to_string(Rq) + "_Rkv" + std::to_string(Rkv) + "_Dn" + std::to_string(Dn) + "_Dr" +
           std::to_string(Dr) + "_Dv" + std::to_string(Dv) + (yarn ? "_yarn" : "") +
           (doc.empty() ? "" : "_docs" + std::to_string(doc.back() + 1));
  }
};

const MlaCase kMlaCases[] = {
    {5, 16, 2, 8, 8, 4, 4, 4, false, {}},
    {6, 12, 3, 0, 6, 3, 2, 5, true, {0, 0, 1, 1, 1, 2}},
    {33, 64, 4, 32, 32, 16, 8, 16, false, {}},               // tiny's MLA shape
    {40, 33, 2, 17, 130, 16, 8, 16, true, {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                           1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2}},
};

struct MlaSetup {
  MlaDims d;
  RopeTable rope;
  std::vector<float> x, flat;
  MlaWeights w;
  Mla64 o64;
  explicit MlaSetup(const MlaCase& k) {
    d = {k.T, k.C, k.H, k.Rq, k.Rkv, k.Dn, k.Dr, k.Dv};
    rope = rope_table(rope_config(k.yarn ? RopeScalingKind::yarn : RopeScalingKind::none), k.Dr, k.T);
    x = randn(k.T * k.C, 1);
    int64_t total = 0;
    for (auto s : mla_weight_sizes(d)) total += s;
    flat = randn(total, 2, 0.3f);
    const auto sz = mla_weight_sizes(d);  // norm weights around 1
    int64_t off = 0;
    for (int i = 0; i < 8; ++i) {
      if (i == 1 || i == 5)
        for (int64_t j = 0; j < sz[i]; ++j) flat[off + j] = 1.0f + 0.2f * flat[off + j];
      off += sz[i];
    }
    w = mla_weights_view(flat.data(), d);
    o64.d = d, o64.cos = rope.cos, o64.sin = rope.sin, o64.eps = double(1e-6f);
    o64.scale = double(mla_softmax_scale(d, rope));
    o64.s0.assign(k.T, 0), o64.pos.assign(k.T, 0);
    for (int64_t t = 0; t < k.T; ++t) {
      if (!k.doc.empty() && t > 0 && k.doc[t] == k.doc[t - 1]) o64.s0[t] = o64.s0[t - 1];
      else if (!k.doc.empty()) o64.s0[t] = t;
      o64.pos[t] = int32_t(t - o64.s0[t]);
    }
  }
  const int32_t* doc(const MlaCase& k) const { return k.doc.empty() ? nullptr : k.doc.data(); }
};

class Mla : public ::testing::TestWithParam<MlaCase> {};

TEST_P(Mla, NaiveAndAbsorbedWithinDerivedBoundOfFloat64Oracle) {
  const auto& k = GetParam();
  MlaSetup s(k);
  std::vector<float> y(k.T * k.C), ya(k.T * k.C);
  MlaCache cache;
  mla_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
  mla_forward_absorbed(ya.data(), s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
  const Vec want = s.o64.forward(to_double(s.x), to_double(s.flat));
  // Bound. The longest chain of roundings is the sum of the dot-product lengths along the
  // path x → q/k → logits → o → out (each dot ≤ dot_roundings(len)), plus ~10 elementwise
  // steps per stage (norms, RoPE, exp, divide): n = Σ dot_roundings + 40. Relative errors
  // of q and k are amplified in the softmax by at most (1 + 2·max|logit|) (d softmax / d l
  // has row sums of |·| ≤ 2, and δl ≤ |l|·rel). With magnitude M = max|out| as the scale:
  //   |out − exact| ≤ γ(n)·(1 + 2·max|l|)·M·4    (4: the two RMSNorms' cond. and Σ|·|/|Σ| slack)
  // The absorbed order obeys the same bound, so |naive − absorbed| ≤ 2× it.
  const double n = dot_roundings(k.C) + dot_roundings(std::max<int64_t>(k.Rq, 1)) + dot_roundings(k.Rkv) +
                   dot_roundings(k.Dn + k.Dr) + dot_roundings(k.T) + dot_roundings(k.H * k.Dv) + 40;
  double maxl = 0, M = 0;
  for (size_t h = 0; h < cache.p.size(); ++h) (void)h;
  for (int64_t h = 0; h < k.H; ++h)  // max |logit| from the cached q, k
    for (int64_t t = 0; t < k.T; ++t)
      for (int64_t u = cache.s0[t]; u <= t; ++u) {
        double l = 0;
        for (int64_t i = 0; i < s.d.D(); ++i)
          l += double(cache.q[(t * k.H + h) * s.d.D() + i]) * cache.k[(u * k.H + h) * s.d.D() + i];
        maxl = std::max(maxl, std::fabs(l * s.o64.scale));
      }
  for (double v : want) M = std::max(M, std::fabs(v));
  const double bound = gamma32(n) * (1 + 2 * maxl) * M * 4;
  double e_naive = 0, e_abs = 0, e_pair = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    e_naive = std::max(e_naive, std::fabs(y[i] - want[i]));
    e_abs = std::max(e_abs, std::fabs(ya[i] - want[i]));
    e_pair = std::max(e_pair, double(std::fabs(y[i] - ya[i])));
  }
  EXPECT_LE(e_naive, bound) << "naive";
  EXPECT_LE(e_abs, bound) << "absorbed";
  EXPECT_LE(e_pair, 2 * bound) << "naive vs absorbed";
  RecordProperty("max_err_naive_over_bound", std::to_string(e_naive / bound));
}

TEST_P(Mla, OneAndTwoThreadsAndRepeatsBitIdentical) {
  const auto& k = GetParam();
  MlaSetup s(k);
  auto run = [&] {
    std::vector<float> y(k.T * k.C), ya(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
    MlaCache cache;
    mla_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
    mla_forward_absorbed(ya.data(), s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
    const auto g = randn(k.T * k.C, 3);
    mla_backward(dx.data(), mla_weights_view(dflat.data(), s.d), g.data(), cache, s.x.data(), s.w, s.doc(k),
                 nullptr, s.rope, s.d);
    for (auto* v : {&ya, &dx, &dflat}) y.insert(y.end(), v->begin(), v->end());
    return y;
  };
  const auto one = with_threads(1, run);
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
  EXPECT_TRUE(bits_equal(one, with_threads(2, run)));
}

// Cases a test applies to are chosen at instantiation (below): a skipped test means "no GPU".
class MlaPacked : public Mla {};  // cases with several documents

TEST_P(MlaPacked, PackedDocumentsEqualSeparateRunsBitForBit) {
  const auto& k = GetParam();
  ASSERT_FALSE(k.doc.empty());
  MlaSetup s(k);
  std::vector<float> y(k.T * k.C);
  MlaCache cache;
  mla_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
  for (int64_t a = 0; a < k.T;) {
    int64_t b = a;
    while (b < k.T && k.doc[b] == k.doc[a]) ++b;
    MlaDims d1 = s.d;
    d1.T = b - a;
    std::vector<float> y1(d1.T * k.C);
    MlaCache c1;
    mla_forward(y1.data(), c1, &s.x[a * k.C], s.w, nullptr, nullptr, s.rope, 1e-6f, d1);
    ASSERT_TRUE(bits_equal(y1, std::vector<float>(y.begin() + a * k.C, y.begin() + b * k.C))) << "doc at " << a;
    a = b;
  }
}

// Every case, including T40_C33_..._Rkv130, whose W_kv_b GEMM crosses a 128-wide K block
// (Rkv = 130) and whose dx sums over Rkv + Dr = 138 rows of W_kv_a: the shapes where a wrong
// block order or a dropped partial block shows. Probed: ~48 entries of dx and ~12 of each weight
// tensor (evenly spread, each tensor's last entry, and W_kv_b's columns 128.. when they exist),
// so the largest case stays near a second on one core.
//
// Tolerance, per probed entry i of a tensor whose largest |fp32 gradient| is g_scale:
//   fp32 side: the gradient is a chain through the forward's ≤ n roundings (the activations it
//     reuses; n as in the forward bound above) and the transposed dots (≤ n more), so its error
//     is ≤ γ(2n) relative to the magnitude sums along the chain, bounded by |fd| + g_scale (as in
//     test_model.cpp's whole-model gradient check);
//   finite difference: central, step h = 2^-10 (a power of two, so x ± h is exact for the O(1)
//     inputs), truncation (h²/6)·|f‴| estimated by Richardson from the doubled step:
//     |D(2h) − D(h)| = 3·(h²/6)·|f‴| + O(h⁴), taken whole (3× the estimate); the float64
//     oracle's rounding, ≤ γ64(n)·Σ|g·y| per evaluation, over h.
TEST_P(Mla, BackwardMatchesFiniteDifferencesOfFloat64Oracle) {
  const auto& k = GetParam();
  MlaSetup s(k);
  std::vector<float> y(k.T * k.C), dx(k.T * k.C, 0.f), dflat(s.flat.size(), 0.f);
  MlaCache cache;
  mla_forward(y.data(), cache, s.x.data(), s.w, s.doc(k), nullptr, s.rope, 1e-6f, s.d);
  const auto g = randn(k.T * k.C, 3);
  mla_backward(dx.data(), mla_weights_view(dflat.data(), s.d), g.data(), cache, s.x.data(), s.w, s.doc(k),
               nullptr, s.rope, s.d);
  const Vec xd = to_double(s.x), fd = to_double(s.flat), gd = to_double(g);
  const double n = dot_roundings(k.C) + dot_roundings(std::max<int64_t>(k.Rq, 1)) + dot_roundings(k.Rkv) +
                   dot_roundings(k.Dn + k.Dr) + dot_roundings(k.T) + dot_roundings(k.H * k.Dv) + 40;
  const double h = 0x1p-10, gtol = gamma32(2 * n);
  double gy = 0;
  {
    const Vec y64 = s.o64.forward(xd, fd);
    for (size_t i = 0; i < y64.size(); ++i) gy += std::fabs(gd[i] * y64[i]);
  }
  const double round_fd = 2 * (n * 0x1p-53 / (1 - n * 0x1p-53)) * gy / (2 * h);
  int probed = 0, bad = 0;
  double worst = 0;
  auto probe = [&](const char* what, const std::vector<float>& grad, const Vec& at, size_t i, double g_scale,
                   const std::function<double(const Vec&)>& f) {
    const double d1 = central_diff(f, at, i, h), d2 = central_diff(f, at, i, 2 * h);
    const double tol = gtol * (std::fabs(d1) + g_scale) + std::fabs(d2 - d1) + round_fd;
    const double err = std::fabs(double(grad[i]) - d1);
    worst = std::max(worst, err / tol);
    ++probed;
    if (err > tol && bad++ < 8)
      ADD_FAILURE() << what << "[" << i << "]: backward " << grad[i] << " vs finite difference " << d1 << " (tol " << tol
                    << ")";
  };
  auto spread = [](int64_t size, int64_t count) {
    std::vector<int64_t> v;
    const int64_t c = std::min(count, size);
    for (int64_t j = 0; j < c; ++j) v.push_back((size * (2 * j + 1)) / (2 * c));
    if (size > 0 && (v.empty() || v.back() != size - 1)) v.push_back(size - 1);
    return v;
  };
  auto fx = [&](const Vec& v) { return oracle::weighted_sum(gd, s.o64.forward(v, fd)); };
  auto fw = [&](const Vec& v) { return oracle::weighted_sum(gd, s.o64.forward(xd, v)); };
  double sx = 0;
  for (float v : dx) sx = std::max(sx, double(std::fabs(v)));
  for (int64_t i : spread(int64_t(dx.size()), 48)) probe("dx", dx, xd, size_t(i), sx, fx);
  const auto sz = mla_weight_sizes(s.d);
  const char* names[] = {"wq_a", "q_norm", "wq_b", "wq", "wkv_a", "kv_norm", "wkv_b", "wo"};
  int64_t off = 0;
  for (int t = 0; t < 8; ++t) {
    double sw = 0;
    for (int64_t i = 0; i < sz[t]; ++i) sw = std::max(sw, double(std::fabs(dflat[off + i])));
    std::vector<int64_t> at = spread(sz[t], 12);
    if (t == 6)  // W_kv_b (H·(Dn+Dv), Rkv): columns past the first K block, first and last row
      for (int64_t c = 128; c < k.Rkv; ++c) at.push_back(c), at.push_back(sz[t] - k.Rkv + c);
    for (int64_t i : at) probe(names[t], dflat, fd, size_t(off + i), sw, fw);
    off += sz[t];
  }
  EXPECT_EQ(bad, 0);
  RecordProperty("fd_entries_probed", std::to_string(probed));
  std::printf("[ mla ] %s: %d gradient entries vs central differences, tol γ(2n) = %.3g, worst |g - fd| / tol = %.3g\n",
              k.name().c_str(), probed, gtol, worst);
}

std::vector<MlaCase> mla_cases_with_documents() {
  std::vector<MlaCase> v;
  for (const MlaCase& k : kMlaCases)
    if (!k.doc.empty()) v.push_back(k);
  return v;
}
INSTANTIATE_TEST_SUITE_P(Cases, Mla, ::testing::ValuesIn(kMlaCases),
                         [](const auto& info) { return info.param.name(); });
INSTANTIATE_TEST_SUITE_P(Cases, MlaPacked, ::testing::ValuesIn(mla_cases_with_documents()),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace preflight::ref::test
