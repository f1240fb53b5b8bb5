// The safetensors format (Hugging Face): u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32"|"BF16", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {string: string}}, padded with spaces to a multiple of 8, then the raw
// little-endian data; offsets are relative to the data start, contiguous, in file order.
// Reading treats the header as untrusted: a header that is not an object, a missing or
// mistyped field, an unknown dtype, negative offsets, offsets past the data, a span whose
// length is not numel × dtype size, overlapping spans, gaps or trailing bytes are each refused
// with one line naming the file and the tensor (never an out-of-bounds read).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace preflight::train {

struct StTensor {
  std::string name;
  std::string dtype;  // "F32" | "BF16"
  std::vector<int64_t> shape;
  const void* data = nullptr;  // writing: the bytes
  int64_t bytes = 0;
};

// The whole file as bytes (tensors in the given order).
std::string safetensors_bytes(const std::vector<StTensor>& tensors, const std::map<std::string, std::string>& meta);

struct StFile {
  std::string blob;  // the file
  std::map<std::string, std::string> meta;
  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    int64_t begin = 0, end = 0;  // absolute offsets into blob
  };
  std::map<std::string, Entry> tensors;
  const Entry& at(const std::string& name) const;  // throws naming the file and tensor
  std::string path;
};
// Bytes per element of a safetensors dtype ("F32" → 4); −1 for an unknown dtype.
int64_t safetensors_dtype_bytes(const std::string& dtype);
// Parses and validates (see the top; offsets past the data say "truncated").
StFile read_safetensors(const std::string& path, std::string blob);

}  // namespace preflight::train
