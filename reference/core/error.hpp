// The one error family of preflight. Library code throws preflight::Error with a
// message that names the field, file or expression and the values involved; the CLI
// catches it and prints that message as one line. Messages quote user input (JSON keys,
// file names, flag values), so control characters are escaped here, once: "\n" becomes
// the two characters '\' 'n', other bytes below 0x20 and 0x7f become "\xNN". Whatever a
// file contains, the message stays one printable line (fuzz/: a layout key holding a
// line break split the CLI's error line).
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace preflight {

namespace detail {
// Messages past this length are cut: a key or value of a megabyte must not become a
// megabyte-long error line.
inline constexpr std::size_t kMaxMessageBytes = 2000;

inline std::string one_line(const std::string& message) {
  std::string out;
  out.reserve(message.size() < kMaxMessageBytes ? message.size() : kMaxMessageBytes);
  for (const char ch : message) {
    if (out.size() >= kMaxMessageBytes) {
      out += "... (message cut)";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}
}  // namespace detail

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(detail::one_line(message)) {}
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

// fail("field 'n_group' = ", 7, ": expected a divisor of n_routed_experts (256)")
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace preflight

// Precondition check that stays on in release builds; the message carries the
// expression text, the location and whatever detail the caller adds.
#define PREFLIGHT_CHECK(cond, ...)                                                    \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      ::preflight::fail("check failed: " #cond " (" __FILE__ ":", __LINE__, ") ",    \
                        ##__VA_ARGS__);                                               \
    }                                                                                 \
  } while (0)
