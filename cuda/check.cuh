// CUDA error checks that throw preflight::Error with the call text and location.
#pragma once

#include <cuda_runtime.h>

#include "reference/core/error.hpp"

#define PREFLIGHT_CUDA_CHECK(call)                                                       \
  do {                                                                                   \
    const cudaError_t preflight_status_ = (call);                                        \
    if (preflight_status_ != cudaSuccess) {                                              \
      ::preflight::fail("CUDA call failed: " #call " (" __FILE__ ":", __LINE__, "): ",  \
                        cudaGetErrorString(preflight_status_));                          \
    }                                                                                    \
  } while (0)
