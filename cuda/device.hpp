// Device discovery and error checking for the CUDA path. Host-only header: callable
// from plain C++ (tests, CLI) without nvcc.
#pragma once

#include <string>

namespace preflight::cuda {

// Number of CUDA devices this process can use; 0 when there is no driver or no GPU
// (never throws: tests use it to GTEST_SKIP cleanly).
int visible_device_count();

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" for device 0, or "" when none.
std::string device_description();

}  // namespace preflight::cuda
