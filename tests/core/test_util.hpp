// Helpers shared by the core tests.
#pragma once

#include <cstdlib>
#include <string>

#include "reference/core/atomic_file.hpp"

namespace preflight::test {

inline std::string source_dir() {
  const char* dir = std::getenv("PREFLIGHT_SOURCE_DIR");
  return dir ? dir : ".";
}

inline std::string data_path(const std::string& name) { return source_dir() + "/tests/data/" + name; }

}  // namespace preflight::test
