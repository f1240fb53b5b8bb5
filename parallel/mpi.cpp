#include "parallel/mpi.hpp"

#include "reference/core/error.hpp"

#ifdef PREFLIGHT_WITH_MPI
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <thread>
#include <utility>
#include <vector>
#endif

namespace preflight::parallel {

#ifndef PREFLIGHT_WITH_MPI

bool mpi_available() { return false; }
std::shared_ptr<Transport> mpi_world(double) {
  fail("backend mpi: this build has no MPI (install libopenmpi-dev and rebuild: scripts/install_deps.sh does)");
}

#else

namespace {

constexpr int kMpiTag = 7;

struct Header {
  uint64_t tag;
  uint64_t bytes;
};

class MpiTransport final : public Transport {
 public:
  explicit MpiTransport(double timeout_s) : timeout_s_(timeout_s) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiTransport() override { drain(); }

  int world_rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void set_timeout_s(double s) override {
    if (!(s > 0)) fail("backend mpi: timeout ", s, " s: expected a positive time");
    timeout_s_ = s;
  }

  void send(int dst, uint64_t tag, const void* data, size_t bytes) override {
    check_peer(dst);
    if (bytes > static_cast<size_t>(INT32_MAX) - sizeof(Header))
      fail("rank ", rank_, ": message of ", bytes, " bytes to rank ", dst, " is over MPI's 2 GiB count limit");
    Pending p;
    p.buffer.resize(sizeof(Header) + bytes);
    const Header h{tag, bytes};
    std::memcpy(p.buffer.data(), &h, sizeof h);
    if (bytes > 0) std::memcpy(p.buffer.data() + sizeof h, data, bytes);
    pending_.push_back(std::move(p));
    Pending& q = pending_.back();
    MPI_Isend(q.buffer.data(), static_cast<int>(q.buffer.size()), MPI_BYTE, dst, kMpiTag, MPI_COMM_WORLD, &q.request);
    progress();
  }

  void recv(int src, uint64_t tag, void* data, size_t bytes) override {
    const std::vector<uint8_t> msg = recv_any_size(src, tag);
    if (msg.size() != bytes)
      fail("rank ", rank_, ": message from rank ", src, " (tag ", tag, ") has ", msg.size(), " bytes, expected ", bytes);
    if (bytes > 0) std::memcpy(data, msg.data(), bytes);
  }

  std::vector<uint8_t> recv_any_size(int src, uint64_t tag) override {
    check_peer(src);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      auto& q = stash_[{src, tag}];
      if (!q.empty()) {
        std::vector<uint8_t> m = std::move(q.front());
        q.pop_front();
        return m;
      }
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(src, kMpiTag, MPI_COMM_WORLD, &flag, &st);
      if (flag) {
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        std::vector<uint8_t> raw(static_cast<size_t>(count));
        MPI_Recv(raw.data(), count, MPI_BYTE, src, kMpiTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        Header h{};
        if (raw.size() < sizeof h) fail("rank ", rank_, ": a message from rank ", src, " is shorter than its header");
        std::memcpy(&h, raw.data(), sizeof h);
        if (h.bytes != raw.size() - sizeof h) fail("rank ", rank_, ": a message from rank ", src, " has a bad length");
        stash_[{src, h.tag}].emplace_back(raw.begin() + sizeof h, raw.end());
        continue;
      }
      progress();
      if (std::chrono::steady_clock::now() > deadline) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", timeout_s_);
        fail("rank ", rank_, ": no message from rank ", src, " within ", buf, " s (tag ", tag,
             "): that rank stopped answering or the ranks issued different operations");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

 private:
  struct Pending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<uint8_t> buffer;
  };
  void check_peer(int peer) const {
    if (peer < 0 || peer >= size_) fail("rank ", rank_, ": peer rank ", peer, " is outside the world of ", size_);
  }
  // Frees the buffers of sends that completed (in order; a deque keeps addresses stable).
  void progress() {
    while (!pending_.empty()) {
      int done = 0;
      MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      pending_.pop_front();
    }
  }
  void drain() {
    for (Pending& p : pending_) MPI_Wait(&p.request, MPI_STATUS_IGNORE);
    pending_.clear();
  }

  double timeout_s_;
  int rank_ = 0, size_ = 1;
  std::deque<Pending> pending_;
  std::map<std::pair<int, uint64_t>, std::deque<std::vector<uint8_t>>> stash_;
};

std::weak_ptr<MpiTransport> g_world;

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

bool mpi_available() { return true; }

std::shared_ptr<Transport> mpi_world(double timeout_s) {
  if (!(timeout_s > 0)) fail("backend mpi: timeout ", timeout_s, " s: expected a positive time");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    std::atexit(finalize_at_exit);
  }
  if (auto w = g_world.lock()) return w;
  auto w = std::make_shared<MpiTransport>(timeout_s);
  g_world = w;
  return w;
}

#endif

}  // namespace preflight::parallel
