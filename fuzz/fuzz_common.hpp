// Shared by every libFuzzer harness in fuzz/ (and their replay in tests/fuzz/).
//
// The contract a harness checks, the same one the CLI promises for bad input: a parser
// either accepts its input or throws preflight::Error with a single non-empty line (the CLI
// prints it and exits 1). Any other exception would reach the CLI's "internal error" (rc 3)
// and is left uncaught here, so the process aborts at the throw with the thrower's stack;
// a crash, a sanitizer report, a hang (libFuzzer -timeout) or an allocation beyond the
// limit (-rss_limit_mb / -malloc_limit_mb) is a finding as well.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "reference/core/error.hpp"

namespace preflight::fuzz {

// Prints what was violated and aborts: libFuzzer reports it as a crash and saves the input.
[[noreturn]] inline void finding(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "preflight fuzz finding: %.*s\n  %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::fflush(stderr);
  std::abort();
}

// An error message must be what the CLI can print as one line: non-empty, no line break.
// PREFLIGHT_FUZZ_MULTILINE_OK=1 turns the line-break check off (to look past such findings).
inline void check_error_message(const char* message) {
  static const bool multiline_ok = [] {
    const char* v = std::getenv("PREFLIGHT_FUZZ_MULTILINE_OK");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  const std::string_view m(message);
  if (m.empty()) finding("preflight::Error with an empty message", "");
  if (!multiline_ok && m.find_first_of("\n\r") != std::string_view::npos)
    finding("preflight::Error message is not one line", m);
}

// Runs `body`; preflight::Error is the expected refusal, everything else propagates.
template <typename Body>
void accept_or_refuse(Body&& body) {
  try {
    body();
  } catch (const preflight::Error& e) {
    check_error_message(e.what());
  }
}

// A private directory of this process, removed at exit: under /dev/shm when it exists (the
// files a harness writes per input then never touch a disk), else $TMPDIR or /tmp.
inline const std::string& scratch_dir() {
  // Never destroyed: the atexit hook below runs after static destructors may have.
  static const std::string* const dir = [] {
    std::string base = "/tmp";
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec)) {
      base = "/dev/shm";
    } else if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
      base = t;
    }
    std::string templ = base + "/preflight-fuzz-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) finding("cannot create a scratch directory under", base);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return new std::string(buf.data());
  }();
  return *dir;
}

// Writes `bytes` to `path` (plain stdio: the harness's own files need no atomicity).
inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) finding("cannot write scratch file", path);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) finding("short write", path);
  if (std::fclose(f) != 0) finding("cannot close scratch file", path);
}

// The input as a file named `name` in the scratch directory; returns its path.
inline std::string input_as_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  return path;
}

// Splits `s` at every occurrence of `sep` (n separators give n + 1 pieces).
inline std::vector<std::string_view> split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (true) {
    const size_t next = s.find(sep, at);
    if (next == std::string_view::npos) {
      out.push_back(s.substr(at));
      return out;
    }
    out.push_back(s.substr(at, next - at));
    at = next + sep.size();
  }
}

}  // namespace preflight::fuzz
