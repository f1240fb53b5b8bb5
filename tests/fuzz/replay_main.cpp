// Replays a fuzz harness (fuzz/<name>.cpp) over files, without libFuzzer: the regression
// inputs and seed corpus of every harness run in each ctest run (label `fuzz`).
//   fuzz_replay_<name> [--if-exists] DIR|FILE ...
// Each DIR's files (not recursive, dot-files skipped) are run in name order. A DIR that is
// missing is an error unless --if-exists precedes it. With no input at all the test fails:
// a replay that ran nothing would pass by construction. A finding aborts the process (the
// harness leaves non-preflight::Error exceptions uncaught); the input's name is printed
// first, by the terminate handler or the signal handler.
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

char g_current[4096] = "(none)";

void say_current() {
  const char* pre = "fuzz replay: failed on input ";
  if (::write(2, pre, std::strlen(pre)) < 0 || ::write(2, g_current, std::strlen(g_current)) < 0 || ::write(2, "\n", 1) < 0) {
  }
}

void on_signal(int sig) {
  say_current();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  bool optional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--if-exists") {
      optional = true;
      continue;
    }
    std::error_code ec;
    if (fs::is_regular_file(a, ec)) {
      inputs.push_back(a);
    } else if (fs::is_directory(a, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(a))
        if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (!optional) {
      std::fprintf(stderr, "fuzz replay: no such file or directory: %s\n", a.c_str());
      return 2;
    }
    optional = false;
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "fuzz replay: no inputs found\n");
    return 2;
  }
  std::set_terminate([] {
    say_current();
    // The exception's message, when it is a std::exception (what libFuzzer would show).
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "fuzz replay: uncaught exception: %s\n", x.what());
      } catch (...) {
        std::fprintf(stderr, "fuzz replay: uncaught exception of a type not derived from std::exception\n");
      }
    }
    std::abort();
  });
  for (int sig : {SIGSEGV, SIGFPE, SIGBUS, SIGILL, SIGABRT}) std::signal(sig, on_signal);
  for (const fs::path& p : inputs) {
    std::snprintf(g_current, sizeof g_current, "%s", p.c_str());
    std::ifstream in(p, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz replay: %zu inputs, no finding\n", inputs.size());
  return 0;
}
