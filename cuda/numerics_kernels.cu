// Device side of the numerics parity harness (cuda/numerics_kernels.hpp). The kernels call the
// same reference/numerics headers as the CPU reference, compiled by nvcc with -fmad=false, so
// a bitwise comparison with the host checks the contract end to end: compiler flags, fma
// mapping, division/sqrt rounding and subnormal handling on the device.
#include "cuda/numerics_kernels.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/check.cuh"
#include "reference/numerics/numerics.hpp"

namespace preflight::cuda {
namespace {

namespace num = preflight::num;

static_assert(sizeof(num::fp8_e4m3) == 1 && alignof(num::fp8_e4m3) == 1, "fp8 codes are reinterpreted in place");

// One device allocation, freed on scope exit.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::int64_t n) : n_(n > 0 ? static_cast<std::size_t>(n) : 0) {
    if (n_ != 0) PREFLIGHT_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  DeviceArray(const T* host, std::int64_t n) : DeviceArray(n) {
    if (n_ != 0) PREFLIGHT_CUDA_CHECK(cudaMemcpy(ptr_, host, n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return ptr_; }
  void download(T* host) const {
    if (n_ != 0) PREFLIGHT_CUDA_CHECK(cudaMemcpy(host, ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  std::size_t n_;
  T* ptr_ = nullptr;
};

constexpr int kThreads = 256;

int grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

void finish_launch() {
  PREFLIGHT_CUDA_CHECK(cudaGetLastError());
  PREFLIGHT_CUDA_CHECK(cudaDeviceSynchronize());
}

__device__ float apply(NumericsFn fn, float x) {
  switch (fn) {
    case NumericsFn::exp: return num::exp(x);
    case NumericsFn::log: return num::log(x);
    case NumericsFn::log1p: return num::log1p(x);
    case NumericsFn::sigmoid: return num::sigmoid(x);
    case NumericsFn::silu: return num::silu(x);
    case NumericsFn::silu_grad: return num::silu_grad(x);
    case NumericsFn::tanh: return num::tanh(x);
    case NumericsFn::rsqrt: return num::rsqrt(x);
    case NumericsFn::gelu: return num::gelu(x);
    case NumericsFn::softplus: return num::softplus(x);
    case NumericsFn::sin_2pi: return num::sin_2pi(x);
    case NumericsFn::cos_2pi: return num::cos_2pi(x);
  }
  return num::canonical_nan();
}

__global__ void eval_kernel(NumericsFn fn, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    y[i] = apply(fn, x[i]);
  }
}

__global__ void fp8_kernel(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n, bool e4m3) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    ours[i] = e4m3 ? num::to_e4m3(x[i]).bits : num::to_e5m2(x[i]).bits;
    hardware[i] = __nv_cvt_float_to_fp8(x[i], __NV_SATFINITE, e4m3 ? __NV_E4M3 : __NV_E5M2);
  }
}

__global__ void bf16_kernel(const float* x, std::uint16_t* ours, std::uint16_t* hardware, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    ours[i] = num::to_bf16(x[i]).bits;
    const __nv_bfloat16_raw raw = __float2bfloat16_rn(x[i]);
    hardware[i] = raw.x;
  }
}

__global__ void decode_kernel(float* e4m3_ours, float* e4m3_hw, float* e5m2_ours, float* e5m2_hw) {
  const int c = threadIdx.x;
  const auto code = static_cast<std::uint8_t>(c);
  e4m3_ours[c] = num::to_float(num::fp8_e4m3{code});
  e5m2_ours[c] = num::to_float(num::fp8_e5m2{code});
  e4m3_hw[c] = __half2float(__half(__nv_cvt_fp8_to_halfraw(code, __NV_E4M3)));
  e5m2_hw[c] = __half2float(__half(__nv_cvt_fp8_to_halfraw(code, __NV_E5M2)));
}

__global__ void ue8m0_kernel(const float* x, std::uint8_t* encoded, float* decoded, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const num::ue8m0 e = num::to_ue8m0_ceil(x[i]);
    encoded[i] = e.bits;
    decoded[i] = num::to_float(e);
  }
}

__global__ void dot_kernel(const float* a, const float* b, float* out, std::int64_t rows, std::int64_t K) {
  const std::int64_t r = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (r < rows) out[r] = num::dot_k128(a + r * K, b + r * K, K);
}

__global__ void dot_fp8_kernel(const std::uint8_t* a, const float* sa, const std::uint8_t* b, const float* sb,
                               float* out, std::int64_t rows, std::int64_t K) {
  const std::int64_t r = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t kb = (K + num::kKBlock - 1) / num::kKBlock;
  out[r] = num::dot_fp8_k128(reinterpret_cast<const num::fp8_e4m3*>(a + r * K), sa + r * kb,
                             reinterpret_cast<const num::fp8_e4m3*>(b + r * K), sb + r * kb, K);
}

// One warp per row: the contract's lane order with real shuffles.
__global__ void row_reduce_kernel(const float* x, float* sum, float* max, float* sum_squares, std::int64_t rows,
                                  std::int64_t n) {
  const int lane = threadIdx.x % 32;
  const std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps exit together: rows are warp-uniform
  const float* xr = x + row * n;
  float s = -0.0f, m = -num::kInf, q = -0.0f;
  for (std::int64_t i = lane; i < n; i += 32) {
    s = s + xr[i];
    m = num::max_nan(m, xr[i]);
    q = num::fma(xr[i], xr[i], q);
  }
  for (int off = 16; off >= 1; off /= 2) {
    s = s + __shfl_xor_sync(0xFFFFFFFFu, s, off);
    m = num::max_nan(m, __shfl_xor_sync(0xFFFFFFFFu, m, off));
    q = q + __shfl_xor_sync(0xFFFFFFFFu, q, off);
  }
  if (lane == 0) {
    sum[row] = num::canonicalize(s);
    max[row] = m;
    sum_squares[row] = num::canonicalize(q);
  }
}

__global__ void topk_kernel(const float* v, int* idx, int rows, int n, int k) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) num::topk(v + static_cast<std::int64_t>(r) * n, n, k, idx + static_cast<std::int64_t>(r) * k);
}

__global__ void philox_kernel(std::uint64_t seed, std::uint64_t stream, std::uint64_t first_block, std::int64_t blocks,
                              std::uint32_t* words, float* uniforms, float* normals) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= blocks) return;
  const std::uint64_t block = first_block + static_cast<std::uint64_t>(i);
  const num::U32x4 w = num::philox_block(seed, stream, block);
  const num::F32x4 z = num::normal4(seed, stream, block);
  for (int j = 0; j < 4; ++j) {
    words[4 * i + j] = w.w[j];
    uniforms[4 * i + j] = num::uniform(seed, stream, 4 * block + static_cast<std::uint64_t>(j));
    normals[4 * i + j] = z.v[j];
  }
}

}  // namespace

const char* numerics_fn_name(NumericsFn fn) {
  switch (fn) {
    case NumericsFn::exp: return "exp";
    case NumericsFn::log: return "log";
    case NumericsFn::log1p: return "log1p";
    case NumericsFn::sigmoid: return "sigmoid";
    case NumericsFn::silu: return "silu";
    case NumericsFn::silu_grad: return "silu_grad";
    case NumericsFn::tanh: return "tanh";
    case NumericsFn::rsqrt: return "rsqrt";
    case NumericsFn::gelu: return "gelu";
    case NumericsFn::softplus: return "softplus";
    case NumericsFn::sin_2pi: return "sin_2pi";
    case NumericsFn::cos_2pi: return "cos_2pi";
  }
  return "?";
}

void eval_elementwise(NumericsFn fn, const float* x, float* y, std::int64_t n) {
  const DeviceArray<float> dx(x, n);
  DeviceArray<float> dy(n);
  eval_kernel<<<grid_for(n), kThreads>>>(fn, dx.get(), dy.get(), n);
  finish_launch();
  dy.download(y);
}

namespace {
void convert_fp8(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n, bool e4m3) {
  const DeviceArray<float> dx(x, n);
  DeviceArray<std::uint8_t> o(n), h(n);
  fp8_kernel<<<grid_for(n), kThreads>>>(dx.get(), o.get(), h.get(), n, e4m3);
  finish_launch();
  o.download(ours);
  h.download(hardware);
}
}  // namespace

void convert_e4m3(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n) {
  convert_fp8(x, ours, hardware, n, true);
}

void convert_e5m2(const float* x, std::uint8_t* ours, std::uint8_t* hardware, std::int64_t n) {
  convert_fp8(x, ours, hardware, n, false);
}

void convert_bf16(const float* x, std::uint16_t* ours, std::uint16_t* hardware, std::int64_t n) {
  const DeviceArray<float> dx(x, n);
  DeviceArray<std::uint16_t> o(n), h(n);
  bf16_kernel<<<grid_for(n), kThreads>>>(dx.get(), o.get(), h.get(), n);
  finish_launch();
  o.download(ours);
  h.download(hardware);
}

void decode_fp8_all(float* e4m3_ours, float* e4m3_hardware, float* e5m2_ours, float* e5m2_hardware) {
  DeviceArray<float> a(256), b(256), c(256), d(256);
  decode_kernel<<<1, 256>>>(a.get(), b.get(), c.get(), d.get());
  finish_launch();
  a.download(e4m3_ours);
  b.download(e4m3_hardware);
  c.download(e5m2_ours);
  d.download(e5m2_hardware);
}

void ue8m0_roundtrip(const float* x, std::uint8_t* encoded, float* decoded, std::int64_t n) {
  const DeviceArray<float> dx(x, n);
  DeviceArray<std::uint8_t> e(n);
  DeviceArray<float> d(n);
  ue8m0_kernel<<<grid_for(n), kThreads>>>(dx.get(), e.get(), d.get(), n);
  finish_launch();
  e.download(encoded);
  d.download(decoded);
}

void dot_k128_rows(const float* a, const float* b, float* out, std::int64_t rows, std::int64_t K) {
  const DeviceArray<float> da(a, rows * K), db(b, rows * K);
  DeviceArray<float> dout(rows);
  dot_kernel<<<static_cast<int>((rows + 127) / 128), 128>>>(da.get(), db.get(), dout.get(), rows, K);
  finish_launch();
  dout.download(out);
}

void dot_fp8_k128_rows(const std::uint8_t* a, const float* scale_a, const std::uint8_t* b, const float* scale_b,
                       float* out, std::int64_t rows, std::int64_t K) {
  const std::int64_t kb = (K + num::kKBlock - 1) / num::kKBlock;
  const DeviceArray<std::uint8_t> da(a, rows * K), db(b, rows * K);
  const DeviceArray<float> dsa(scale_a, rows * kb), dsb(scale_b, rows * kb);
  DeviceArray<float> dout(rows);
  dot_fp8_kernel<<<static_cast<int>((rows + 127) / 128), 128>>>(da.get(), dsa.get(), db.get(), dsb.get(), dout.get(),
                                                                 rows, K);
  finish_launch();
  dout.download(out);
}

void row_reduce_warp(const float* x, float* sum, float* max, float* sum_squares, std::int64_t rows, std::int64_t n) {
  const DeviceArray<float> dx(x, rows * n);
  DeviceArray<float> ds(rows), dm(rows), dq(rows);
  constexpr int kWarpsPerBlock = 4;
  row_reduce_kernel<<<static_cast<int>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), 32 * kWarpsPerBlock>>>(
      dx.get(), ds.get(), dm.get(), dq.get(), rows, n);
  finish_launch();
  ds.download(sum);
  dm.download(max);
  dq.download(sum_squares);
}

void topk_rows(const float* v, int* idx, int rows, int n, int k) {
  const DeviceArray<float> dv(v, static_cast<std::int64_t>(rows) * n);
  DeviceArray<int> di(static_cast<std::int64_t>(rows) * k);
  topk_kernel<<<(rows + 127) / 128, 128>>>(dv.get(), di.get(), rows, n, k);
  finish_launch();
  di.download(idx);
}

void philox_blocks(std::uint64_t seed, std::uint64_t stream, std::uint64_t first_block, std::int64_t blocks,
                   std::uint32_t* words, float* uniforms, float* normals) {
  DeviceArray<std::uint32_t> dw(4 * blocks);
  DeviceArray<float> du(4 * blocks), dn(4 * blocks);
  philox_kernel<<<static_cast<int>((blocks + 255) / 256), 256>>>(seed, stream, first_block, blocks, dw.get(), du.get(),
                                                                   dn.get());
  finish_launch();
  dw.download(words);
  du.download(uniforms);
  dn.download(normals);
}

}  // namespace preflight::cuda
