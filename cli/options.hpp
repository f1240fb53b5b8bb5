// Range-checked command-line numbers, shared by every subcommand.
//
// CLI11 2.1 converts integers with strtoll/strtoull and does not look at errno, so
// "99999999999999999999" becomes INT64_MAX and "-1" becomes 2^64-1 for an unsigned
// option; doubles accept nan and inf. Every numeric flag therefore goes through one of
// these: the text is parsed strictly (whole string, no overflow, no sign on unsigned
// types, finite unless allowed) and checked against a range that names what the flag
// means. A bad value is a ValidationError, which main() reports as one line, exit 1.
#pragma once

#include <CLI/CLI.hpp>

#include <cerrno>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

namespace preflight::cli {

namespace detail {

// Shortest text that reads back as the same value ("0.1", not "0.10000000000000001").
template <typename T>
std::string number_text(T v) {
  char buf[64];
  const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, p) : std::string("?");
}

template <typename T>
std::string range_text(T lo, T hi) {
  return "[" + number_text(lo) + ", " + number_text(hi) + "]";
}

// The user's text, quoted for a one-line message: control bytes shown as \xNN, long text cut.
inline std::string quoted(const std::string& text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch < 0x20 || ch == 0x7f) {
      const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + (text.size() > 64 ? "...'" : "'");
}

// Parses `text` as T; on failure returns a message (what was expected), else "".
// Accepted: optional sign ('-' only for signed types), decimal digits; for floating types
// also a fraction and an exponent, and inf when allow_inf. Refused: empty text, white space
// anywhere, trailing characters, hexadecimal, nan, values that overflow T, values out of range.
template <typename T>
std::string parse_number(const std::string& text, T lo, T hi, bool allow_inf, T& out) {
  const std::string expected = std::string("expected ") + (std::is_integral_v<T> ? "an integer" : "a number") +
                               " in " + range_text(lo, hi) + ", got " + quoted(text);
  if (text.empty()) return expected;
  const char* first = text.data() + (text[0] == '+' ? 1 : 0);
  const char* last = text.data() + text.size();
  // One sign at most; from_chars takes '-' itself, strtod would also skip white space.
  if (first == last || *first == '+' || (text[0] == '+' && *first == '-') ||
      std::isspace(static_cast<unsigned char>(*first)))
    return expected;
  if constexpr (std::is_integral_v<T>) {
    if (std::is_unsigned_v<T> && *first == '-') return expected;
    T v{};
    const auto [p, ec] = std::from_chars(first, last, v);  // ec = result_out_of_range on overflow
    if (ec != std::errc() || p != last) return expected;
    if (v < lo || v > hi) return expected;
    out = v;
  } else {
    if (text.find_first_of("xX") != std::string::npos) return expected;  // no hexadecimal floats
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(first, &end);
    if (end != last || std::isnan(v)) return expected;
    if (std::isinf(v) && !allow_inf) return expected;
    // strtod overflow: HUGE_VAL with ERANGE (a literal "inf" leaves errno alone); underflow
    // (ERANGE with a tiny result) is a value.
    if (errno == ERANGE && std::fabs(v) > 1) return expected;
    if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi))) return expected;
    out = static_cast<T>(v);
  }
  return "";
}

}  // namespace detail

// Adds `--name` bound to `var`, accepting only values in [lo, hi].
template <typename T>
CLI::Option* add_number(CLI::App* cmd, const std::string& name, T& var, const std::string& description, T lo, T hi,
                        bool allow_inf = false) {
  static_assert(std::is_arithmetic_v<T>);
  CLI::Option* opt = cmd->add_option(
      name,
      [&var, name, lo, hi, allow_inf](const CLI::results_t& res) {
        T v{};
        const std::string err = detail::parse_number<T>(res.back(), lo, hi, allow_inf, v);
        if (!err.empty()) throw CLI::ValidationError(name, err);
        var = v;
        return true;
      },
      description);
  opt->type_name(std::is_integral_v<T> ? "INT" : "FLOAT");
  opt->default_str(detail::number_text(var));
  return opt;
}

}  // namespace preflight::cli
