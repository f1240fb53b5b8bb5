// QK-Clip on MLA and GQA weights (docs/OPTIMIZERS.md §5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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
                                           const std::vector<float>& x) {
  std::vector<float> out(d.T * d.C);
  ref::MlaCache cache;
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

class QkClipMla : public ::testing::TestWithParam<int64_t> {};  // param: Rq (0 = direct W_q)

TEST_P(QkClipMla, ClippedHeadsScaleByGammaOthersAndSharedRopeKeyUntouched) {
  const MlaDims d{7, 24, 4, GetParam(), 12, 8, 4, 6};
  const ref::RopeTable rope = small_rope(d.T, d.Dr);
  int64_t total = 0;
  for (int64_t s : ref::mla_weight_sizes(d)) total += s;
  std::vector<float> flat = randn(total, 3, 1.5f);
  const ref::MlaWeights w = ref::mla_weights_view(flat.data(), d);
  const std::vector<float> x = randn(d.T * d.C, 4, 2.0f);
  const auto l0 = mla_logits(w, d, rope, x);
  const std::vector<float> smax = max_per_head(l0);
  std::vector<float> sorted = smax;
  std::sort(sorted.begin(), sorted.end());
  QkClipConfig cfg;
  cfg.tau = sorted[1];  // the two largest heads clip, the two others do not
  ASSERT_GT(sorted[2], cfg.tau);
  const std::vector<float> before = flat;
  const std::vector<double> gam = qk_clip_mla(w, d, smax, cfg);
  const auto l1 = mla_logits(w, d, rope, x);
  int clipped = 0;
  for (int64_t h = 0; h < d.H; ++h) {
    if (smax[h] > cfg.tau) {
      ++clipped;
      EXPECT_DOUBLE_EQ(gam[h], cfg.tau / double(smax[h]));
      const float m1 = *std::max_element(l1[h].begin(), l1[h].end());
      EXPECT_LE(m1, cfg.tau * (1 + 1e-5)) << h;
      EXPECT_GE(m1, cfg.tau * (1 - 1e-5)) << h;
      // every logit scales by γ: q_nope·k_nope by √γ·√γ, q_rope·k_rope by γ·1
      for (size_t i = 0; i < l0[h].size(); ++i)
        EXPECT_NEAR(l1[h][i], gam[h] * l0[h][i], 2e-5 * cfg.tau) << h << " " << i;
    } else {
      EXPECT_EQ(gam[h], 1.0);
      for (size_t i = 0; i < l0[h].size(); ++i) ASSERT_EQ(l1[h][i], l0[h][i]) << "head " << h << " changed";
    }
  }
  EXPECT_EQ(clipped, 2);
  // W_kv_a (with the shared rotary key rows) and the v rows of W_kv_b are bit-identical.
  const ref::MlaWeights w0 = ref::mla_weights_view(const_cast<float*>(before.data()), d);
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
    EXPECT_NEAR(logit(0), gam[0] * l0[0], 1e-5 * std::fabs(l0[0]));
    for (int64_t h = 1; h < H; ++h) EXPECT_EQ(logit(h), l0[h]) << "Hkv " << Hkv << " head " << h;
    if (Hkv < H) {
      EXPECT_EQ(wk, wk0);
    }
  }
}

}  // namespace
}  // namespace preflight::optim
