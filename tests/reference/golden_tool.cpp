// Writes goldens/reference/tiny-<mode>.json (golden_model.hpp) atomically.
//   usage: reference_goldens <dir>      (scripts/regen_reference_goldens.sh)
#include <cstdio>
#include <string>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "tests/reference/golden_model.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <goldens/reference directory>\n", argv[0]);
    return 2;
  }
  try {
    for (const char* mode : preflight::ref::golden::kModes) {
      const std::string path = std::string(argv[1]) + "/tiny-" + mode + ".json";
      const std::string text = preflight::ref::golden::model_golden_json(mode);
      std::string old;
      try {
        old = preflight::read_file(path);
      } catch (const preflight::Error&) {
      }
      preflight::write_file_atomic(path, text);
      std::printf("%s: %s\n", path.c_str(), old.empty() ? "written" : (old == text ? "unchanged" : "CHANGED"));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
