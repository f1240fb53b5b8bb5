// Fuzz harness: token files (reference/train/data.cpp, "PFTOKENS" version 1), read from a
// file as `train --data PATH` does, then packed into batches by the loader.
//
// Input: one control byte, then the file. Every mutation of the body breaks the file's
// FNV-1a checksum, which would stop almost every input at the checksum check; when bit 0
// of the control byte is set the harness writes the correct checksum first (for files long
// enough to hold one), so the header counts, document starts and tokens behind it get
// fuzzed as well. Bits 1-2 pick the model vocabulary the stream is opened with.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.hpp"
#include "reference/train/data.hpp"

using namespace preflight;

namespace {
constexpr size_t kHeaderBytes = 48, kChecksumAt = 40;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((control & 1) != 0 && file.size() >= kHeaderBytes) {
    const uint64_t sum = train::fnv1a64(file.data() + kHeaderBytes, file.size() - kHeaderBytes);
    std::memcpy(file.data() + kChecksumAt, &sum, sizeof sum);
  }
  const int64_t vocab = std::vector<int64_t>{256, 512, 65536, 1 << 20}[(control >> 1) & 3];
  const std::string path = fuzz::scratch_dir() + "/tokens.tok";
  fuzz::write_bytes(path, file);
  fuzz::accept_or_refuse([&] {
    const train::TokenFile f = train::read_token_file(path);
    (void)f;
    const train::TokenStream s = train::TokenStream::from_file(path, vocab);
    (void)s.describe();
    // A few batches, wrapping round the file at least once for short files.
    train::LoaderState st;
    train::PackedBatch b;
    for (int i = 0; i < 4; ++i) {
      train::next_batch(b, st, s, 2, 8);
      // What the model is fed must be in its vocabulary (ids it would index embeddings with).
      for (size_t k = 0; k < b.tokens.size(); ++k) {
        if (b.tokens[k] < 0 || b.tokens[k] >= vocab)
          fuzz::finding("loader produced a token outside the vocabulary", std::to_string(b.tokens[k]));
        if (b.targets[k] != -100 && (b.targets[k] < 0 || b.targets[k] >= vocab))
          fuzz::finding("loader produced a target outside the vocabulary", std::to_string(b.targets[k]));
      }
    }
  });
  return 0;
}
