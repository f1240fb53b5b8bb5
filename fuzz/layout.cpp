// Fuzz harness: parallel-layout JSON (sim/config.cpp, "preflight-layout/1"), loaded from a
// file as `sim --layout PATH` does, then resolved and simulated (sim_common.hpp) against
// fixed model/cluster presets: the layout's numbers only mean something against a model
// and a GPU count, and most of their arithmetic (GPU counts, micro-batches, stages) is
// there. One more target takes the GPU count from the layout itself (pp·tp·dp, as
// `sim --gpus N` would), so layouts with an explicit dp resolve too.
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
  sim::ClusterConfig cluster;
};

const std::vector<Target>& targets() {
  static const std::vector<Target> t = [] {
    std::vector<Target> v;
    for (const auto& [m, c] : std::vector<std::pair<const char*, const char*>>{{"tiny", "h100-1024"},
                                                                                 {"deepseek-v3-671b", "h800-2048"},
                                                                                 {"llama3-405b", "h100-8192"},
                                                                                 {"gpt-1.7b", "a100-selene"}})
      v.push_back({load_model_config(m), sim::load_cluster(c)});
    return v;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<Target>& presets = targets();  // outside the try: a preset that fails to load is a bug
  const std::string path = fuzz::input_as_file("layout.json", data, size);
  sim::LayoutConfig layout;
  bool loaded = false;
  fuzz::accept_or_refuse([&] {
    layout = sim::load_layout(path);
    loaded = true;
  });
  if (!loaded) return 0;
  for (const Target& t : presets) fuzz::accept_or_refuse([&] { fuzz::resolve_and_simulate(t.model, t.cluster, layout); });
  // The GPU count the layout asks for (as `sim --gpus`), when it is one a cluster can have.
  int64_t gpus = 0;
  if (layout.dp > 0 && !__builtin_mul_overflow(layout.pp, layout.tp, &gpus) &&
      !__builtin_mul_overflow(gpus, layout.dp, &gpus) && gpus > 0 && gpus <= (int64_t{1} << 24)) {
    for (const Target& t : presets) {
      sim::ClusterConfig c = t.cluster;
      c.num_gpus = gpus;
      fuzz::accept_or_refuse([&] {
        sim::validate(c);
        fuzz::resolve_and_simulate(t.model, c, layout);
      });
    }
  }
  return 0;
}
