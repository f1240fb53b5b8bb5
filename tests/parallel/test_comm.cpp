// The communicator and its threads backend: message order, every collective against a
// serial oracle bit for bit, sub-groups, and failures that end the run with the rank named.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "parallel/comm.hpp"
#include "parallel/threads.hpp"
#include "reference/core/error.hpp"
#include "tests/parallel/oracle.hpp"

namespace preflight::parallel {
namespace {

TEST(TreeSum, MatchesTheDocumentedTreeAndNotALeftToRightSum) {
  int differs_from_serial = 0;
  for (size_t n = 1; n <= 40; ++n) {
    const std::vector<float> x = noise(n, static_cast<uint32_t>(n));
    std::vector<const float*> parts;
    for (const float& v : x) parts.push_back(&v);
    const float got = tree_sum(parts, 1)[0];
    EXPECT_EQ(bits(got), bits(oracle_tree(x))) << "n = " << n;
    float serial = 0;
    for (float v : x) serial = serial + v;
    differs_from_serial += bits(serial) != bits(got);
  }
  EXPECT_GT(differs_from_serial, 10);  // the data tells the orders apart
}

TEST(Threads, MessagesKeepTheirOrderPerPairAndTag) {
  run_threads(3, [](Comm& c) {
    if (c.rank() == 0) {
      for (int i = 0; i < 50; ++i) {
        c.send(1, 7, &i, sizeof i);
        const int j = 1000 + i;
        c.send(1, 8, &j, sizeof j);  // another tag, interleaved
        c.send(2, 7, &j, sizeof j);
      }
    } else {
      // Tag 8 first: each tag is its own ordered stream.
      for (int i = 0; i < 50; ++i) {
        int v = -1;
        if (c.rank() == 1) {
          c.recv(0, 8, &v, sizeof v);
          EXPECT_EQ(v, 1000 + i);
        }
      }
      for (int i = 0; i < 50; ++i) {
        int v = -1;
        c.recv(0, 7, &v, sizeof v);
        EXPECT_EQ(v, c.rank() == 1 ? i : 1000 + i);
      }
    }
  });
}

TEST(Threads, AllGatherBroadcastAndBarrier) {
  for (int n : {1, 2, 3, 5}) {
    std::atomic<int> arrived{0};
    run_threads(n, [&](Comm& c) {
      const int64_t mine[2] = {c.rank(), 100 + c.rank()};
      const std::vector<uint8_t> all = c.all_gather(mine, sizeof mine);
      ASSERT_EQ(all.size(), sizeof mine * static_cast<size_t>(n));
      for (int r = 0; r < n; ++r) {
        int64_t got[2];
        std::memcpy(got, all.data() + sizeof mine * static_cast<size_t>(r), sizeof got);
        EXPECT_EQ(got[0], r);
        EXPECT_EQ(got[1], 100 + r);
      }
      double value = c.rank() == n - 1 ? 3.25 : 0.0;
      c.broadcast(n - 1, &value, sizeof value);
      EXPECT_EQ(value, 3.25);
      arrived += 1;
      c.barrier();
      EXPECT_EQ(arrived.load(), n);  // nobody leaves the barrier before everyone reached it
    });
  }
}

TEST(Threads, AllReduceIsTheTreeOverRanksBitForBitOnEveryRank) {
  for (int n = 1; n <= 7; ++n) {
    const size_t len = 257;
    std::vector<std::vector<float>> contrib;
    for (int r = 0; r < n; ++r) contrib.push_back(noise(len, 100 + static_cast<uint32_t>(r)));
    std::vector<std::vector<float>> got(static_cast<size_t>(n));
    run_threads(n, [&](Comm& c) { got[static_cast<size_t>(c.rank())] = c.all_reduce_sum(contrib[static_cast<size_t>(c.rank())]); });
    for (size_t i = 0; i < len; ++i) {
      std::vector<float> column;
      for (int r = 0; r < n; ++r) column.push_back(contrib[static_cast<size_t>(r)][i]);
      const uint32_t want = bits(oracle_tree(column));
      for (int r = 0; r < n; ++r) ASSERT_EQ(bits(got[static_cast<size_t>(r)][i]), want) << "n " << n << " rank " << r << " i " << i;
    }
  }
}

TEST(Threads, ReduceScatterGivesEachRankItsBlockOfTheAllReduce) {
  const int n = 4;
  const size_t block = 33;
  std::vector<std::vector<float>> contrib, full(n), mine(n);
  for (int r = 0; r < n; ++r) contrib.push_back(noise(block * n, 7 + static_cast<uint32_t>(r)));
  run_threads(n, [&](Comm& c) {
    const auto r = static_cast<size_t>(c.rank());
    full[r] = c.all_reduce_sum(contrib[r]);
    mine[r] = c.reduce_scatter_sum(contrib[r], block);
  });
  for (size_t r = 0; r < n; ++r)
    for (size_t i = 0; i < block; ++i) ASSERT_EQ(bits(mine[r][i]), bits(full[0][r * block + i])) << r << " " << i;
}

TEST(Threads, AllToAllvDeliversVariableSizedBuffers) {
  const int n = 4;
  run_threads(n, [&](Comm& c) {
    std::vector<std::vector<uint8_t>> out(n);
    for (int d = 0; d < n; ++d) out[static_cast<size_t>(d)].assign(static_cast<size_t>(c.rank() * 3 + d), static_cast<uint8_t>(16 * c.rank() + d));
    const auto in = c.all_to_allv(out);
    for (int s = 0; s < n; ++s) {
      ASSERT_EQ(in[static_cast<size_t>(s)].size(), static_cast<size_t>(s * 3 + c.rank()));
      for (uint8_t b : in[static_cast<size_t>(s)]) EXPECT_EQ(b, 16 * s + c.rank());
    }
  });
}

// 6 ranks as a 2 x 3 grid (world rank = 3·row + col): rows and columns are sub-groups, and a
// message in one group never meets a receive with the same tag in another.
TEST(Threads, SplitFormsIndependentOrderedSubGroups) {
  run_threads(6, [](Comm& w) {
    const int row = w.rank() / 3, col = w.rank() % 3;
    Comm rows = w.split(row, col, "row");
    Comm cols = w.split(col, -row, "col");  // key -row: reversed order within a column
    ASSERT_EQ(rows.size(), 3);
    ASSERT_EQ(cols.size(), 2);
    EXPECT_EQ(rows.rank(), col);
    EXPECT_EQ(cols.rank(), 1 - row);
    EXPECT_EQ(rows.world_rank_of(rows.rank()), w.rank());
    const std::vector<float> sum = rows.all_reduce_sum({static_cast<float>(w.rank())});
    EXPECT_EQ(sum[0], static_cast<float>(3 * row + 0 + 3 * row + 1 + 3 * row + 2));
    // Same user tag in both groups at once.
    const int v = w.rank();
    if (rows.rank() == 0) rows.send(1, 5, &v, sizeof v);
    if (cols.rank() == 0) cols.send(1, 5, &v, sizeof v);
    if (rows.rank() == 1) {
      int got = -1;
      rows.recv(0, 5, &got, sizeof got);
      EXPECT_EQ(got, 3 * row);
    }
    if (cols.rank() == 1) {
      int got = -1;
      cols.recv(0, 5, &got, sizeof got);
      EXPECT_EQ(got, 3 * 1 + col);  // column rank 0 is row 1 (key -row)
    }
    w.barrier();
  });
}

// The property the DP trainer relies on: when each of D ranks (D = 2^d) holds an aligned
// block of K/D micro-batches (K/D = 2^k), its local tree sum is a subtree of the global
// one, and the tree over ranks reproduces the one-device sum over K bit for bit.
TEST(Threads, MicroBatchTreeSurvivesDataParallelSplitting) {
  const size_t len = 129;
  const int K = 8;
  std::vector<std::vector<float>> g;
  for (int j = 0; j < K; ++j) g.push_back(noise(len, 500 + static_cast<uint32_t>(j)));
  std::vector<const float*> all;
  for (const auto& v : g) all.push_back(v.data());
  const std::vector<float> one_device = tree_sum(all, len);
  for (int D : {1, 2, 4, 8}) {
    std::vector<float> got;
    std::mutex mu;
    run_threads(D, [&](Comm& c) {
      const int per = K / D;
      std::vector<const float*> local;
      for (int j = c.rank() * per; j < (c.rank() + 1) * per; ++j) local.push_back(g[static_cast<size_t>(j)].data());
      const std::vector<float> sum = c.all_reduce_sum(tree_sum(local, len));
      std::lock_guard<std::mutex> lock(mu);
      if (c.rank() == 0) got = sum;
    });
    for (size_t i = 0; i < len; ++i) ASSERT_EQ(bits(got[i]), bits(one_device[i])) << "D " << D << " i " << i;
  }
}

TEST(Threads, AFailingRankIsNamedAndNobodyHangs) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    run_threads(4, [](Comm& c) {
      if (c.rank() == 2) fail("injected failure");
      std::vector<float> x(4, 1.0f);
      c.all_reduce_sum(x);  // waits for rank 2, which never arrives
    }, ThreadsOptions{30.0});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("rank 2 of 4: ", 0), 0u) << m;
    EXPECT_NE(m.find("injected failure"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  // The failure reaches the waiting ranks at once, not after the 30 s timeout.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

TEST(Threads, ASilentRankTimesOutNamingIt) {
  try {
    run_threads(2, [](Comm& c) {
      if (c.rank() == 0) {
        int v = 0;
        c.recv(1, 3, &v, sizeof v);  // rank 1 never sends
      }
    }, ThreadsOptions{0.2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0: no message from rank 1 within 0.2 s"), std::string::npos) << e.what();
  }
}

TEST(Threads, MismatchedSizesAndBadPeersAreErrors) {
  EXPECT_THROW(run_threads(2, [](Comm& c) {
    const int64_t v = 1;
    if (c.rank() == 0) c.send(1, 1, &v, sizeof v);
    else {
      int32_t w = 0;
      c.recv(0, 1, &w, sizeof w);  // 4 bytes expected, 8 sent
    }
  }), Error);
  EXPECT_THROW(run_threads(2, [](Comm& c) {
    int v = 0;
    c.send(2, 1, &v, sizeof v);
  }), Error);
  EXPECT_THROW(run_threads(0, [](Comm&) {}), Error);
}

}  // namespace
}  // namespace preflight::parallel
