// The MPI backend under `mpirun -np 4` (ctest mpi_comm_np4): every process runs these tests
// on the MPI world; a failure on any rank fails the run. Results are compared bit for bit
// with the independent tree definition and with the threads backend in the same process.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "parallel/comm.hpp"
#include "parallel/mpi.hpp"
#include "parallel/threads.hpp"
#include "reference/core/error.hpp"
#include "tests/parallel/oracle.hpp"

namespace preflight::parallel {
namespace {

Comm world() { return Comm(mpi_world(60.0)); }

TEST(Mpi, AllReduceEqualsTheTreeAndTheThreadsBackend) {
  Comm c = world();
  const size_t len = 1025;
  const int n = c.size();
  const std::vector<float> got = c.all_reduce_sum(noise(len, 100 + static_cast<uint32_t>(c.rank())));
  std::vector<float> threads;
  run_threads(n, [&](Comm& t) {
    std::vector<float> r = t.all_reduce_sum(noise(len, 100 + static_cast<uint32_t>(t.rank())));
    if (t.rank() == 0) threads = r;
  });
  for (size_t i = 0; i < len; ++i) {
    std::vector<float> column;
    for (int r = 0; r < n; ++r) column.push_back(noise(len, 100 + static_cast<uint32_t>(r))[i]);
    ASSERT_EQ(bits(got[i]), bits(oracle_tree(column))) << "rank " << c.rank() << " i " << i;
    ASSERT_EQ(bits(got[i]), bits(threads[i])) << "rank " << c.rank() << " i " << i;
  }
}

TEST(Mpi, LargeAllGatherAndReduceScatterDoNotDeadlock) {
  Comm c = world();
  const size_t block = size_t{1} << 20;  // 4 MiB per rank and block: past MPI's eager limit
  std::vector<float> mine(block * static_cast<size_t>(c.size()), static_cast<float>(c.rank() + 1));
  const std::vector<uint8_t> all = c.all_gather(mine.data(), block * sizeof(float));
  ASSERT_EQ(all.size(), block * sizeof(float) * static_cast<size_t>(c.size()));
  for (int r = 0; r < c.size(); ++r) {
    float first;
    std::memcpy(&first, all.data() + block * sizeof(float) * static_cast<size_t>(r), sizeof first);
    EXPECT_EQ(first, static_cast<float>(r + 1));
  }
  const std::vector<float> part = c.reduce_scatter_sum(mine, block);
  const float want = static_cast<float>(c.size() * (c.size() + 1) / 2);  // small integers: exact
  EXPECT_EQ(part.front(), want);
  EXPECT_EQ(part.back(), want);
}

TEST(Mpi, SubGroupsAndAllToAllv) {
  Comm w = world();
  ASSERT_EQ(w.size() % 2, 0) << "run with an even number of ranks";
  Comm pairs = w.split(w.rank() / 2, w.rank(), "pair");
  ASSERT_EQ(pairs.size(), 2);
  const std::vector<float> s = pairs.all_reduce_sum({static_cast<float>(w.rank())});
  EXPECT_EQ(s[0], static_cast<float>(2 * (w.rank() / 2) * 2 + 1));
  std::vector<std::vector<uint8_t>> out(static_cast<size_t>(w.size()));
  for (int d = 0; d < w.size(); ++d) out[static_cast<size_t>(d)].assign(static_cast<size_t>(w.rank() + 2 * d), static_cast<uint8_t>(w.rank()));
  const auto in = w.all_to_allv(out);
  for (int src = 0; src < w.size(); ++src) {
    ASSERT_EQ(in[static_cast<size_t>(src)].size(), static_cast<size_t>(src + 2 * w.rank()));
    for (uint8_t b : in[static_cast<size_t>(src)]) EXPECT_EQ(b, src);
  }
  w.barrier();
}

TEST(Mpi, ASilentRankIsNamedAfterTheTimeout) {
  Comm w = world();
  if (w.rank() == 0) {
    w.transport().set_timeout_s(0.3);
    int v = 0;
    try {
      w.recv(1, 12345, &v, sizeof v);  // rank 1 never sends this
      ADD_FAILURE() << "expected a timeout";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank 0: no message from rank 1 within 0.3 s"), std::string::npos) << e.what();
    }
    w.transport().set_timeout_s(60.0);
  }
  w.barrier();
}

}  // namespace
}  // namespace preflight::parallel

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  (void)preflight::parallel::mpi_world();  // MPI_Init before any test
  return RUN_ALL_TESTS();
}
