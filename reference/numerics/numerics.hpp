// The numerics core in one include: the bit-exact contract shared by the CPU reference and
// the CUDA path (docs/NUMERICS.md, contract version 1).
//
//   hd.hpp      host/device macro, bit casts, fma/sqrt, canonical NaN
//   bf16.hpp    bfloat16 storage and round-to-nearest-even conversion
//   fp8.hpp     E4M3 / E5M2 / UE8M0 formats and the FP8 quantisation rule
//   math.hpp    exp, log, log1p, sigmoid, silu, silu_grad, tanh, rsqrt, gelu, softplus, sincos_2pi
//   reduce.hpp  K-blocked dot products, 32-lane row reductions, top-k
//   philox.hpp  Philox-4x32-10, uniform and normal draws by (seed, stream, index)
#pragma once

#include "reference/numerics/bf16.hpp"
#include "reference/numerics/fp8.hpp"
#include "reference/numerics/hd.hpp"
#include "reference/numerics/math.hpp"
#include "reference/numerics/philox.hpp"
#include "reference/numerics/reduce.hpp"
