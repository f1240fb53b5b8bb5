// The whole-model reference goldens (goldens/reference/tiny-<mode>.json, definition in
// golden_model.hpp): recomputed and compared with the stored file BITWISE (the text holds every
// value as its bit pattern, so equal text is equal bits). On a mismatch the first differing
// line is named; regenerate with scripts/regen_reference_goldens.sh after an intended change.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "reference/core/atomic_file.hpp"
#include "tests/reference/golden_model.hpp"

namespace preflight::ref::test {
namespace {

std::string first_difference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ea = !std::getline(a, la), eb = !std::getline(b, lb);
    if (ea && eb) return "identical";
    if (ea != eb || la != lb)
      return "line " + std::to_string(line) + ":\n  stored:     " + (ea ? "<end>" : la) + "\n  recomputed: " + (eb ? "<end>" : lb);
  }
}

class ReferenceGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceGolden, TinyForwardBackwardIsBitIdentical) {
  const std::string mode = GetParam();
  const std::string path = std::string(PREFLIGHT_SOURCE_DIR_PATH) + "/goldens/reference/tiny-" + mode + ".json";
  const std::string want = read_file(path), got = golden::model_golden_json(mode);
  EXPECT_TRUE(want == got) << path << " differs from the recomputed golden at " << first_difference(want, got)
                           << "\n(after an intended change: " << golden::kRegenerate << ")";
}

INSTANTIATE_TEST_SUITE_P(Modes, ReferenceGolden, ::testing::ValuesIn(golden::kModes),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace preflight::ref::test
