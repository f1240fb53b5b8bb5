// The safetensors format (Hugging Face): u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32"|"BF16", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {string: string}}, padded with spaces to a multiple of 8, then the raw
// little-endian data; offsets are relative to the data start, contiguous, in file order.
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
// Parses and validates (header length, JSON, offsets within the file: "truncated" otherwise).
StFile read_safetensors(const std::string& path, std::string blob);

}  // namespace preflight::train
