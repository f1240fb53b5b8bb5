#include "sim/schedule.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <set>
#include <tuple>

#include "reference/core/error.hpp"
#include "sim/event_queue.hpp"

namespace preflight::sim {

char pass_letter(Pass p) {
  switch (p) {
    case Pass::F: return 'F';
    case Pass::B: return 'B';
    case Pass::W: return 'W';
    case Pass::X: return 'X';
  }
  return '?';
}

std::vector<int32_t> PipelineSchedule::stages_of(int32_t rank) const {
  if (static_cast<int32_t>(rank_stages.size()) == ranks) return rank_stages[rank];
  std::set<int32_t> s;
  for (const auto& dir : stage_rank)
    for (int32_t stage = 0; stage < stages; ++stage)
      if (dir[stage] == rank) s.insert(stage);
  return {s.begin(), s.end()};
}

namespace {

Step single(Pass pass, int32_t mb, int32_t stage) {
  Step s;
  s.op[0] = Op{pass, mb, stage};
  return s;
}
Step pair(Op forward, Op backward) {
  Step s;
  s.op[0] = forward;
  s.op[1] = backward;
  s.count = 2;
  return s;
}

PipelineSchedule base(Schedule kind, int32_t p, int32_t stages, int32_t m) {
  PipelineSchedule s;
  s.kind = kind;
  s.ranks = p;
  s.stages = stages;
  s.microbatches = m;
  s.mb_direction.assign(m, 0);
  s.stage_rank.assign(1, std::vector<int32_t>(stages));
  for (int32_t k = 0; k < stages; ++k) s.stage_rank[0][k] = k % p;
  s.programs.assign(p, {});
  return s;
}

// GPipe: all forwards, then all backwards, in micro-batch order.
void gpipe(PipelineSchedule& s) {
  for (int32_t r = 0; r < s.ranks; ++r) {
    for (int32_t mb = 0; mb < s.microbatches; ++mb) s.programs[r].push_back(single(Pass::F, mb, r));
    for (int32_t mb = 0; mb < s.microbatches; ++mb) s.programs[r].push_back(single(Pass::X, mb, r));
  }
}

// 1F1B (PipeDream-flush): p − r − 1 warm-up forwards, then one forward / one backward,
// then the remaining backwards.
void one_f_one_b(PipelineSchedule& s) {
  const int32_t p = s.ranks, m = s.microbatches;
  for (int32_t r = 0; r < p; ++r) {
    auto& prog = s.programs[r];
    const int32_t warmup = std::min(p - r - 1, m);
    int32_t next_f = 0, next_b = 0;
    for (; next_f < warmup; ++next_f) prog.push_back(single(Pass::F, next_f, r));
    while (next_b < m) {
      if (next_f < m) prog.push_back(single(Pass::F, next_f++, r));
      prog.push_back(single(Pass::X, next_b++, r));
    }
  }
}

// ZB-H1 (Qi et al. 2024): 1F1B's warm-up and in-flight limit, backward split into B and
// W; rank r lets up to r weight-gradient passes wait, and runs them in the cool-down
// where 1F1B idles. Bubble (p−1)(F+B−W) for W <= F, B.
void zb_h1(PipelineSchedule& s) {
  const int32_t p = s.ranks, m = s.microbatches;
  for (int32_t r = 0; r < p; ++r) {
    auto& prog = s.programs[r];
    const int32_t warmup = std::min(p - r - 1, m);
    const int32_t max_waiting_w = r;
    int32_t next_f = 0, next_b = 0, next_w = 0;
    for (; next_f < warmup; ++next_f) prog.push_back(single(Pass::F, next_f, r));
    while (next_b < m) {
      if (next_f < m) prog.push_back(single(Pass::F, next_f++, r));
      prog.push_back(single(Pass::B, next_b++, r));
      if (next_b - next_w > max_waiting_w) prog.push_back(single(Pass::W, next_w++, r));
    }
    while (next_w < m) prog.push_back(single(Pass::W, next_w++, r));
  }
}

// ZB-H2 (Qi et al. 2024): 2(p − r − 1) warm-up forwards, so that rank r has run
// 2(p − r − 1) + 1 forwards when its first input gradient arrives, and rank r lets up to
// 2r weight-gradient passes wait, so that the last ranks, which have no warm-up to fill,
// push their W passes to the end where the first ranks would idle. With T_F = T_B = T_W
// and m >= 2p − 1 every rank runs without a gap from its first op to its last: the
// parallelogram of the paper, rank r on [r·T_F, r·T_F + m(T_F + T_B + T_W)], peak
// activations 2p − 1 on every rank. One step alone still shows the (p − 1)·T_F skew;
// the paper's zero bubble is for back-to-back steps (repeat_steps), where the optimizer's
// post-validation lets rank r start the next step as soon as its own last W is done.
void zb_h2(PipelineSchedule& s) {
  const int32_t p = s.ranks, m = s.microbatches;
  for (int32_t r = 0; r < p; ++r) {
    auto& prog = s.programs[r];
    const int32_t warmup = std::min(2 * (p - r - 1), m);
    const int32_t max_waiting_w = 2 * r;
    int32_t next_f = 0, next_b = 0, next_w = 0;
    for (; next_f < warmup; ++next_f) prog.push_back(single(Pass::F, next_f, r));
    while (next_b < m) {
      if (next_f < m) prog.push_back(single(Pass::F, next_f++, r));
      prog.push_back(single(Pass::B, next_b++, r));
      if (next_b - next_w > max_waiting_w) prog.push_back(single(Pass::W, next_w++, r));
    }
    while (next_w < m) prog.push_back(single(Pass::W, next_w++, r));
  }
}

// Interleaved 1F1B (Megatron-LM): rank r holds model stages c·p + r for chunks c < v.
// The k-th forward of a rank runs chunk (k / p) mod v on micro-batch (k / (p·v))·p + k mod p;
// the k-th backward runs chunk v − 1 − (k / p) mod v. Warm-up (p − r − 1)·2 + (v − 1)·p.
void interleaved(PipelineSchedule& s, int32_t v) {
  const int32_t p = s.ranks, m = s.microbatches, total = m * v;
  for (int32_t r = 0; r < p; ++r) {
    auto& prog = s.programs[r];
    auto fwd = [&](int32_t k) {
      const int32_t chunk = (k / p) % v;
      return single(Pass::F, (k / (p * v)) * p + k % p, chunk * p + r);
    };
    auto bwd = [&](int32_t k) {
      const int32_t chunk = v - 1 - (k / p) % v;
      return single(Pass::X, (k / (p * v)) * p + k % p, chunk * p + r);
    };
    const int32_t warmup = m == p ? total : std::min((p - r - 1) * 2 + (v - 1) * p, total);
    int32_t next_f = 0, next_b = 0;
    for (; next_f < warmup; ++next_f) prog.push_back(fwd(next_f));
    while (next_b < total) {
      if (next_f < total) prog.push_back(fwd(next_f++));
      prog.push_back(bwd(next_b++));
    }
  }
}

// DualPipe and DualPipeV, after DeepSeek's reference implementation: eight named phases
// per rank with the loop counts of docs/SIMULATOR.md. A rank sees two "local phases":
// 0 and 1 (its two stages). Backward passes either run whole (X) or, where the reference
// enables zero-bubble, as B with the W queued and popped later by a weight step.
class DualPipeBuilder {
 public:
  DualPipeBuilder(PipelineSchedule& s, int32_t rank, bool v_shape) : s_(s), rank_(rank), v_(v_shape) {
    const int32_t p = s.ranks;
    if (v_) {
      stage_[0] = rank;               // down leg of the V
      stage_[1] = 2 * p - 1 - rank;   // up leg
      dir_[0] = dir_[1] = 0;
      per_phase_mbs_ = s.microbatches;
    } else {
      const bool second_half = rank >= p / 2;
      for (int32_t ph = 0; ph < 2; ++ph) {
        dir_[ph] = ph ^ (second_half ? 1 : 0);
        stage_[ph] = dir_[ph] == 0 ? rank : p - 1 - rank;
      }
      per_phase_mbs_ = s.microbatches / 2;
    }
  }
  void forward(int32_t ph) { prog().push_back(single(Pass::F, next_mb(ph, 0), stage_[ph])); }
  void backward(int32_t ph, bool zero_bubble) {
    const int32_t mb = next_mb(ph, 1);
    if (zero_bubble) {
      prog().push_back(single(Pass::B, mb, stage_[ph]));
      weights_.push_back(Op{Pass::W, mb, stage_[ph]});
    } else {
      prog().push_back(single(Pass::X, mb, stage_[ph]));
    }
  }
  void forward_backward(int32_t ph_f, int32_t ph_b) {
    const Op f{Pass::F, next_mb(ph_f, 0), stage_[ph_f]};
    const Op b{Pass::X, next_mb(ph_b, 1), stage_[ph_b]};
    prog().push_back(pair(f, b));
  }
  void weight() {
    PREFLIGHT_CHECK(!weights_.empty(), "DualPipe weight step with no queued W on rank ", rank_);
    prog().push_back(single(Pass::W, weights_.front().mb, weights_.front().stage));
    weights_.pop_front();
  }
  bool queue_empty() const { return weights_.empty(); }
  int32_t issued(int32_t ph, int32_t kind) const { return counter_[ph][kind]; }
  int32_t per_phase_mbs() const { return per_phase_mbs_; }

 private:
  std::vector<Step>& prog() { return s_.programs[rank_]; }
  // Micro-batches of direction d are numbered d·(m/2) + i (DualPipe) or i (DualPipeV).
  int32_t next_mb(int32_t ph, int32_t kind) {
    const int32_t i = counter_[ph][kind]++;
    PREFLIGHT_CHECK(i < per_phase_mbs_, "DualPipe rank ", rank_, " phase ", ph, " ran out of micro-batches");
    return v_ ? i : dir_[ph] * per_phase_mbs_ + i;
  }
  PipelineSchedule& s_;
  int32_t rank_;
  bool v_;
  int32_t stage_[2] = {0, 0};
  int32_t dir_[2] = {0, 0};
  int32_t counter_[2][2] = {{0, 0}, {0, 0}};
  int32_t per_phase_mbs_ = 0;
  std::deque<Op> weights_;
};

void dualpipe(PipelineSchedule& s, bool v_shape) {
  const int32_t p = s.ranks, m = s.microbatches;
  if (v_shape) {
    s.stage_rank.assign(1, std::vector<int32_t>(2 * p));
    for (int32_t k = 0; k < 2 * p; ++k) s.stage_rank[0][k] = k < p ? k : 2 * p - 1 - k;
  } else {
    s.stage_rank.assign(2, std::vector<int32_t>(p));
    for (int32_t k = 0; k < p; ++k) {
      s.stage_rank[0][k] = k;
      s.stage_rank[1][k] = p - 1 - k;
    }
    for (int32_t mb = 0; mb < m; ++mb) s.mb_direction[mb] = mb < m / 2 ? 0 : 1;
  }
  for (int32_t r = 0; r < p; ++r) {
    DualPipeBuilder b(s, r, v_shape);
    // DualPipe: h = p/2 half-ranks, hr = min(r, p−1−r), n = m/2 per direction.
    // DualPipeV: the same with r for hr, p for h, and n = m.
    const int32_t h = v_shape ? p : p / 2;
    const int32_t hr = v_shape ? r : std::min(r, p - 1 - r);
    const int32_t n = b.per_phase_mbs();
    const bool middle = hr == h - 1;  // DualPipe: the two middle ranks; DualPipeV: the last rank
    // Phase 1: nF0
    for (int32_t i = 0; i < 2 * (h - hr - 1); ++i) b.forward(0);
    // Phase 2: nF0F1
    for (int32_t i = 0; i < hr + 1; ++i) {
      b.forward(0);
      b.forward(1);
    }
    // Phase 3: nB1W1F1 (zero bubble)
    for (int32_t i = 0; i < h - hr - 1; ++i) {
      b.backward(1, true);
      b.weight();
      b.forward(1);
    }
    // Phase 4 (main): nF0B1F1B0, overlapped pairs; the middle rank does not overlap its first pair.
    const int32_t phase4 = n - 2 * h + hr + 1;
    for (int32_t i = 0; i < phase4; ++i) {
      if (i == 0 && middle) {
        b.forward(0);
        b.backward(1, false);
      } else {
        b.forward_backward(0, 1);
      }
      b.forward_backward(1, 0);
    }
    // Phase 5: nB1F1B0
    for (int32_t i = 0; i < h - hr - 1; ++i) {
      b.backward(1, false);
      b.forward_backward(1, 0);
    }
    // Phase 6: nB1B0; the second half of the iterations defer W (zero bubble).
    const int32_t phase6 = hr + 1;
    bool zb = false;
    for (int32_t i = 0; i < phase6; ++i) {
      if (i == phase6 / 2 && hr % 2 == 1) zb = true;
      b.backward(1, zb);
      if (i == phase6 / 2 && hr % 2 == 0) zb = true;
      b.backward(0, zb);
    }
    // Phase 7: nWB0 (zero bubble)
    for (int32_t i = 0; i < h - hr - 1; ++i) {
      b.weight();
      b.backward(0, true);
    }
    // Phase 8: nW
    for (int32_t i = 0; i < hr + 1; ++i) b.weight();
    PREFLIGHT_CHECK(b.queue_empty(), "DualPipe rank ", r, " left weight passes queued");
    for (int32_t ph = 0; ph < 2; ++ph)
      for (int32_t kind = 0; kind < 2; ++kind)
        PREFLIGHT_CHECK(b.issued(ph, kind) == n, "DualPipe rank ", r, " phase ", ph, " issued ", b.issued(ph, kind),
                        " of ", n, " micro-batches");
  }
}

}  // namespace

PipelineSchedule make_schedule(Schedule kind, int32_t p, int32_t vpp, int32_t m) {
  const char* name = to_string(kind);
  if (p < 1) fail("schedule ", name, ": pipeline ranks = ", p, ": expected >= 1");
  if (m < 1) fail("schedule ", name, ": micro-batches = ", m, ": expected >= 1");
  PipelineSchedule s;
  switch (kind) {
    case Schedule::gpipe:
      s = base(kind, p, p, m);
      gpipe(s);
      break;
    case Schedule::one_f_one_b:
    case Schedule::zb_h1:
    case Schedule::zb_h2:
      if (m < p) fail("too few micro-batches: schedule ", name, " needs micro-batches >= pp = ", p, ", got ", m);
      s = base(kind, p, p, m);
      if (kind == Schedule::one_f_one_b) one_f_one_b(s);
      if (kind == Schedule::zb_h1) zb_h1(s);
      if (kind == Schedule::zb_h2) zb_h2(s);
      break;
    case Schedule::interleaved_1f1b:
      if (vpp < 2) fail("schedule interleaved-1f1b needs vpp >= 2, got ", vpp);
      if (m % p != 0) fail("too few micro-batches: interleaved-1f1b needs a multiple of pp = ", p, ", got ", m);
      s = base(kind, p, p * vpp, m);
      interleaved(s, vpp);
      break;
    case Schedule::dualpipe:
      if (p % 2 != 0) fail("schedule dualpipe needs an even pp, got pp = ", p);
      if (m % 2 != 0 || m < 2 * p) fail("too few micro-batches: dualpipe needs an even number >= 2·pp = ", 2 * p, ", got ", m);
      s = base(kind, p, p, m);
      dualpipe(s, false);
      break;
    case Schedule::dualpipev:
      if (m < 2 * p) fail("too few micro-batches: dualpipev needs >= 2·pp = ", 2 * p, ", got ", m);
      s = base(kind, p, 2 * p, m);
      dualpipe(s, true);
      break;
  }
  check_legal(s);
  for (int32_t r = 0; r < s.ranks; ++r) s.rank_stages.push_back(s.stages_of(r));
  return s;
}

PipelineSchedule repeat_steps(const PipelineSchedule& one, int32_t iterations) {
  if (iterations < 1) fail("repeat_steps: iterations = ", iterations, ": expected >= 1");
  PipelineSchedule s = one;
  const int32_t m = one.microbatches;
  s.microbatches = m * iterations;
  s.mb_direction.clear();
  for (int32_t k = 0; k < iterations; ++k)
    s.mb_direction.insert(s.mb_direction.end(), one.mb_direction.begin(), one.mb_direction.end());
  for (int32_t r = 0; r < s.ranks; ++r) {
    s.programs[r].clear();
    for (int32_t k = 0; k < iterations; ++k) {
      for (Step st : one.programs[r]) {
        for (int32_t i = 0; i < st.count; ++i) st.op[i].mb += k * m;
        s.programs[r].push_back(st);
      }
    }
  }
  check_legal(s);
  return s;
}

void check_legal(const PipelineSchedule& s) {
  const int32_t S = s.stages, m = s.microbatches;
  // seen[pass][mb·S + s]: program position (rank, index) + 1, 0 = not yet.
  std::vector<int64_t> seen_f(static_cast<size_t>(m) * S, 0), seen_b(seen_f), seen_w(seen_f);
  auto name = [](const Op& op) {
    return detail::concat(pass_letter(op.pass), "(mb ", op.mb, ", stage ", op.stage, ")");
  };
  for (int32_t r = 0; r < s.ranks; ++r) {
    for (size_t i = 0; i < s.programs[r].size(); ++i) {
      const Step& st = s.programs[r][i];
      if (st.count == 2 && (st.op[0].pass != Pass::F || (st.op[1].pass != Pass::X && st.op[1].pass != Pass::B)))
        fail("schedule ", to_string(s.kind), ": rank ", r, " step ", i, " pairs ", name(st.op[0]), " with ",
             name(st.op[1]), ": an overlapped pair is a forward and a backward");
      for (int32_t k = 0; k < st.count; ++k) {
        const Op& op = st.op[k];
        if (op.mb < 0 || op.mb >= m || op.stage < 0 || op.stage >= S)
          fail("schedule ", to_string(s.kind), ": rank ", r, " step ", i, ": ", name(op), " out of range");
        if (s.rank_of(op.mb, op.stage) != r)
          fail("schedule ", to_string(s.kind), ": ", name(op), " placed on rank ", r, " but its stage lives on rank ",
               s.rank_of(op.mb, op.stage));
        const size_t idx = static_cast<size_t>(op.mb) * S + op.stage;
        auto once = [&](std::vector<int64_t>& v) {
          if (v[idx] != 0) fail("schedule ", to_string(s.kind), ": ", name(op), " appears twice (rank ", r, ")");
          v[idx] = 1;
        };
        switch (op.pass) {
          case Pass::F: once(seen_f); break;
          case Pass::B:
          case Pass::X:
            if (!seen_f[idx]) fail("schedule ", to_string(s.kind), ": ", name(op), " on rank ", r, " before its forward");
            once(seen_b);
            if (op.pass == Pass::X) once(seen_w);
            break;
          case Pass::W:
            if (!seen_b[idx])
              fail("schedule ", to_string(s.kind), ": ", name(op), " on rank ", r, " before its input gradient");
            once(seen_w);
            break;
        }
      }
    }
  }
  for (int32_t mb = 0; mb < m; ++mb)
    for (int32_t st = 0; st < S; ++st) {
      const size_t idx = static_cast<size_t>(mb) * S + st;
      if (!seen_f[idx] || !seen_b[idx] || !seen_w[idx])
        fail("schedule ", to_string(s.kind), ": micro-batch ", mb, " stage ", st, " is missing its ",
             !seen_f[idx] ? "forward" : !seen_b[idx] ? "input gradient" : "weight gradient");
    }
}

std::vector<double> peak_in_flight_weighted(const PipelineSchedule& s,
                                            const std::function<double(int32_t)>& weight) {
  std::vector<double> peak(s.ranks, 0);
  for (int32_t r = 0; r < s.ranks; ++r) {
    double held = 0;
    for (const Step& st : s.programs[r]) {
      for (int32_t k = 0; k < st.count; ++k) {
        const Op& op = st.op[k];
        if (op.pass == Pass::F) held += weight(op.stage);
        peak[r] = std::max(peak[r], held);
      }
      for (int32_t k = 0; k < st.count; ++k) {
        const Op& op = st.op[k];
        if (op.pass == Pass::X || op.pass == Pass::W) held -= weight(op.stage);
      }
    }
  }
  return peak;
}

std::vector<int32_t> peak_in_flight(const PipelineSchedule& s) {
  const std::vector<double> w = peak_in_flight_weighted(s, [](int32_t) { return 1.0; });
  return {w.begin(), w.end()};
}

PipelineCosts unit_costs(double f, double b, double w, double pair_s) {
  PipelineCosts c;
  c.step_s = [=](const Step& st, int32_t) {
    auto one = [&](const Op& op) {
      switch (op.pass) {
        case Pass::F: return f;
        case Pass::B: return b;
        case Pass::W: return w;
        case Pass::X: return b + w;
      }
      return 0.0;
    };
    if (st.count == 2) return pair_s >= 0 ? pair_s : one(st.op[0]) + one(st.op[1]);
    return one(st.op[0]);
  };
  return c;
}

PipelineRun run_pipeline(const PipelineSchedule& s, const PipelineCosts& costs) {
  constexpr double kNever = std::numeric_limits<double>::infinity();
  const int32_t S = s.stages, P = s.ranks;
  const size_t n = static_cast<size_t>(s.microbatches) * S;
  const bool use_table = !costs.step_s_table.empty();
  if (use_table) {
    PREFLIGHT_CHECK(static_cast<int32_t>(costs.step_s_table.size()) == P, "step time table has ",
                    costs.step_s_table.size(), " ranks, schedule ", P);
    for (int32_t r = 0; r < P; ++r)
      PREFLIGHT_CHECK(costs.step_s_table[r].size() == s.programs[r].size(), "step time table of rank ", r, " has ",
                      costs.step_s_table[r].size(), " entries, program ", s.programs[r].size());
  }
  // Where each (mb, stage) result is usable: forward output at the next stage's rank,
  // input gradient at the previous stage's rank; local completions for F→B and B→W.
  std::vector<double> act_ready(n, kNever), grad_ready(n, kNever), f_done(n, kNever), b_done(n, kNever);
  std::vector<size_t> pc(P, 0);
  std::vector<bool> running(P, false);
  std::vector<Channel> links(static_cast<size_t>(P) * P);  // [from·P + to]
  std::vector<std::vector<int32_t>> stages_of(P);
  for (int32_t r = 0; r < P; ++r) stages_of[r] = s.stages_of(r);

  PipelineRun run;
  run.busy_s.assign(P, 0);
  run.end_s.assign(P, 0);
  run.stage_grads_done_s.resize(P);
  for (int32_t r = 0; r < P; ++r) run.stage_grads_done_s[r].assign(stages_of[r].size(), 0);
  size_t total_steps = 0;
  for (const auto& prog : s.programs) total_steps += prog.size();
  run.steps.reserve(total_steps);

  // Three kinds of event: a rank may start its next step; a transfer lands (an
  // activation in act_ready or a gradient in grad_ready); a rank's step ends.
  enum class Kind : uint8_t { try_start, activation_arrives, gradient_arrives, step_ends };
  struct Event {
    Kind kind;
    int32_t rank;  // the rank that acts
    size_t slot;   // (mb, stage) index of an arriving transfer
  };
  EventQueueOf<Event> q;
  q.reserve(static_cast<size_t>(P) * 4 + 16);
  auto idx = [S](const Op& op) { return static_cast<size_t>(op.mb) * S + op.stage; };
  auto ready = [&](const Op& op) {
    const double now = q.now();
    switch (op.pass) {
      case Pass::F: return op.stage == 0 || act_ready[idx(op) - 1] <= now;
      case Pass::B:
      case Pass::X: return f_done[idx(op)] <= now && (op.stage == S - 1 || grad_ready[idx(op) + 1] <= now);
      case Pass::W: return b_done[idx(op)] <= now;
    }
    return false;
  };
  auto deliver = [&](int32_t from, int32_t to, Pass pass, bool gradient, size_t i) {
    const double now = q.now();
    if (from == to || !costs.p2p_s) {
      (gradient ? grad_ready : act_ready)[i] = now;
      if (from != to) q.schedule(now, Event{Kind::try_start, to, 0});
      return;
    }
    const double arrive = links[static_cast<size_t>(from) * P + to].occupy(now, costs.p2p_s(from, to, pass));
    q.schedule(arrive, Event{gradient ? Kind::gradient_arrives : Kind::activation_arrives, to, i});
  };
  auto finish = [&](int32_t r, const Step& st) {
    const double now = q.now();
    for (int32_t k = 0; k < st.count; ++k) {
      const Op& op = st.op[k];
      const size_t i = idx(op);
      if (op.pass == Pass::F) {
        f_done[i] = now;
        if (op.stage + 1 < S) deliver(r, s.rank_of(op.mb, op.stage + 1), Pass::F, false, i);
      } else if (op.pass == Pass::B || op.pass == Pass::X) {
        b_done[i] = now;
        if (op.stage > 0) deliver(r, s.rank_of(op.mb, op.stage - 1), op.pass, true, i);
      }
      if (op.pass == Pass::W || op.pass == Pass::X) {
        for (size_t k2 = 0; k2 < stages_of[r].size(); ++k2)
          if (stages_of[r][k2] == op.stage) run.stage_grads_done_s[r][k2] = now;
      }
    }
  };
  auto try_start = [&](int32_t r) {
    if (running[r] || pc[r] >= s.programs[r].size()) return;
    const Step& st = s.programs[r][pc[r]];
    for (int32_t k = 0; k < st.count; ++k)
      if (!ready(st.op[k])) return;
    const double start = q.now();
    const double dur = use_table ? costs.step_s_table[r][pc[r]] : costs.step_s(st, r);
    PREFLIGHT_CHECK(dur >= 0, "negative step duration ", dur);
    running[r] = true;
    run.steps.push_back(StepRecord{r, static_cast<int32_t>(pc[r]), start, start + dur});
    run.busy_s[r] += dur;
    q.schedule(start + dur, Event{Kind::step_ends, r, 0});
  };
  for (int32_t r = 0; r < P; ++r) q.schedule(0, Event{Kind::try_start, r, 0});
  while (!q.finished()) {
    const Event e = q.proceed();
    switch (e.kind) {
      case Kind::try_start: break;
      case Kind::activation_arrives: act_ready[e.slot] = q.now(); break;
      case Kind::gradient_arrives: grad_ready[e.slot] = q.now(); break;
      case Kind::step_ends: {
        const int32_t r = e.rank;
        running[r] = false;
        run.end_s[r] = q.now();
        finish(r, s.programs[r][pc[r]]);
        ++pc[r];
        break;
      }
    }
    try_start(e.rank);
  }

  std::string blocked;
  for (int32_t r = 0; r < P; ++r) {
    if (pc[r] < s.programs[r].size()) {
      const Step& st = s.programs[r][pc[r]];
      blocked += detail::concat(blocked.empty() ? "" : "; ", "rank ", r, " at step ", pc[r], " ",
                                pass_letter(st.op[0].pass), "(mb ", st.op[0].mb, ", stage ", st.op[0].stage, ")");
    }
  }
  if (!blocked.empty()) fail("schedule ", to_string(s.kind), " deadlocks: ", blocked);
  for (int32_t r = 0; r < P; ++r) run.makespan_s = std::max(run.makespan_s, run.end_s[r]);
  return run;
}

}  // namespace preflight::sim
