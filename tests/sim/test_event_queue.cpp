// Exact integer-time tests of the event core, channels and the pipeline executor on
// small hand-built cases, and conservation against the costs and the dependencies.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "sim/event_queue.hpp"
#include "sim/schedule.hpp"

namespace preflight::sim {
namespace {

TEST(EventQueue, RunsInTimeThenInsertionOrder) {
  EventQueue q;
  std::vector<int> order;
  q.schedule(5, [&] { order.push_back(5); });
  q.schedule(1, [&] { order.push_back(1); });
  q.schedule(1, [&] {
    order.push_back(2);
    q.schedule(q.now() + 3, [&] { order.push_back(4); });
  });
  q.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 4, 5}));
  EXPECT_EQ(q.now(), 5);
}

TEST(Channel, SerialisesTransfers) {
  // 1 GB/s, 2 s latency: 3e9 bytes take 5 s; a second transfer ready at 1 waits until 5.
  Channel c(1.0, 2.0);
  EXPECT_EQ(c.transfer(0, 3e9), 5);
  EXPECT_EQ(c.transfer(1, 1e9), 8);
  EXPECT_EQ(c.transfer(20, 0), 22);
  EXPECT_EQ(c.busy_s(), 5 + 3 + 2);
}

TEST(Pipeline, TwoStage1F1BWithTransferTimeExactly) {
  // p = 2, m = 2, F = 2, X = 3, every P2P transfer 1 unit.
  // rank 0: F0 [0,2] F1 [2,4]; rank 1: F0 [3,5] X0 [5,8]; rank 0 X0 at 9 (grad arrives 8+1)
  // [9,12]; rank 1 F1 arrives 5 (sent at 4, link free) -> F1 [8,10] X1 [10,13];
  // rank 0 X1 [14,17]. Makespan 17.
  const PipelineSchedule s = make_schedule(Schedule::one_f_one_b, 2, 1, 2);
  PipelineCosts c = unit_costs(2, 3, 0);
  c.p2p_s = [](int32_t, int32_t, Pass) { return 1.0; };
  const PipelineRun run = run_pipeline(s, c);
  EXPECT_EQ(run.makespan_s, 17);
  EXPECT_EQ(run.busy_s[0], 10);
  EXPECT_EQ(run.busy_s[1], 10);
  EXPECT_EQ(run.end_s[1], 13);
  std::vector<std::pair<double, double>> rank0;
  for (const StepRecord& r : run.steps)
    if (r.rank == 0) rank0.emplace_back(r.start_s, r.end_s);
  EXPECT_EQ(rank0, (std::vector<std::pair<double, double>>{{0, 2}, {2, 4}, {9, 12}, {14, 17}}));
}

// Conservation, checked against numbers the executor does not produce itself: every
// program step runs exactly once; a rank's busy time is the sum of its steps' costs as
// the cost function gives them (in program order); no two steps of a rank overlap; no
// step starts before its inputs exist (F of stage s after F of s − 1 has ended and its
// activation crossed the link; a backward after the next stage's backward and the own F).
TEST(Pipeline, ConservationAgainstTheCostsAndDependencies) {
  for (Schedule k : {Schedule::gpipe, Schedule::one_f_one_b, Schedule::zb_h1, Schedule::dualpipe}) {
    const PipelineSchedule s = make_schedule(k, 4, 1, 12);
    PipelineCosts c = unit_costs(3, 4, 2, 6);
    c.p2p_s = [](int32_t from, int32_t to, Pass) { return from < to ? 1.0 : 2.0; };
    const PipelineRun run = run_pipeline(s, c);
    SCOPED_TRACE(to_string(k));
    // Each (rank, index) once.
    std::vector<std::vector<int>> seen(4);
    for (int r = 0; r < 4; ++r) seen[r].assign(s.programs[r].size(), 0);
    for (const StepRecord& rec : run.steps) ++seen[rec.rank][rec.index];
    for (int r = 0; r < 4; ++r)
      for (size_t i = 0; i < seen[r].size(); ++i) EXPECT_EQ(seen[r][i], 1) << "rank " << r << " step " << i;
    double latest_end = 0;
    for (int r = 0; r < 4; ++r) {
      double expect_busy = 0;
      for (const Step& st : s.programs[r]) expect_busy += c.step_s(st, r);
      // Integer costs: the sums are exact in either order.
      EXPECT_EQ(run.busy_s[r], expect_busy) << "rank " << r;
      double last_end = 0;
      int32_t last_index = -1;
      for (const StepRecord& rec : run.steps) {
        if (rec.rank != r) continue;
        EXPECT_GT(rec.index, last_index) << "rank " << r << ": program order";
        EXPECT_GE(rec.start_s, last_end) << "rank " << r << " step " << rec.index << " overlaps the previous one";
        EXPECT_EQ(rec.end_s - rec.start_s, c.step_s(s.programs[r][rec.index], r));
        last_end = rec.end_s;
        last_index = rec.index;
      }
      EXPECT_LE(run.busy_s[r], run.makespan_s);
      latest_end = std::max(latest_end, last_end);
    }
    EXPECT_EQ(run.makespan_s, latest_end);
    // Dependencies between stages of one micro-batch ('B' stands for B or X).
    std::map<std::tuple<char, int32_t, int32_t>, std::pair<double, double>> when;  // (pass, mb, stage) -> [start, end]
    for (const StepRecord& rec : run.steps) {
      const Step& st = s.programs[rec.rank][rec.index];
      for (int o = 0; o < st.count; ++o) {
        const char kind = st.op[o].pass == Pass::F ? 'F' : st.op[o].pass == Pass::W ? 'W' : 'B';
        EXPECT_TRUE(when.emplace(std::make_tuple(kind, st.op[o].mb, st.op[o].stage), std::make_pair(rec.start_s, rec.end_s)).second)
            << kind << st.op[o].mb << "/s" << st.op[o].stage << " twice";
      }
    }
    auto hop = [&](int32_t mb, int32_t from_stage, int32_t to_stage, Pass pass) {
      const int32_t a = s.rank_of(mb, from_stage), b = s.rank_of(mb, to_stage);
      return a == b ? 0.0 : c.p2p_s(a, b, pass);
    };
    for (const auto& [key, t] : when) {
      const auto [kind, mb, stage] = key;
      if (kind == 'F' && stage > 0) {
        EXPECT_GE(t.first, when.at({'F', mb, stage - 1}).second + hop(mb, stage - 1, stage, Pass::F))
            << "F" << mb << "/s" << stage << " before its input";
      }
      if (kind == 'B') {
        EXPECT_GE(t.first, when.at({'F', mb, stage}).second) << "backward before forward: mb " << mb << " s " << stage;
        if (stage + 1 < s.stages) {
          EXPECT_GE(t.first, when.at({'B', mb, stage + 1}).second + hop(mb, stage + 1, stage, Pass::B))
              << "B" << mb << "/s" << stage << " before its gradient";
        }
      }
      if (kind == 'W') {
        EXPECT_GE(t.first, when.at({'B', mb, stage}).second) << "W before B: mb " << mb << " s " << stage;
      }
    }
    // Every micro-batch passes every stage once forward and once backward.
    for (int32_t mb = 0; mb < s.microbatches; ++mb)
      for (int32_t st = 0; st < s.stages; ++st) {
        EXPECT_EQ(when.count({'F', mb, st}), 1u);
        EXPECT_EQ(when.count({'B', mb, st}), 1u);
      }
  }
}

}  // namespace
}  // namespace preflight::sim
