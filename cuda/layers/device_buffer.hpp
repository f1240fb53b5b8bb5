// RAII device allocation for the host wrappers of the CUDA path. Host-only header (plain C++
// against the CUDA runtime API): no nvcc needed to include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "cuda/check.cuh"

namespace preflight::cuda {

// n elements of T on device 0, zero-filled on construction; move-only; freed on destruction.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::int64_t n) : n_(n) {
    if (n_ > 0) {
      PREFLIGHT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), bytes()));
      PREFLIGHT_CUDA_CHECK(cudaMemset(p_, 0, bytes()));
    }
  }
  // A device copy of host[0..n) (an empty buffer when host is null).
  DeviceBuffer(const T* host, std::int64_t n) : DeviceBuffer(host ? n : 0) {
    if (host && n_ > 0) PREFLIGHT_CUDA_CHECK(cudaMemcpy(p_, host, bytes(), cudaMemcpyHostToDevice));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.data(), std::int64_t(host.size())) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  T* get() const { return p_; }  // null when empty
  std::int64_t size() const { return n_; }
  std::size_t bytes() const { return std::size_t(n_) * sizeof(T); }

  // host[0..size()) = this (waits for the device: cudaMemcpy synchronises).
  void download(T* host) const {
    if (host && n_ > 0) PREFLIGHT_CUDA_CHECK(cudaMemcpy(host, p_, bytes(), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> h(std::size_t(n_ > 0 ? n_ : 0));
    download(h.data());
    return h;
  }

 private:
  void release() noexcept {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::int64_t n_ = 0;
};

}  // namespace preflight::cuda
