// Unit-time schedule tests: every schedule's idle time per rank (step time − busy)
// equals its closed form from the literature exactly, with integer op times (ZB-H2's in
// the steady state of back-to-back steps, where the paper states it); peak activations
// follow the op lists; the DualPipe/DualPipeV op lists match the 8-phase loop counts on
// every rank.
#include <gtest/gtest.h>

#include <algorithm>

#include "reference/core/error.hpp"
#include "sim/schedule.hpp"

namespace preflight::sim {
namespace {

struct Case {
  Schedule kind;
  int p, v, m;
  double f, b, w;  // b = input-gradient pass only
};

std::string name_of(const Case& c) {
  return detail::concat(to_string(c.kind), "_p", c.p, "_v", c.v, "_m", c.m, "_F", c.f, "_B", c.b, "_W", c.w);
}

// Idle per rank: step time − busy time.
std::vector<double> idle(const Case& c, double pair = -1) {
  const PipelineSchedule s = make_schedule(c.kind, c.p, c.v, c.m);
  const PipelineRun run = run_pipeline(s, unit_costs(c.f, c.b, c.w, pair));
  std::vector<double> out;
  for (int r = 0; r < c.p; ++r) out.push_back(run.makespan_s - run.busy_s[r]);
  return out;
}

TEST(Schedules, GPipeAnd1F1BBubbleIsPMinus1TimesFPlusB) {
  // Megatron-LM: (p−1)·(t_f + t_b), t_b the full backward (B + W), on every rank.
  for (Case c : {Case{Schedule::gpipe, 4, 1, 8, 1, 1, 1}, Case{Schedule::gpipe, 5, 1, 3, 2, 3, 1},
                 Case{Schedule::one_f_one_b, 4, 1, 8, 1, 1, 1}, Case{Schedule::one_f_one_b, 8, 1, 8, 2, 3, 1},
                 Case{Schedule::one_f_one_b, 6, 1, 30, 3, 2, 2}}) {
    for (double v : idle(c)) EXPECT_EQ(v, (c.p - 1) * (c.f + c.b + c.w)) << name_of(c);
  }
}

TEST(Schedules, InterleavedBubbleIsOneVthOf1F1B) {
  // (p−1)·(t_f + t_b)/v with t_f, t_b of a whole rank = v chunks: (p−1)·(F + B) per chunk.
  for (Case c : {Case{Schedule::interleaved_1f1b, 4, 2, 8, 1, 1, 1}, Case{Schedule::interleaved_1f1b, 4, 3, 12, 1, 1, 1},
                 Case{Schedule::interleaved_1f1b, 8, 2, 16, 2, 3, 1}, Case{Schedule::interleaved_1f1b, 4, 4, 16, 1, 2, 2}}) {
    for (double v : idle(c)) EXPECT_EQ(v, (c.p - 1) * (c.f + c.b + c.w)) << name_of(c);
  }
}

TEST(Schedules, ZbH1BubbleIsPMinus1TimesFPlusBMinusW) {
  // Qi et al.: (p−1)(T_F + T_B − T_W) for T_W <= T_F, T_B; one third of 1F1B's at F = B = W.
  for (Case c : {Case{Schedule::zb_h1, 4, 1, 8, 1, 1, 1}, Case{Schedule::zb_h1, 6, 1, 12, 1, 1, 1},
                 Case{Schedule::zb_h1, 4, 1, 8, 2, 3, 1}, Case{Schedule::zb_h1, 4, 1, 8, 3, 2, 1},
                 Case{Schedule::zb_h1, 8, 1, 24, 2, 2, 2}}) {
    for (double v : idle(c)) EXPECT_EQ(v, (c.p - 1) * (c.f + c.b - c.w)) << name_of(c);
  }
  const std::vector<double> zb = idle({Schedule::zb_h1, 4, 1, 8, 1, 1, 1});
  const std::vector<double> ofob = idle({Schedule::one_f_one_b, 4, 1, 8, 1, 1, 1});
  EXPECT_EQ(3 * zb[0], ofob[0]);
}

TEST(Schedules, ZbH2IsAParallelogramWithoutGaps) {
  // One step, T_F = T_B = T_W = 1, m >= 2p − 1: rank r runs from r to r + 3m without a
  // gap (the paper's parallelogram) and holds at most 2p − 1 micro-batches.
  for (int p : {2, 4, 8}) {
    for (int m : {2 * p - 1, 2 * p, 3 * p + 1}) {
      const PipelineSchedule s = make_schedule(Schedule::zb_h2, p, 1, m);
      const PipelineRun run = run_pipeline(s, unit_costs(1, 1, 1));
      EXPECT_EQ(run.makespan_s, 3 * m + p - 1) << "p " << p << " m " << m;
      for (int r = 0; r < p; ++r) {
        double first = run.makespan_s, last = 0;
        for (const StepRecord& rec : run.steps) {
          if (rec.rank != r) continue;
          first = std::min(first, rec.start_s);
          last = std::max(last, rec.end_s);
        }
        EXPECT_EQ(first, r) << "p " << p << " m " << m << " rank " << r;
        EXPECT_EQ(last, r + 3 * m) << "p " << p << " m " << m << " rank " << r;
        EXPECT_EQ(last - first, run.busy_s[r]) << "p " << p << " m " << m << " rank " << r;
      }
      for (int v : peak_in_flight(s)) EXPECT_EQ(v, 2 * p - 1) << "p " << p << " m " << m;
    }
  }
}

TEST(Schedules, ZbH2SteadyStateBubbleIsPMinus1TimesFPlusBMinus2W) {
  // Qi et al.: ZB-H2's bubble is (p−1)(T_F + T_B − 2T_W), zero at T_F = T_B = T_W. The
  // claim is for the steady state of back-to-back steps (the optimizer's post-validation
  // lets each rank start the next step right after its own last W): there, the time
  // between the ends of two consecutive steps on every rank is m(T_F + T_B + T_W) plus
  // exactly that bubble.
  struct Times {
    double f, b, w;
  };
  for (int p : {2, 4, 8}) {
    for (int m : {2 * p - 1, 2 * p, 3 * p + 1}) {
      for (Times t : {Times{1, 1, 1}, Times{2, 2, 1}, Times{3, 2, 1}, Times{2, 3, 1}, Times{1, 2, 1}, Times{2, 1, 1}}) {
        const int steps = 3;
        const PipelineSchedule one = make_schedule(Schedule::zb_h2, p, 1, m);
        const PipelineSchedule s = repeat_steps(one, steps);
        const PipelineRun run = run_pipeline(s, unit_costs(t.f, t.b, t.w));
        const double bubble = (p - 1) * (t.f + t.b - 2 * t.w);
        for (int r = 0; r < p; ++r) {
          const size_t per_step = one.programs[r].size();
          std::vector<double> end(steps, 0);
          for (const StepRecord& rec : run.steps)
            if (rec.rank == r) end[rec.index / per_step] = std::max(end[rec.index / per_step], rec.end_s);
          for (int k = 1; k < steps; ++k)
            EXPECT_EQ(end[k] - end[k - 1], m * (t.f + t.b + t.w) + bubble)
                << "p " << p << " m " << m << " F " << t.f << " B " << t.b << " W " << t.w << " rank " << r;
        }
      }
    }
  }
}

TEST(Schedules, DualPipeTableBubble) {
  // DualPipe table: (PP/2 − 1)(F&B + B − 3W), B the full backward; with F = B−W = W the
  // largest idle of a rank. Third-party figure: p = 8, m = 20 gives 66-unit rows with 6 idle.
  {
    const PipelineSchedule s = make_schedule(Schedule::dualpipe, 8, 1, 20);
    const PipelineRun run = run_pipeline(s, unit_costs(1, 1, 1));
    EXPECT_EQ(run.makespan_s, 66);
    for (int r = 0; r < 8; ++r) EXPECT_EQ(run.makespan_s - run.busy_s[r], 6) << "rank " << r;
  }
  for (int p : {4, 8, 16}) {
    for (int m : {2 * p, 2 * p + 6, 120}) {
      for (double pair : {-1.0, 2.5, 2.0}) {
        const double f = 1, b_full = 2, w = 1;
        const double fb = pair < 0 ? f + b_full : pair;
        const std::vector<double> v = idle({Schedule::dualpipe, p, 1, m, 1, 1, 1}, pair);
        EXPECT_EQ(*std::max_element(v.begin(), v.end()), (p / 2 - 1) * (fb + b_full - 3 * w))
            << "p " << p << " m " << m << " pair " << pair;
      }
    }
  }
}

TEST(Schedules, DualPipeVTableBubble) {
  // Same formula with PP = 2 × ranks (PP stages on PP/2 devices).
  for (int n : {2, 4, 8}) {
    for (int m : {2 * n, 2 * n + 5, 40}) {
      for (double pair : {-1.0, 2.5}) {
        const double fb = pair < 0 ? 3 : pair;
        const std::vector<double> v = idle({Schedule::dualpipev, n, 2, m, 1, 1, 1}, pair);
        EXPECT_EQ(*std::max_element(v.begin(), v.end()), (n - 1) * (fb + 2 - 3)) << "n " << n << " m " << m;
      }
    }
  }
}

TEST(Schedules, PeakActivationsMatchTheTables) {
  // 1F1B: p on rank 0; GPipe: m; ZB-H1: p; ZB-H2: 2p − 1; DualPipe / DualPipeV: PP + 1
  // (stages) on every rank.
  EXPECT_EQ(peak_in_flight(make_schedule(Schedule::one_f_one_b, 8, 1, 32))[0], 8);
  EXPECT_EQ(peak_in_flight(make_schedule(Schedule::gpipe, 8, 1, 32))[0], 32);
  for (int v : peak_in_flight(make_schedule(Schedule::zb_h1, 8, 1, 32))) EXPECT_EQ(v, 8);
  for (int v : peak_in_flight(make_schedule(Schedule::zb_h2, 8, 1, 32))) EXPECT_EQ(v, 15);
  for (int v : peak_in_flight(make_schedule(Schedule::dualpipe, 16, 1, 120))) EXPECT_EQ(v, 17);
  for (int v : peak_in_flight(make_schedule(Schedule::dualpipev, 8, 2, 40))) EXPECT_EQ(v, 17);
}

TEST(Schedules, InterleavedHoldsItsWarmUpPlusOneChunk) {
  // Megatron's interleaved 1F1B: rank r runs 2(p − r − 1) + (v − 1)p warm-up forwards of
  // chunks (1/v of the rank's layers each) and one more before its first backward, so
  // it holds 2(p − r − 1) + (v − 1)p + 1 chunks: p + (p − 1)/v micro-batches' worth of
  // its layers on rank 0, against p for 1F1B. Llama 3's p = 16, v = 2: 47 chunks on rank 0.
  for (int p : {4, 8, 16}) {
    for (int v : {2, 3, 4}) {
      const std::vector<int32_t> peak = peak_in_flight(make_schedule(Schedule::interleaved_1f1b, p, v, 2 * p));
      for (int r = 0; r < p; ++r) EXPECT_EQ(peak[r], 2 * (p - r - 1) + (v - 1) * p + 1) << "p " << p << " v " << v;
      EXPECT_EQ(static_cast<double>(peak[0]) / v, p + static_cast<double>(p - 1) / v);
    }
  }
  EXPECT_EQ(peak_in_flight(make_schedule(Schedule::interleaved_1f1b, 16, 2, 32))[0], 47);
}

// Counts the 8 phases back from a rank's op list, by the op pattern of each phase.
TEST(Schedules, DualPipeOpListsFollowTheEightPhases) {
  for (bool v_shape : {false, true}) {
    for (int p : {4, 8, 16}) {
      const int m = v_shape ? 3 * p : 4 * p;
      const PipelineSchedule s = make_schedule(v_shape ? Schedule::dualpipev : Schedule::dualpipe, p, v_shape ? 2 : 1, m);
      for (int r = 0; r < p; ++r) {
        const int h = v_shape ? p : p / 2;
        const int hr = v_shape ? r : std::min(r, p - 1 - r);
        const int n = v_shape ? m : m / 2;
        const std::vector<Step>& prog = s.programs[r];
        const std::vector<int32_t> held = s.stages_of(r);
        // Local phase 0 is the stage of the micro-batches that start on this rank's side.
        const int32_t st0 = v_shape ? r : (r < p / 2 ? r : p - 1 - r);
        const int32_t st1 = v_shape ? 2 * p - 1 - r : (r < p / 2 ? p - 1 - r : r);
        size_t i = 0;
        auto is = [&](Pass pass, int32_t stage) {
          return i < prog.size() && prog[i].count == 1 && prog[i].op[0].pass == pass &&
                 (stage < 0 || prog[i].op[0].stage == stage);
        };
        auto expect = [&](Pass pass, int32_t stage, const char* phase) {
          ASSERT_TRUE(is(pass, stage)) << (v_shape ? "dualpipev" : "dualpipe") << " p " << p << " rank " << r
                                       << " " << phase << " at step " << i;
          ++i;
        };
        auto expect_pair = [&](int32_t fstage, int32_t bstage, const char* phase) {
          ASSERT_TRUE(i < prog.size() && prog[i].count == 2 && prog[i].op[0].stage == fstage &&
                      prog[i].op[1].stage == bstage && prog[i].op[1].pass == Pass::X)
              << "p " << p << " rank " << r << " " << phase << " at step " << i;
          ++i;
        };
        for (int k = 0; k < 2 * (h - hr - 1); ++k) expect(Pass::F, st0, "phase 1");
        for (int k = 0; k < hr + 1; ++k) {
          expect(Pass::F, st0, "phase 2");
          expect(Pass::F, st1, "phase 2");
        }
        for (int k = 0; k < h - hr - 1; ++k) {
          expect(Pass::B, st1, "phase 3");
          expect(Pass::W, st1, "phase 3");
          expect(Pass::F, st1, "phase 3");
        }
        for (int k = 0; k < n - 2 * h + hr + 1; ++k) {
          if (k == 0 && hr == h - 1) {
            expect(Pass::F, st0, "phase 4 (middle)");
            expect(Pass::X, st1, "phase 4 (middle)");
          } else {
            expect_pair(st0, st1, "phase 4");
          }
          expect_pair(st1, st0, "phase 4");
        }
        for (int k = 0; k < h - hr - 1; ++k) {
          expect(Pass::X, st1, "phase 5");
          expect_pair(st1, st0, "phase 5");
        }
        for (int k = 0; k < hr + 1; ++k) {
          ASSERT_TRUE(is(Pass::X, st1) || is(Pass::B, st1)) << "phase 6 rank " << r;
          ++i;
          ASSERT_TRUE(is(Pass::X, st0) || is(Pass::B, st0)) << "phase 6 rank " << r;
          ++i;
        }
        for (int k = 0; k < h - hr - 1; ++k) {
          expect(Pass::W, -1, "phase 7");
          expect(Pass::B, st0, "phase 7");
        }
        for (int k = 0; k < hr + 1; ++k) expect(Pass::W, -1, "phase 8");
        EXPECT_EQ(i, prog.size()) << "rank " << r;
        EXPECT_EQ(held.size(), v_shape || p > 1 ? 2u : 1u);
      }
    }
  }
}

TEST(Schedules, ConstraintsAreNamed) {
  auto msg = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg([] { make_schedule(Schedule::dualpipe, 5, 1, 20); }).find("even pp"), std::string::npos);
  EXPECT_NE(msg([] { make_schedule(Schedule::dualpipe, 8, 1, 10); }).find("too few micro-batches"), std::string::npos);
  EXPECT_NE(msg([] { make_schedule(Schedule::one_f_one_b, 8, 1, 4); }).find("too few micro-batches"), std::string::npos);
  EXPECT_NE(msg([] { make_schedule(Schedule::interleaved_1f1b, 4, 2, 6); }).find("multiple of pp"), std::string::npos);
}

TEST(Schedules, IllegalListsAreRejected) {
  PipelineSchedule s = make_schedule(Schedule::one_f_one_b, 2, 1, 2);
  // Swap rank 1's first two steps: its backward before its forward.
  std::swap(s.programs[1][0], s.programs[1][1]);
  EXPECT_THROW(check_legal(s), Error);
  // A deadlock: rank 0 waits for a gradient before sending the forward it depends on.
  PipelineSchedule d = make_schedule(Schedule::gpipe, 2, 1, 1);
  d.programs[0] = {d.programs[0][0], d.programs[0][1]};
  d.programs[1] = {d.programs[1][0], d.programs[1][1]};
  PipelineSchedule dl = d;
  // rank 1: X(mb 0) needs F(mb 0) on rank 1, which is fine; make rank 0 wait for its own
  // gradient first by moving F(mb 0, stage 0) after X on rank 0 is illegal (caught above);
  // instead give rank 1 a forward of micro-batch 0 after a step it cannot run.
  dl.microbatches = 2;
  dl.mb_direction = {0, 0};
  dl.programs[0] = {dl.programs[0][0]};
  dl.programs[0][0].op[0].mb = 1;
  Step x1 = d.programs[0][1];
  x1.op[0].mb = 1;
  Step f0 = d.programs[0][0];
  Step x0 = d.programs[0][1];
  dl.programs[0] = {f0, x0, dl.programs[0][0], x1};
  Step g1 = d.programs[1][0];
  g1.op[0].mb = 1;
  Step gx1 = d.programs[1][1];
  gx1.op[0].mb = 1;
  dl.programs[1] = {g1, gx1, d.programs[1][0], d.programs[1][1]};
  // rank 0 does F0 then X0 (needs rank 1's X0); rank 1 does F1 first (needs rank 0's F1,
  // which comes after X0): a cycle.
  check_legal(dl);
  try {
    run_pipeline(dl, unit_costs(1, 1, 1));
    FAIL() << "expected a deadlock";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace preflight::sim
