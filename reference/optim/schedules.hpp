// Training schedules: learning rate, batch size, MTP weight, routing-bias step (docs/OPTIMIZERS.md §6).
//
// Every schedule is a pure function of (step, tokens seen) evaluated in double with IEEE
// operations only (+ - * / sqrt and the polynomial cos_pi below, no libm call), then rounded
// to float ONCE. So the value at a step is the same bits on any machine and after any resume.
// `step` is the 0-based index of the optimizer step about to be taken; `tokens` the number of
// training tokens consumed BEFORE that step.
#pragma once

#include <cstdint>

namespace preflight::optim {

// cos(pi·x) in double for any finite x: exact reduction to [0, 1/2] and a 14-term Taylor
// polynomial (error below 1e-17), IEEE operations only.
double cos_pi(double x);

// Linear warm-up: lr_max·(step+1)/warmup for step < warmup (reaches lr_max at step warmup−1),
// then cosine from lr_max to lr_min over [warmup, total): p = (step−warmup)/(total−warmup),
// lr = lr_min + ½(lr_max−lr_min)(1 + cos πp); lr_min from step total on.
struct WarmupCosine {
  double lr_max = 3e-4;
  double lr_min = 3e-5;  // 10% of peak
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
};
float lr_at(const WarmupCosine& s, int64_t step);

// WSD: warm-up as above, lr_max until decay_start = total − decay_steps, then decay to lr_min
// over decay_steps with f(p), p = (step − decay_start)/decay_steps in [0, 1):
//   linear: 1 − p;  cosine: ½(1 + cos πp);  one_minus_sqrt: 1 − √p;   lr = lr_min + (lr_max−lr_min)·f.
enum class WsdDecay { linear, cosine, one_minus_sqrt };
struct Wsd {
  double lr_max = 3e-4;
  double lr_min = 0.0;
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  int64_t decay_steps = 200;  // 10-20% of training
  WsdDecay decay = WsdDecay::one_minus_sqrt;
};
float lr_at(const Wsd& s, int64_t step);

// DeepSeek-V3 pre-training (report §4.2): warm-up 0 → 2.2e-4 over 2000 STEPS (as WarmupCosine),
// then by TOKENS: 2.2e-4 until 10T, cosine to 2.2e-5 over the next 4.3T (to 14.3T), 2.2e-5 for
// 333B (to 14.633T), 7.3e-6 for the last 167B (to 14.8T) and after.
struct DeepSeekV3Lr {
  double lr_peak = 2.2e-4;
  double lr_cosine_end = 2.2e-5;
  double lr_final = 7.3e-6;
  int64_t warmup_steps = 2000;
  double constant_until_tokens = 10.0e12;
  double cosine_tokens = 4.3e12;
  double tail1_tokens = 333e9;  // at lr_cosine_end
  double total_tokens = 14.8e12;  // the final 167B at lr_final
};
float lr_at(const DeepSeekV3Lr& s, int64_t step, double tokens);

// Re-warm-up after a context-length switch at switch_step: for k = step − switch_step in
// [0, rewarm_steps): lr·(k+1)/rewarm_steps, else lr unchanged (the seed uses 500 steps;
// annealing on a new mix does not call this). Returns float(double(lr)·factor).
float rewarm(float lr, int64_t step, int64_t switch_step, int64_t rewarm_steps = 500);

// Batch-size ramp in sequences, as a function of tokens seen (DeepSeek-V3: 3072 → 15360 over
// the first 469B tokens). Staircase, linear in tokens: n = (end − start)/increment increments,
// batch = start + increment·min(n, ⌊tokens / (ramp_tokens/n)⌋). With the default increment
// 768 there are 16 stages of 29.3125B tokens; every stage is a multiple of 384 (= 3·128, so
// it splits over DP 128 and DP 4 alike). increment must divide end − start.
struct BatchRamp {
  int64_t start = 3072;
  int64_t end = 15360;
  int64_t increment = 768;
  double ramp_tokens = 469e9;
};
int64_t batch_at(const BatchRamp& s, double tokens);

// MTP loss weight λ: 0.3 for the first 10T tokens, 0.1 after.
struct MtpLambda {
  double early = 0.3;
  double late = 0.1;
  double switch_tokens = 10.0e12;
};
float mtp_lambda_at(const MtpLambda& s, double tokens);

// Aux-loss-free balancing step γ: 0.001 for the first 14.3T tokens, then 0.
struct BiasGamma {
  double gamma = 0.001;
  double stop_tokens = 14.3e12;
};
float bias_gamma_at(const BiasGamma& s, double tokens);

// Aux-loss-free bias update for one MoE layer (E experts), after the optimizer step:
//   load_i = tokens routed to expert i in the step (all micro-batches, all ranks), exact integers;
//   b_i ← b_i + γ if load_i·E < Σload (under-loaded), b_i − γ if load_i·E > Σload, unchanged if
//   equal (sign(mean − load_i) with sign 0 = 0; the comparison is exact in integers);
//   each change is one float add. Optional centring: mean = float(Σ_i double(b_i) / E) summed in
//   index order, then b_i ← b_i − mean (one float subtract).
void update_router_bias(float* bias, const int64_t* load, int64_t E, float gamma, bool centre);

}  // namespace preflight::optim
