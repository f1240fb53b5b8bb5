// Simulator speed: one step of the full 2048-GPU DeepSeek-V3 DualPipe layout (16
// stages, 120 micro-batches per pipeline, 61 layers), and the planner's layouts/second.
#include <benchmark/benchmark.h>

#include "reference/core/config_io.hpp"
#include "sim/api.hpp"
#include "sim/planner.hpp"

namespace {

void BM_SimulateDeepSeekV3DualPipe2048(benchmark::State& state) {
  const preflight::ModelConfig model = preflight::load_model_config("deepseek-v3-671b");
  const preflight::sim::ClusterConfig cluster = preflight::sim::load_cluster("h800-2048");
  const preflight::sim::LayoutConfig layout = preflight::sim::load_layout("deepseek-v3-dualpipe");
  for (auto _ : state) {
    preflight::sim::SimReport r = preflight::sim::simulate(model, cluster, layout);
    benchmark::DoNotOptimize(r.step_time_s);
  }
}
BENCHMARK(BM_SimulateDeepSeekV3DualPipe2048)->Unit(benchmark::kMillisecond);

void BM_PlanLayoutsPerSecond(benchmark::State& state) {
  const preflight::ModelConfig model = preflight::load_model_config(state.range(0) == 0 ? "deepseek-v3-671b" : "llama3-405b");
  const preflight::sim::ClusterConfig cluster = preflight::sim::load_cluster(state.range(0) == 0 ? "h800-2048" : "h100-8192");
  preflight::sim::PlanOptions o;
  o.global_batch_size = state.range(0) == 0 ? 15360 : 2048;
  int64_t layouts = 0;
  for (auto _ : state) {
    const preflight::sim::PlanResult r = preflight::sim::plan(model, cluster, o);
    layouts += r.enumerated;
  }
  state.counters["layouts_per_s"] = benchmark::Counter(static_cast<double>(layouts), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PlanLayoutsPerSecond)->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
