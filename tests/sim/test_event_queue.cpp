// Exact integer-time tests of the event core, channels and the pipeline executor on
// small hand-built cases, and conservation (busy + idle = step time on every rank).
#include <gtest/gtest.h>

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

TEST(Pipeline, ConservationBusyPlusIdleEqualsStepTime) {
  for (Schedule k : {Schedule::gpipe, Schedule::one_f_one_b, Schedule::zb_h1, Schedule::dualpipe}) {
    const PipelineSchedule s = make_schedule(k, 4, 1, 12);
    PipelineCosts c = unit_costs(3, 4, 2, 6);
    c.p2p_s = [](int32_t from, int32_t to, Pass) { return from < to ? 1.0 : 2.0; };
    const PipelineRun run = run_pipeline(s, c);
    for (int r = 0; r < 4; ++r) {
      // Busy = sum of step durations, and no two steps of a rank overlap.
      double busy = 0, last_end = 0;
      for (const StepRecord& rec : run.steps) {
        if (rec.rank != r) continue;
        EXPECT_GE(rec.start_s, last_end) << to_string(k) << " rank " << r;
        last_end = rec.end_s;
        busy += rec.end_s - rec.start_s;
      }
      EXPECT_EQ(busy, run.busy_s[r]);
      const double idle = run.makespan_s - run.busy_s[r];
      EXPECT_GE(idle, 0);
      EXPECT_EQ(run.busy_s[r] + idle, run.makespan_s);
    }
  }
}

}  // namespace
}  // namespace preflight::sim
