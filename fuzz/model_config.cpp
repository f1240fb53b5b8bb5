// Fuzz harness: model configs, all three dialects of reference/core/config_io.hpp (preflight
// presets, Hugging Face config.json, DeepSeek's config_671B.json); the seeds in
// fuzz/corpus/model_config/ cover each. An accepted config must also survive what
// `preflight model` and `train --resume` do with it next:
//   * to_json writes the preset dialect "with every field written out (round-trips through
//     the parser)", and a checkpoint's trainer.json stores exactly that: parsing the dump
//     must give the same config back;
//   * parameter and FLOP counts (accounting.hpp) must not overflow (UBSan) or hang.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "reference/core/accounting.hpp"
#include "reference/core/config_io.hpp"

using namespace preflight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::accept_or_refuse([&] {
    const ModelConfig c = parse_model_config(text, "fuzz-config.json");
    const nlohmann::json written = to_json(c);
    const std::string dumped = written.dump();
    ModelConfig back;
    try {
      back = parse_model_config(dumped, "round-trip.json");
    } catch (const Error& e) {
      fuzz::finding("to_json(config) is refused by the parser", std::string(e.what()) + "\n  written: " + dumped);
    }
    if (to_json(back) != written)
      fuzz::finding("to_json -> parse changed the config", dumped + "\n  came back as: " + to_json(back).dump());
    const ParamBreakdown p = count_parameters(c);
    (void)p.with_mtp().total;
    // `preflight model` defaults to the full context; also the shortest sequence.
    (void)count_flops(c, c.max_position_embeddings).training_with_mtp();
    (void)count_flops(c, 1).training_with_mtp();
  });
  return 0;
}
