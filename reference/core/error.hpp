// The one error family of preflight. Library code throws preflight::Error with a
// message that names the field, file or expression and the values involved; the CLI
// catches it and prints that message as one line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace preflight {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
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
