// Units and axis ticks shared by the simulator's and the fault model's reports.
// Memory and checkpoint sizes are printed in GiB (2^30 bytes) everywhere; bandwidths
// stay in GB/s (10^9 bytes/s) as the configs give them.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace preflight::sim {

inline constexpr double kBytesPerGiB = 1073741824.0;

inline double gib(double bytes) { return bytes / kBytesPerGiB; }

// "0.53 GiB", "97.19 GiB", "612.4 GiB", "5086 GiB": two decimals up to 100 GiB, then
// four significant digits or more.
inline std::string format_gib(double bytes) {
  const double v = gib(bytes);
  char buf[48];
  std::snprintf(buf, sizeof buf, std::fabs(v) < 100 ? "%.2f GiB" : std::fabs(v) < 1000 ? "%.1f GiB" : "%.0f GiB", v);
  return buf;
}

// Round axis ticks covering [lo, hi]: multiples of 1, 2 or 5 × 10^k, the step whose
// tick count is closest to `target` (ties: fewer ticks), the first >= lo and the last
// <= hi (to within a rounding ulp). Picking the first step whose spacing reaches
// (hi − lo)/target instead can leave two ticks on an axis (range 13.4, target 6: step 5).
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  std::vector<double> out;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) {
    if (std::isfinite(lo)) out.push_back(lo);
    return out;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag, best_miss = 1e300;
  for (double f : {10.0, 5.0, 2.0, 1.0}) {
    const double st = f * mag, eps = st * 1e-9;
    const double count = std::floor((hi + eps) / st) - std::ceil((lo - eps) / st) + 1;
    const double miss = std::fabs(count - target);
    if (miss < best_miss) {
      best_miss = miss;
      step = st;
    }
  }
  const double eps = step * 1e-9;
  for (double k = std::ceil((lo - eps) / step); k * step <= hi + eps; k += 1.0) out.push_back(k * step == 0 ? 0.0 : k * step);
  return out;
}

// A tick label without trailing zeros: 0, 0.5, 2, 12.5, 1e+06.
inline std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace preflight::sim
