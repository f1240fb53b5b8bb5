// Training data: token streams, the binary token file, the byte-level tokenizer and the
// loader that packs a stream into (B,T) batches (docs/TRAINING.md §1).
// Legend: B = sequences per micro-batch, T = tokens per sequence, V = vocabulary.
//
// Token file (".tok", little-endian):
//   offset 0   char[8]  magic "PFTOKENS"
//          8   u32      version (1)
//          12  u32      vocab_size
//          16  u32      token_bytes (2: uint16 tokens, 4: uint32 tokens)
//          20  u32      reserved (0)
//          24  u64      n_docs
//          32  u64      n_tokens
//          40  u64      checksum: FNV-1a 64 over every byte after the header
//          48  u64[n_docs]  first token of each document (ascending, the first is 0)
//          ..  tokens (n_tokens × token_bytes)
// A truncated, corrupted or inconsistent file is refused naming the path and the reason.
//
// Packing (both streams): a stream is one sequence of tokens with a document id per token.
// Position p (the loader state, in tokens) gives sequence rows in order: row r takes
//   tokens[p .. p+T−1], targets[i] = tokens[p+i+1] (or −100 when token p+i+1 starts a new
//   document: no prediction across a document end), doc[i] = document id of token p+i,
// then p ← p + T. A file stream wraps to p = 0 (epoch + 1) when fewer than T + 1 tokens remain.
// Attention stays inside a document (the model's doc ids); RoPE positions restart per document.
//
// Synthetic stream (seed s): documents of 64 tokens; document d has start a = u32(s, d, 0) mod V
// and stride c = 1 + u32(s, d, 1) mod 7 (Philox words, stream 0x5EED); token j of it is
// (a + c·j) mod V. Learnable in context (the stride is visible after two tokens), infinite,
// and token i is a pure function of (s, i), so the position alone is the state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace preflight::train {

struct TokenFile {
  uint32_t vocab_size = 0;
  uint32_t token_bytes = 2;
  std::vector<uint64_t> doc_starts;  // (n_docs)
  std::vector<uint32_t> tokens;      // (n_tokens)
  uint64_t checksum = 0;             // read_token_file: the header's FNV-1a 64 (verified)
};
void write_token_file(const std::string& path, const TokenFile& f);  // atomic
TokenFile read_token_file(const std::string& path);

// Byte-level tokenizer: token = byte value (0..255); vocab 256 (+ specials above, unused).
std::vector<uint32_t> encode_bytes(const std::string& text);
std::string decode_bytes(const std::vector<uint32_t>& tokens);

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);

// A token source: synthetic (path empty) or a token file.
class TokenStream {
 public:
  static TokenStream synthetic(uint64_t seed, int64_t vocab);
  static TokenStream from_file(const std::string& path, int64_t vocab);
  // token i and its document id (file: i < size())
  void read(int64_t begin, int64_t n, int32_t* tokens, int32_t* doc) const;
  bool infinite() const { return file_.tokens.empty(); }
  int64_t size() const { return static_cast<int64_t>(file_.tokens.size()); }
  std::string describe() const;
  // What identifies the tokens (not the path): "synthetic" or "fnv1a64:<16 hex>" of the body.
  // A checkpoint records it, so a resumed run refuses a data file that changed.
  std::string fingerprint() const;

 private:
  uint64_t seed_ = 0;
  int64_t vocab_ = 0;
  std::string path_;
  TokenFile file_;
};

struct LoaderState {
  int64_t position = 0;  // next token of the stream
  int64_t epoch = 0;     // file wraps so far
};

// One packed micro-batch (B,T), owned.
struct PackedBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets, doc;  // (B,T)
};

// Fills `out` with the next B rows and advances `st` (see the header comment).
void next_batch(PackedBatch& out, LoaderState& st, const TokenStream& s, int64_t B, int64_t T);

}  // namespace preflight::train
