// Monte Carlo of one long training run under the fault model (fault_model.hpp).
//
// One trial is a small event loop over two clocks: wall-clock time t_s and training
// progress p_s (seconds of failure-free training done and kept). While the job is up,
// both advance together except during checkpoint stalls; a failure sends the job down
// for detection + recovery and rolls progress back to a checkpoint. Failures arrive as
// one Poisson process over wall-clock time (the job holds its GPUs while it recovers,
// so a failure during recovery restarts the recovery; it loses no further work).
//
//   useful work   = progress at the end of the run
//   wall-clock    = useful work + Σ lost work + Σ downtime + Σ checkpoint stalls   (exact)
//   goodput       = useful work / wall-clock   ("effective training time ratio")
//
// Randomness: trial i draws from its own xoshiro256** stream seeded by splitmix64 of
// (seed, i), so results depend on the seed only, never on the thread count.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sim/faults/fault_model.hpp"

namespace preflight::faults {

// What one trial has to do.
struct RunSpec {
  double work_s = 0;  // failure-free training time the token budget needs (tokens ÷ tokens/s)
  double max_wall_s = std::numeric_limits<double>::infinity();  // stop here even if work remains
  // (with no limit, a trial still stops at 50 × work_s + 30 days and counts as unfinished)
  double step_time_s = 1;  // one optimizer step; the loss-alert delay is counted in steps
};

struct McOptions {
  int64_t trials = 1000;
  uint64_t seed = 1;
  int threads = 1;           // results are identical for any value
  bool record_timeline = true;  // keep the event list of trial 0
};

// One interruption (or corruption onset) in the sampled timeline.
struct TimelineEvent {
  double fault_s = 0;     // wall-clock time of the fault (corruption: of its detection)
  double up_s = 0;        // wall-clock time training resumed
  double lost_work_s = 0; // progress thrown away
  int cls = 0;            // index into FaultModel::classes
  bool beyond_kept = false;  // rollback had to go past the kept checkpoints
};

struct TrialResult {
  double wall_s = 0;
  double useful_s = 0;
  double checkpoint_stall_s = 0;
  int64_t checkpoints = 0;
  int64_t rollbacks_beyond_kept = 0;  // corruption older than every kept checkpoint
  bool corrupted_at_end = false;      // a silent corruption was still undetected at the end
  bool unfinished = false;            // stopped by the safety limit before the work was done
  std::vector<int32_t> interruptions;  // per class
  std::vector<double> lost_work_s;     // per class
  std::vector<double> downtime_s;      // per class
  double goodput() const { return wall_s > 0 ? useful_s / wall_s : 0; }
};

// One trial with its own stream; `timeline` (may be null) receives its events.
TrialResult simulate_trial(const FaultModel& model, const RunSpec& spec, uint64_t seed, int64_t trial,
                           std::vector<TimelineEvent>* timeline);

struct Distribution {
  double mean = 0, stddev = 0, p5 = 0, p50 = 0, p95 = 0, min = 0, max = 0;
};
// Nearest-rank percentiles: p-th = the ceil(p·n)-th smallest sample.
Distribution summarize(std::vector<double> samples);

struct ClassSummary {
  std::string name, label;
  double rate_per_gpu_hour = 0;  // on the simulated job
  double rate_per_day = 0;       // whole job
  double interruptions_mean = 0;
  double lost_work_gpu_h_mean = 0;
  double downtime_gpu_h_mean = 0;
};

struct McSummary {
  int64_t trials = 0;
  uint64_t seed = 0;
  int64_t gpus = 0;
  RunSpec spec;
  Distribution wall_days;
  Distribution goodput;
  Distribution interruptions;
  std::vector<ClassSummary> classes;
  double checkpoint_stall_gpu_h_mean = 0;
  double checkpoints_mean = 0;
  double rollbacks_beyond_kept_mean = 0;
  double corrupted_at_end_fraction = 0;
  double unfinished_fraction = 0;  // trials stopped by the safety limit (see RunSpec)
  std::vector<double> wall_days_samples;  // one per trial, in trial order
  std::vector<double> goodput_samples;    // one per trial, in trial order
  std::vector<TimelineEvent> timeline;    // trial 0
  double timeline_wall_s = 0;
};

McSummary run_monte_carlo(const FaultModel& model, const RunSpec& spec, const McOptions& options);

// Expected events one trial steps through (checkpoints + failures), for refusing runs
// that would not finish in reasonable time: run_monte_carlo and the sweep throw a
// one-line preflight::Error when trials × this exceeds kMaxSimulatedEvents.
double estimated_events_per_trial(const FaultModel& model, const RunSpec& spec);
// About 10 s on one core (≈ 25 ns per event, build/bench/bench_faults).
inline constexpr double kMaxSimulatedEvents = 4e8;
// The same refusals up front, so that a command can refuse everything it would run
// before running any of it: run_monte_carlo's, and sweep_checkpoint_interval's whole grid.
void check_run_budget(const FaultModel& model, const RunSpec& spec, const McOptions& options);
void check_sweep_budget(const FaultModel& model, const RunSpec& spec, const McOptions& options);

// Checkpoint-interval sweep next to the first-order optimum.
struct SweepPoint {
  double interval_s = 0;
  double wall_days_mean = 0;
  double goodput_mean = 0;
  double rollbacks_beyond_kept_mean = 0;
};

struct IntervalSweep {
  int64_t trials_per_point = 0;
  std::vector<SweepPoint> points;   // ascending interval
  double best_interval_s = 0;       // lowest mean wall-clock (fixed window: highest goodput)
  double young_interval_s = 0;      // Young 1974, first order: √(2·δ·M)
  double daly_interval_s = 0;       // Daly 2006, higher order (daly_interval_s below)
  double stall_s = 0;               // δ: training stall per checkpoint
  double mtbf_s = 0;                // M: mean time between work-losing interruptions
  std::vector<std::string> caveats; // where the formulas do not hold
};

// The optimum checkpoint interval (training time between checkpoints) for a stall δ
// per checkpoint and a mean time M between failures that lose work.
// Young (1974), "A first order approximation to the optimum checkpoint interval":
//   τ = √(2δM).
double young_interval_s(double stall_s, double mtbf_s);
// Daly (2006), "A higher order estimate of the optimum checkpoint interval for restart
// dumps", eq. (37): the perturbation solution of the minimum of daly_expected_wall_s,
//   τ = √(2δM)·[1 + ⅓·(δ/2M)^½ + (1/9)·(δ/2M)] − δ   for δ < 2M,   τ = M otherwise.
// The restart time R scales the expected time but does not move the optimum.
double daly_interval_s(double stall_s, double mtbf_s);
// Daly's expected wall-clock time of a job needing `work_s` of computation, with a
// checkpoint of δ after every τ of it, restart R after each failure, failures Poisson
// with mean M (also during dumps and restarts): T = M·e^{R/M}·(e^{(τ+δ)/M} − 1)·W/τ.
double daly_expected_wall_s(double work_s, double interval_s, double stall_s, double restart_s, double mtbf_s);

// How long a corruption class takes to be found, in training time.
struct DetectionDelay {
  std::string label;
  double mean_s = 0;
  double bound_s = 0;        // exceeded with probability <= 1 - coverage
  double coverage = 1;       // 1 for a fixed delay
  std::string how;           // "cross-DP check every 10.0 min, p = 0.9", "loss alert 20 + 100 steps × 17.07 s"
};
// One entry per corruption class (cross_dp_check, loss_alert) with a non-zero rate.
std::vector<DetectionDelay> corruption_detection_delays(const FaultModel& model, double step_time_s);

// Intervals: geometric grid from 60 s to 12 h (factor √2) plus Young's and Daly's
// values; every point uses the same seed (common random numbers), so differences are
// not noise from different draws.
IntervalSweep sweep_checkpoint_interval(const FaultModel& model, const RunSpec& spec, const McOptions& options);

// Mean training time from a corruption to its detection by the cross-DP check:
// half an interval to the first check, then (1-q)/q more intervals.
double mean_cross_dp_detection_s(const DetectionPlan& d);

}  // namespace preflight::faults
