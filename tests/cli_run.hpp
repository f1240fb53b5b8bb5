// Runs the preflight binary from a test, the way a user's shell does, with stdout and
// stderr kept apart. Shared by the CLI tests of every area (tests/*/test_*cli*.cpp).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "reference/core/atomic_file.hpp"

namespace preflight::test {

struct CliRun {
  int rc = -1;  // exit status; -1 when the process did not exit normally
  std::string out, err;
  double wall_s = 0;
};

// $PREFLIGHT_BIN (ctest sets it), else the binary these tests were built with.
inline std::string cli_binary() {
  const char* b = std::getenv("PREFLIGHT_BIN");
  return b != nullptr && *b != '\0' ? b : PREFLIGHT_BIN_PATH;
}

// `prefix` runs before the binary in the same shell (e.g. "cd DIR && ").
inline CliRun run_cli(const std::string& args, const std::string& prefix = "") {
  static std::atomic<int> calls{0};
  // Per process and call: other builds' tests may share the temp directory.
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("preflight-cli-" + std::to_string(::getpid()) + "-" + std::to_string(calls++)))
                               .string();
  const std::string out_path = base + ".out", err_path = base + ".err";
  const std::string cmd = prefix + cli_binary() + " " + args + " >" + out_path + " 2>" + err_path;
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::error_code ec;
  std::filesystem::remove(out_path, ec);
  std::filesystem::remove(err_path, ec);
  return r;
}

}  // namespace preflight::test
