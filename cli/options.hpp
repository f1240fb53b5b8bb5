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
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

namespace preflight::cli {

namespace detail {

template <typename T>
std::string range_text(T lo, T hi) {
  std::ostringstream s;
  s.precision(17);
  s << "[" << lo << ", " << hi << "]";
  return s.str();
}

// Parses `text` as T; on failure returns a message (what was expected), else "".
template <typename T>
std::string parse_number(const std::string& text, T lo, T hi, bool allow_inf, T& out) {
  const std::string expected = std::string("expected ") + (std::is_integral_v<T> ? "an integer" : "a number") +
                               " in " + range_text(lo, hi) + ", got '" + text + "'";
  if (text.empty()) return expected;
  if constexpr (std::is_integral_v<T>) {
    if (std::is_unsigned_v<T> && text[0] == '-') return expected;
    const char* first = text.data() + (text[0] == '+' ? 1 : 0);
    const char* last = text.data() + text.size();
    T v{};
    const auto [p, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || p != last) return expected;
    if (v < lo || v > hi) return expected;
    out = v;
  } else {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || std::isnan(v)) return expected;
    if (std::isinf(v) && !allow_inf) return expected;
    if (!std::isinf(v) && errno == ERANGE && std::fabs(v) > 1) return expected;  // overflow, not underflow
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
  std::ostringstream d;
  d.precision(17);
  d << var;
  opt->default_str(d.str());
  return opt;
}

}  // namespace preflight::cli
