#include "reference/optim/schedules.hpp"

#include <cmath>

#include "reference/core/error.hpp"

namespace preflight::optim {

double cos_pi(double x) {
  // cos is even and 2-periodic in x: reduce to r in [0, 1] exactly (fmod of doubles is exact),
  // then to [0, 1/2] with cos(pi(1 - r)) = -cos(pi r).
  double r = std::fabs(std::fmod(x, 2.0));
  if (r > 1.0) r = 2.0 - r;
  double sign = 1.0;
  if (r > 0.5) {
    r = 1.0 - r;
    sign = -1.0;
  }
  const double t = 3.141592653589793 * r;  // |t| <= pi/2
  const double t2 = t * t;
  // Σ_{k=0..13} (−1)^k t^(2k)/(2k)! in the nested form 1 − t²/(1·2)·(1 − t²/(3·4)·(1 − ...)),
  // innermost first; the first omitted term (pi/2)^28/28! is about 1e-24.
  double p = 1.0;
  for (int k = 13; k >= 1; --k) p = 1.0 - t2 / ((2.0 * k) * (2.0 * k - 1.0)) * p;
  return sign * p;
}

namespace {

float warmup(double lr_max, int64_t step, int64_t warmup_steps) {
  return static_cast<float>(lr_max * static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
}

void check_steps(int64_t step, int64_t warmup_steps) {
  PREFLIGHT_CHECK(step >= 0, "schedule step ", step, " is negative");
  PREFLIGHT_CHECK(warmup_steps >= 0, "warmup_steps ", warmup_steps, " is negative");
}

}  // namespace

float lr_at(const WarmupCosine& s, int64_t step) {
  check_steps(step, s.warmup_steps);
  PREFLIGHT_CHECK(s.total_steps > s.warmup_steps, "cosine schedule: total_steps ", s.total_steps,
                  " must exceed warmup_steps ", s.warmup_steps);
  if (step < s.warmup_steps) return warmup(s.lr_max, step, s.warmup_steps);
  if (step >= s.total_steps) return static_cast<float>(s.lr_min);
  const double p = static_cast<double>(step - s.warmup_steps) / static_cast<double>(s.total_steps - s.warmup_steps);
  return static_cast<float>(s.lr_min + 0.5 * (s.lr_max - s.lr_min) * (1.0 + cos_pi(p)));
}

float lr_at(const Wsd& s, int64_t step) {
  check_steps(step, s.warmup_steps);
  const int64_t decay_start = s.total_steps - s.decay_steps;
  PREFLIGHT_CHECK(s.decay_steps > 0 && decay_start >= s.warmup_steps, "WSD: decay_steps ", s.decay_steps,
                  " must be positive and leave room for warmup_steps ", s.warmup_steps, " in total_steps ",
                  s.total_steps);
  if (step < s.warmup_steps) return warmup(s.lr_max, step, s.warmup_steps);
  if (step < decay_start) return static_cast<float>(s.lr_max);
  if (step >= s.total_steps) return static_cast<float>(s.lr_min);
  const double p = static_cast<double>(step - decay_start) / static_cast<double>(s.decay_steps);
  double f = 0.0;
  switch (s.decay) {
    case WsdDecay::linear: f = 1.0 - p; break;
    case WsdDecay::cosine: f = 0.5 * (1.0 + cos_pi(p)); break;
    case WsdDecay::one_minus_sqrt: f = 1.0 - std::sqrt(p); break;
  }
  return static_cast<float>(s.lr_min + (s.lr_max - s.lr_min) * f);
}

float lr_at(const DeepSeekV3Lr& s, int64_t step, double tokens) {
  check_steps(step, s.warmup_steps);
  PREFLIGHT_CHECK(tokens >= 0.0, "tokens seen ", tokens, " is negative");
  if (step < s.warmup_steps) return warmup(s.lr_peak, step, s.warmup_steps);
  const double cos_end = s.constant_until_tokens + s.cosine_tokens;
  if (tokens < s.constant_until_tokens) return static_cast<float>(s.lr_peak);
  if (tokens < cos_end) {
    const double p = (tokens - s.constant_until_tokens) / s.cosine_tokens;
    return static_cast<float>(s.lr_cosine_end + 0.5 * (s.lr_peak - s.lr_cosine_end) * (1.0 + cos_pi(p)));
  }
  if (tokens < cos_end + s.tail1_tokens) return static_cast<float>(s.lr_cosine_end);
  return static_cast<float>(s.lr_final);
}

float rewarm(float lr, int64_t step, int64_t switch_step, int64_t rewarm_steps) {
  PREFLIGHT_CHECK(rewarm_steps >= 0, "rewarm_steps ", rewarm_steps, " is negative");
  const int64_t k = step - switch_step;
  if (k < 0 || k >= rewarm_steps) return lr;
  return static_cast<float>(static_cast<double>(lr) * static_cast<double>(k + 1) / static_cast<double>(rewarm_steps));
}

int64_t batch_at(const BatchRamp& s, double tokens) {
  PREFLIGHT_CHECK(s.increment > 0 && s.end >= s.start && (s.end - s.start) % s.increment == 0,
                  "batch ramp: increment ", s.increment, " must divide end - start = ", s.end - s.start);
  const int64_t n = (s.end - s.start) / s.increment;
  if (n == 0 || s.ramp_tokens <= 0.0) return s.end;
  const double stage_tokens = s.ramp_tokens / static_cast<double>(n);
  const double k = std::floor(tokens / stage_tokens);
  const int64_t stages = k >= static_cast<double>(n) ? n : static_cast<int64_t>(k);
  return s.start + s.increment * stages;
}

float mtp_lambda_at(const MtpLambda& s, double tokens) {
  return static_cast<float>(tokens < s.switch_tokens ? s.early : s.late);
}

float bias_gamma_at(const BiasGamma& s, double tokens) {
  return static_cast<float>(tokens < s.stop_tokens ? s.gamma : 0.0);
}

void update_router_bias(float* bias, const int64_t* load, int64_t E, float gamma, bool centre) {
  PREFLIGHT_CHECK(bias && load && E > 0, "update_router_bias: null buffer or E = ", E);
  int64_t total = 0;
  for (int64_t i = 0; i < E; ++i) {
    PREFLIGHT_CHECK(load[i] >= 0, "expert ", i, " load ", load[i], " is negative");
    total += load[i];
  }
  for (int64_t i = 0; i < E; ++i) {
    const int64_t scaled = load[i] * E;  // compare load_i with total/E exactly
    if (scaled < total) bias[i] = bias[i] + gamma;
    else if (scaled > total) bias[i] = bias[i] - gamma;
  }
  if (centre) {
    double sum = 0.0;
    for (int64_t i = 0; i < E; ++i) sum += static_cast<double>(bias[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(E));
    for (int64_t i = 0; i < E; ++i) bias[i] = bias[i] - mean;
  }
}

}  // namespace preflight::optim
