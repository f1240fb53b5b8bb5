// Monte Carlo engine of the fault model; the model and its identities are in monte_carlo.hpp.
#include "sim/faults/monte_carlo.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "reference/core/error.hpp"

namespace preflight::faults {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------
// Random numbers: splitmix64 seeds a per-trial xoshiro256** (Blackman & Vigna).
// ---------------------------------------------------------------------------
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream) {
    uint64_t sm = seed ^ (stream * 0xD1B54A32D192ED03ull);
    splitmix64(sm);  // decorrelate neighbouring (seed, stream) pairs
    for (auto& word : s_) word = splitmix64(sm);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1]: never 0, so log() is finite.
  double uniform_open0() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  double exponential(double rate) { return -std::log(uniform_open0()) / rate; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Everything a trial needs, precomputed once per run.
struct Prepared {
  std::vector<double> cumulative_rate_per_s;  // for picking the class of an arrival
  double total_rate_per_s = 0;
  double restart_s = 0;   // requeue + rendezvous + checkpoint load + warm-up
  double stall_s = 0;
  double write_s = 0;
};

Prepared prepare(const FaultModel& m) {
  Prepared pr;
  for (const FaultClass& c : m.classes) {
    pr.total_rate_per_s += job_rate_per_hour(m, c) / 3600.0;
    pr.cumulative_rate_per_s.push_back(pr.total_rate_per_s);
  }
  pr.restart_s = m.recovery.requeue_s + m.recovery.rendezvous_s + m.checkpoint.read_s() + m.recovery.warmup_s;
  pr.stall_s = m.checkpoint.stall_s();
  pr.write_s = m.checkpoint.write_s();
  return pr;
}

int pick_class(const Prepared& pr, Xoshiro256& rng) {
  const double x = (1.0 - rng.uniform_open0()) * pr.total_rate_per_s;  // [0, total)
  const auto it = std::upper_bound(pr.cumulative_rate_per_s.begin(), pr.cumulative_rate_per_s.end(), x);
  const auto idx = static_cast<int>(it - pr.cumulative_rate_per_s.begin());
  return std::min(idx, static_cast<int>(pr.cumulative_rate_per_s.size()) - 1);
}

bool is_corruption(Detection d) { return d == Detection::cross_dp_check || d == Detection::loss_alert; }

// The state of one trial.
class Trial {
 public:
  Trial(const FaultModel& m, const Prepared& pr, const RunSpec& spec, Xoshiro256& rng, std::vector<TimelineEvent>* tl)
      : m_(m), pr_(pr), spec_(spec), rng_(rng), timeline_(tl) {
    const size_t n = m.classes.size();
    r_.interruptions.assign(n, 0);
    r_.lost_work_s.assign(n, 0.0);
    r_.downtime_s.assign(n, 0.0);
  }

  TrialResult run() {
    next_fail_t_ = pr_.total_rate_per_s > 0 ? rng_.exponential(pr_.total_rate_per_s) : kInf;
    next_ckpt_p_ = m_.checkpoint.interval_s;
    limit_s_ = std::isfinite(spec_.max_wall_s) ? spec_.max_wall_s : 50.0 * spec_.work_s + 30.0 * 86400.0;
    while (p_ < spec_.work_s && t_ < limit_s_) step_up();
    r_.unfinished = !std::isfinite(spec_.max_wall_s) && p_ < spec_.work_s;
    r_.wall_s = t_;
    r_.useful_s = p_;
    r_.corrupted_at_end = corrupt_;
    return r_;
  }

 private:
  enum class Next { done, horizon, checkpoint, durable, detection, failure };

  // Advance the up state to the next event and handle it.
  void step_up() {
    double dt = spec_.work_s - p_;
    Next what = Next::done;
    auto consider = [&](double d, Next w) {
      if (d < dt) {
        dt = d;
        what = w;
      }
    };
    consider(limit_s_ - t_, Next::horizon);
    consider(next_ckpt_p_ - p_, Next::checkpoint);
    if (pending_) consider(pending_durable_t_ - t_, Next::durable);
    if (corrupt_) consider(detect_at_p_ - p_, Next::detection);
    consider(next_fail_t_ - t_, Next::failure);
    dt = std::max(dt, 0.0);
    t_ += dt;
    p_ += dt;
    switch (what) {
      case Next::done:
      case Next::horizon: return;
      case Next::durable: commit(pending_p_); pending_ = false; return;
      case Next::checkpoint: take_checkpoint(); return;
      case Next::detection: corruption_detected(); return;
      case Next::failure: failure_while_up(); return;
    }
  }

  // Stall for the snapshot (async) or the whole write (sync). A failure during the
  // stall aborts this checkpoint.
  void take_checkpoint() {
    double stall = pr_.stall_s;
    if (pending_ && m_.checkpoint.async && pending_durable_t_ > t_) {
      stall += pending_durable_t_ - t_;  // one background write at a time
    }
    if (t_ + stall > limit_s_ && !(next_fail_t_ < limit_s_)) {
      // The wall-clock limit comes first: the run ends in this stall.
      r_.checkpoint_stall_s += limit_s_ - t_;
      t_ = limit_s_;
      return;
    }
    if (next_fail_t_ < t_ + stall) {
      if (pending_ && pending_durable_t_ <= next_fail_t_) {
        commit(pending_p_);
        pending_ = false;
      }
      r_.checkpoint_stall_s += next_fail_t_ - t_;
      t_ = next_fail_t_;
      failure_while_up();
      return;
    }
    if (pending_) {
      commit(pending_p_);
      pending_ = false;
    }
    t_ += stall;
    r_.checkpoint_stall_s += stall;
    if (m_.checkpoint.async && pr_.write_s > 0) {
      pending_ = true;
      pending_p_ = p_;
      pending_durable_t_ = t_ + pr_.write_s;
    } else {
      commit(p_);
    }
    next_ckpt_p_ = p_ + m_.checkpoint.interval_s;
  }

  void commit(double progress_s) {
    ++r_.checkpoints;
    ++ckpt_index_;
    kept_.push_back(progress_s);
    if (static_cast<int64_t>(kept_.size()) > m_.checkpoint.keep_last) {
      evicted_.push_back(kept_.front());
      kept_.erase(kept_.begin());
      // Without an ongoing corruption every later restore limit is at least the newest
      // kept checkpoint (crashes restore to it, a new corruption starts after it), so of
      // the evicted ones only the newest can ever lie in (best, limit]: keep just that
      // one, which bounds the memory of long runs.
      if (!corrupt_ && evicted_.size() > 1) evicted_.erase(evicted_.begin(), evicted_.end() - 1);
    }
    if (m_.checkpoint.keep_every_n > 0 && ckpt_index_ % m_.checkpoint.keep_every_n == 0) archive_.push_back(progress_s);
  }

  // Newest checkpoint with progress <= limit (the run's start is always available).
  double restore_point(double limit, bool* beyond_kept) const {
    *beyond_kept = false;
    for (auto it = kept_.rbegin(); it != kept_.rend(); ++it)
      if (*it <= limit) return *it;
    double best = 0.0;
    for (auto it = archive_.rbegin(); it != archive_.rend(); ++it)
      if (*it <= limit) {
        best = *it;
        break;
      }
    // A checkpoint that would have served better than `best` was deleted by the
    // retention policy: any evicted one in (best, limit]. evicted_ is ascending, so
    // the newest evicted checkpoint not after the limit decides.
    const auto after = std::upper_bound(evicted_.begin(), evicted_.end(), limit);
    *beyond_kept = after != evicted_.begin() && *(after - 1) > best;
    return best;
  }

  double sample_detection_progress_s(const FaultClass& c, double onset_p) {
    if (c.detection == Detection::loss_alert) {
      return onset_p + (m_.detection.loss_alert_steps + m_.detection.loss_observe_steps) * spec_.step_time_s;
    }
    // cross_dp_check: checks at every multiple of the interval (training time); each
    // notices the corruption with probability q, so the number of checks is geometric.
    const double I = m_.detection.cross_dp_check_interval_s;
    const double q = m_.detection.cross_dp_detect_probability;
    double first = std::floor(onset_p / I) * I + I;
    double misses = 0;
    if (q < 1.0) misses = std::floor(std::log(rng_.uniform_open0()) / std::log1p(-q));
    return first + misses * I;
  }

  void start_corruption(int cls, double onset_p) {
    const double detect = sample_detection_progress_s(m_.classes[cls], onset_p);
    if (!corrupt_) {
      corrupt_ = true;
      onset_p_ = onset_p;
      detect_at_p_ = detect;
      corrupt_cls_ = cls;
    } else {
      onset_p_ = std::min(onset_p_, onset_p);
      if (detect < detect_at_p_) {
        detect_at_p_ = detect;
        corrupt_cls_ = cls;
      }
    }
  }

  void failure_while_up() {
    const int cls = pick_class(pr_, rng_);
    next_fail_t_ = t_ + rng_.exponential(pr_.total_rate_per_s);
    const FaultClass& c = m_.classes[cls];
    if (is_corruption(c.detection)) {
      start_corruption(cls, p_);
      return;
    }
    double restore_p = 0;
    if (c.detection == Detection::planned) {
      // Drain: a synchronous checkpoint on demand, then stop; nothing is lost.
      if (pending_) {
        commit(pending_p_);
        pending_ = false;
      }
      if (t_ + pr_.write_s > limit_s_) {
        // The run ends during the drain's write: the arrival counts, nothing is written.
        r_.checkpoint_stall_s += limit_s_ - t_;
        t_ = limit_s_;
        restore_p = p_;
        go_down(cls, restore_p, false);
        return;
      }
      t_ += pr_.write_s;
      r_.checkpoint_stall_s += pr_.write_s;
      commit(p_);
      restore_p = p_;
    } else {
      pending_ = false;  // an unfinished background write is lost
      bool beyond = false;
      restore_p = restore_point(p_, &beyond);
    }
    go_down(cls, restore_p, false);
  }

  void corruption_detected() {
    const int cls = corrupt_cls_;
    pending_ = false;
    bool beyond = false;
    const double restore_p = restore_point(onset_p_, &beyond);
    if (beyond) ++r_.rollbacks_beyond_kept;
    go_down(cls, restore_p, beyond);
  }

  // Time from a fault of class c (at wall time `at`) until training runs again.
  double outage_s(const FaultClass& c, double at) {
    double s = pr_.restart_s + c.extra_downtime_s;
    if (c.detection == Detection::crash) s += c.detection_delay_s;
    if (c.detection == Detection::watchdog) s += m_.detection.watchdog_timeout_s;
    if (c.replace_node) s += node_replacement_s(at);
    return s;
  }

  // Hot spare if one is free, else wait for the earliest repair; the failed node goes
  // to repair either way.
  double node_replacement_s(double at) {
    const double repair_s = m_.recovery.repair_h * 3600.0;
    repairs_.erase(std::remove_if(repairs_.begin(), repairs_.end(), [&](double done) { return done <= at; }),
                   repairs_.end());
    double wait = 0;
    if (m_.recovery.hot_spare_nodes == 0) {
      wait = repair_s;  // nothing to swap in: the node itself must come back
    } else if (static_cast<int64_t>(repairs_.size()) >= m_.recovery.hot_spare_nodes) {
      const auto earliest = std::min_element(repairs_.begin(), repairs_.end());
      wait = *earliest - at;
      repairs_.erase(earliest);
    }
    repairs_.push_back(at + repair_s);
    return wait + m_.recovery.spare_swap_s;
  }

  // The job is down from t_ (the fault) until every outage, including those of faults
  // that arrive during recovery, is over; then progress is rolled back to restore_p.
  void go_down(int cls, double restore_p, bool beyond_kept) {
    const double fault_t = t_;
    const double lost = p_ - restore_p;
    r_.lost_work_s[cls] += lost;
    ++r_.interruptions[cls];
    // The run ends at the wall-clock limit even in the middle of an outage: downtime and
    // arrivals count up to it (a fixed window lasts exactly its length).
    double up_t = fault_t + outage_s(m_.classes[cls], fault_t);
    r_.downtime_s[cls] += std::min(up_t, limit_s_) - fault_t;
    while (next_fail_t_ < up_t && next_fail_t_ < limit_s_) {
      const double at = next_fail_t_;
      const int other = pick_class(pr_, rng_);
      next_fail_t_ = at + rng_.exponential(pr_.total_rate_per_s);
      const FaultClass& c = m_.classes[other];
      if (is_corruption(c.detection)) {
        start_corruption(other, restore_p);  // it corrupts the state once training resumes
        continue;
      }
      ++r_.interruptions[other];
      const double new_up = std::max(up_t, at + outage_s(c, at));
      r_.downtime_s[other] += std::min(new_up, limit_s_) - std::min(up_t, limit_s_);
      up_t = new_up;
    }
    up_t = std::min(up_t, limit_s_);
    if (timeline_) timeline_->push_back({fault_t, up_t, lost, cls, beyond_kept});
    t_ = up_t;
    p_ = restore_p;
    // Checkpoints newer than the restore point belong to the abandoned history.
    while (!kept_.empty() && kept_.back() > restore_p) kept_.pop_back();
    while (!archive_.empty() && archive_.back() > restore_p) archive_.pop_back();
    while (!evicted_.empty() && evicted_.back() > restore_p) evicted_.pop_back();
    if (corrupt_ && restore_p <= onset_p_) corrupt_ = false;
    next_ckpt_p_ = restore_p + m_.checkpoint.interval_s;
  }

  const FaultModel& m_;
  const Prepared& pr_;
  const RunSpec& spec_;
  Xoshiro256& rng_;
  std::vector<TimelineEvent>* timeline_;
  TrialResult r_;

  double limit_s_ = kInf;  // wall-clock stop
  double t_ = 0;  // wall-clock
  double p_ = 0;  // progress
  double next_fail_t_ = kInf;
  double next_ckpt_p_ = 0;
  std::vector<double> kept_;     // durable checkpoints (progress), oldest first
  std::vector<double> archive_;  // every keep_every_n-th checkpoint
  // Checkpoints dropped by keep_last (progress), oldest first: always older than every
  // kept one, and those of an abandoned history are removed on rollback, so ascending.
  std::vector<double> evicted_;
  int64_t ckpt_index_ = 0;
  bool pending_ = false;  // async write in flight
  double pending_p_ = 0;
  double pending_durable_t_ = 0;
  bool corrupt_ = false;  // undetected corruption in the live state
  double onset_p_ = 0;
  double detect_at_p_ = 0;
  int corrupt_cls_ = 0;
  std::vector<double> repairs_;  // completion times of nodes in repair
};

void check_spec(const RunSpec& spec) {
  if (!(spec.work_s > 0) || !std::isfinite(spec.work_s))
    fail("run: training work = ", spec.work_s, " s: expected a positive finite time (token budget ÷ tokens/s)");
  if (!(spec.max_wall_s > 0)) fail("run: wall-clock limit = ", spec.max_wall_s, " s: expected a positive time");
  if (!(spec.step_time_s > 0) || !std::isfinite(spec.step_time_s))
    fail("run: step time = ", spec.step_time_s, " s: expected a positive finite time");
}

std::string days_text(double s) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g days", s / 86400.0);
  return buf;
}

// Refuses, in one line, a run whose expected event count would keep the machine busy
// for more than about ten seconds (kMaxSimulatedEvents).
void check_budget(const FaultModel& m, const RunSpec& spec, double trials, double per_trial, const std::string& what) {
  const double total = per_trial * trials;
  if (total <= kMaxSimulatedEvents) return;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "run%s: %.6g trials x ~%.3g events each (%s of failure-free training%s, a checkpoint every %.4g s, "
                "%.3g failures per day) = %.3g events, over the limit of %.3g (about 10 s of simulation): use fewer "
                "trials, a shorter run or a longer checkpoint interval",
                what.c_str(), trials, per_trial, days_text(spec.work_s).c_str(),
                std::isfinite(spec.max_wall_s) ? (", stopped at " + days_text(spec.max_wall_s)).c_str() : "",
                m.checkpoint.interval_s, prepare(m).total_rate_per_s * 86400.0, total, kMaxSimulatedEvents);
  fail(buf);
}

}  // namespace

double estimated_events_per_trial(const FaultModel& m, const RunSpec& spec) {
  // Progress and wall-clock both run for about min(work, wall limit); a checkpoint is
  // one event per interval of progress, a failure one per 1/Λ of wall-clock.
  const double span_s = std::min(spec.work_s, spec.max_wall_s);
  return 1.0 + span_s / m.checkpoint.interval_s + span_s * prepare(m).total_rate_per_s;
}

TrialResult simulate_trial(const FaultModel& model, const RunSpec& spec, uint64_t seed, int64_t trial,
                           std::vector<TimelineEvent>* timeline) {
  check_spec(spec);
  const Prepared pr = prepare(model);
  Xoshiro256 rng(seed, static_cast<uint64_t>(trial));
  return Trial(model, pr, spec, rng, timeline).run();
}

Distribution summarize(std::vector<double> x) {
  Distribution d;
  if (x.empty()) return d;
  const double n = static_cast<double>(x.size());
  double sum = 0;
  for (double v : x) sum += v;
  d.mean = sum / n;
  double ss = 0;
  for (double v : x) ss += (v - d.mean) * (v - d.mean);
  d.stddev = x.size() > 1 ? std::sqrt(ss / (n - 1)) : 0;
  std::sort(x.begin(), x.end());
  auto rank = [&](double q) {
    const auto k = static_cast<size_t>(std::ceil(q * n));
    return x[std::min(std::max<size_t>(k, 1), x.size()) - 1];
  };
  d.p5 = rank(0.05);
  d.p50 = rank(0.50);
  d.p95 = rank(0.95);
  d.min = x.front();
  d.max = x.back();
  return d;
}

McSummary run_monte_carlo(const FaultModel& model, const RunSpec& spec, const McOptions& o) {
  check_spec(spec);
  if (o.trials < 1) fail("option --trials = ", o.trials, ": expected an integer >= 1");
  validate(model, model.name);
  check_budget(model, spec, static_cast<double>(o.trials), estimated_events_per_trial(model, spec), "");
  const Prepared pr = prepare(model);
  const auto n = static_cast<size_t>(o.trials);
  std::vector<TrialResult> results(n);
  McSummary s;
  auto work = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      Xoshiro256 rng(o.seed, i);
      std::vector<TimelineEvent>* tl = (i == 0 && o.record_timeline) ? &s.timeline : nullptr;
      results[i] = Trial(model, pr, spec, rng, tl).run();
    }
  };
  const size_t threads = std::clamp<size_t>(static_cast<size_t>(std::max(o.threads, 1)), 1, n);
  if (threads == 1) {
    work(0, n);
  } else {
    std::vector<std::thread> pool;
    for (size_t k = 0; k < threads; ++k) pool.emplace_back(work, n * k / threads, n * (k + 1) / threads);
    for (auto& th : pool) th.join();
  }

  // Aggregate in trial order: the same numbers whatever the thread count.
  s.trials = o.trials;
  s.seed = o.seed;
  s.gpus = model.job.gpus;
  s.spec = spec;
  const double gpus = static_cast<double>(model.job.gpus);
  std::vector<double> days, goodput, interruptions;
  s.classes.resize(model.classes.size());
  for (size_t c = 0; c < model.classes.size(); ++c) {
    s.classes[c].name = model.classes[c].name;
    s.classes[c].label = model.classes[c].label;
    s.classes[c].rate_per_gpu_hour = job_rate_per_gpu_hour(model, model.classes[c]);
    s.classes[c].rate_per_day = job_rate_per_hour(model, model.classes[c]) * 24.0;
  }
  for (const TrialResult& r : results) {
    days.push_back(r.wall_s / 86400.0);
    goodput.push_back(r.goodput());
    int64_t total = 0;
    for (size_t c = 0; c < r.interruptions.size(); ++c) {
      total += r.interruptions[c];
      s.classes[c].interruptions_mean += r.interruptions[c];
      s.classes[c].lost_work_gpu_h_mean += r.lost_work_s[c] * gpus / 3600.0;
      s.classes[c].downtime_gpu_h_mean += r.downtime_s[c] * gpus / 3600.0;
    }
    interruptions.push_back(static_cast<double>(total));
    s.checkpoint_stall_gpu_h_mean += r.checkpoint_stall_s * gpus / 3600.0;
    s.checkpoints_mean += static_cast<double>(r.checkpoints);
    s.rollbacks_beyond_kept_mean += static_cast<double>(r.rollbacks_beyond_kept);
    s.corrupted_at_end_fraction += r.corrupted_at_end ? 1.0 : 0.0;
    s.unfinished_fraction += r.unfinished ? 1.0 : 0.0;
  }
  const double nt = static_cast<double>(n);
  for (auto& c : s.classes) {
    c.interruptions_mean /= nt;
    c.lost_work_gpu_h_mean /= nt;
    c.downtime_gpu_h_mean /= nt;
  }
  s.checkpoint_stall_gpu_h_mean /= nt;
  s.checkpoints_mean /= nt;
  s.rollbacks_beyond_kept_mean /= nt;
  s.corrupted_at_end_fraction /= nt;
  s.unfinished_fraction /= nt;
  s.wall_days_samples = days;
  s.goodput_samples = goodput;
  s.wall_days = summarize(days);
  s.goodput = summarize(goodput);
  s.interruptions = summarize(interruptions);
  s.timeline_wall_s = results[0].wall_s;
  return s;
}

double mean_cross_dp_detection_s(const DetectionPlan& d) {
  const double q = d.cross_dp_detect_probability;
  return d.cross_dp_check_interval_s * (0.5 + (1.0 - q) / q);
}

double young_interval_s(double stall_s, double mtbf_s) { return std::sqrt(2.0 * stall_s * mtbf_s); }

double daly_interval_s(double stall_s, double mtbf_s) {
  if (!(stall_s < 2.0 * mtbf_s)) return mtbf_s;
  const double xi = stall_s / (2.0 * mtbf_s);
  return std::sqrt(2.0 * stall_s * mtbf_s) * (1.0 + std::sqrt(xi) / 3.0 + xi / 9.0) - stall_s;
}

double daly_expected_wall_s(double work_s, double interval_s, double stall_s, double restart_s, double mtbf_s) {
  return mtbf_s * std::exp(restart_s / mtbf_s) * std::expm1((interval_s + stall_s) / mtbf_s) * work_s / interval_s;
}

std::vector<DetectionDelay> corruption_detection_delays(const FaultModel& m, double step_time_s) {
  std::vector<DetectionDelay> out;
  auto minutes = [](double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60.0);
    return std::string(buf);
  };
  for (const FaultClass& c : m.classes) {
    if (!is_corruption(c.detection) || !(job_rate_per_hour(m, c) > 0)) continue;
    DetectionDelay d;
    d.label = c.label;
    char buf[160];
    if (c.detection == Detection::loss_alert) {
      const double steps = m.detection.loss_alert_steps + m.detection.loss_observe_steps;
      d.mean_s = d.bound_s = steps * step_time_s;
      std::snprintf(buf, sizeof buf, "loss alert %g + %g steps x %.4g s", m.detection.loss_alert_steps,
                    m.detection.loss_observe_steps, step_time_s);
    } else {
      // First check at most one interval I after the onset, then a geometric number of
      // missed checks: the delay exceeds I·(1 + k) with probability (1 − q)^(k+1).
      const double I = m.detection.cross_dp_check_interval_s, q = m.detection.cross_dp_detect_probability;
      d.mean_s = mean_cross_dp_detection_s(m.detection);
      int64_t k = 0;
      double tail = 1.0 - q;
      while (tail > 0.05 && k < 1000000) {
        tail *= 1.0 - q;
        ++k;
      }
      d.bound_s = I * static_cast<double>(1 + k);
      d.coverage = 1.0 - tail;
      std::snprintf(buf, sizeof buf, "cross-DP check every %s, p = %g", minutes(I).c_str(), q);
    }
    d.how = buf;
    out.push_back(d);
  }
  return out;
}

namespace {

// δ, M and the two formulas' intervals of a sweep, and its grid of intervals.
std::vector<double> sweep_grid(const FaultModel& model, IntervalSweep* sw) {
  sw->stall_s = model.checkpoint.stall_s();
  double losing_rate_per_s = 0;
  for (const FaultClass& c : model.classes) {
    if (c.detection == Detection::planned) continue;
    losing_rate_per_s += job_rate_per_hour(model, c) / 3600.0;
  }
  sw->mtbf_s = losing_rate_per_s > 0 ? 1.0 / losing_rate_per_s : kInf;
  sw->young_interval_s = young_interval_s(sw->stall_s, sw->mtbf_s);
  sw->daly_interval_s = daly_interval_s(sw->stall_s, sw->mtbf_s);

  std::vector<double> grid;
  for (double x = 60.0; x <= 16 * 3600.0 * 1.0001; x *= std::sqrt(2.0)) grid.push_back(x);
  for (double formula : {sw->young_interval_s, sw->daly_interval_s})
    if (std::isfinite(formula) && formula >= 1.0 && formula <= 1e8 &&
        std::find(grid.begin(), grid.end(), formula) == grid.end())
      grid.push_back(formula);
  std::sort(grid.begin(), grid.end());
  return grid;
}

void check_sweep_budget(const FaultModel& model, const RunSpec& spec, const McOptions& o,
                        const std::vector<double>& grid) {
  double events = 0;
  for (double interval : grid) {
    FaultModel m = model;
    m.checkpoint.interval_s = interval;
    events += estimated_events_per_trial(m, spec);
  }
  FaultModel shortest = model;
  shortest.checkpoint.interval_s = grid.front();
  check_budget(shortest, spec, static_cast<double>(o.trials), events,
               " (checkpoint-interval sweep: one trial at each of " + std::to_string(grid.size()) + " intervals)");
}

}  // namespace

void check_run_budget(const FaultModel& model, const RunSpec& spec, const McOptions& o) {
  check_spec(spec);
  if (o.trials < 1) fail("option --trials = ", o.trials, ": expected an integer >= 1");
  check_budget(model, spec, static_cast<double>(o.trials), estimated_events_per_trial(model, spec), "");
}

void check_sweep_budget(const FaultModel& model, const RunSpec& spec, const McOptions& o) {
  check_spec(spec);
  if (o.trials < 1) fail("option --sweep-trials = ", o.trials, ": expected an integer >= 1");
  IntervalSweep sw;
  check_sweep_budget(model, spec, o, sweep_grid(model, &sw));
}

IntervalSweep sweep_checkpoint_interval(const FaultModel& model, const RunSpec& spec, const McOptions& o) {
  check_spec(spec);
  IntervalSweep sw;
  sw.trials_per_point = o.trials;
  const std::vector<double> grid = sweep_grid(model, &sw);
  // The whole sweep against the event budget, before any of it runs.
  check_sweep_budget(model, spec, o, grid);

  McOptions po = o;
  po.record_timeline = false;
  // A token budget: the best interval finishes soonest. A fixed wall-clock window:
  // the best interval keeps the most useful work.
  const bool fixed_window = std::isfinite(spec.max_wall_s) && spec.work_s >= spec.max_wall_s;
  double best_cost = kInf;
  for (double interval : grid) {
    FaultModel m = model;
    m.checkpoint.interval_s = interval;
    const McSummary s = run_monte_carlo(m, spec, po);
    sw.points.push_back({interval, s.wall_days.mean, s.goodput.mean, s.rollbacks_beyond_kept_mean});
    const double cost = fixed_window ? -s.goodput.mean : s.wall_days.mean;
    if (cost < best_cost) {
      best_cost = cost;
      sw.best_interval_s = interval;
    }
  }

  // Where the formulas are not the answer.
  auto h = [](double s) {
    char buf[32];
    if (s < 7200)
      std::snprintf(buf, sizeof buf, "%.1f min", s / 60.0);
    else
      std::snprintf(buf, sizeof buf, "%.2f h", s / 3600.0);
    return std::string(buf);
  };
  if (sw.stall_s <= 0)
    sw.caveats.push_back("checkpoint stall delta = 0: both formulas give 0; the optimum is set by the other costs (background write window, retention)");
  if (sw.stall_s > 0.1 * sw.mtbf_s)
    sw.caveats.push_back("delta is not << M (delta = " + h(sw.stall_s) + ", M = " + h(sw.mtbf_s) +
                         "): Young's first-order value is off; Daly's higher-order value is " + h(sw.daly_interval_s));
  const double restart_s = model.recovery.requeue_s + model.recovery.rendezvous_s + model.checkpoint.read_s() + model.recovery.warmup_s;
  if (restart_s > 0.1 * sw.mtbf_s) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", std::exp(restart_s / sw.mtbf_s));
    sw.caveats.push_back("restart cost R = " + h(restart_s) + " is not << M: it lengthens the run (Daly: by e^(R/M) = " + buf +
                         ") but does not move the optimum");
  }
  const std::vector<DetectionDelay> delays = corruption_detection_delays(model, spec.step_time_s);
  if (!delays.empty()) {
    // The newest clean checkpoint c0 (at most one interval before the onset) is deleted
    // once keep_last newer ones are durable, i.e. when c0 + keep_last·τ <= detection:
    // it survives every delay shorter than (keep_last − 1)·τ.
    const double tau = sw.daly_interval_s;
    const double safe_s = static_cast<double>(model.checkpoint.keep_last - 1) * tau;
    std::string msg = "silent corruption / loss spikes roll back to the newest checkpoint before the onset; detection takes";
    const DetectionDelay* longest = &delays.front();
    for (const DetectionDelay& d : delays) {
      char buf[64];
      if (d.coverage < 1)
        std::snprintf(buf, sizeof buf, " (%.0f%%)", 100 * d.coverage);
      else
        buf[0] = '\0';
      msg += (&d == &delays.front() ? " " : "; ") + d.label + ": mean " + h(d.mean_s) +
             (d.coverage < 1 ? ", at most " + h(d.bound_s) + buf : std::string()) + " (" + d.how + ")";
      if (d.bound_s > longest->bound_s) longest = &d;
    }
    msg += ". With keep_last = " + std::to_string(model.checkpoint.keep_last) + " and Daly's interval " + h(tau) +
           " the clean checkpoint survives a delay of (keep_last - 1) x interval = " + h(safe_s);
    if (safe_s <= longest->bound_s) {
      msg += ", shorter than " + longest->label + "'s " + h(longest->bound_s) +
             ": a late detection falls back to an archived checkpoint or the start, so the optimum moves to longer "
             "intervals (or keep more checkpoints)";
    } else {
      msg += ", longer than every detection delay, so the formulas still hold to first order";
    }
    sw.caveats.push_back(msg);
  }
  return sw;
}

}  // namespace preflight::faults
