// The one-line contract of preflight::Error (reference/core/error.hpp), which every parser
// relies on when it quotes user input: the fuzz harnesses (fuzz/) treat a message with a
// line break as a finding, and found JSON keys holding one in layout, hardware and fault
// files (regressions in fuzz/regressions/{layout,hardware,faults}/crash-*).
#include <gtest/gtest.h>

#include <string>

#include "reference/core/error.hpp"

namespace preflight {
namespace {

std::string message_of(const std::string& text) {
  try {
    fail("unknown field '", text, "'");
  } catch (const Error& e) {
    return e.what();
  }
  return "(not thrown)";
}

TEST(ErrorMessage, ControlCharactersAreEscapedSoTheMessageIsOneLine) {
  EXPECT_EQ(message_of("a\nb"), "unknown field 'a\\nb'");
  EXPECT_EQ(message_of("a\r\nb"), "unknown field 'a\\r\\nb'");
  EXPECT_EQ(message_of("tab\there"), "unknown field 'tab\\there'");
  EXPECT_EQ(message_of(std::string("nul\0x", 5)), "unknown field 'nul\\x00x'");
  EXPECT_EQ(message_of("\x1b[31mred\x7f"), "unknown field '\\x1b[31mred\\x7f'");
}

TEST(ErrorMessage, PrintableTextAndUtf8AreUnchanged) {
  EXPECT_EQ(message_of("hidden_size"), "unknown field 'hidden_size'");
  EXPECT_EQ(message_of("λ ≤ 2 × 10⁻³"), "unknown field 'λ ≤ 2 × 10⁻³'");  // bytes ≥ 0x80 pass through
}

}  // namespace
}  // namespace preflight
