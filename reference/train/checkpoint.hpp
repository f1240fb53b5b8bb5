// Checkpoint directories (docs/TRAINING.md §3): OUT/ckpt-00000123/ holding
//   model.safetensors      fp32 weights, Hugging Face names (hf_names.hpp), router biases included
//   optimizer.safetensors  optimizer state (optimizer.hpp names), metadata: step count
//   trainer.json           step, tokens, data-loader position, RNG, spike-detector state,
//                          training options and the model config
//   MANIFEST.sha256        "<sha256>  <file>" per file (`sha256sum -c MANIFEST.sha256` verifies)
// Writing is atomic at the directory level: every file is written and fsync'ed inside
// OUT/.tmp-ckpt-00000123/, the manifest last, the temporary directory fsync'ed, renamed to
// its final name, and OUT fsync'ed. A crash at any point leaves either the old set of
// checkpoints or the old set plus the complete new one; a stale .tmp-* is removed by the next
// writer. Then all but the newest `keep` checkpoints are deleted.
// Reading verifies the manifest first: a missing, truncated or corrupted file is refused with
// one line naming it; nothing is loaded from an unverified checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace preflight::train {

struct CkptFile {
  std::string name;
  std::string bytes;
};

// Writes OUT/ckpt-<step>/ atomically and prunes to `keep` (0: keep all). Returns its path.
// Test hook: env PREFLIGHT_TEST_STALL_CHECKPOINT=<step> makes the writer of that step stop
// half-way through its first file (written and fsync'ed up to there), print
// "preflight: test hook: checkpoint write stalled" to stderr and sleep, so a test can SIGKILL it.
std::string write_checkpoint_dir(const std::string& out_dir, int64_t step, const std::vector<CkptFile>& files,
                                 int64_t keep);

std::string checkpoint_dir_name(int64_t step);  // "ckpt-00000123"
// Checkpoints in out_dir (complete directories named ckpt-*), oldest first.
std::vector<std::string> list_checkpoints(const std::string& out_dir);
// A checkpoint directory, or the newest checkpoint of an output directory.
std::string resolve_checkpoint(const std::string& path);

// Verifies MANIFEST.sha256 and returns every listed file's bytes. Throws a one-line
// preflight::Error naming the file: missing, truncated, checksum mismatch.
std::map<std::string, std::string> read_verified_checkpoint(const std::string& dir);

}  // namespace preflight::train
