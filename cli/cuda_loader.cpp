#include "cli/cuda_loader.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <system_error>

#include "cli/cuda_cli_abi.hpp"
#include "reference/core/error.hpp"

namespace preflight::cli {

bool cuda_cli_built() {
#ifdef PREFLIGHT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::string cuda_cli_library_path() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (exe.parent_path() / PREFLIGHT_CUDA_CLI_LIBRARY_NAME).string();
}

namespace {

void* load_library() {
  static void* handle = nullptr;
  if (handle) return handle;
  if (!cuda_cli_built())
    fail("this preflight was built without the CUDA path (no nvcc at configure time); this command needs it");
  const std::string path = cuda_cli_library_path();
  if (path.empty()) fail("cannot find the CUDA path: /proc/self/exe is unreadable, so ", PREFLIGHT_CUDA_CLI_LIBRARY_NAME,
                         " cannot be located next to the binary");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail("the CUDA path ", path, " is missing: it is built next to the preflight binary (rebuild, or copy it along)");
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    fail("cannot load the CUDA path ", path, ": ", why ? why : "unknown dlopen error",
         " (are the CUDA runtime libraries installed and on the loader path?)");
  }
  auto version_fn = reinterpret_cast<PreflightCudaCliAbiVersionFn>(dlsym(h, "preflight_cuda_cli_abi_version"));
  const std::string version = version_fn ? std::to_string(version_fn()) : "unknown";
  if (version != std::to_string(PREFLIGHT_CUDA_CLI_ABI_VERSION)) {
    dlclose(h);
    fail("the CUDA path ", path, " belongs to another preflight build (interface version ", version, ", expected ",
         PREFLIGHT_CUDA_CLI_ABI_VERSION, "): rebuild both");
  }
  handle = h;
  return handle;
}

}  // namespace

void* cuda_cli_symbol(const char* symbol) {
  void* h = load_library();
  void* f = dlsym(h, symbol);
  if (!f) fail("the CUDA path ", cuda_cli_library_path(), " has no entry point '", symbol, "': rebuild it");
  return f;
}

}  // namespace preflight::cli
