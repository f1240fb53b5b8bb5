// Reference goldens of the whole model (goldens/reference/tiny-<mode>.json): what a CUDA run
// of the same config, seed, batch and mode must reproduce BIT FOR BIT. One function builds the
// file's exact text, so the regeneration tool and the test that compares share one definition.
//
// Contents (format "preflight-reference-golden/1"): config tiny, parameters model_init(seed
// 1234), a fixed batch of B = 2 sequences of T = 8 tokens (tokens[i] = (37·i + 11 + 5·i²) mod V
// over the stream i = 0..B·T, targets = the stream shifted by one; no mask, no documents),
// ModelOptions defaults except the mode's two fields:
//   fp32: fp32 activations, fp32 GEMMs      bf16: bf16 activations, bf16 GEMMs
//   fp8:  bf16 activations, FP8 GEMMs (E4M3, float scales: DeepSeek-V3's training recipe)
// then model_forward + model_backward into a zeroed gradient buffer. Recorded:
//   - every loss component (total, ce, logit_z, mtp, aux, mtp_ce[k]) as float and bit pattern
//   - the max attention logit per head of every block, bit patterns
//   - the full logits (as the CE sees them: cache.ce.z) of tokens 0 and N−1, bit patterns
//   - the full gradient of final_norm, layers.0.attn.kv_norm, mtp.1.head_norm, bit patterns
//   - FNV-1a 64 over ALL gradients (the flat buffer, model_layout order) read as uint32 bit
//     patterns, each fed as 4 little-endian bytes; and the same digest per tensor
// Values are written as "0x%08x" of the float's bits (readable "%.9g" next to the losses).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/layers/model.hpp"

namespace preflight::ref::golden {

constexpr const char* kFormat = "preflight-reference-golden/1";
constexpr const char* kModes[] = {"fp32", "bf16", "fp8"};
constexpr const char* kRegenerate = "scripts/regen_reference_goldens.sh";

inline uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// FNV-1a 64 over the uint32 bit patterns of x[0..n), 4 little-endian bytes each.
inline uint64_t fnv1a64(const float* x, int64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = bits(x[i]);
    for (int b = 0; b < 4; ++b) h = (h ^ ((u >> (8 * b)) & 0xffu)) * 0x100000001b3ull;
  }
  return h;
}

inline std::string hex32(float x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\"0x%08x\"", unsigned(bits(x)));
  return buf;
}
inline std::string hex64(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"0x%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}
inline std::string hex_array(const float* x, int64_t n) {
  std::string s = "[";
  for (int64_t i = 0; i < n; ++i) s += (i ? (i % 8 ? ", " : ",\n      ") : "") + hex32(x[i]);
  return s + "]";
}
inline std::string value(const char* name, float x) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "\"%s\": {\"value\": %.9g, \"bits\": %s}", name, double(x), hex32(x).c_str());
  return buf;
}

inline ModelOptions mode_options(const std::string& mode) {
  ModelOptions o;
  if (mode == "fp32") return o;
  PREFLIGHT_CHECK(mode == "bf16" || mode == "fp8", "golden mode '", mode, "', expected fp32 | bf16 | fp8");
  o.bf16_activations = true;
  o.precision.kind = precision_from_string(mode.c_str());
  return o;
}

// The file's exact text for `mode`.
inline std::string model_golden_json(const std::string& mode) {
  const ModelConfig cfg = load_model_config("tiny");
  const ModelOptions opt = mode_options(mode);
  const uint64_t seed = 1234;
  const int64_t B = 2, T = 8, N = B * T, V = cfg.vocab_size;
  std::vector<int32_t> stream(N + 1);
  for (int64_t i = 0; i <= N; ++i) stream[i] = int32_t((37 * i + 11 + 5 * i * i) % V);
  const std::vector<int32_t> tokens(stream.begin(), stream.end() - 1), targets(stream.begin() + 1, stream.end());
  const ModelLayout lay = model_layout(cfg);
  std::vector<float> params(lay.total), grads(lay.total, 0.0f);
  model_init(params.data(), cfg, seed);
  Batch batch;
  batch.B = B, batch.T = T, batch.tokens = tokens.data(), batch.targets = targets.data();
  ModelCache cache;
  const ModelLoss loss = model_forward(cache, params.data(), batch, cfg, opt);
  model_backward(grads.data(), cache, params.data(), batch, cfg, opt);

  std::string j = "{\n";
  j += std::string("  \"format\": \"") + kFormat + "\",\n";
  j += std::string("  \"regenerate\": \"") + kRegenerate + "\",\n";
  j += "  \"definition\": \"tests/reference/golden_model.hpp\",\n";
  j += "  \"config\": \"tiny\",\n  \"seed\": " + std::to_string(seed) + ",\n";
  j += "  \"mode\": \"" + mode + "\",\n";
  j += std::string("  \"options\": {\"bf16_activations\": ") + (opt.bf16_activations ? "true" : "false") +
       ", \"precision\": \"" + to_string(opt.precision.kind) + "\", \"ue8m0_scales\": false},\n";
  j += "  \"batch\": {\"B\": " + std::to_string(B) + ", \"T\": " + std::to_string(T) + ", \"tokens\": [";
  for (int64_t i = 0; i < N; ++i) j += (i ? ", " : "") + std::to_string(tokens[i]);
  j += "], \"targets\": [";
  for (int64_t i = 0; i < N; ++i) j += (i ? ", " : "") + std::to_string(targets[i]);
  j += "]},\n  \"loss\": {\n    " + value("total", loss.total) + ",\n    " + value("ce", loss.ce) + ",\n    " +
       value("logit_z", loss.logit_z) + ",\n    " + value("mtp", loss.mtp) + ",\n    " + value("aux", loss.aux);
  for (size_t k = 0; k < loss.mtp_ce.size(); ++k)
    j += ",\n    " + value(("mtp_ce_" + std::to_string(k + 1)).c_str(), loss.mtp_ce[k]);
  j += "\n  },\n  \"max_logit_per_head\": [";
  for (size_t b = 0; b < loss.max_logit_per_head.size(); ++b)
    j += std::string(b ? ",\n    " : "\n    ") +
         hex_array(loss.max_logit_per_head[b].data(), int64_t(loss.max_logit_per_head[b].size()));
  j += "\n  ],\n  \"logits\": {";
  for (int64_t t : {int64_t(0), N - 1})
    j += std::string(t ? ",\n" : "\n") + "    \"token_" + std::to_string(t) + "\": " + hex_array(&cache.ce.z[t * V], V);
  j += "\n  },\n  \"gradients\": {";
  bool first = true;
  for (const char* name : {"final_norm", "layers.0.attn.kv_norm", "mtp.1.head_norm"})
    for (const auto& t : lay.tensors)
      if (t.name == name) {
        j += std::string(first ? "\n" : ",\n") + "    \"" + name + "\": " + hex_array(&grads[t.offset], t.size);
        first = false;
      }
  j += "\n  },\n  \"gradient_digest_fnv1a64\": " + hex64(fnv1a64(grads.data(), lay.total)) + ",\n";
  j += "  \"gradient_digest_per_tensor\": {";
  for (size_t i = 0; i < lay.tensors.size(); ++i) {
    const auto& t = lay.tensors[i];
    j += std::string(i ? ",\n" : "\n") + "    \"" + t.name + "\": " + hex64(fnv1a64(&grads[t.offset], t.size));
  }
  j += "\n  }\n}\n";
  return j;
}

}  // namespace preflight::ref::golden
