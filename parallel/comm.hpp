// The communicator of the parallel trainer (issue 11): point-to-point messages between
// ranks and the collectives built on them, over groups of ranks (PP, EP, DP, TP).
//
// Layering: a Transport moves bytes between the world's ranks (one per backend: threads
// today, MPI and NCCL next); a Comm is a group of world ranks on top of a transport. Every
// deterministic collective is written here once, over send/recv, in a fixed order, so all
// backends give the same bits (docs/NUMERICS.md, "Collectives"):
//   all_gather          rank r's block lands at offset r (group order), nothing is added;
//   all_reduce_sum      every rank gathers the group's contributions and adds them along
//                       the fixed tree over the group rank index (tree_sum_into, below),
//                       so every rank holds the same bits, equal to a one-device tree sum;
//   reduce_scatter_sum  rank r receives block r of every contribution and adds them along
//                       the same tree: the bits of all_reduce_sum's block r;
//   all_to_allv         rank r's i-th outgoing buffer is rank i's r-th incoming one.
// Messages between a pair of ranks with the same tag arrive in the order they were sent.
// A receive waits at most the transport's timeout and then throws a one-line
// preflight::Error naming the rank it waited for; a rank that fails marks the world failed,
// and every rank waiting on it throws naming it (never a hang).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace preflight::parallel {

// Moves bytes between world ranks. Backends implement this; nothing else is backend-specific.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual int world_rank() const = 0;
  virtual int world_size() const = 0;
  virtual void send(int dst, uint64_t tag, const void* data, size_t bytes) = 0;
  // Receives the next message from src with tag; throws when its size is not `bytes`.
  virtual void recv(int src, uint64_t tag, void* data, size_t bytes) = 0;
  // A message of unknown size.
  virtual std::vector<uint8_t> recv_any_size(int src, uint64_t tag) = 0;
  virtual std::string backend() const = 0;  // "threads", "mpi", "nccl"
  // How long a receive waits before naming the silent rank (threads: for the whole world).
  virtual void set_timeout_s(double seconds) = 0;
};

// The micro-batch tree of docs/NUMERICS.md (num::TreeSum, reference/numerics/tree_sum.hpp,
// the order the single-device trainer sums micro-batch gradients in) over parts[0..] of `n`
// elements each, in index order; n zeros when there are none.
std::vector<float> tree_sum(const std::vector<const float*>& parts, size_t n);

class Comm {
 public:
  // The world group of a transport.
  explicit Comm(std::shared_ptr<Transport> transport);

  int rank() const { return rank_; }  // in this group
  int size() const { return static_cast<int>(members_.size()); }
  int world_rank_of(int group_rank) const { return members_.at(static_cast<size_t>(group_rank)); }
  const std::string& name() const { return name_; }
  Transport& transport() { return *t_; }

  // Point to point within the group; `tag` < 2^32 is the caller's.
  void send(int dst, uint32_t tag, const void* data, size_t bytes);
  void recv(int src, uint32_t tag, void* data, size_t bytes);
  template <typename T>
  void send(int dst, uint32_t tag, const std::vector<T>& v) {
    send(dst, tag, v.data(), v.size() * sizeof(T));
  }
  template <typename T>
  void recv(int src, uint32_t tag, std::vector<T>& v) {
    recv(src, tag, v.data(), v.size() * sizeof(T));
  }

  void barrier();
  void broadcast(int root, void* data, size_t bytes);
  // Every rank's `bytes` bytes, in group rank order (size() · bytes).
  std::vector<uint8_t> all_gather(const void* data, size_t bytes);
  std::vector<float> all_reduce_sum(const std::vector<float>& mine);
  // `mine` has size() · block elements; returns this rank's block of the tree sum.
  std::vector<float> reduce_scatter_sum(const std::vector<float>& mine, size_t block);
  // out[i] goes to group rank i; returns in[i] from group rank i (sizes may differ).
  std::vector<std::vector<uint8_t>> all_to_allv(const std::vector<std::vector<uint8_t>>& out);

  // Collective over this group: ranks with the same color form a sub-group, ordered by
  // (key, rank). Every rank of the group must call it, in the same order as the others.
  Comm split(int color, int key, const std::string& name);

 private:
  Comm(std::shared_ptr<Transport> t, std::vector<int> members, int rank, uint32_t context, std::string name);
  uint64_t wire_tag(uint32_t tag) const { return (static_cast<uint64_t>(context_) << 32) | tag; }
  uint32_t next_collective_tag();

  std::shared_ptr<Transport> t_;
  std::vector<int> members_;  // world ranks, in group order
  int rank_ = 0;
  uint32_t context_ = 0;     // separates groups' messages on the shared transport
  uint32_t collectives_ = 0;  // collectives issued so far (their tags)
  uint32_t splits_ = 0;
  std::string name_;
};

}  // namespace preflight::parallel
