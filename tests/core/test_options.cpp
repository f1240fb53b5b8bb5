// cli/options.hpp: the one strict parser behind every numeric command-line flag.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cli/options.hpp"

namespace preflight {
namespace {

using cli::detail::parse_number;

template <typename T>
bool parses(const std::string& text, T lo, T hi, T* out = nullptr, bool allow_inf = false) {
  T v{};
  const std::string err = parse_number<T>(text, lo, hi, allow_inf, v);
  if (err.empty() && out) *out = v;
  return err.empty();
}

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

TEST(Options, IntegersAcceptExactlyTheDecimalValues) {
  int64_t v = 0;
  EXPECT_TRUE(parses<int64_t>("42", 0, 100, &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(parses<int64_t>("+42", 0, 100, &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(parses<int64_t>("-7", -10, 10, &v));
  EXPECT_EQ(v, -7);
  EXPECT_TRUE(parses<int64_t>("9223372036854775807", kI64Min, kI64Max, &v));
  EXPECT_EQ(v, kI64Max);
  EXPECT_TRUE(parses<int64_t>("-9223372036854775808", kI64Min, kI64Max, &v));
  EXPECT_EQ(v, kI64Min);
  uint64_t u = 0;
  EXPECT_TRUE(parses<uint64_t>("18446744073709551615", 0, kU64Max, &u));
  EXPECT_EQ(u, kU64Max);
}

TEST(Options, IntegerOverflowIsRefusedNotClamped) {
  // CLI11's own conversion turns these into INT64_MAX / 2^64-1 silently.
  EXPECT_FALSE(parses<int64_t>("9223372036854775808", kI64Min, kI64Max));
  EXPECT_FALSE(parses<int64_t>("-9223372036854775809", kI64Min, kI64Max));
  EXPECT_FALSE(parses<int64_t>("99999999999999999999", kI64Min, kI64Max));
  EXPECT_FALSE(parses<uint64_t>("18446744073709551616", 0, kU64Max));
  EXPECT_FALSE(parses<int32_t>("2147483648", 0, std::numeric_limits<int32_t>::max()));
}

TEST(Options, SignOnUnsignedAndDoubleSignsAreRefused) {
  EXPECT_FALSE(parses<uint64_t>("-1", 0, kU64Max));
  EXPECT_FALSE(parses<uint64_t>("-0", 0, kU64Max));
  EXPECT_FALSE(parses<uint64_t>("+-1", 0, kU64Max));
  EXPECT_FALSE(parses<int64_t>("+-1", -10, 10));
  EXPECT_FALSE(parses<int64_t>("--1", -10, 10));
  EXPECT_FALSE(parses<int64_t>("++1", -10, 10));
  EXPECT_FALSE(parses<int64_t>("+", -10, 10));
  EXPECT_FALSE(parses<int64_t>("-", -10, 10));
  EXPECT_FALSE(parses<double>("+-1", -10, 10));
  EXPECT_FALSE(parses<double>("--1", -10, 10));
}

TEST(Options, WhitespaceAndTrailingGarbageAreRefused) {
  for (const char* text : {"", " 5", "5 ", "\t5", "5\n", "5x", "5.0", "1e3", "0x10", "5,0", "five", "1_000"})
    EXPECT_FALSE(parses<int64_t>(text, 0, 10000)) << "'" << text << "'";
  for (const char* text : {"", " 5", "5 ", "\t5", "5\n", "5x", "0x10", "0x1p3", "1e", "1e+", ".", "5,0", "five"})
    EXPECT_FALSE(parses<double>(text, 0, 10000)) << "'" << text << "'";
}

TEST(Options, NanAndInfinity) {
  for (const char* text : {"nan", "NaN", "-nan", "+nan", "nan(1)"}) {
    EXPECT_FALSE(parses<double>(text, -1e300, 1e300)) << text;
    EXPECT_FALSE(parses<double>(text, -HUGE_VAL, HUGE_VAL, nullptr, /*allow_inf=*/true)) << text;
  }
  for (const char* text : {"inf", "-inf", "infinity", "1e400", "-1e400"})
    EXPECT_FALSE(parses<double>(text, -HUGE_VAL, HUGE_VAL)) << text;  // finite unless allowed
  double v = 0;
  EXPECT_TRUE(parses<double>("inf", 0.0, HUGE_VAL, &v, true));
  EXPECT_EQ(v, HUGE_VAL);
  // With inf allowed, an overflowing literal still is not a way to spell it.
  EXPECT_FALSE(parses<double>("1e400", 0.0, HUGE_VAL, nullptr, true));
  // Underflow is a value (0 or a subnormal), not an error.
  EXPECT_TRUE(parses<double>("1e-400", 0.0, 1.0, &v));
  EXPECT_EQ(v, 0.0);
}

TEST(Options, RangesAreInclusiveAndExact) {
  int64_t v = 0;
  EXPECT_TRUE(parses<int64_t>("1", 1, 1 << 30, &v));
  EXPECT_TRUE(parses<int64_t>("1073741824", 1, 1 << 30, &v));
  EXPECT_FALSE(parses<int64_t>("0", 1, 1 << 30));
  EXPECT_FALSE(parses<int64_t>("1073741825", 1, 1 << 30));
  double d = 0;
  EXPECT_TRUE(parses<double>("0.5", 0.5, 2.0, &d));
  EXPECT_EQ(d, 0.5);
  EXPECT_TRUE(parses<double>("2", 0.5, 2.0, &d));
  EXPECT_FALSE(parses<double>("0.49999999999999994", 0.5, 2.0));  // the double just below 0.5
  EXPECT_FALSE(parses<double>("2.0000000000000004", 0.5, 2.0));   // the double just above 2
  EXPECT_TRUE(parses<double>("-0", 0.0, 1.0, &d));                // -0 == 0
}

TEST(Options, MessageNamesTheRangeAndQuotesTheTextOnOneLine) {
  int64_t v = 0;
  std::string err = parse_number<int64_t>("12abc", 1, 1 << 30, false, v);
  EXPECT_EQ(err, "expected an integer in [1, 1073741824], got '12abc'");
  double d = 0;
  err = parse_number<double>("0.05", 0.1, 1.0, false, d);
  EXPECT_EQ(err, "expected a number in [0.1, 1], got '0.05'");  // shortest round-trip, not 0.10000000000000001
  err = parse_number<int64_t>("5\n6", 1, 10, false, v);
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_NE(err.find("5\\x0a6"), std::string::npos) << err;
  err = parse_number<int64_t>(std::string(1000, '9'), 1, 10, false, v);
  EXPECT_LT(err.size(), 200u) << "a pasted blob is cut";
}

// Through CLI11: a bad value is a ValidationError (main() prints one line, exit 1), and the
// bound variable keeps its default.
TEST(Options, AddNumberRaisesValidationErrorAndKeepsDefault) {
  CLI::App app{"t"};
  int64_t seq = 7;
  double lr = 0.25;
  cli::add_number<int64_t>(&app, "--seq-len", seq, "len", 1, int64_t{1} << 30);
  cli::add_number<double>(&app, "--lr", lr, "lr", 0.0, 1.0);
  EXPECT_THROW(app.parse(std::vector<std::string>{"1e20", "--seq-len"}), CLI::ValidationError);
  EXPECT_EQ(seq, 7);
  app.clear();
  EXPECT_THROW(app.parse(std::vector<std::string>{"nan", "--lr"}), CLI::ValidationError);
  EXPECT_EQ(lr, 0.25);
  app.clear();
  app.parse(std::vector<std::string>{"0.5", "--lr", "4096", "--seq-len"});  // CLI11 reads the vector backwards
  EXPECT_EQ(seq, 4096);
  EXPECT_EQ(lr, 0.5);
  EXPECT_EQ(app.get_option("--lr")->get_default_str(), "0.25");
}

}  // namespace
}  // namespace preflight
