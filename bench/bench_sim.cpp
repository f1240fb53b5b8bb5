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

// `preflight plan` on a bounded enumeration; items_per_second is layouts evaluated per
// second (every candidate counts: invalid, out of memory or simulated), on one thread.
//   0: DeepSeek-V3 on h800-2048, global batch 15360, pp ∈ {8, 16}: the deep pipelines,
//      where the step simulation dominates;
//   1: Llama 3 405B on h100-8192, global batch 2048, the full enumeration.
void BM_PlanLayoutsPerSecond(benchmark::State& state) {
  const bool deepseek = state.range(0) == 0;
  const preflight::ModelConfig model = preflight::load_model_config(deepseek ? "deepseek-v3-671b" : "llama3-405b");
  const preflight::sim::ClusterConfig cluster = preflight::sim::load_cluster(deepseek ? "h800-2048" : "h100-8192");
  preflight::sim::PlanOptions o;
  o.global_batch_size = deepseek ? 15360 : 2048;
  if (deepseek) o.pp_values = {8, 16};
  int64_t layouts = 0;
  for (auto _ : state) {
    const preflight::sim::PlanResult r = preflight::sim::plan(model, cluster, o);
    benchmark::DoNotOptimize(r.best.data());
    layouts += r.enumerated;
  }
  state.SetItemsProcessed(layouts);
  state.SetLabel(deepseek ? "deepseek-v3 h800-2048 pp8,16" : "llama3-405b h100-8192 all");
}
BENCHMARK(BM_PlanLayoutsPerSecond)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
