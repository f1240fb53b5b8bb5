#include "parallel/threads.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "reference/core/error.hpp"

namespace preflight::parallel {

namespace {

// Shared by the ranks of one world.
class World {
 public:
  World(int n, double timeout_s) : n_(n), timeout_s_(timeout_s) {}

  void put(int src, int dst, uint64_t tag, std::vector<uint8_t> msg) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queues_[{src, dst, tag}].push_back(std::move(msg));
    }
    cv_.notify_all();
  }

  std::vector<uint8_t> take(int src, int dst, uint64_t tag) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto key = std::make_tuple(src, dst, tag);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      auto it = queues_.find(key);
      if (it != queues_.end() && !it->second.empty()) {
        std::vector<uint8_t> msg = std::move(it->second.front());
        it->second.pop_front();
        return msg;
      }
      // A failed peer will never send; a failure elsewhere ends the run for everyone.
      if (failed_rank_ >= 0)
        fail("rank ", dst, ": rank ", failed_rank_, " failed (", failure_, "); giving up waiting for rank ", src);
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        it = queues_.find(key);
        if (it != queues_.end() && !it->second.empty()) continue;
        if (failed_rank_ >= 0) continue;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", timeout_s_);
        fail("rank ", dst, ": no message from rank ", src, " within ", buf, " s (tag ", tag,
             "): that rank stopped answering or the ranks issued different operations");
      }
    }
  }

  void mark_failed(int rank, const std::string& what) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (failed_rank_ < 0) failed_rank_ = rank, failure_ = what;
    }
    cv_.notify_all();
  }

  int size() const { return n_; }
  void set_timeout_s(double s) {
    std::lock_guard<std::mutex> lock(mu_);
    timeout_s_ = s;
  }
  // The first rank that failed (the root cause: later failures wait on it), -1 if none.
  int first_failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_rank_;
  }

 private:
  int n_;
  double timeout_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::tuple<int, int, uint64_t>, std::deque<std::vector<uint8_t>>> queues_;
  int failed_rank_ = -1;
  std::string failure_;
};

class ThreadTransport final : public Transport {
 public:
  ThreadTransport(std::shared_ptr<World> w, int rank) : w_(std::move(w)), rank_(rank) {}
  int world_rank() const override { return rank_; }
  int world_size() const override { return w_->size(); }
  std::string backend() const override { return "threads"; }
  void set_timeout_s(double s) override {
    if (!(s > 0)) fail("threads backend: timeout ", s, " s: expected a positive time");
    w_->set_timeout_s(s);
  }

  void send(int dst, uint64_t tag, const void* data, size_t bytes) override {
    check_peer(dst);
    const auto* p = static_cast<const uint8_t*>(data);
    w_->put(rank_, dst, tag, std::vector<uint8_t>(p, p + bytes));
  }
  void recv(int src, uint64_t tag, void* data, size_t bytes) override {
    check_peer(src);
    const std::vector<uint8_t> msg = w_->take(src, rank_, tag);
    if (msg.size() != bytes)
      fail("rank ", rank_, ": message from rank ", src, " (tag ", tag, ") has ", msg.size(), " bytes, expected ", bytes);
    if (bytes > 0) std::memcpy(data, msg.data(), bytes);
  }
  std::vector<uint8_t> recv_any_size(int src, uint64_t tag) override {
    check_peer(src);
    return w_->take(src, rank_, tag);
  }

 private:
  void check_peer(int peer) const {
    if (peer < 0 || peer >= w_->size()) fail("rank ", rank_, ": peer rank ", peer, " is outside the world of ", w_->size());
  }
  std::shared_ptr<World> w_;
  int rank_;
};

}  // namespace

void run_threads(int ranks, const std::function<void(Comm&)>& body, const ThreadsOptions& options) {
  if (ranks < 1) fail("threads backend: ", ranks, " ranks: expected at least 1");
  if (!(options.timeout_s > 0)) fail("threads backend: timeout ", options.timeout_s, " s: expected a positive time");
  auto world = std::make_shared<World>(ranks, options.timeout_s);
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        Comm comm(std::make_shared<ThreadTransport>(world, r));
        body(comm);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
        world->mark_failed(r, e.what());
      } catch (...) {
        errors[static_cast<size_t>(r)] = "unknown exception";
        world->mark_failed(r, "unknown exception");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const int first = world->first_failed();
  if (first >= 0) fail("rank ", first, " of ", ranks, ": ", errors[static_cast<size_t>(first)]);
}

}  // namespace preflight::parallel
