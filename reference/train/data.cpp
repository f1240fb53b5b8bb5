#include "reference/train/data.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/numerics/philox.hpp"

namespace preflight::train {
namespace {

constexpr char kMagic[8] = {'P', 'F', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 48;
constexpr int64_t kSynthDoc = 64;
constexpr uint64_t kSynthStream = 0x5EED;

template <typename T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // the project targets little-endian hosts only
  s.append(b, sizeof(T));
}
template <typename T>
T get(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void write_token_file(const std::string& path, const TokenFile& f) {
  PREFLIGHT_CHECK(f.token_bytes == 2 || f.token_bytes == 4, "token_bytes ", f.token_bytes);
  PREFLIGHT_CHECK(!f.doc_starts.empty() && f.doc_starts[0] == 0, "documents must start at token 0");
  std::string body;
  for (uint64_t d : f.doc_starts) put<uint64_t>(body, d);
  for (uint32_t t : f.tokens) {
    PREFLIGHT_CHECK(t < f.vocab_size, "token ", t, " >= vocab ", f.vocab_size);
    if (f.token_bytes == 2) put<uint16_t>(body, static_cast<uint16_t>(t));
    else put<uint32_t>(body, t);
  }
  std::string s(kMagic, 8);
  put<uint32_t>(s, kVersion);
  put<uint32_t>(s, f.vocab_size);
  put<uint32_t>(s, f.token_bytes);
  put<uint32_t>(s, 0);
  put<uint64_t>(s, f.doc_starts.size());
  put<uint64_t>(s, f.tokens.size());
  put<uint64_t>(s, fnv1a64(body.data(), body.size()));
  write_file_atomic(path, s + body);
}

TokenFile read_token_file(const std::string& path) {
  const std::string s = read_file(path);
  if (s.size() < kHeader || std::memcmp(s.data(), kMagic, 8) != 0)
    fail("token file '", path, "': not a preflight token file (bad magic or shorter than the header)");
  if (get<uint32_t>(s, 8) != kVersion) fail("token file '", path, "': version ", get<uint32_t>(s, 8), ", expected 1");
  TokenFile f;
  f.vocab_size = get<uint32_t>(s, 12);
  f.token_bytes = get<uint32_t>(s, 16);
  const uint64_t n_docs = get<uint64_t>(s, 24), n_tok = get<uint64_t>(s, 32);
  if (f.token_bytes != 2 && f.token_bytes != 4) fail("token file '", path, "': token_bytes ", f.token_bytes);
  // The header's counts are untrusted: compare them with the body size by division, so a
  // huge n_docs or n_tokens cannot overflow the size computation.
  const uint64_t body = s.size() - kHeader;
  const bool fits = n_docs <= body / 8 && n_tok <= (body - n_docs * 8) / f.token_bytes;
  if (!fits || n_docs * 8 + n_tok * f.token_bytes != body)
    fail("token file '", path, "': truncated or padded (", s.size(), " bytes; the header says ", n_docs, " documents and ",
         n_tok, " tokens of ", f.token_bytes, " bytes)");
  if (n_tok > 0 && n_docs == 0) fail("token file '", path, "': ", n_tok, " tokens but no document start");
  if (fnv1a64(s.data() + kHeader, s.size() - kHeader) != get<uint64_t>(s, 40))
    fail("token file '", path, "': checksum mismatch (corrupted)");
  f.checksum = get<uint64_t>(s, 40);
  f.doc_starts.resize(n_docs);
  for (uint64_t d = 0; d < n_docs; ++d) f.doc_starts[d] = get<uint64_t>(s, kHeader + 8 * d);
  for (uint64_t d = 0; d < n_docs; ++d)
    if ((d == 0 && f.doc_starts[0] != 0) || (d > 0 && f.doc_starts[d] <= f.doc_starts[d - 1]) || f.doc_starts[d] >= n_tok)
      fail("token file '", path, "': document start ", d, " out of order");
  f.tokens.resize(n_tok);
  const size_t base = kHeader + n_docs * 8;
  for (uint64_t i = 0; i < n_tok; ++i) {
    f.tokens[i] = f.token_bytes == 2 ? get<uint16_t>(s, base + 2 * i) : get<uint32_t>(s, base + 4 * i);
    if (f.tokens[i] >= f.vocab_size) fail("token file '", path, "': token ", i, " = ", f.tokens[i], " >= vocab ", f.vocab_size);
  }
  return f;
}

std::vector<uint32_t> encode_bytes(const std::string& text) {
  std::vector<uint32_t> t(text.size());
  for (size_t i = 0; i < text.size(); ++i) t[i] = static_cast<unsigned char>(text[i]);
  return t;
}
std::string decode_bytes(const std::vector<uint32_t>& tokens) {
  std::string s;
  for (uint32_t t : tokens) s.push_back(t < 256 ? static_cast<char>(t) : '?');
  return s;
}

TokenStream TokenStream::synthetic(uint64_t seed, int64_t vocab) {
  TokenStream s;
  s.seed_ = seed, s.vocab_ = vocab;
  return s;
}

TokenStream TokenStream::from_file(const std::string& path, int64_t vocab) {
  TokenStream s;
  s.vocab_ = vocab, s.path_ = path;
  s.file_ = read_token_file(path);
  if (static_cast<int64_t>(s.file_.vocab_size) > vocab)
    fail("token file '", path, "': vocab_size ", s.file_.vocab_size, " > the model's vocab_size ", vocab);
  if (s.file_.tokens.size() < 2) fail("token file '", path, "': fewer than 2 tokens");
  return s;
}

std::string TokenStream::describe() const {
  if (infinite()) return "synthetic(seed " + std::to_string(seed_) + ")";
  return path_ + " (" + std::to_string(file_.tokens.size()) + " tokens, " + std::to_string(file_.doc_starts.size()) +
         " documents)";
}

std::string TokenStream::fingerprint() const {
  if (infinite()) return "synthetic";
  char b[32];
  std::snprintf(b, sizeof b, "fnv1a64:%016llx", static_cast<unsigned long long>(file_.checksum));
  return b;
}

void TokenStream::read(int64_t begin, int64_t n, int32_t* tokens, int32_t* doc) const {
  if (infinite()) {
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t p = static_cast<uint64_t>(begin + i), d = p / kSynthDoc, j = p % kSynthDoc;
      const uint64_t a = num::philox_block(seed_, kSynthStream, d).w[0] % static_cast<uint64_t>(vocab_);
      const uint64_t c = 1 + num::philox_block(seed_, kSynthStream, d).w[1] % 7;
      tokens[i] = static_cast<int32_t>((a + c * j) % static_cast<uint64_t>(vocab_));
      doc[i] = static_cast<int32_t>(d);
    }
    return;
  }
  PREFLIGHT_CHECK(begin >= 0 && begin + n <= size(), "read [", begin, ", ", begin + n, ") of ", size());
  const auto& ds = file_.doc_starts;
  // document of token `begin`: the last start <= begin
  int64_t d = std::upper_bound(ds.begin(), ds.end(), static_cast<uint64_t>(begin)) - ds.begin() - 1;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t p = static_cast<uint64_t>(begin + i);
    while (d + 1 < static_cast<int64_t>(ds.size()) && ds[d + 1] <= p) ++d;
    tokens[i] = static_cast<int32_t>(file_.tokens[p]);
    doc[i] = static_cast<int32_t>(d);
  }
}

void next_batch(PackedBatch& out, LoaderState& st, const TokenStream& s, int64_t B, int64_t T) {
  out.B = B, out.T = T;
  out.tokens.assign(B * T, 0), out.targets.assign(B * T, 0), out.doc.assign(B * T, 0);
  if (!s.infinite() && s.size() < T + 1) fail("token stream ", s.describe(), " is shorter than seq_len + 1 = ", T + 1);
  std::vector<int32_t> tok(T + 1), doc(T + 1);
  for (int64_t r = 0; r < B; ++r) {
    if (!s.infinite() && st.position + T + 1 > s.size()) st.position = 0, st.epoch += 1;
    s.read(st.position, T + 1, tok.data(), doc.data());
    // Document ids are made local to the row (0, 1, ...) so they stay small and non-decreasing.
    const int32_t d0 = doc[0];
    for (int64_t i = 0; i < T; ++i) {
      out.tokens[r * T + i] = tok[i];
      out.doc[r * T + i] = doc[i] - d0;
      out.targets[r * T + i] = doc[i + 1] == doc[i] ? tok[i + 1] : -100;
    }
    st.position += T;
  }
}

}  // namespace preflight::train
