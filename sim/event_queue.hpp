// The discrete-event core: a clock and a queue of timed callbacks. Events at the same
// time run in the order they were scheduled, so every run is deterministic.
// (Layering after astra-sim's analytical backend: now / schedule / proceed.)
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace preflight::sim {

class EventQueue {
 public:
  double now() const { return now_s_; }
  bool finished() const { return events_.empty(); }
  // Runs `fn` at time_s (>= now()).
  void schedule(double time_s, std::function<void()> fn);
  // Advances the clock to the earliest event and runs it.
  void proceed();
  // Runs until no event is left.
  void run() {
    while (!finished()) proceed();
  }

 private:
  struct Event {
    double time_s;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_s != b.time_s ? a.time_s > b.time_s : a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  double now_s_ = 0;
  uint64_t next_seq_ = 0;
};

// A serial resource with a bandwidth and a per-message latency (a link direction, a
// DMA engine, a collective ring): transfers queue behind each other.
class Channel {
 public:
  Channel() = default;
  Channel(double GBps, double latency_s) : bytes_per_s_(GBps * 1e9), latency_s_(latency_s) {}
  // Starts a transfer of `bytes` no earlier than ready_s; returns its arrival time.
  double transfer(double ready_s, double bytes);
  // Same, with the duration given directly.
  double occupy(double ready_s, double duration_s);
  double free_at_s() const { return free_at_s_; }
  double busy_s() const { return busy_s_; }

 private:
  double bytes_per_s_ = 0;
  double latency_s_ = 0;
  double free_at_s_ = 0;
  double busy_s_ = 0;
};

}  // namespace preflight::sim
