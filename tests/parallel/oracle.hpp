// Shared by the communicator tests (threads and MPI): data whose sums show their order, and
// an independent definition of docs/NUMERICS.md's micro-batch tree.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace preflight::parallel {

// Values spread over many binades, so the order of additions shows in the bits.
inline std::vector<float> noise(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-12, 12);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(mant(g), ex(g));
  return v;
}

// docs/NUMERICS.md's tree, written independently: n = 2^a + 2^b + ... (a > b > ...) splits
// into blocks of those sizes in index order, each summed pairwise (left + right), then
// folded from the last block: B_0 + (B_1 + (... + B_last)).
inline float pairwise(const float* x, size_t n) { return n == 1 ? x[0] : pairwise(x, n / 2) + pairwise(x + n / 2, n / 2); }
inline float oracle_tree(const std::vector<float>& x) {
  std::vector<float> blocks;
  size_t at = 0;
  for (size_t bit = size_t{1} << 40; bit > 0; bit >>= 1)
    if (x.size() & bit) blocks.push_back(pairwise(x.data() + at, bit)), at += bit;
  float r = blocks.back();
  for (size_t k = blocks.size() - 1; k-- > 0;) r = blocks[k] + r;
  return r;
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace preflight::parallel
