// Finds and loads libpreflight_cuda_cli.so (cli/cuda_cli_abi.hpp) on demand. The library
// lives next to the `preflight` binary; its directory is taken from /proc/self/exe, so the
// binary works from any working directory and after being moved together with it.
#pragma once

#include <string>

namespace preflight::cli {

// Whether this build produced the CUDA library (PREFLIGHT_WITH_CUDA at configure time).
bool cuda_cli_built();
// Absolute path where the library is expected ("" when the binary's path is unknown).
std::string cuda_cli_library_path();
// dlopen()s the library (once) and returns the address of `symbol`. Throws preflight::Error
// with one line when the build has no CUDA path, the file is missing, it cannot be loaded
// (e.g. no libcudart on this machine), its ABI version differs, or the symbol is absent.
void* cuda_cli_symbol(const char* symbol);

}  // namespace preflight::cli
