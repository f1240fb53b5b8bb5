// The C interface between the `preflight` binary and libpreflight_cuda_cli.so, the library
// that holds every command's CUDA code (today: `parity`). The binary loads it with dlopen
// only when such a command runs (cli/cuda_loader.cpp), so it never links CUDA itself.
// Plain C types only; no exception crosses the boundary. Bump the ABI version whenever a
// struct or signature here changes: the loader refuses a library of another version.
#pragma once

#include <cstddef>

#define PREFLIGHT_CUDA_CLI_ABI_VERSION 1
#define PREFLIGHT_CUDA_CLI_LIBRARY_NAME "libpreflight_cuda_cli.so"
#define PREFLIGHT_CUDA_CLI_EXPORT __attribute__((visibility("default")))

// Return values of the entry points besides 0 (success) and 1 (the check ran and failed).
#define PREFLIGHT_CUDA_CLI_ERROR 2           // bad input or no GPU: `error` holds one line
#define PREFLIGHT_CUDA_CLI_INTERNAL_ERROR 3  // a defect: `error` holds one line

extern "C" {

struct PreflightParityArgs {
  const char* layers;  // "all" or a comma-separated list
  const char* mode;    // "deterministic" or "fast" (checked by the caller)
  const char* config;  // "tiny" or "small" (checked by the caller)
  int json;            // non-zero: one JSON document on stdout instead of the table
};

// Each returns 0 / 1 / PREFLIGHT_CUDA_CLI_ERROR / PREFLIGHT_CUDA_CLI_INTERNAL_ERROR and on
// the last two writes a NUL-terminated line into error[0 .. error_size).
typedef int (*PreflightCudaCliParityFn)(const PreflightParityArgs* args, char* error, std::size_t error_size);
typedef int (*PreflightCudaCliAbiVersionFn)();
}
