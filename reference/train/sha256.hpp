// SHA-256 (FIPS 180-4), for checkpoint manifests that `sha256sum -c` can verify.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace preflight::train {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object is spent afterwards

 private:
  void block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace preflight::train
