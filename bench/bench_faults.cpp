// Fault Monte Carlo speed: 10,000 trials of a 60-day, 2048-GPU DeepSeek-V3 run on one
// core (target: under 10 s). The run: 14.8T tokens at 62.9M tokens/step and 19.8 s/step
// (≈ 54 failure-free days), fault preset deepseek-v3-2048, 30-minute async checkpoints.
#include <benchmark/benchmark.h>

#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"

namespace {

using namespace preflight::faults;

void BM_FaultMonteCarlo_2048gpu_60day(benchmark::State& state) {
  FaultModel m = load_fault_model("deepseek-v3-2048");
  m.checkpoint.size_bytes = 5.46e12;  // 682.6B parameters × 8 bytes
  RunSpec spec;
  spec.step_time_s = 19.8;
  spec.work_s = 14.8e12 / 62914560.0 * spec.step_time_s;
  spec.max_wall_s = 60 * 86400.0;
  McOptions o;
  o.trials = state.range(0);
  o.threads = 1;
  o.record_timeline = false;
  double goodput = 0;
  for (auto _ : state) {
    const McSummary s = run_monte_carlo(m, spec, o);
    goodput = s.goodput.mean;
    benchmark::DoNotOptimize(goodput);
  }
  state.counters["trials"] = static_cast<double>(o.trials);
  state.counters["trials_per_s"] = benchmark::Counter(static_cast<double>(o.trials) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FaultMonteCarlo_2048gpu_60day)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
