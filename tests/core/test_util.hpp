// Helpers shared by the core tests.
#pragma once

#include <cstdlib>
#include <string>

#include "reference/core/atomic_file.hpp"

namespace preflight::test {

inline std::string source_dir() { return PREFLIGHT_SOURCE_DIR_PATH; }

// The preflight binary built with these tests.
inline std::string preflight_binary() { return PREFLIGHT_BIN_PATH; }

inline std::string data_path(const std::string& name) { return source_dir() + "/tests/data/" + name; }

}  // namespace preflight::test
