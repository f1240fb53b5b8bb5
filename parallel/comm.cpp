#include "parallel/comm.hpp"

#include <algorithm>
#include <utility>

#include "reference/core/error.hpp"
#include "reference/numerics/tree_sum.hpp"

namespace preflight::parallel {

std::vector<float> tree_sum(const std::vector<const float*>& parts, size_t n) {
  if (parts.empty()) return std::vector<float>(n, 0.0f);
  num::TreeSum t;
  for (const float* p : parts) t.push(std::vector<float>(p, p + n));
  return t.finish();
}

Comm::Comm(std::shared_ptr<Transport> transport) : t_(std::move(transport)) {
  members_.resize(static_cast<size_t>(t_->world_size()));
  for (int r = 0; r < t_->world_size(); ++r) members_[static_cast<size_t>(r)] = r;
  rank_ = t_->world_rank();
  name_ = "world";
}

Comm::Comm(std::shared_ptr<Transport> t, std::vector<int> members, int rank, uint32_t context, std::string name)
    : t_(std::move(t)), members_(std::move(members)), rank_(rank), context_(context), name_(std::move(name)) {}

namespace {
constexpr uint32_t kCollectiveBit = 0x80000000u;

void check_group_rank(const Comm& c, int r, const char* what) {
  if (r < 0 || r >= c.size())
    fail("communicator '", c.name(), "': ", what, " rank ", r, " is outside the group of ", c.size());
}
}  // namespace

uint32_t Comm::next_collective_tag() { return kCollectiveBit | (collectives_++ & ~kCollectiveBit); }

void Comm::send(int dst, uint32_t tag, const void* data, size_t bytes) {
  check_group_rank(*this, dst, "destination");
  t_->send(world_rank_of(dst), wire_tag(tag), data, bytes);
}

void Comm::recv(int src, uint32_t tag, void* data, size_t bytes) {
  check_group_rank(*this, src, "source");
  t_->recv(world_rank_of(src), wire_tag(tag), data, bytes);
}

void Comm::barrier() {
  // Everyone reports to rank 0, which then releases everyone.
  const uint32_t tag = next_collective_tag();
  uint8_t token = 0;
  if (rank_ == 0) {
    for (int r = 1; r < size(); ++r) recv(r, tag, &token, 1);
    for (int r = 1; r < size(); ++r) send(r, tag, &token, 1);
  } else {
    send(0, tag, &token, 1);
    recv(0, tag, &token, 1);
  }
}

void Comm::broadcast(int root, void* data, size_t bytes) {
  check_group_rank(*this, root, "broadcast root");
  const uint32_t tag = next_collective_tag();
  if (rank_ == root) {
    for (int r = 0; r < size(); ++r)
      if (r != root) send(r, tag, data, bytes);
  } else {
    recv(root, tag, data, bytes);
  }
}

std::vector<uint8_t> Comm::all_gather(const void* data, size_t bytes) {
  const uint32_t tag = next_collective_tag();
  std::vector<uint8_t> out(bytes * static_cast<size_t>(size()));
  for (int r = 0; r < size(); ++r)
    if (r != rank_) send(r, tag, data, bytes);
  if (bytes > 0) std::memcpy(out.data() + bytes * static_cast<size_t>(rank_), data, bytes);
  for (int r = 0; r < size(); ++r)
    if (r != rank_) recv(r, tag, out.data() + bytes * static_cast<size_t>(r), bytes);
  return out;
}

std::vector<float> Comm::all_reduce_sum(const std::vector<float>& mine) {
  const size_t n = mine.size();
  const std::vector<uint8_t> all = all_gather(mine.data(), n * sizeof(float));
  std::vector<const float*> parts;
  for (int r = 0; r < size(); ++r) parts.push_back(reinterpret_cast<const float*>(all.data()) + n * static_cast<size_t>(r));
  return tree_sum(parts, n);
}

std::vector<float> Comm::reduce_scatter_sum(const std::vector<float>& mine, size_t block) {
  if (mine.size() != block * static_cast<size_t>(size()))
    fail("communicator '", name_, "': reduce_scatter of ", mine.size(), " elements: expected ", size(), " blocks of ", block);
  const uint32_t tag = next_collective_tag();
  for (int r = 0; r < size(); ++r)
    if (r != rank_) send(r, tag, mine.data() + block * static_cast<size_t>(r), block * sizeof(float));
  std::vector<std::vector<float>> got(static_cast<size_t>(size()));
  std::vector<const float*> parts;
  for (int r = 0; r < size(); ++r) {
    if (r == rank_) {
      parts.push_back(mine.data() + block * static_cast<size_t>(rank_));
      continue;
    }
    got[static_cast<size_t>(r)].resize(block);
    recv(r, tag, got[static_cast<size_t>(r)]);
    parts.push_back(got[static_cast<size_t>(r)].data());
  }
  return tree_sum(parts, block);
}

std::vector<std::vector<uint8_t>> Comm::all_to_allv(const std::vector<std::vector<uint8_t>>& out) {
  if (out.size() != static_cast<size_t>(size()))
    fail("communicator '", name_, "': all_to_allv with ", out.size(), " buffers: expected one per rank (", size(), ")");
  const uint32_t tag = next_collective_tag();
  for (int r = 0; r < size(); ++r)
    if (r != rank_) t_->send(world_rank_of(r), wire_tag(tag), out[static_cast<size_t>(r)].data(), out[static_cast<size_t>(r)].size());
  std::vector<std::vector<uint8_t>> in(static_cast<size_t>(size()));
  for (int r = 0; r < size(); ++r)
    in[static_cast<size_t>(r)] = r == rank_ ? out[static_cast<size_t>(r)] : t_->recv_any_size(world_rank_of(r), wire_tag(tag));
  return in;
}

Comm Comm::split(int color, int key, const std::string& name) {
  const int32_t mine[3] = {color, key, rank_};
  const std::vector<uint8_t> all = all_gather(mine, sizeof mine);
  const auto* v = reinterpret_cast<const int32_t*>(all.data());
  std::vector<std::pair<std::pair<int, int>, int>> same;  // ((key, group rank), world rank)
  for (int r = 0; r < size(); ++r)
    if (v[3 * r] == color) same.push_back({{v[3 * r + 1], v[3 * r + 2]}, world_rank_of(r)});
  std::sort(same.begin(), same.end());
  std::vector<int> members;
  int my_rank = -1;
  for (const auto& [k, w] : same) {
    if (w == world_rank_of(rank_)) my_rank = static_cast<int>(members.size());
    members.push_back(w);
  }
  // The same context on every member without more messages: a mix of the parent's
  // context, the split's index in this group and the color.
  uint64_t h = (static_cast<uint64_t>(context_) << 32) ^ (static_cast<uint64_t>(++splits_) << 16) ^
               static_cast<uint64_t>(static_cast<uint32_t>(color));
  h ^= h >> 33, h *= 0xff51afd7ed558ccdULL, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53ULL, h ^= h >> 33;
  const uint32_t context = static_cast<uint32_t>(h) | 1u;  // never the world's 0
  return Comm(t_, std::move(members), my_rank, context, name);
}

}  // namespace preflight::parallel
