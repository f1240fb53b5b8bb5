// Shared helpers of the optimizer tests: deterministic inputs and bit comparison.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace preflight::optim::test {

// Deterministic normal draws (splitmix64 + Box-Muller), the same on every platform.
inline std::vector<float> randn(int64_t n, uint64_t seed, float scale = 1.0f) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&]() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 0.5) * 0x1.0p-53;
  };
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = next(), u2 = next();
    v[i] = static_cast<float>(scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return v;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline constexpr double kU = 0x1.0p-24;  // unit roundoff of fp32

}  // namespace preflight::optim::test
