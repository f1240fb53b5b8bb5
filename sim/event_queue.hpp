// The discrete-event core: a clock and a queue of timed events. Events at the same
// time come out in the order they were scheduled, so every run is deterministic.
// (Layering after astra-sim's analytical backend: now / schedule / proceed.)
//
// EventQueueOf<Payload> holds plain-data events that the owner dispatches itself: the
// pipeline executor schedules hundreds of thousands of them per plan, and a payload of
// a few integers costs no allocation. EventQueue is the same core with a callback per
// event, for small hand-built simulations and tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "reference/core/error.hpp"

namespace preflight::sim {

template <typename Payload>
class EventQueueOf {
 public:
  double now() const { return now_s_; }
  bool finished() const { return heap_.empty(); }
  void reserve(size_t events) { heap_.reserve(events); }
  // Delivers `payload` at time_s (>= now()).
  void schedule(double time_s, Payload payload) {
    PREFLIGHT_CHECK(time_s >= now_s_, "event at ", time_s, " s scheduled in the past (now ", now_s_, " s)");
    heap_.push_back(Event{time_s, next_seq_++, std::move(payload)});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }
  // Advances the clock to the earliest event and hands it out.
  Payload proceed() {
    PREFLIGHT_CHECK(!heap_.empty());
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Event e = std::move(heap_.back());
    heap_.pop_back();
    now_s_ = e.time_s;
    return std::move(e.payload);
  }

 private:
  struct Event {
    double time_s;
    uint64_t seq;
    Payload payload;
  };
  // Heap order: earliest time first, then scheduling order.
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_s != b.time_s ? a.time_s > b.time_s : a.seq > b.seq;
    }
  };
  std::vector<Event> heap_;
  double now_s_ = 0;
  uint64_t next_seq_ = 0;
};

class EventQueue {
 public:
  double now() const { return events_.now(); }
  bool finished() const { return events_.finished(); }
  // Runs `fn` at time_s (>= now()).
  void schedule(double time_s, std::function<void()> fn) { events_.schedule(time_s, std::move(fn)); }
  // Advances the clock to the earliest event and runs it.
  void proceed() { events_.proceed()(); }
  // Runs until no event is left.
  void run() {
    while (!finished()) proceed();
  }

 private:
  EventQueueOf<std::function<void()>> events_;
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
