// Checkpoint directories (docs/TRAINING.md §3): OUT/ckpt-00000123/ holding
//   model.safetensors      fp32 weights, Hugging Face names (hf_names.hpp), router biases included
//   optimizer.safetensors  optimizer state (optimizer.hpp names), metadata: step count
//   trainer.json           step, tokens, data-loader position, RNG, spike-detector state,
//                          training options, the model config and the sha256 of both
//                          .safetensors files (what ties the files of one checkpoint together)
//   MANIFEST.sha256        "# preflight checkpoint step S, files sha256 H", then
//                          "<sha256>  <file>" per file (`sha256sum -c MANIFEST.sha256` verifies;
//                          it skips the '#' line). H = sha256 of the file lines, in name order,
//                          as written ("<lowercase hex>  <name>\n" each).
// Writing is atomic at the directory level: every file is written and fsync'ed inside
// OUT/.tmp-ckpt-00000123/, the manifest last, the temporary directory fsync'ed, renamed to
// its final name, and OUT fsync'ed. A crash at any point leaves either the old set of
// checkpoints or the old set plus the complete new one; a stale .tmp-* is removed by the next
// writer. Then all but the newest `keep` checkpoints are deleted.
// Reading verifies the manifest first: a missing, truncated or corrupted file is refused with
// one line naming it; nothing is loaded from an unverified checkpoint. Manifest lines are read
// as sha256sum writes them: lower- or upper-case hex, "  " (text) or " *" (binary) before the
// name. The '#' header is optional (a manifest regenerated with sha256sum has none); when
// present its step and digest must match. CRLF line endings are refused with a message saying so.
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

// Creates an output directory (and its parents) or checks that an existing one is a
// directory; one line naming `flag` and the path otherwise (a regular file, /proc/x, no permission).
void ensure_output_dir(const std::string& dir, const std::string& flag);

std::string checkpoint_dir_name(int64_t step);  // "ckpt-00000123"
// The step in a checkpoint directory's name ("…/ckpt-00000123" → 123); −1 when not one.
int64_t checkpoint_step(const std::string& dir);
// Checkpoints in out_dir (complete directories named ckpt-*), oldest first.
std::vector<std::string> list_checkpoints(const std::string& out_dir);
// A checkpoint directory, or the newest checkpoint of an output directory.
std::string resolve_checkpoint(const std::string& path);

struct Manifest {
  std::vector<std::pair<std::string, std::string>> files;  // (name, lowercase sha256 hex), as listed
  int64_t step = -1;                                       // from the header; −1 when there is none
  std::string files_sha256;                                // from the header; "" when there is none
};
// The text of a MANIFEST.sha256; `origin` names it in errors.
Manifest parse_manifest(const std::string& text, const std::string& origin);
// The digest of the header: sha256 over "<sha>  <name>\n" of every file, in name order.
std::string manifest_files_digest(std::vector<std::pair<std::string, std::string>> files);

struct VerifiedCheckpoint {
  std::map<std::string, std::string> files;  // name → bytes, every one matching the manifest
  int64_t manifest_step = -1;                // the header's step (−1: no header)
};
// Verifies MANIFEST.sha256 and returns every listed file's bytes. Throws a one-line
// preflight::Error naming the file: missing, truncated, checksum mismatch.
VerifiedCheckpoint read_verified_checkpoint(const std::string& dir);

}  // namespace preflight::train
