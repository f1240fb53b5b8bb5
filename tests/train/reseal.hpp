// Test helper: re-seals an edited checkpoint, so that only the edit is wrong and a refusal
// cannot come from a checksum: trainer.json's "files" hashes (when it still parses) and
// MANIFEST.sha256 (with its step/digest header) are recomputed from the files as they are.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/sha256.hpp"

namespace preflight::train::test {

inline void reseal(const std::string& ck, int64_t step) {
  const std::string tj = ck + "/trainer.json";
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(tj));
    if (j.is_object() && j.contains("files") && j["files"].is_object()) {
      for (const char* f : {"model.safetensors", "optimizer.safetensors"})
        j["files"][f] = sha256_hex(read_file(ck + "/" + f));
      write_file_atomic(tj, j.dump(2) + "\n");
    }
  } catch (const nlohmann::json::exception&) {
    // not JSON: that is the edit under test
  }
  std::vector<std::pair<std::string, std::string>> listed;
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
    listed.push_back({f, sha256_hex(read_file(ck + "/" + f))});
  std::string m = "# preflight checkpoint step " + std::to_string(step) + ", files sha256 " +
                  manifest_files_digest(listed) + "\n";
  for (const auto& [f, sha] : listed) m += sha + "  " + f + "\n";
  write_file_atomic(ck + "/MANIFEST.sha256", m);
}

// Rewrites a safetensors file's JSON header with `edit` applied (padded to 8 like the writer);
// the data section is kept. `edit` changes the header and returns the text to write.
template <typename Edit>
void edit_safetensors_header(const std::string& path, Edit edit) {
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  std::string text = edit(h);
  while (text.size() % 8 != 0) text.push_back(' ');
  std::string out(8, '\0');
  const uint64_t m = text.size();
  std::memcpy(out.data(), &m, 8);
  write_file_atomic(path, out + text + bytes.substr(8 + n));
}

}  // namespace preflight::train::test
