// Fuzz harness: checkpoint directories (reference/train/checkpoint.cpp, trainer.cpp): the
// manifest, both safetensors files and trainer.json, loaded by Trainer::resume as
// `train --resume DIR` does, and optionally one training step from the restored state
// (a checkpoint that loads must also train, or be refused at load).
//
// Input: one control byte, then the directory's files separated by kSeparator:
//   model.safetensors | optimizer.safetensors | trainer.json | MANIFEST.sha256
// (fewer pieces: the missing files are absent). Control bit 0 set: the manifest piece is
// ignored and the directory is written by write_checkpoint_dir, so its manifest is valid
// in whatever format the writer uses and the fuzzer reaches the files behind it. Bit 0
// clear: the manifest piece is written as given, after replacing "@sha:0", "@sha:1",
// "@sha:2" with the SHA-256 of piece 0, 1, 2 (so malformed manifests need not also guess
// hashes). Bit 1 set: one step() after a successful resume.
//
// Bounds (valid inputs that are only expensive, skipped before loading): trainer.json's
// model must have at most kMaxParams parameters, and the step at most kMaxStepTokens
// tokens. `options.data` must be "synthetic": a path there would read this machine's files.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.hpp"
#include "reference/core/config_io.hpp"
#include "reference/layers/model.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/sha256.hpp"
#include "reference/train/trainer.hpp"

using namespace preflight;

namespace {

constexpr std::string_view kSeparator = "\nPFSPLIT\n";
constexpr int64_t kMaxParams = int64_t{1} << 20;
constexpr int64_t kMaxStepTokens = 4096;
const char* const kFiles[] = {"model.safetensors", "optimizer.safetensors", "trainer.json"};

struct Plan {
  bool load = true;      // false: skipped (too expensive or reads outside the scratch directory)
  bool may_step = false;
  int64_t step = 0;      // for write_checkpoint_dir's directory name
};

// What trainer.json asks for, read leniently (the loader itself decides what is valid).
Plan plan_for(std::string_view trainer_json) {
  Plan p;
  const nlohmann::json tj = nlohmann::json::parse(trainer_json, nullptr, /*allow_exceptions=*/false);
  if (!tj.is_object()) return p;
  if (tj.contains("step") && tj["step"].is_number_integer() && tj["step"].get<int64_t>() >= 0 &&
      tj["step"].get<int64_t>() < 100000000)
    p.step = tj["step"].get<int64_t>();
  if (tj.contains("options") && tj["options"].is_object()) {
    const nlohmann::json& o = tj["options"];
    if (o.contains("data") && o["data"] != "synthetic") p.load = false;
    int64_t tokens = 1;
    for (const char* k : {"batch", "seq_len", "micro_batches"}) {
      if (!o.contains(k) || !o[k].is_number_integer()) continue;
      const int64_t v = o[k].get<int64_t>();
      if (v > 0 && (__builtin_mul_overflow(tokens, v, &tokens) || tokens > kMaxStepTokens)) tokens = kMaxStepTokens + 1;
    }
    p.may_step = tokens <= kMaxStepTokens;
  }
  if (tj.contains("model_config")) {
    // A config the loader will refuse is left to the loader; one it accepts is sized first.
    fuzz::accept_or_refuse([&] {
      const ModelConfig c = model_config_from_json(tj["model_config"], "trainer.json");
      if (c.num_hidden_layers > 64 || c.hidden_size > 4096 || c.vocab_size > 65536) {
        p.load = false;
        return;
      }
      if (ref::model_layout(c).total > kMaxParams) p.load = false;
    });
  }
  return p;
}

std::string with_hashes(std::string manifest, const std::vector<std::string_view>& pieces) {
  for (size_t at = manifest.find("@sha:"); at != std::string::npos; at = manifest.find("@sha:", at + 1)) {
    if (at + 5 >= manifest.size()) break;
    const size_t k = static_cast<size_t>(manifest[at + 5] - '0');
    if (k > 2) continue;
    manifest.replace(at, 6, train::sha256_hex(k < pieces.size() ? pieces[k] : std::string_view()));
  }
  return manifest;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("OMP_NUM_THREADS", "1", 1);  // one input at a time; threads only add noise
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::vector<std::string_view> pieces =
      fuzz::split(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), kSeparator);
  const Plan plan = plan_for(pieces.size() > 2 ? pieces[2] : std::string_view());
  if (!plan.load) return 0;

  namespace fs = std::filesystem;
  const fs::path out = fs::path(fuzz::scratch_dir()) / "run";
  fs::remove_all(out);
  fs::create_directories(out);
  if ((control & 1) != 0) {
    std::vector<train::CkptFile> files;
    for (size_t i = 0; i < 3 && i < pieces.size(); ++i) files.push_back({kFiles[i], std::string(pieces[i])});
    if (files.empty()) return 0;
    train::write_checkpoint_dir(out.string(), plan.step, files, 0);  // its own failure is not the loader's
  } else {
    const fs::path dir = out / train::checkpoint_dir_name(0);
    fs::create_directories(dir);
    for (size_t i = 0; i < 3 && i < pieces.size(); ++i) fuzz::write_bytes((dir / kFiles[i]).string(), pieces[i]);
    if (pieces.size() > 3) fuzz::write_bytes((dir / "MANIFEST.sha256").string(), with_hashes(std::string(pieces[3]), pieces));
  }
  fuzz::accept_or_refuse([&] {
    std::unique_ptr<train::Trainer> t = train::Trainer::resume(out.string());
    if ((control & 2) != 0 && plan.may_step && !t->done()) (void)t->step();
  });
  return 0;
}
