// Helpers shared by the trainer tests (test_train, test_checkpoint, test_train_cli).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "reference/train/trainer.hpp"

namespace preflight::train::test {

// The shipped corpus (data/debian-licenses.tok).
inline std::string corpus_path() { return std::string(PREFLIGHT_SOURCE_DIR_PATH) + "/data/debian-licenses.tok"; }

// A fresh, empty directory under the temp directory, named by the process and `tag`.
inline std::string fresh_tmpdir(const std::string& tag) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("preflight-test-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// The tiny run most tests start from: B = 2, T = 16, a 2-step warm-up, lr 3e-3.
inline TrainOptions small(int64_t steps) {
  TrainOptions o;
  o.batch = 2, o.seq_len = 16, o.steps = steps, o.warmup = 2, o.lr = 3e-3;
  return o;
}

}  // namespace preflight::train::test
