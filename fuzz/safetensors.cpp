// Fuzz harness: safetensors files (reference/train/safetensors.cpp), the in-memory parser
// every checkpoint load goes through. read_safetensors promises "offsets within the file";
// the loaders then copy each tensor's bytes from blob + begin, so an accepted file must
// have, for every tensor, header end <= begin <= end <= file size, and the harness reads
// each tensor's bytes (ASan sees a read past the blob when a bound is wrong).
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "fuzz/fuzz_common.hpp"
#include "reference/train/safetensors.hpp"

using namespace preflight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string blob(reinterpret_cast<const char*>(data), size);
  fuzz::accept_or_refuse([&] {
    const train::StFile f = train::read_safetensors("fuzz.safetensors", std::move(blob));
    uint64_t header_bytes = 0;
    std::memcpy(&header_bytes, f.blob.data(), 8);  // read_safetensors refuses files under 8 bytes
    const int64_t data_start = 8 + static_cast<int64_t>(header_bytes);
    const int64_t file_bytes = static_cast<int64_t>(f.blob.size());
    unsigned checksum = 0;
    for (const auto& [name, e] : f.tensors) {
      if (!(data_start <= e.begin && e.begin <= e.end && e.end <= file_bytes))
        fuzz::finding("accepted tensor outside the data section",
                      "'" + name + "' [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ") of a " +
                          std::to_string(file_bytes) + "-byte file whose data starts at " + std::to_string(data_start));
      for (int64_t i = e.begin; i < e.end; ++i) checksum += static_cast<unsigned char>(f.blob[static_cast<size_t>(i)]);
      (void)f.at(name);
    }
    (void)checksum;
  });
  return 0;
}
