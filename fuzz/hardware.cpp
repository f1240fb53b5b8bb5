// Fuzz harness: hardware (cluster) JSON (sim/config.cpp, "preflight-hardware/1"), loaded
// from a file as `sim --cluster PATH` does, then used: a cluster's numbers are divisors
// and multipliers of the cost model, so each accepted cluster is simulated
// (sim_common.hpp) with a few layouts whose data-parallel size follows its GPU count.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_common.hpp"
#include "fuzz/sim_common.hpp"
#include "reference/core/config_io.hpp"
#include "sim/api.hpp"

using namespace preflight;

namespace {

struct Target {
  ModelConfig model;
  sim::LayoutConfig layout;
  int64_t microbatches = 1;  // per pipeline, as on the preset's own cluster
};

const std::vector<Target>& targets() {
  static const std::vector<Target> t = [] {
    std::vector<Target> v;
    struct Preset {
      const char *model, *layout, *cluster;
      int64_t gpus;  // 0: the cluster's
    };
    for (const Preset& p : {Preset{"deepseek-v3-671b", "deepseek-v3-dualpipe", "h800-2048", 0},
                            Preset{"llama3-405b", "llama3-405b-tp8-pp16", "h100-8192", 0},
                            Preset{"gpt-1.7b", "megatron-gpt-1.7b", "a100-selene", 32}}) {
      Target t{load_model_config(p.model), sim::load_layout(p.layout)};
      sim::ClusterConfig c = sim::load_cluster(p.cluster);
      if (p.gpus > 0) c.num_gpus = p.gpus;
      t.microbatches = sim::resolve_layout(t.model, c, t.layout).microbatches;
      t.layout.dp = 0;  // derived from the fuzzed GPU count
      v.push_back(t);
    }
    // The smallest: tiny, one GPU per replica.
    Target tiny{load_model_config("tiny"), sim::LayoutConfig{}};
    tiny.layout.name = "one-gpu-replicas";
    tiny.layout.seq_len = 64;
    v.push_back(tiny);
    return v;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<Target>& presets = targets();
  const std::string path = fuzz::input_as_file("hardware.json", data, size);
  sim::ClusterConfig cluster;
  bool loaded = false;
  fuzz::accept_or_refuse([&] {
    cluster = sim::load_cluster(path);
    loaded = true;
  });
  if (!loaded) return 0;
  for (const Target& t : presets) {
    // The preset's micro-batches per pipeline on however many replicas the cluster holds
    // (what a user does with --gpus: the global batch scales with the data-parallel size).
    sim::LayoutConfig layout = t.layout;
    int64_t ranks = 0, dp = 0, batch = 0;
    if (!__builtin_mul_overflow(layout.pp, layout.tp, &ranks) && cluster.num_gpus % ranks == 0) {
      dp = cluster.num_gpus / ranks;
      if (__builtin_mul_overflow(t.microbatches * layout.micro_batch_size, dp, &batch)) continue;
      layout.global_batch_size = batch;
    }
    fuzz::accept_or_refuse([&] { fuzz::resolve_and_simulate(t.model, cluster, layout); });
  }
  return 0;
}
