#include "sim/event_queue.hpp"

namespace preflight::sim {

double Channel::transfer(double ready_s, double bytes) {
  const double duration_s = (bytes_per_s_ > 0 ? bytes / bytes_per_s_ : 0) + latency_s_;
  return occupy(ready_s, duration_s);
}

double Channel::occupy(double ready_s, double duration_s) {
  const double start_s = ready_s > free_at_s_ ? ready_s : free_at_s_;
  free_at_s_ = start_s + duration_s;
  busy_s_ += duration_s;
  return free_at_s_;
}

}  // namespace preflight::sim
