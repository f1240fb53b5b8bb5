#include "sim/event_queue.hpp"

#include "reference/core/error.hpp"

namespace preflight::sim {

void EventQueue::schedule(double time_s, std::function<void()> fn) {
  PREFLIGHT_CHECK(time_s >= now_s_, "event at ", time_s, " s scheduled in the past (now ", now_s_, " s)");
  events_.push(Event{time_s, next_seq_++, std::move(fn)});
}

void EventQueue::proceed() {
  PREFLIGHT_CHECK(!events_.empty());
  Event e = events_.top();
  events_.pop();
  now_s_ = e.time_s;
  e.fn();
}

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
