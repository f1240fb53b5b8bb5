// The micro-batch tree of the numerics contract (docs/NUMERICS.md §4, "The micro-batch
// tree"), host only: contributions are pushed in index order; two blocks of equal size merge
// as left + right as soon as both exist; finish() folds what remains from the newest block,
// r = below + r. For 2^n contributions it is the perfect pairwise tree. The single-device
// trainer sums micro-batch gradients and losses with it, and the parallel communicator sums
// ranks' contributions with it, so a data-parallel split reproduces the one-device bits.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace preflight::num {

class TreeSum {
 public:
  // dst[i] = dst[i] + src[i] for i < n; a caller may distribute the i over threads.
  using AddInto = void (*)(float* dst, const float* src, int64_t n);
  static void serial_add_into(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = dst[i] + src[i];
  }

  explicit TreeSum(AddInto add = serial_add_into) : add_(add) {}

  // The next contribution (all of one size); held without a copy until it merges.
  void push(std::vector<float>&& x) {
    stack_.push_back(std::move(x)), level_.push_back(0);
    while (stack_.size() >= 2 && level_[level_.size() - 1] == level_[level_.size() - 2]) {
      add_(stack_[stack_.size() - 2].data(), stack_.back().data(), static_cast<int64_t>(stack_.back().size()));
      stack_.pop_back(), level_.pop_back();
      level_.back() += 1;
    }
  }
  bool empty() const { return stack_.empty(); }

  // The sum (empty when nothing was pushed); the accumulator is left empty.
  std::vector<float> finish() {
    if (stack_.empty()) return {};
    std::vector<float> r = std::move(stack_.back());
    for (size_t k = stack_.size() - 1; k-- > 0;) {
      add_(stack_[k].data(), r.data(), static_cast<int64_t>(r.size()));  // below + r
      r = std::move(stack_[k]);
    }
    stack_.clear(), level_.clear();
    return r;
  }

 private:
  AddInto add_;
  std::vector<std::vector<float>> stack_;
  std::vector<int> level_;
};

// The tree over scalars.
inline float tree_sum(const std::vector<float>& v) {
  TreeSum t;
  for (float x : v) t.push({x});
  const std::vector<float> r = t.finish();
  return r.empty() ? 0.0f : r[0];
}

}  // namespace preflight::num
