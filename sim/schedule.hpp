// Pipeline schedules as explicit per-rank op lists, a legality check, and the
// discrete-event executor that runs the lists on every pipeline rank.
//
// Legend: p = pipeline ranks, m = micro-batches per step, S = model stages (p·v; DualPipe
// p; DualPipeV 2p), mb = micro-batch index, s = model stage index.
// Passes: F forward; B input gradient; W weight gradient; X = B and W as one op (the
// "full backward" of GPipe / 1F1B / interleaved 1F1B and of DualPipe's overlapped pairs).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/config.hpp"

namespace preflight::sim {

enum class Pass : uint8_t { F, B, W, X };
char pass_letter(Pass p);  // 'F', 'B', 'W', 'X'

struct Op {
  Pass pass = Pass::F;
  int32_t mb = 0;
  int32_t stage = 0;
};

// One entry of a rank's program: a single op, or (count == 2) a forward op[0] overlapped
// with a backward op[1] of another micro-batch (DualPipe's F&B pair).
struct Step {
  Op op[2];
  int32_t count = 1;
};

struct PipelineSchedule {
  Schedule kind = Schedule::one_f_one_b;
  int32_t ranks = 0;
  int32_t stages = 0;
  int32_t microbatches = 0;
  std::vector<int32_t> mb_direction;             // [mb] 0, or 1 for DualPipe's reverse flow
  std::vector<std::vector<int32_t>> stage_rank;  // [direction][stage] -> rank
  std::vector<std::vector<Step>> programs;       // [rank] steps in order
  std::vector<std::vector<int32_t>> rank_stages;  // [rank] stages_of(rank), filled by make_schedule
  int32_t rank_of(int32_t mb, int32_t stage) const { return stage_rank[mb_direction[mb]][stage]; }
  // Model stages a rank holds (1, v, or 2), in increasing order.
  std::vector<int32_t> stages_of(int32_t rank) const;
};

// Builds the op lists. `vpp` matters for interleaved 1F1B only. Throws preflight::Error
// when m, p or v violate the schedule's constraints.
PipelineSchedule make_schedule(Schedule kind, int32_t ranks, int32_t vpp, int32_t microbatches);

// `iterations` optimizer steps back to back with no synchronisation between them: each
// rank starts step k + 1's ops right after its own last op of step k, as ZB-H2's
// optimizer post-validation allows. Micro-batch i of step k is numbered k·m + i.
PipelineSchedule repeat_steps(const PipelineSchedule& one_step, int32_t iterations);

// Every op exactly once on the rank that holds its stage, F before B before W on that
// rank. Deadlocks are found by run_pipeline. Throws preflight::Error naming the op.
void check_legal(const PipelineSchedule& schedule);

// Peak number of micro-batch activations held per rank (counted from F to the op that
// frees them: X, or W when the backward is split), following the program order; the
// weighted variant multiplies by weight(stage).
std::vector<int32_t> peak_in_flight(const PipelineSchedule& schedule);
std::vector<double> peak_in_flight_weighted(const PipelineSchedule& schedule,
                                            const std::function<double(int32_t stage)>& weight);

// Costs the executor asks for.
struct PipelineCosts {
  // Compute-stream time of one step on `rank`.
  std::function<double(const Step& step, int32_t rank)> step_s;
  // Transfer time of one activation (pass F) or gradient (B, X) between two ranks;
  // transfers on one (from, to) link are serialised. Null: instantaneous.
  std::function<double(int32_t from, int32_t to, Pass pass)> p2p_s;
  // Optional: the compute-stream time of every step, [rank][index in the program],
  // worked out once by the caller; when given, step_s is not called.
  std::vector<std::vector<double>> step_s_table;
};

struct StepRecord {
  int32_t rank = 0;
  int32_t index = 0;  // position in the rank's program
  double start_s = 0;
  double end_s = 0;
};

struct PipelineRun {
  double makespan_s = 0;                // last step end over all ranks
  std::vector<double> busy_s;           // [rank] sum of step durations
  std::vector<double> end_s;            // [rank] last step end
  std::vector<std::vector<double>> stage_grads_done_s;  // [rank][k] last gradient op of stages_of(rank)[k]
  std::vector<StepRecord> steps;        // every step, in start order
};

// Discrete-event execution of the programs: each rank runs its steps in order on one
// compute stream, a step starts when the stream is free and its inputs have arrived.
// Throws preflight::Error on a deadlock, naming the blocked ranks and what they wait for.
PipelineRun run_pipeline(const PipelineSchedule& schedule, const PipelineCosts& costs);

// Unit-time costs: every F takes f, B takes b, W takes w, X takes b + w, an overlapped
// pair takes `pair` (when < 0: the sum of its two ops), P2P instantaneous.
PipelineCosts unit_costs(double f, double b, double w, double pair = -1);

}  // namespace preflight::sim
