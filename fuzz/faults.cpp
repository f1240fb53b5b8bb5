// Fuzz harness: fault-model JSON (sim/faults/fault_model.cpp, "preflight-faults/1"),
// parsed as `preflight faults --faults PATH` does, then used: the derived rates and
// detection times, `--show-config`'s dump, and one Monte Carlo trial of a one-day run. The
// trial is skipped when an upper bound on its events exceeds kMaxEvents (a trial stops at
// 50 × work + 30 days of wall-clock time, monte_carlo.hpp; failures arrive at the summed
// class rates, checkpoints every interval): that skips valid but long inputs only; a trial
// that still runs for seconds is a hang libFuzzer's -timeout reports.
#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"

using namespace preflight;

namespace {
constexpr double kMaxEvents = 2e5;  // a few ms at about 25 ns per event
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::accept_or_refuse([&] {
    faults::FaultModel m = faults::parse_fault_model(text, "fuzz-faults.json");
    // `faults` derives a missing checkpoint size from the model (DeepSeek-V3: 671e9 × 8 bytes).
    if (m.checkpoint.size_bytes == 0) m.checkpoint.size_bytes = 671e9 * m.checkpoint.bytes_per_param;
    faults::validate(m, "fuzz-faults.json (after overrides)");
    (void)to_json(m).dump();
    (void)faults::fabric_tiers(m.job.gpus, m.job.switch_radix);
    for (const faults::FaultClass& c : m.classes) {
      (void)faults::job_rate_per_hour(m, c);
      (void)faults::job_rate_per_gpu_hour(m, c);
    }
    (void)faults::mean_cross_dp_detection_s(m.detection);
    faults::RunSpec spec;
    spec.work_s = 86400;
    spec.step_time_s = 10;
    const double max_wall_h = (50 * spec.work_s + 30 * 86400.0) / 3600;
    double events = spec.work_s / m.checkpoint.interval_s;
    for (const faults::FaultClass& c : m.classes) events += faults::job_rate_per_hour(m, c) * max_wall_h;
    if (!(events <= kMaxEvents)) return;
    std::vector<faults::TimelineEvent> timeline;
    const faults::TrialResult r = faults::simulate_trial(m, spec, 1, 0, &timeline);
    (void)r.goodput();
  });
  return 0;
}
