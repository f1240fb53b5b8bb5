// Schedules against the published figures (docs/OPTIMIZERS.md §6).
#include <gtest/gtest.h>

#include <cmath>

#include "reference/core/error.hpp"
#include "reference/optim/schedules.hpp"

namespace preflight::optim {
namespace {

TEST(Schedules, CosPiMatchesLibmToARoundingOrTwo) {
  // Schedules use x in [0, 1]; there pi·x rounds by at most 2^-53·pi, so libm is a fair oracle.
  for (int i = 0; i <= 4000; ++i) {
    const double x = i / 4000.0;
    EXPECT_NEAR(cos_pi(x), std::cos(M_PI * x), 4e-16) << x;
  }
  // Even and 2-periodic exactly (the reduction is exact for dyadic x).
  for (int i = 0; i <= 64; ++i) {
    const double x = i / 32.0;
    EXPECT_EQ(cos_pi(x), cos_pi(-x));
    EXPECT_EQ(cos_pi(x), cos_pi(x + 4.0));
  }
  EXPECT_EQ(cos_pi(0.0), 1.0);
  EXPECT_EQ(cos_pi(1.0), -1.0);
  EXPECT_EQ(cos_pi(0.5), 0.0);
}

TEST(Schedules, WarmupCosineEndpointsAndMidpoint) {
  WarmupCosine s{1e-3, 1e-4, 10, 110};
  EXPECT_EQ(lr_at(s, 0), float(1e-3 / 10));
  EXPECT_EQ(lr_at(s, 9), float(1e-3));
  EXPECT_EQ(lr_at(s, 10), float(1e-3));             // cos 0 = 1 exactly
  EXPECT_EQ(lr_at(s, 60), float(1e-4 + 0.5 * 9e-4));  // cos(pi/2) = 0 exactly
  EXPECT_EQ(lr_at(s, 110), float(1e-4));
  EXPECT_EQ(lr_at(s, 5000), float(1e-4));
  for (int64_t t = 11; t < 110; ++t) EXPECT_LE(lr_at(s, t), lr_at(s, t - 1));
}

TEST(Schedules, WsdDecayShapes) {
  Wsd s{1e-3, 0.0, 10, 100, 20, WsdDecay::linear};
  EXPECT_EQ(lr_at(s, 50), float(1e-3));
  EXPECT_EQ(lr_at(s, 79), float(1e-3));
  EXPECT_EQ(lr_at(s, 80), float(1e-3));
  EXPECT_EQ(lr_at(s, 90), float(1e-3 * 0.5));
  s.decay = WsdDecay::cosine;
  EXPECT_EQ(lr_at(s, 90), float(1e-3 * 0.5));
  s.decay = WsdDecay::one_minus_sqrt;
  EXPECT_EQ(lr_at(s, 85), float(1e-3 * (1.0 - 0.5)));  // p = 1/4
  EXPECT_EQ(lr_at(s, 100), 0.0f);
  EXPECT_THROW(lr_at(Wsd{1e-3, 0, 90, 100, 20, WsdDecay::linear}, 0), Error);
}

TEST(Schedules, DeepSeekV3PublishedPoints) {
  const DeepSeekV3Lr s;
  EXPECT_EQ(lr_at(s, 0, 0), float(2.2e-4 / 2000));
  EXPECT_EQ(lr_at(s, 999, 1e9), float(2.2e-4 * 1000 / 2000));
  EXPECT_EQ(lr_at(s, 1999, 5e9), float(2.2e-4));
  EXPECT_EQ(lr_at(s, 2000, 6e9), float(2.2e-4));
  EXPECT_EQ(lr_at(s, 500000, 9.99e12), float(2.2e-4));
  EXPECT_EQ(lr_at(s, 500000, 10.0e12), float(2.2e-4));
  EXPECT_EQ(lr_at(s, 600000, 12.15e12), float(2.2e-5 + 0.5 * (2.2e-4 - 2.2e-5)));  // cosine midpoint
  EXPECT_NEAR(lr_at(s, 600000, 14.2999e12), 2.2e-5, 1e-10);
  EXPECT_EQ(lr_at(s, 700000, 14.3e12), float(2.2e-5));
  EXPECT_EQ(lr_at(s, 700000, 14.6e12), float(2.2e-5));
  EXPECT_EQ(lr_at(s, 700000, 14.633e12), float(7.3e-6));
  EXPECT_EQ(lr_at(s, 700000, 14.8e12), float(7.3e-6));
}

TEST(Schedules, RewarmAfterContextSwitch) {
  const float lr = 7.3e-6f;
  EXPECT_EQ(rewarm(lr, 99, 100), lr);
  EXPECT_EQ(rewarm(lr, 100, 100), float(double(lr) / 500));
  EXPECT_EQ(rewarm(lr, 349, 100), float(double(lr) * 250 / 500));
  EXPECT_EQ(rewarm(lr, 599, 100), lr);
  EXPECT_EQ(rewarm(lr, 600, 100), lr);
}

TEST(Schedules, BatchRampStaircase) {
  const BatchRamp s;
  EXPECT_EQ(batch_at(s, 0), 3072);
  EXPECT_EQ(batch_at(s, 469e9 / 16 - 1), 3072);
  EXPECT_EQ(batch_at(s, 469e9 / 16), 3072 + 768);
  EXPECT_EQ(batch_at(s, 234.5e9), 3072 + 8 * 768);  // halfway: 9216
  EXPECT_EQ(batch_at(s, 469e9 - 1), 15360 - 768);
  EXPECT_EQ(batch_at(s, 469e9), 15360);
  EXPECT_EQ(batch_at(s, 14e12), 15360);
  for (double t = 0; t < 500e9; t += 7e9) EXPECT_EQ(batch_at(s, t) % 384, 0) << t;
  EXPECT_THROW(batch_at(BatchRamp{3072, 15360, 1000, 469e9}, 0), Error);
}

TEST(Schedules, MtpLambdaAndBiasGamma) {
  EXPECT_EQ(mtp_lambda_at(MtpLambda{}, 0), 0.3f);
  EXPECT_EQ(mtp_lambda_at(MtpLambda{}, 9.99e12), 0.3f);
  EXPECT_EQ(mtp_lambda_at(MtpLambda{}, 10e12), 0.1f);
  EXPECT_EQ(bias_gamma_at(BiasGamma{}, 0), 0.001f);
  EXPECT_EQ(bias_gamma_at(BiasGamma{}, 14.29e12), 0.001f);
  EXPECT_EQ(bias_gamma_at(BiasGamma{}, 14.3e12), 0.0f);
}

TEST(Schedules, RouterBiasSignRuleAndCentring) {
  // loads 4 experts, total 40, mean 10: under, equal, over, over.
  const int64_t load[4] = {2, 10, 11, 17};
  float b[4] = {0.5f, 0.25f, -0.125f, 0.0f};
  update_router_bias(b, load, 4, 0.001f, false);
  EXPECT_EQ(b[0], 0.5f + 0.001f);
  EXPECT_EQ(b[1], 0.25f);
  EXPECT_EQ(b[2], -0.125f - 0.001f);
  EXPECT_EQ(b[3], 0.0f - 0.001f);
  float c[4] = {0.5f, 0.25f, -0.125f, 0.0f};
  update_router_bias(c, load, 4, 0.001f, true);
  double mean = 0;
  for (int i = 0; i < 4; ++i) mean += double(b[i]);
  const float mf = float(mean / 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i], b[i] - mf);
  // The comparison is exact in integers: a load equal to the mean moves nothing even when
  // mean_load is not representable (total 10 over 3 experts).
  const int64_t l3[3] = {3, 3, 4};
  float d[3] = {0, 0, 0};
  update_router_bias(d, l3, 3, 0.5f, false);
  EXPECT_EQ(d[0], 0.5f);
  EXPECT_EQ(d[2], -0.5f);
}

}  // namespace
}  // namespace preflight::optim
