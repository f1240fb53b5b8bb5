// Fault model and Monte Carlo (sim/faults/): closed forms, determinism, bad inputs,
// and the Llama 3 sanity check. No timing assertions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"
#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"
#include "sim/faults/report.hpp"

namespace preflight::faults {
namespace {

using nlohmann::json;

// A job with one crash class of rate λ (per job-hour), no detection delay, no recovery
// cost and free synchronous checkpoints: the textbook renewal model.
json single_class_model(double rate_per_hour, double interval_s) {
  return {
      {"format", "preflight-faults/1"},
      {"reference", {{"gpus", 1024}, {"days", 1}}},
      {"job", {{"gpus", 1024}}},
      {"checkpoint", {{"interval_s", interval_s}, {"mode", "sync"}, {"size_bytes", 0}, {"keep_last", 1}}},
      {"recovery", {{"requeue_s", 0}, {"rendezvous_s", 0}, {"warmup_s", 0}, {"spare_swap_s", 0}}},
      {"classes", json::array({{{"name", "crash"}, {"rate_per_job_hour", rate_per_hour}, {"scaling", "per_job"},
                                 {"detection", "crash"}, {"detection_delay_s", 0}}})},
  };
}

FaultModel parse(const json& j) { return parse_fault_model(j.dump(), "test"); }

struct MeanSe {
  double mean = 0, se = 0;
};
MeanSe mean_se(const std::vector<double>& x) {
  const Distribution d = summarize(x);
  return {d.mean, d.stddev / std::sqrt(static_cast<double>(x.size()))};
}

// Confidence bound used throughout: a mean of n i.i.d. trials is normal to within the
// CLT, so |mean − μ| ≤ 4·s/√n fails with probability 6e-5 for a random seed. The seed
// is fixed, so the outcome is deterministic; the bound says it is not a lucky seed.
constexpr double kZ = 4.0;

// ---------------------------------------------------------------------------
// Closed forms for one class of rate λ, checkpoint interval τ, work W (a multiple of τ),
// zero overheads. Each τ-segment is retried until a failure-free τ occurs:
//   P(segment succeeds on a try)   = e^{−λτ}
//   failures per segment           = e^{λτ} − 1            (geometric)
//   work lost per failure          = E[X | X < τ], X ~ Exp(λ) = 1/λ − τ/(e^{λτ} − 1) ≈ τ/2 − λτ²/12
//   E[interruptions]               = (W/τ)(e^{λτ} − 1)
//   E[wall]                        = W + E[interruptions]·E[lost] = (W/τ)(e^{λτ} − 1)/λ
//   goodput (ratio of means)       = W/E[wall] = λτ/(e^{λτ} − 1)
// ---------------------------------------------------------------------------
TEST(FaultsAnalytic, SingleClassMatchesRenewalClosedForms) {
  const double lambda_per_h = 0.1, tau_h = 1.0, work_h = 1000.0;
  const FaultModel m = parse(single_class_model(lambda_per_h, tau_h * 3600));
  RunSpec spec;
  spec.work_s = work_h * 3600;
  const int n = 4000;
  std::vector<double> counts, walls_h, losts_h;
  for (int i = 0; i < n; ++i) {
    const TrialResult r = simulate_trial(m, spec, 12345, i, nullptr);
    counts.push_back(r.interruptions[0]);
    walls_h.push_back(r.wall_s / 3600);
    losts_h.push_back(r.lost_work_s[0] / 3600);
    // Exact bookkeeping: wall-clock = useful + lost + downtime + stalls.
    ASSERT_NEAR(r.wall_s, r.useful_s + r.lost_work_s[0] + r.downtime_s[0] + r.checkpoint_stall_s, 1e-6 * r.wall_s);
    ASSERT_EQ(r.useful_s, spec.work_s);
  }
  const double e = std::exp(lambda_per_h * tau_h) - 1;
  const double expect_count = work_h / tau_h * e;
  const double expect_lost_per_failure_h = 1 / lambda_per_h - tau_h / e;
  const double expect_wall_h = work_h / tau_h * e / lambda_per_h;
  const double expect_goodput = lambda_per_h * tau_h / e;

  const MeanSe c = mean_se(counts);
  EXPECT_NEAR(c.mean, expect_count, kZ * c.se) << "interruptions";
  EXPECT_LT(kZ * c.se, 0.01 * expect_count) << "CI too loose to mean anything";

  const MeanSe w = mean_se(walls_h);
  EXPECT_NEAR(w.mean, expect_wall_h, kZ * w.se) << "wall-clock";

  // Lost work per failure: ratio estimator R = ΣL/ΣN; its standard error (delta method)
  // is sqrt(Σ(L_i − R·N_i)²)/ΣN (the trials are i.i.d., the failures within one are too).
  double sum_l = 0, sum_n = 0;
  for (int i = 0; i < n; ++i) {
    sum_l += losts_h[i];
    sum_n += counts[i];
  }
  const double ratio = sum_l / sum_n;
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += (losts_h[i] - ratio * counts[i]) * (losts_h[i] - ratio * counts[i]);
  const double ratio_se = std::sqrt(ss) / sum_n;
  EXPECT_NEAR(ratio, expect_lost_per_failure_h, kZ * ratio_se) << "lost work per failure";
  EXPECT_NEAR(ratio, tau_h / 2, lambda_per_h * tau_h * tau_h / 12 + kZ * ratio_se) << "≈ interval/2";

  // Goodput: W / mean wall, its SE from the wall-clock's by the delta method.
  const double g = work_h / w.mean;
  EXPECT_NEAR(g, expect_goodput, kZ * g * w.se / w.mean) << "goodput";
}

TEST(FaultsAnalytic, FixedWindowCountIsPoisson) {
  // Arrivals are Poisson over wall-clock (also during recovery), so a window of T hours
  // holds λT interruptions on average, whatever the recovery cost; SE = sqrt(λT/n).
  json j = single_class_model(0.5, 1800);
  j["recovery"]["requeue_s"] = 600;
  const FaultModel m = parse(j);
  RunSpec spec;
  spec.max_wall_s = 100 * 3600.0;
  spec.work_s = spec.max_wall_s;
  McOptions o;
  o.trials = 2000;
  const McSummary s = run_monte_carlo(m, spec, o);
  const double expect = 0.5 * 100;
  // The trial ends at the window's end, also in the middle of an outage, so the count is
  // exactly the arrivals in [0, T) and every run lasts T.
  EXPECT_NEAR(s.interruptions.mean, expect, kZ * std::sqrt(expect / o.trials));
  EXPECT_EQ(s.wall_days.min, 100 / 24.0);
  EXPECT_EQ(s.wall_days.max, 100 / 24.0);
}

// ---------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------
TEST(FaultsDeterminism, SameSeedSameBitsAnyThreadCount) {
  const FaultModel m = load_fault_model("deepseek-v3-2048");
  FaultModel sized = m;
  sized.checkpoint.size_bytes = 5.5e12;
  RunSpec spec;
  spec.work_s = 55 * 86400.0;
  spec.step_time_s = 20;
  McOptions a;
  a.trials = 300;
  a.seed = 7;
  a.threads = 1;
  McOptions b = a;
  b.threads = 3;
  const json ja = summary_to_json(sized, run_monte_carlo(sized, spec, a), {}, nullptr);
  const json jb = summary_to_json(sized, run_monte_carlo(sized, spec, b), {}, nullptr);
  const json jc = summary_to_json(sized, run_monte_carlo(sized, spec, a), {}, nullptr);
  EXPECT_EQ(ja.dump(), jb.dump());
  EXPECT_EQ(ja.dump(), jc.dump());
  const McSummary s1 = run_monte_carlo(sized, spec, a);
  const McSummary s2 = run_monte_carlo(sized, spec, b);
  ASSERT_EQ(s1.wall_days_samples.size(), s2.wall_days_samples.size());
  for (size_t i = 0; i < s1.wall_days_samples.size(); ++i) ASSERT_EQ(s1.wall_days_samples[i], s2.wall_days_samples[i]) << i;
  McOptions c = a;
  c.seed = 8;
  EXPECT_NE(run_monte_carlo(sized, spec, c).wall_days.mean, s1.wall_days.mean);
}

// ---------------------------------------------------------------------------
// Bad inputs: one line naming the field and the expectation.
// ---------------------------------------------------------------------------
struct BadCase {
  const char* name;
  const char* pointer;  // JSON pointer into the llama3-54d preset
  json value;           // null: remove the key
  const char* expect;   // substring of the message
};

TEST(FaultsValidation, BadInputsRejectedWithOneLine) {
  const json base = json::parse(*preset_text("faults", "llama3-54d"));
  const std::vector<BadCase> cases = {
      {"format", "/format", "preflight-faults/2", "field 'format'"},
      {"negative_count", "/classes/0/count", -1, "classes[0].count"},
      {"unknown_field", "/checkpoint/intervl_s", 60, "unknown field 'checkpoint.intervl_s'"},
      {"bad_detection", "/classes/1/detection", "crashh", "expected one of crash, watchdog"},
      {"two_rates", "/classes/2/rate_per_gpu_hour", 1e-6, "exactly one of"},
      {"keep_last_zero", "/checkpoint/keep_last", 0, "checkpoint.keep_last"},
      {"interval_zero", "/checkpoint/interval_s", 0, "checkpoint.interval_s"},
      {"probability_zero", "/detection/cross_dp_detect_probability", 0, "cross_dp_detect_probability"},
      {"gpus_per_node", "/job/gpus_per_node", 3, "job.gpus_per_node"},
      {"duplicate_name", "/classes/1/name", "faulty_gpu", "unique name"},
      {"delay_on_watchdog", "/classes/10/detection_delay_s", 5, "only applies to detection \"crash\""},
      {"mode", "/checkpoint/mode", "lazy", "checkpoint.mode"},
      {"bandwidth_string", "/checkpoint/write_GBps", "fast", "checkpoint.write_GBps"},
      {"missing_reference_days", "/reference/days", nullptr, "reference.days"},
      {"empty_classes", "/classes", json::array(), "classes"},
      {"per_job_with_gpu_rate", "/classes/12/rate_per_gpu_hour", 1e-6, "exactly one of"},
  };
  for (const BadCase& c : cases) {
    json j = base;
    const json::json_pointer ptr(c.pointer);
    if (c.value.is_null()) {
      j[ptr.parent_pointer()].erase(ptr.back());
    } else {
      j[ptr] = c.value;
    }
    try {
      parse_fault_model(j.dump(), "bad.json");
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": " << msg;
      EXPECT_EQ(msg.rfind("bad.json", 0), 0u) << c.name << ": " << msg;
    }
  }
  EXPECT_THROW(parse_fault_model("{not json", "x"), Error);
  EXPECT_THROW(load_fault_model("no-such-fault-preset"), Error);
}

TEST(FaultsValidation, PresetsRoundTripThroughJson) {
  for (const std::string& name : preset_names("faults")) {
    const FaultModel a = load_fault_model(name);
    const FaultModel b = parse_fault_model(to_json(a).dump(), "round trip");
    EXPECT_EQ(to_json(a).dump(), to_json(b).dump()) << name;
  }
}

std::string preflight_bin() {
  if (const char* env = std::getenv("PREFLIGHT_BIN")) return env;
#ifdef PREFLIGHT_BIN_PATH
  return PREFLIGHT_BIN_PATH;
#else
  return "";
#endif
}

std::string run_cli(const std::string& args, int* rc) {
  const std::string cmd = preflight_bin() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, p)) out.append(buf, k);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(FaultsCli, ErrorsAreOneLineAndExitOne) {
  if (preflight_bin().empty()) GTEST_SKIP() << "PREFLIGHT_BIN not set";
  int rc = 0;
  // No run length: the simulator's layout is used, so a bad one is the error.
  std::string out = run_cli("faults --trials 10 --layout no-such-layout", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("no-such-layout"), std::string::npos) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  out = run_cli("faults --train-days 10 --trials 0", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("--trials"), std::string::npos) << out;
  out = run_cli("faults --train-days 10 --trials 20 --seed 3 --threads 1 --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  int rc2 = 0;
  EXPECT_EQ(out, run_cli("faults --train-days 10 --trials 20 --seed 3 --threads 2 --json", &rc2));
  EXPECT_EQ(json::parse(out)["trials"], 20);
}

// ---------------------------------------------------------------------------
// Llama 3 sanity: 16384 GPUs, 54 days, its published counts as input.
// ---------------------------------------------------------------------------
TEST(FaultsLlama3, InterruptionsArePoissonAtTheModelsRatesAndOver90PercentEffective) {
  const FaultModel m = load_fault_model("llama3-54d");
  RunSpec spec;
  spec.max_wall_s = 54 * 86400.0;
  spec.work_s = spec.max_wall_s;
  McOptions o;
  o.trials = 400;
  o.threads = 2;
  const McSummary s = run_monte_carlo(m, spec, o);
  // Expected counts from the model's rates (job_rate_per_hour), not from the counts the
  // preset was built from. A crash-like class c (crash, watchdog, planned) is one
  // interruption per arrival; arrivals are Poisson over wall-clock at rate λ_c, so over the
  // window W: E = λ_c·W, Var = λ_c·W, SE of the mean over n trials sqrt(λ_c·W/n). The trial
  // ends when the outage in progress at W is over, which adds the arrivals during that
  // overrun: E[extra] ≤ Λ·R/(1 − Λ·R) over all classes together (Λ the total rate, R the
  // longest single outage: a renewal bound, each arrival extends the outage by <= R; the
  // 1024 hot spares are never used up, so no outage waits for a repair).
  const double W_h = 54 * 24.0;
  double lambda_total_per_s = 0, R_s = 0;
  const double restart_s = m.recovery.requeue_s + m.recovery.rendezvous_s + m.checkpoint.read_s() + m.recovery.warmup_s;
  for (const FaultClass& c : m.classes) {
    lambda_total_per_s += job_rate_per_hour(m, c) / 3600;
    double out = restart_s + c.extra_downtime_s + m.recovery.spare_swap_s;
    if (c.detection == Detection::crash) out += c.detection_delay_s;
    if (c.detection == Detection::watchdog) out += m.detection.watchdog_timeout_s;
    R_s = std::max(R_s, out);
  }
  ASSERT_LT(lambda_total_per_s * R_s, 0.5);
  const double overrun = lambda_total_per_s * R_s / (1 - lambda_total_per_s * R_s);
  double crash_like = 0, corruption = 0, crash_like_mean = 0, corruption_mean = 0;
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const FaultClass& c = m.classes[i];
    const double expect = job_rate_per_hour(m, c) * W_h;
    const double mean = s.classes[i].interruptions_mean;
    if (c.detection == Detection::cross_dp_check || c.detection == Detection::loss_alert) {
      corruption += expect;
      corruption_mean += mean;
      continue;
    }
    crash_like += expect;
    crash_like_mean += mean;
    const double se = std::sqrt(expect / o.trials);
    EXPECT_GE(mean, expect - kZ * se) << c.name;
    EXPECT_LE(mean, expect + overrun + kZ * se) << c.name;
  }
  EXPECT_GE(crash_like_mean, crash_like - kZ * std::sqrt(crash_like / o.trials));
  EXPECT_LE(crash_like_mean, crash_like + overrun + kZ * std::sqrt(crash_like / o.trials));
  // A corruption is counted at its detection, at most once per onset (onsets during one
  // undetected corruption merge), so at most λ·W.
  EXPECT_LE(corruption_mean, corruption + kZ * std::sqrt(corruption / o.trials));
  // Poisson: the per-trial variance equals the mean. The sample variance s² of n normal-ish
  // draws has SE ≈ σ²·sqrt(2/(n−1)); the corruption classes and the overrun add < 1% here.
  const double mu = s.interruptions.mean, var = s.interruptions.stddev * s.interruptions.stddev;
  EXPECT_NEAR(var, mu, kZ * mu * std::sqrt(2.0 / (o.trials - 1)) + corruption + overrun);
  // Meta's published "> 90% effective training time" for this job, with its 20-min plan.
  EXPECT_GT(s.goodput.mean, 0.90);
  EXPECT_GT(s.goodput.p5, 0.89);

  // 30 instead of 20 min between checkpoints, derived from the renewal model: a failure
  // that loses work (all but planned maintenance, rate Λ_L, and only while the job is up,
  // for T_up = W − downtime) loses the progress since the last checkpoint. Checkpoints
  // restart their phase at every interruption (rate Λ, planned included), so that age is
  // Exp(Λ) cut at τ: ℓ(τ) = E[X | X < τ] = 1/Λ − τ/(e^{Λτ} − 1) (≈ τ/2 − Λτ²/12, see
  // SingleClassMatchesRenewalClosedForms). Fewer checkpoints save stalls of δ each.
  //   Δg = g20 − g30 = [Λ_L·T_up·(ℓ(τ30) − ℓ(τ20)) − δ·U·(1/τ20 − 1/τ30)] / W
  // with U = g20·W the useful work. Left out, each a relative error below (δ + w)/τ20
  // (0.4%): progress stops during the δ stalls; a failure within the background write w
  // also loses the interval before (the same w for both intervals, to first order).
  // Paired trials (same streams) give mean(g20_i − g30_i) with SE sd/√n.
  FaultModel m30 = m;
  m30.checkpoint.interval_s = 1800;
  ASSERT_EQ(m.checkpoint.interval_s, 1200);
  double lambda_lose = 0;
  for (const FaultClass& c : m.classes)
    if (c.detection != Detection::planned) lambda_lose += job_rate_per_hour(m, c) / 3600;
  std::vector<double> diffs;
  double g20 = 0, down20_s = 0;
  for (int64_t i = 0; i < o.trials; ++i) {
    const TrialResult a = simulate_trial(m, spec, o.seed, i, nullptr);
    const TrialResult b = simulate_trial(m30, spec, o.seed, i, nullptr);
    diffs.push_back(a.goodput() - b.goodput());
    g20 += a.goodput() / static_cast<double>(o.trials);
    for (double x : a.downtime_s) down20_s += x / static_cast<double>(o.trials);
  }
  const MeanSe d = mean_se(diffs);
  const double W_s = spec.max_wall_s, t20 = 1200, t30 = 1800, delta = m.checkpoint.stall_s();
  const double L = lambda_total_per_s;
  auto ell = [L](double tau) { return 1 / L - tau / std::expm1(L * tau); };
  const double up_s = W_s - down20_s;
  const double predicted = (lambda_lose * up_s * (ell(t30) - ell(t20)) - delta * g20 * W_s * (1 / t20 - 1 / t30)) / W_s;
  const double neglected = predicted * (delta + m.checkpoint.write_s()) / t20;
  EXPECT_NEAR(d.mean, predicted, neglected + kZ * d.se) << "predicted " << predicted << ", SE " << d.se;
  EXPECT_GT(d.mean, kZ * d.se);  // 30 min is clearly worse here
  std::printf("llama3-54d: interruptions %.1f (model: %.1f + corruption %.2f), effective time %.2f%% (20 min ckpt), "
              "%.2f points lower at 30 min (renewal model: %.2f, SE %.3f)\n",
              s.interruptions.mean, crash_like, corruption, 100 * s.goodput.mean, 100 * d.mean, 100 * predicted, 100 * d.se);
}

TEST(FaultsLlama3, SameRatesOn2048GpusFor60Days) {
  FaultModel m = load_fault_model("llama3-54d");
  m.job.gpus = 2048;
  double expect = 0;
  for (const FaultClass& c : m.classes) expect += job_rate_per_hour(m, c) * 60 * 24;
  // per-GPU classes: 372 × (2048/16384) × 60/54; switch/cable also × 2/3 tiers; planned 47 × 60/54.
  const double per_gpu = (419.0 - 35.0) / 8 * 60 / 54, fabric = 35.0 / 8 * 60 / 54 * 2 / 3, planned = 47.0 * 60 / 54;
  EXPECT_NEAR(expect, per_gpu + fabric + planned, 1e-9);
  EXPECT_EQ(fabric_tiers(2048, 64), 2);
  EXPECT_EQ(fabric_tiers(16384, 64), 3);
  RunSpec spec;
  spec.max_wall_s = 60 * 86400.0;
  spec.work_s = spec.max_wall_s;
  McOptions o;
  o.trials = 1000;
  o.threads = 2;
  const McSummary s = run_monte_carlo(m, spec, o);
  EXPECT_NEAR(s.interruptions.mean, expect, kZ * std::sqrt(expect / o.trials) + 0.1);
  std::printf("2048 GPUs x 60 days with Llama 3 rates: %.1f interruptions (%.1f unexpected), goodput %.2f%% (p5 %.2f%%)\n",
              s.interruptions.mean, per_gpu + fabric, 100 * s.goodput.mean, 100 * s.goodput.p5);
}

// ---------------------------------------------------------------------------
// Checkpoint interval: agreement with Young/Daly where it holds, not where it does not.
// ---------------------------------------------------------------------------
TEST(FaultsInterval, SweepAgreesWithYoungDalyForCrashes) {
  json j = single_class_model(1.0 / 24, 1800);
  j["checkpoint"]["size_bytes"] = 60e9;  // 60 s synchronous write at 1 GB/s: δ = 60 s
  j["checkpoint"]["write_GBps"] = 1.0;
  const FaultModel m = parse(j);
  RunSpec spec;
  spec.work_s = 20 * 86400.0;
  McOptions o;
  o.trials = 150;
  o.threads = 2;
  const IntervalSweep sw = sweep_checkpoint_interval(m, spec, o);
  EXPECT_NEAR(sw.young_interval_s, std::sqrt(2 * 60.0 * 86400), 1e-6);
  // Daly 2006 eq. (37) by hand: ξ = δ/(2M) = 60/172800.
  const double xi = 60.0 / (2 * 86400.0);
  EXPECT_NEAR(sw.daly_interval_s, std::sqrt(2 * 60.0 * 86400) * (1 + std::sqrt(xi) / 3 + xi / 9) - 60.0, 1e-6);
  EXPECT_LT(sw.daly_interval_s, sw.young_interval_s);  // δ = 60 s outweighs the √ξ/3 term here
  // The cost is flat near the optimum (×√2 costs 6% of the overhead), so allow two grid steps.
  EXPECT_GE(sw.best_interval_s, sw.daly_interval_s / 2.01);
  EXPECT_LE(sw.best_interval_s, sw.daly_interval_s * 2.01);
}

TEST(FaultsInterval, SilentCorruptionWithOneKeptCheckpointBreaksYoungDaly) {
  json j = single_class_model(1.0 / 24, 1800);
  j["classes"][0]["detection"] = "cross_dp_check";
  j["classes"][0].erase("detection_delay_s");
  j["detection"] = {{"cross_dp_check_interval_s", 3600}, {"cross_dp_detect_probability", 0.5}};
  j["checkpoint"]["size_bytes"] = 60e9;
  j["checkpoint"]["write_GBps"] = 1.0;
  const FaultModel m = parse(j);
  EXPECT_NEAR(mean_cross_dp_detection_s(m.detection), 1.5 * 3600, 1e-9);
  RunSpec spec;
  spec.work_s = 4 * 86400.0;
  McOptions o;
  o.trials = 100;
  o.threads = 2;
  const IntervalSweep sw = sweep_checkpoint_interval(m, spec, o);
  EXPECT_GE(sw.best_interval_s, 2 * sw.young_interval_s);
  ASSERT_FALSE(sw.caveats.empty());
  EXPECT_NE(sw.caveats.back().find("keep_last = 1"), std::string::npos) << sw.caveats.back();
  // Keeping more checkpoints brings the optimum back down.
  FaultModel many = m;
  many.checkpoint.keep_last = 48;
  const IntervalSweep sw2 = sweep_checkpoint_interval(many, spec, o);
  EXPECT_LT(sw2.best_interval_s, sw.best_interval_s);
}

TEST(FaultsCorruption, RollbackGoesPastTheCorruption) {
  // Corruption detected on the first check (q = 1): with many checkpoints kept, the
  // lost work is onset→detection plus onset→previous checkpoint, never more than
  // interval + check interval per event.
  json j = single_class_model(0.2, 1800);
  j["classes"][0]["detection"] = "cross_dp_check";
  j["classes"][0].erase("detection_delay_s");
  j["detection"] = {{"cross_dp_check_interval_s", 900}, {"cross_dp_detect_probability", 1.0}};
  j["checkpoint"]["keep_last"] = 10;
  const FaultModel m = parse(j);
  RunSpec spec;
  spec.work_s = 50 * 3600.0;
  for (int i = 0; i < 200; ++i) {
    const TrialResult r = simulate_trial(m, spec, 99, i, nullptr);
    ASSERT_EQ(r.rollbacks_beyond_kept, 0);
    ASSERT_LE(r.lost_work_s[0], r.interruptions[0] * (1800.0 + 900.0) + 1e-6);
  }
}

// ---------------------------------------------------------------------------
// "Rollbacks past every kept checkpoint" against the checkpoint interval.
//
// A corruption with onset at progress p0, found D of training later (loss alert:
// (alert + observe steps) × step time; cross-DP: a geometric number of checks), rolls
// back to c0, the newest checkpoint before p0. With keep_last = K and interval τ, c0
// is deleted once the K-th checkpoint after it is durable, at progress c0 + K·τ + w
// (w: background write). Writing u = (p0 − c0)/τ ∈ [0, 1), the rollback goes past every
// kept checkpoint iff D ≥ (K − u)·τ + w. For a fixed D the set of u satisfying this
// shrinks as τ grows, so P(beyond | D) is non-increasing in τ; the number of onsets per
// run (rate × wall-clock) changes by < 0.3% between 8 and 16 min (the sweep's mean
// days), so the mean count per run is non-increasing too: a SHORTER interval with a
// fixed keep_last covers less history and rolls back past every kept checkpoint MORE.
//
// Margin: trial i of every interval uses the same stream (common random numbers), so
// d_i = b_i(τ_short) − b_i(τ_long) are i.i.d. over i with mean Δ ≥ 0. By the CLT,
// mean(d) ≥ −kZ·sd(d)/√n fails with probability < 3e-5 when Δ ≥ 0 (kZ = 4).
// ---------------------------------------------------------------------------
struct Paired {
  double mean = 0, se = 0;
};
Paired paired_difference(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<double> d;
  for (size_t i = 0; i < a.size(); ++i) d.push_back(static_cast<double>(a[i] - b[i]));
  const MeanSe ms = mean_se(d);
  return {ms.mean, ms.se};
}

TEST(FaultsCorruption, BeyondKeptIsNonIncreasingInTheInterval) {
  // The sweep: deepseek-v3-2048, 14.8T tokens at 62914560 tokens and 17.07 s per
  // step, intervals 8, 11.3 and 16 min (its broken values: 0.010, 1.002, 0.082 per run).
  FaultModel m = load_fault_model("deepseek-v3-2048");
  m.checkpoint.size_bytes = 5.5e12;
  RunSpec spec;
  spec.step_time_s = 17.07;
  spec.work_s = 14.8e12 / 62914560.0 * spec.step_time_s;
  const int n = 600;
  std::vector<std::vector<int64_t>> beyond;
  for (double interval : {480.0, 480.0 * std::sqrt(2.0), 960.0}) {
    FaultModel mi = m;
    mi.checkpoint.interval_s = interval;
    std::vector<int64_t> b;
    for (int i = 0; i < n; ++i) b.push_back(simulate_trial(mi, spec, 1, i, nullptr).rollbacks_beyond_kept);
    beyond.push_back(b);
  }
  const Paired d01 = paired_difference(beyond[0], beyond[1]), d12 = paired_difference(beyond[1], beyond[2]);
  EXPECT_GE(d01.mean, -kZ * d01.se) << "8 min vs 11.3 min";
  EXPECT_GE(d12.mean, -kZ * d12.se) << "11.3 min vs 16 min";
  // Between 11.3 and 16 min the loss alert's D = 120 × 17.07 s = 34.1 min crosses
  // (K − u)·τ + w (w = 5.5 TB / 500 GB/s = 11 s): at 11.3 min it holds for every u (always
  // beyond), at 16 min only for u ≥ 0.88, so the count must drop clearly, not just not rise.
  EXPECT_GT(d12.mean, kZ * d12.se) << "11.3 min vs 16 min";
  std::printf("beyond-kept per run at 8 / 11.3 / 16 min: %.3f / %.3f / %.3f\n", mean_se(std::vector<double>(beyond[0].begin(), beyond[0].end())).mean,
              mean_se(std::vector<double>(beyond[1].begin(), beyond[1].end())).mean,
              mean_se(std::vector<double>(beyond[2].begin(), beyond[2].end())).mean);
}

// The sweep's caveat takes the longest detection delay of ANY corruption class, the loss
// alert's (alert + observe) × step time included, not only the cross-DP check's.
TEST(FaultsInterval, CaveatUsesTheLossAlertDelay) {
  // A crash class sets M (and with δ the interval), a cross-DP class found within one
  // 60 s check (p = 1), and a loss-alert class found after (20 + 100) × 17.07 s = 34.1 min.
  json j = single_class_model(1.0 / 24, 1800);
  j["checkpoint"]["size_bytes"] = 6e9;  // 6 s synchronous write at 1 GB/s: δ = 6 s
  j["checkpoint"]["write_GBps"] = 1.0;
  j["checkpoint"]["keep_last"] = 3;
  j["detection"] = {{"cross_dp_check_interval_s", 60}, {"cross_dp_detect_probability", 1.0},
                    {"loss_alert_steps", 20}, {"loss_observe_steps", 100}};
  j["classes"].push_back({{"name", "sdc"}, {"rate_per_job_hour", 0.001}, {"scaling", "per_job"}, {"detection", "cross_dp_check"}});
  j["classes"].push_back({{"name", "spike"}, {"rate_per_job_hour", 0.001}, {"scaling", "per_job"}, {"detection", "loss_alert"}});
  const FaultModel m = parse(j);
  RunSpec spec;
  spec.step_time_s = 17.07;
  spec.work_s = 86400.0;
  McOptions o;
  o.trials = 2;
  o.threads = 1;
  const IntervalSweep sw = sweep_checkpoint_interval(m, spec, o);
  // Daly's τ for δ = 6 s, M ≈ 24 h: about 17 min; (K − 1)·τ ≈ 34 min vs the alert's 34.1 min
  // would be too close to call, so compute both sides from the sweep's own numbers.
  const double loss_delay_s = 120 * 17.07, cross_dp_s = 60;
  const double safe_s = 2 * sw.daly_interval_s;
  ASSERT_FALSE(sw.caveats.empty());
  const std::string& c = sw.caveats.back();
  EXPECT_NE(c.find("spike"), std::string::npos) << c;
  EXPECT_NE(c.find("loss alert 20 + 100 steps"), std::string::npos) << c;
  if (safe_s <= loss_delay_s) {
    EXPECT_NE(c.find("shorter than spike"), std::string::npos) << c;
    EXPECT_EQ(c.find("longer than every detection delay"), std::string::npos) << c;
  } else {
    EXPECT_NE(c.find("longer than every detection delay"), std::string::npos) << c;
  }
  ASSERT_LT(cross_dp_s, safe_s);  // the cross-DP delay alone would pass
  // Make the window clearly shorter than the alert's delay (keep_last = 2: (2 − 1)·τ) and
  // clearly longer (a 5-step alert: 85 s), and the caveat follows the loss alert.
  FaultModel short_keep = m;
  short_keep.checkpoint.keep_last = 2;
  const IntervalSweep a = sweep_checkpoint_interval(short_keep, spec, o);
  ASSERT_LT(a.daly_interval_s, loss_delay_s);
  ASSERT_GT(a.daly_interval_s, cross_dp_s);
  EXPECT_NE(a.caveats.back().find("shorter than spike"), std::string::npos) << a.caveats.back();
  FaultModel quick = m;
  quick.detection.loss_alert_steps = 2;
  quick.detection.loss_observe_steps = 3;
  const IntervalSweep b = sweep_checkpoint_interval(quick, spec, o);
  ASSERT_GT(2 * b.daly_interval_s, 5 * 17.07);
  EXPECT_NE(b.caveats.back().find("longer than every detection delay"), std::string::npos) << b.caveats.back();
}

TEST(FaultsReport, SvgAndTextRender) {
  FaultModel m = load_fault_model("deepseek-v3-2048");
  m.checkpoint.size_bytes = 5.5e12;
  RunSpec spec;
  spec.work_s = 50 * 86400.0;
  McOptions o;
  o.trials = 50;
  const McSummary s = run_monte_carlo(m, spec, o);
  const std::string svg = render_svg(m, s);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  const std::string text = format_text(m, s, {}, nullptr);
  EXPECT_NE(text.find("goodput"), std::string::npos);
}

}  // namespace
}  // namespace preflight::faults

namespace preflight::faults {
namespace {

// `preflight check` against the stored goldens.
TEST(FaultsCheck, GoldensMatchAndATamperedGoldenFails) {
  if (preflight_bin().empty()) GTEST_SKIP() << "PREFLIGHT_BIN not set";
  // The source tree from ctest's environment, else the one this test was built from (not the
  // working directory: the test also runs from the build tree).
  const char* src = std::getenv("PREFLIGHT_SOURCE_DIR");
  const std::string root = std::string(src && *src ? src : PREFLIGHT_SOURCE_DIR_PATH) + "/";
  for (const char* layout : {"deepseek-v3-dualpipe", "seed-pp16-ep32-dp4"}) {
    int rc = -1;
    const std::string golden = root + "goldens/check/deepseek-v3-671b__h800-2048__" + layout + ".json";
    const std::string out = run_cli(std::string("check --cluster h800-2048 --layout ") + layout + " --golden " + golden, &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("READY"), std::string::npos) << out;
  }
  json g = json::parse(read_file(root + "goldens/check/deepseek-v3-671b__h800-2048__deepseek-v3-dualpipe.json"));
  EXPECT_EQ(g["format"], "preflight-check-golden/2");
  EXPECT_EQ(g["regenerate"], "scripts/regen_check_goldens.sh");
  g["values"]["goodput.mean"]["value"] = g["values"]["goodput.mean"]["value"].get<double>() + 0.01;
  const std::string tampered = testing::TempDir() + "tampered_golden_" + std::to_string(getpid()) + ".json";
  write_file_atomic(tampered, g.dump());
  int rc = -1;
  const std::string out = run_cli("check --cluster h800-2048 --layout deepseek-v3-dualpipe --golden " + tampered, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("goodput.mean"), std::string::npos) << out;
}

}  // namespace
}  // namespace preflight::faults
