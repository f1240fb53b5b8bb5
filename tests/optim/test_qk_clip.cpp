// QK-Clip on MLA and GQA weights (docs/OPTIMIZERS.md §5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <cstdio>

#include "optim_test_util.hpp"
#include "reference/numerics/reduce.hpp"
#include "reference/optim/qk_clip.hpp"

namespace preflight::optim {
namespace {

using ref::MlaDims;
using test::randn;

ref::RopeTable small_rope(int64_t T, int64_t Dr) {
  ref::RopeTable t;
  t.positions = T, t.dim = Dr;
  for (int64_t p = 0; p < T; ++p)
    for (int64_t i = 0; i < Dr / 2; ++i) {
      const double a = p * std::pow(10000.0, -2.0 * i / Dr);
      t.cos.push_back(float(std::cos(a)));
      t.sin.push_back(float(std::sin(a)));
    }
  return t;
}

// logits[h][t][s] (s <= t) from the forward cache, the way mla.hpp defines them.
std::vector<std::vector<float>> mla_logits(const ref::MlaWeights& w, const MlaDims& d, const ref::RopeTable& rope,
                                           const std::vector<float>& x, ref::MlaCache* keep = nullptr) {
  std::vector<float> out(d.T * d.C);
  ref::MlaCache local;
  ref::MlaCache& cache = keep ? *keep : local;
  ref::mla_forward(out.data(), cache, x.data(), w, nullptr, nullptr, rope, 1e-6f, d);
  const float scale = ref::mla_softmax_scale(d, rope);
  std::vector<std::vector<float>> l(d.H);
  for (int64_t h = 0; h < d.H; ++h)
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t s = 0; s <= t; ++s)
        l[h].push_back(num::dot_k128(&cache.q[(t * d.H + h) * d.D()], &cache.k[(s * d.H + h) * d.D()], d.D()) * scale);
  return l;
}

std::vector<float> max_per_head(const std::vector<std::vector<float>>& l) {
  std::vector<float> m;
  for (const auto& v : l) m.push_back(*std::max_element(v.begin(), v.end()));
  return m;
}

// |l1 − γ·l0| for every logit of head h, bounded from the data by a running error analysis
// (u = 2^-24; for RNE |fl(v) − v| ≤ u·|fl(v)|). The contract dot (a chain of fma from +0 per
// 128-block, blocks added from +0) is replayed in float: its result minus the exact dot is the
// sum of its steps' rounding errors, so |d̂ − d| ≤ u·Σ|every rounded step|; each replay is
// checked bit-equal to what the forward cached, so the bound is about those very values.
// The scaled GEMMs' inputs are bit-identical before and after the clip (x or qan for the query,
// cn for the key: W_q_a, the norms and W_kv_a are untouched), and a clipped weight is
// W' = fl(W·f) = f·W·(1 + δ), |δ| ≤ u, a priori (f = sg = float(√γ) or gg = float(γ)), so
//   ε = ŷ1 − f·ŷ0 for a GEMM output: |ε| ≤ e1 + u·f·Σ|in·W| + f·e0     (e = the replay's bound);
//   a rope query entry fl(fl(a c) ∓ fl(b s)) adds its own ≤ u·(|fl(a c)| + |fl(b s)| + |result|)
//     on each side, and the pre-rotation ε enter as |c|·ε_a + |s|·ε_b;
//   l̂ = fl(d̂·scale): |l̂ − scale·q̂·k̂| ≤ scale·e_dot + u·|l̂| on each side;
//   q̂1·k̂1 − γ·q̂0·k̂0 over the nope entries is (sg² − γ)·q̂0k̂0 + sg·(q̂0·ε_k + k̂0·ε_q) + ε_q·ε_k,
//     over the rope entries (gg − γ)·q̂0·k̂ + ε_q·k̂ (k_rope is bit-identical), sg² − γ and gg − γ
//     exact in double.
struct DotRun {
  float value;
  double err;
};
DotRun dot_run(const float* a, int64_t sa, const float* b, int64_t sb, int64_t K) {
  float acc = 0.0f;
  double steps = 0;
  for (int64_t k0 = 0; k0 < K; k0 += 128) {
    float partial = 0.0f;
    for (int64_t k = k0; k < std::min<int64_t>(K, k0 + 128); ++k) {
      partial = std::fma(a[k * sa], b[k * sb], partial);
      steps += std::fabs(double(partial));
    }
    acc = acc + partial;
    steps += std::fabs(double(acc));
  }
  return {acc, test::kU * steps};
}

struct ClipCheck {
  std::vector<std::vector<double>> bound;  // [h][logit index in mla_logits order]
};
ClipCheck clip_bounds(const ref::MlaCache& c0, const ref::MlaCache& c1, const ref::MlaWeights& w0,
                      const ref::MlaWeights& w1, const MlaDims& d, const ref::RopeTable& rope, const std::vector<float>& x,
                      const std::vector<double>& gam, float scale) {
  const double u = test::kU;
  const int64_t T = d.T, H = d.H, D = d.D(), Kq = d.Rq > 0 ? d.Rq : d.C, VB = d.Dn + d.Dv, half = d.Dr / 2;
  const float* in_q = d.Rq > 0 ? c0.qan.data() : x.data();
  const float* wq0 = d.Rq > 0 ? w0.wq_b : w0.wq;
  const float* wq1 = d.Rq > 0 ? w1.wq_b : w1.wq;
  EXPECT_TRUE(test::same_bits(c0.cn, c1.cn));
  if (d.Rq > 0) {
    EXPECT_TRUE(test::same_bits(c0.qan, c1.qan));
  }
  // One GEMM output before (W0) and after (W1): the replayed values and the bound on ε.
  struct Gemm {
    float y0, y1;
    double eps;
  };
  auto gemm = [&](const float* in, const float* W0, const float* W1, int64_t K, double f) {
    const DotRun r0 = dot_run(in, 1, W0, 1, K), r1 = dot_run(in, 1, W1, 1, K);
    double A = 0;
    for (int64_t j = 0; j < K; ++j) A += std::fabs(double(in[j]) * W0[j]);
    return Gemm{r0.value, r1.value, r1.err + u * f * A + f * r0.err};
  };
  ClipCheck r;
  r.bound.assign(H, {});
  for (int64_t h = 0; h < H; ++h) {
    const double g = gam[h];
    const float sg = float(std::sqrt(g)), gg = float(g);
    const double dsg = std::fabs(double(sg) * double(sg) - g), dgg = std::fabs(double(gg) - g);
    std::vector<double> eq(T * D), ek(T * d.Dn);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < d.Dn; ++i) {
        const int64_t row = h * D + i, krow = h * VB + i;
        const Gemm q = gemm(in_q + t * Kq, wq0 + row * Kq, wq1 + row * Kq, Kq, sg);
        const Gemm k = gemm(&c0.cn[t * d.Rkv], w0.wkv_b + krow * d.Rkv, w1.wkv_b + krow * d.Rkv, d.Rkv, sg);
        EXPECT_EQ(q.y0, c0.q[(t * H + h) * D + i]);
        EXPECT_EQ(q.y1, c1.q[(t * H + h) * D + i]);
        EXPECT_EQ(k.y0, c0.k[(t * H + h) * D + i]);
        EXPECT_EQ(k.y1, c1.k[(t * H + h) * D + i]);
        eq[t * D + i] = q.eps, ek[t * d.Dn + i] = k.eps;
      }
      for (int64_t p = 0; p < half; ++p) {
        const int64_t ra = h * D + d.Dn + 2 * p, rb = ra + 1;
        const Gemm a = gemm(in_q + t * Kq, wq0 + ra * Kq, wq1 + ra * Kq, Kq, gg);
        const Gemm b = gemm(in_q + t * Kq, wq0 + rb * Kq, wq1 + rb * Kq, Kq, gg);
        const float cs = rope.cos[t * half + p], sn = rope.sin[t * half + p];
        // the rotation as rope.cpp performs it, with the rounding of each step
        auto rot = [&](float va, float vb, float* ra_out, float* rb_out) {
          const float ac = va * cs, bs = vb * sn, as = va * sn, bc = vb * cs;
          *ra_out = ac - bs, *rb_out = as + bc;
          return std::pair<double, double>(
              u * (std::fabs(double(ac)) + std::fabs(double(bs)) + std::fabs(double(*ra_out))),
              u * (std::fabs(double(as)) + std::fabs(double(bc)) + std::fabs(double(*rb_out))));
        };
        float a0r, b0r, a1r, b1r;
        const auto rho0 = rot(a.y0, b.y0, &a0r, &b0r), rho1 = rot(a.y1, b.y1, &a1r, &b1r);
        EXPECT_EQ(a0r, c0.q[(t * H + h) * D + d.Dn + 2 * p]);
        EXPECT_EQ(b0r, c0.q[(t * H + h) * D + d.Dn + 2 * p + 1]);
        EXPECT_EQ(a1r, c1.q[(t * H + h) * D + d.Dn + 2 * p]);
        EXPECT_EQ(b1r, c1.q[(t * H + h) * D + d.Dn + 2 * p + 1]);
        const double c = std::fabs(double(cs)), s = std::fabs(double(sn));
        eq[t * D + d.Dn + 2 * p] = c * a.eps + s * b.eps + rho1.first + gg * rho0.first;
        eq[t * D + d.Dn + 2 * p + 1] = s * a.eps + c * b.eps + rho1.second + gg * rho0.second;
      }
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s <= t; ++s) {
        const float* q0 = &c0.q[(t * H + h) * D];
        const float* k0 = &c0.k[(s * H + h) * D];
        const float* q1 = &c1.q[(t * H + h) * D];
        const float* k1 = &c1.k[(s * H + h) * D];
        const DotRun d0 = dot_run(q0, 1, k0, 1, D), d1 = dot_run(q1, 1, k1, 1, D);
        const float l0 = d0.value * scale, l1 = d1.value * scale;
        double cross = 0;
        for (int64_t i = 0; i < D; ++i) {
          if (i < d.Dn) {
            const double e_q = eq[t * D + i], e_k = ek[s * d.Dn + i];
            cross += dsg * std::fabs(double(q0[i]) * k0[i]) +
                     sg * (std::fabs(double(q0[i])) * e_k + std::fabs(double(k0[i])) * e_q) + e_q * e_k;
          } else {
            cross += dgg * std::fabs(double(q0[i]) * k0[i]) + eq[t * D + i] * std::fabs(double(k0[i]));
          }
        }
        r.bound[h].push_back(scale * (d1.err + g * d0.err + cross) + u * (std::fabs(double(l1)) + g * std::fabs(double(l0))));
      }
  }
  return r;
}

class QkClipMla : public ::testing::TestWithParam<int64_t> {};  // param: Rq (0 = direct W_q)

TEST_P(QkClipMla, ClippedHeadsScaleByGammaOthersAndSharedRopeKeyUntouched) {
  const MlaDims d{7, 24, 4, GetParam(), 12, 8, 4, 6};
  const ref::RopeTable rope = small_rope(d.T, d.Dr);
  int64_t total = 0;
  for (int64_t s : ref::mla_weight_sizes(d)) total += s;
  std::vector<float> flat = randn(total, 3, 1.5f);
  const ref::MlaWeights w = ref::mla_weights_view(flat.data(), d);
  const std::vector<float> x = randn(d.T * d.C, 4, 2.0f);
  ref::MlaCache c0, c1;
  const auto l0 = mla_logits(w, d, rope, x, &c0);
  const std::vector<float> smax = max_per_head(l0);
  std::vector<float> sorted = smax;
  std::sort(sorted.begin(), sorted.end());
  QkClipConfig cfg;
  cfg.tau = sorted[1];  // the two largest heads clip, the two others do not
  ASSERT_GT(sorted[2], cfg.tau);
  const std::vector<float> before = flat;
  const std::vector<double> gam = qk_clip_mla(w, d, smax, cfg);
  const auto l1 = mla_logits(w, d, rope, x, &c1);
  const ref::MlaWeights w0 = ref::mla_weights_view(const_cast<float*>(before.data()), d);
  const ClipCheck cc = clip_bounds(c0, c1, w0, w, d, rope, x, gam, ref::mla_softmax_scale(d, rope));
  int clipped = 0;
  double worst = 0;
  for (int64_t h = 0; h < d.H; ++h) {
    if (smax[h] > cfg.tau) {
      ++clipped;
      EXPECT_DOUBLE_EQ(gam[h], cfg.tau / double(smax[h]));
      // max_i γ·l0_i = γ·smax = τ and the max is 1-Lipschitz: |max l1 − τ| ≤ max_i bound_i
      // (+ the double rounding of γ·smax, ≤ 2^-52·τ).
      const float m1 = *std::max_element(l1[h].begin(), l1[h].end());
      const double mb = *std::max_element(cc.bound[h].begin(), cc.bound[h].end()) + 0x1p-52 * cfg.tau;
      EXPECT_NEAR(m1, cfg.tau, mb) << h;
      // every logit scales by γ: q_nope·k_nope by √γ·√γ, q_rope·k_rope by γ·1
      for (size_t i = 0; i < l0[h].size(); ++i) {
        const double err = std::fabs(l1[h][i] - gam[h] * l0[h][i]);
        worst = std::max(worst, err / cc.bound[h][i]);
        EXPECT_LE(err, cc.bound[h][i]) << h << " " << i;
      }
    } else {
      EXPECT_EQ(gam[h], 1.0);
      for (size_t i = 0; i < l0[h].size(); ++i) ASSERT_EQ(l1[h][i], l0[h][i]) << "head " << h << " changed";
    }
  }
  EXPECT_EQ(clipped, 2);
  std::printf("[ qk-clip ] MLA %s: worst |l1 - γ l0| / derived bound = %.3g\n", d.Rq ? "Wq_b" : "Wq", worst);
  // W_kv_a (with the shared rotary key rows) and the v rows of W_kv_b are bit-identical.
  for (int64_t i = 0; i < (d.Rkv + d.Dr) * d.C; ++i) ASSERT_EQ(w.wkv_a[i], w0.wkv_a[i]);
  for (int64_t h = 0; h < d.H; ++h)
    for (int64_t r = d.Dn; r < d.Dn + d.Dv; ++r)
      for (int64_t c = 0; c < d.Rkv; ++c) {
        const int64_t i = (h * (d.Dn + d.Dv) + r) * d.Rkv + c;
        ASSERT_EQ(w.wkv_b[i], w0.wkv_b[i]);
      }
}
INSTANTIATE_TEST_SUITE_P(Layouts, QkClipMla, ::testing::Values(int64_t{0}, int64_t{10}),
                         [](const auto& i) { return i.param ? std::string("Wq_b") : std::string("Wq"); });

// GQA/MHA: logits q·k in double from the weights; MHA splits √γ over q and k, a shared key head
// puts all of γ on the query.
TEST(QkClipGqa, MhaSplitsAndGroupedPutsGammaOnQuery) {
  const int64_t Dh = 8, C = 16;
  for (int64_t Hkv : {int64_t{4}, int64_t{2}}) {
    const int64_t H = 4;
    std::vector<float> wq = randn(H * Dh * C, 1, 2.0f), wk = randn(Hkv * Dh * C, 2, 2.0f);
    const std::vector<float> x = randn(C, 3), wq0 = wq, wk0 = wk;
    auto logit = [&](int64_t h) {
      const int64_t kh = h / (H / Hkv);
      double l = 0;
      for (int64_t e = 0; e < Dh; ++e) {
        double q = 0, k = 0;
        for (int64_t c = 0; c < C; ++c) q += double(wq[(h * Dh + e) * C + c]) * x[c];
        for (int64_t c = 0; c < C; ++c) k += double(wk[(kh * Dh + e) * C + c]) * x[c];
        l += q * k;
      }
      return l;
    };
    std::vector<float> smax;
    for (int64_t h = 0; h < H; ++h) smax.push_back(float(std::fabs(logit(h))) + 1.0f);
    std::vector<double> l0;
    for (int64_t h = 0; h < H; ++h) l0.push_back(logit(h));
    QkClipConfig cfg;
    cfg.tau = smax[0] * 0.5;  // head 0 clips
    smax[1] = float(cfg.tau);  // at τ: not clipped
    smax[2] = smax[3] = float(cfg.tau) * 0.5f;
    const std::vector<double> gam = qk_clip_gqa(wq.data(), wk.data(), H, Hkv, Dh, C, smax, cfg);
    EXPECT_LT(gam[0], 1.0);
    // Bound from the data (u = 2^-24, u64 = 2^-53). W' = fl(W·f) = f·W·(1 + δ), so with the exact
    // products Q_e = Σ_c Wq·x, K_e and their magnitudes Aq_e = Σ_c |Wq·x|, Ak_e:
    //   MHA (f = sg = float(√γ) on both): Q'_e = sg·(Q_e + η_e), |η_e| ≤ u·Aq_e (same for K), so
    //     |L' − γL| ≤ |sg² − γ|·Σ|Q_e K_e| + sg²·Σ(|η_e||K_e| + |Q_e||η'_e| + |η_e||η'_e|);
    //   grouped (f = gg = float(γ) on the query only): |L' − γL| ≤ |gg − γ|·Σ|QK| + gg·Σ|η_e||K_e|;
    //   each double evaluation (C products, then Dh) is off by ≤ γ64(C + Dh)·Σ_e Aq_e·Ak_e.
    {
      const int64_t kh = 0;
      const double g = gam[0];
      const float sg = float(std::sqrt(g)), gg = float(g);
      const bool mha = Hkv == H;
      const double fq = mha ? double(sg) : double(gg), fk = mha ? double(sg) : 1.0;
      double sqk = 0, mixed = 0, mag0 = 0;
      for (int64_t e = 0; e < Dh; ++e) {
        double q = 0, k = 0, aq = 0, ak = 0;
        for (int64_t c = 0; c < C; ++c) {
          q += double(wq0[(0 * Dh + e) * C + c]) * x[c], aq += std::fabs(double(wq0[(0 * Dh + e) * C + c]) * x[c]);
          k += double(wk0[(kh * Dh + e) * C + c]) * x[c], ak += std::fabs(double(wk0[(kh * Dh + e) * C + c]) * x[c]);
        }
        const double eq = test::kU * aq, ek = mha ? test::kU * ak : 0.0;
        sqk += std::fabs(q * k);
        mixed += eq * std::fabs(k) + std::fabs(q) * ek + eq * ek;
        mag0 += aq * ak;
      }
      const double fgap = mha ? std::fabs(double(sg) * double(sg) - g) : std::fabs(double(gg) - g);
      const double n64 = double(C + Dh), g64 = n64 * 0x1p-53 / (1 - n64 * 0x1p-53);
      const double bound = fgap * sqk + fq * fk * mixed + g64 * mag0 * (fq * fk * (1 + test::kU) * (1 + test::kU) + g);
      EXPECT_NEAR(logit(0), gam[0] * l0[0], bound) << "Hkv " << Hkv;
      std::printf("[ qk-clip ] GQA Hkv %lld: |l1 - γ l0| = %.3g, derived bound %.3g\n", (long long)Hkv,
                  std::fabs(logit(0) - gam[0] * l0[0]), bound);
    }
    for (int64_t h = 1; h < H; ++h) EXPECT_EQ(logit(h), l0[h]) << "Hkv " << Hkv << " head " << h;
    if (Hkv < H) {
      EXPECT_EQ(wk, wk0);
    }
  }
}

}  // namespace
}  // namespace preflight::optim
