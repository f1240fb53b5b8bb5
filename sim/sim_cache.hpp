// simulate() for callers that simulate many layouts of one model on one cluster (the
// planner). Op lists, cost tables and the last pipeline run are kept between calls,
// keyed by everything they are computed from, so a cached call returns exactly what an
// uncached one would: layouts that differ only in ZeRO stage share the pipeline run,
// layouts that differ only in schedule share the cost table, and candidates with the
// same (schedule, pp, vpp, micro-batches) share one op list.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "sim/api.hpp"
#include "sim/cost_model.hpp"
#include "sim/schedule.hpp"

namespace preflight::sim {

// The pipeline part of a step, before data-parallel synchronisation.
struct PipelinePhase {
  PipelineRun run;
  std::vector<double> compute_s;                              // [rank] pure compute
  std::vector<std::array<double, kNumCommKinds>> exposed_s;   // [rank][kind] in-op communication waited for
};

// A cached object and an id unique over the cache's life, to key what is derived from it.
// Shared ownership: an entry the cache drops stays valid for the caller holding it.
template <typename T>
struct Cached {
  uint64_t id = 0;
  std::shared_ptr<T> value;
};

class SimCache {
 public:
  // The model and the cluster must outlive the cache; every call must pass these two.
  SimCache(const ModelConfig& model, const ClusterConfig& cluster) : model_(model), cluster_(cluster) {}

  const ModelConfig& model() const { return model_; }
  const ClusterConfig& cluster() const { return cluster_; }
  // Op list of a schedule (built and legality-checked once).
  Cached<const PipelineSchedule> schedule(Schedule kind, int32_t pp, int32_t vpp, int32_t microbatches);
  // Cost tables of a resolved layout (shared by layouts that differ only where costs do not).
  Cached<CostModel> cost_model(const ResolvedLayout& layout);
  // The pipeline phase of `first` with these costs; with `longer` (more micro-batches)
  // given, both are run and every time is extrapolated linearly to `microbatches`.
  const PipelinePhase& pipeline(Cached<CostModel> cost, Cached<const PipelineSchedule> first,
                                Cached<const PipelineSchedule> longer, int64_t microbatches);

 private:
  // Entries are dropped all at once past these counts (the planner revisits few).
  static constexpr size_t kMaxSchedules = 64, kMaxCostModels = 64;
  template <typename T>
  struct Entry {
    uint64_t id = 0;
    std::shared_ptr<T> value;
  };
  const ModelConfig& model_;
  const ClusterConfig& cluster_;
  uint64_t next_id_ = 1;
  std::map<std::tuple<int, int32_t, int32_t, int32_t>, Entry<PipelineSchedule>> schedules_;
  std::map<std::string, Entry<CostModel>> costs_;
  // The last pipeline phase: the planner's innermost loop (ZeRO stage) repeats it.
  std::tuple<uint64_t, uint64_t, uint64_t, int64_t> last_pipeline_key_{0, 0, 0, -1};
  PipelinePhase last_pipeline_;
};

// simulate() with the cache; cache.model() and cache.cluster() must be `model` and `cluster`.
SimReport simulate(const ModelConfig& model, const ClusterConfig& cluster, const LayoutConfig& layout,
                   const SimOptions& options, SimCache& cache);

}  // namespace preflight::sim
