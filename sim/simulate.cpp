// simulate(): one optimizer step of one pipeline (all data-parallel replicas behave
// alike), on the discrete-event executor, with the cost model's step times, followed
// by the data-parallel gradient synchronisation and the optimizer as ZeRO dictates.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "reference/core/accounting.hpp"
#include "reference/core/error.hpp"
#include "sim/api.hpp"
#include "sim/cost_model.hpp"
#include "sim/event_queue.hpp"
#include "sim/memory.hpp"
#include "sim/schedule.hpp"
#include "sim/sim_cache.hpp"

namespace preflight::sim {

namespace {

// Ring reduce-scatter (or all-gather) of `bytes` over n ranks: each GPU sends (n−1)/n of it.
double ring_s(double bytes, double n, double GBps, double latency_us, double efficiency) {
  if (n <= 1) return 0;
  return (n - 1.0) / n * bytes / (GBps * 1e9 * efficiency) + (n - 1.0) * latency_us * 1e-6;
}

// Reduce-scatter (or all-gather) of `bytes` over a group of n GPUs whose ranks are
// `stride` apart (DP: tp; expert DP: ep·tp). Inside one node: a ring over NVLink. Across
// nodes, with k members per node: first among the k over NVLink, then among the nodes
// over IB, each member carrying 1/k of the data through its own NIC (what NCCL's rings
// achieve with one NIC per GPU).
double group_collective_s(double bytes, int64_t n, int64_t stride, const ClusterConfig& c) {
  if (n <= 1) return 0;
  const int64_t g = c.gpus_per_node;
  const int64_t k = n * stride <= g ? n : std::max<int64_t>(1, g / stride);
  const int64_t nodes = (n + k - 1) / k;
  if (nodes <= 1) return ring_s(bytes, static_cast<double>(n), c.nvlink_GBps, c.nvlink_latency_us, c.collective_efficiency);
  return ring_s(bytes, static_cast<double>(k), c.nvlink_GBps, c.nvlink_latency_us, c.collective_efficiency) +
         ring_s(bytes / static_cast<double>(k), static_cast<double>(nodes), c.ib_GBps, c.ib_latency_us,
                c.collective_efficiency);
}

}  // namespace

SimReport simulate(const ModelConfig& model, const ClusterConfig& cluster, const LayoutConfig& layout,
                   const SimOptions& options) {
  SimCache cache(model, cluster);
  return simulate(model, cluster, layout, options, cache);
}

Cached<const PipelineSchedule> SimCache::schedule(Schedule kind, int32_t pp, int32_t vpp, int32_t microbatches) {
  const auto key = std::make_tuple(static_cast<int>(kind), pp, vpp, microbatches);
  auto it = schedules_.find(key);
  if (it == schedules_.end()) {
    if (schedules_.size() >= kMaxSchedules) schedules_.clear();
    auto s = std::make_shared<PipelineSchedule>(make_schedule(kind, pp, vpp, microbatches));
    it = schedules_.emplace(key, Entry<PipelineSchedule>{next_id_++, std::move(s)}).first;
  }
  return {it->second.id, it->second.value};
}

Cached<CostModel> SimCache::cost_model(const ResolvedLayout& r) {
  // Everything CostModel reads from the layout (and nothing it does not, so that
  // layouts differing only in ZeRO stage, schedule or batch share one).
  nlohmann::json k = to_json(r.layout);
  for (const char* unused : {"name", "zero_stage", "schedule", "vpp", "global_batch_size", "dp", "weight_bytes",
                             "master_weight_bytes", "grad_bytes", "adam_moment_bytes", "stage_layers"})
    k.erase(unused);
  k["resolved"] = {r.dp, r.expert_dp, r.num_stages, r.ep_nodes, r.stage_layers};
  const std::string key = k.dump();
  auto it = costs_.find(key);
  if (it == costs_.end()) {
    if (costs_.size() >= kMaxCostModels) costs_.clear();
    it = costs_.emplace(key, Entry<CostModel>{next_id_++, std::make_shared<CostModel>(model_, cluster_, r)}).first;
  }
  return {it->second.id, it->second.value};
}

const PipelinePhase& SimCache::pipeline(Cached<CostModel> cost, Cached<const PipelineSchedule> first,
                                        Cached<const PipelineSchedule> longer, int64_t microbatches) {
  const auto key = std::make_tuple(cost.id, first.id, longer.id, microbatches);
  if (key == last_pipeline_key_) return last_pipeline_;
  last_pipeline_key_ = {0, 0, 0, -1};  // not valid until filled
  CostModel& cm = *cost.value;
  PipelinePhase& out = last_pipeline_;
  const int32_t P = first.value->ranks;
  out.compute_s.assign(P, 0.0);
  out.exposed_s.assign(P, std::array<double, kNumCommKinds>{});
  // Step times are looked up once per program entry, in program order (the order each
  // rank runs them), and summed per rank.
  auto run_one = [&](const PipelineSchedule& sched) {
    PipelineCosts pc;
    pc.step_s_table.resize(sched.ranks);
    for (int32_t rank = 0; rank < sched.ranks; ++rank) {
      std::vector<double>& table = pc.step_s_table[rank];
      table.reserve(sched.programs[rank].size());
      for (const Step& st : sched.programs[rank]) {
        const StepCost& c = cm.step(st);
        table.push_back(c.duration_s);
        out.compute_s[rank] += c.compute_s;
        for (int k = 0; k < kNumCommKinds; ++k) out.exposed_s[rank][k] += c.exposed_s[k];
      }
    }
    const double p2p_s = cm.p2p_s();
    pc.p2p_s = [p2p_s](int32_t, int32_t, Pass) { return p2p_s; };
    return run_pipeline(sched, pc);
  };
  out.run = run_one(*first.value);
  if (longer.value != nullptr) {
    // Run again with more micro-batches; every time grows linearly from there.
    const int64_t m_sim = first.value->microbatches, m_step = longer.value->microbatches - m_sim;
    const std::vector<double> compute1 = out.compute_s;
    const auto exposed1 = out.exposed_s;
    std::fill(out.compute_s.begin(), out.compute_s.end(), 0.0);
    for (auto& e : out.exposed_s) e.fill(0.0);
    const PipelineRun run2 = run_one(*longer.value);
    const double k = static_cast<double>(microbatches - m_sim - m_step) / static_cast<double>(m_step);
    auto grow = [k](double a, double b) { return b + (b - a) * k; };
    PipelineRun& run = out.run;
    run.makespan_s = grow(run.makespan_s, run2.makespan_s);
    for (int32_t rank = 0; rank < P; ++rank) {
      run.busy_s[rank] = grow(run.busy_s[rank], run2.busy_s[rank]);
      run.end_s[rank] = grow(run.end_s[rank], run2.end_s[rank]);
      for (size_t j = 0; j < run.stage_grads_done_s[rank].size(); ++j)
        run.stage_grads_done_s[rank][j] = grow(run.stage_grads_done_s[rank][j], run2.stage_grads_done_s[rank][j]);
      out.compute_s[rank] = grow(compute1[rank], out.compute_s[rank]);
      for (int kind = 0; kind < kNumCommKinds; ++kind)
        out.exposed_s[rank][kind] = grow(exposed1[rank][kind], out.exposed_s[rank][kind]);
    }
    run.steps.clear();
  }
  last_pipeline_key_ = key;
  return out;
}

SimReport simulate(const ModelConfig& model, const ClusterConfig& cluster, const LayoutConfig& layout,
                   const SimOptions& options, SimCache& cache) {
  PREFLIGHT_CHECK(&cache.model() == &model && &cache.cluster() == &cluster,
                  "simulate: the cache belongs to another model or cluster");
  validate(cluster);
  const ResolvedLayout r = resolve_layout(model, cluster, layout);
  // The number of micro-batches actually simulated (fewer when extrapolating).
  int64_t m_sim = r.microbatches, m_step = 0;
  if (options.max_simulated_microbatches > 0 && r.microbatches > options.max_simulated_microbatches) {
    const int64_t align = layout.schedule == Schedule::interleaved_1f1b ? layout.pp
                          : layout.schedule == Schedule::dualpipe      ? 2
                                                                       : 1;
    const int64_t floor_m = layout.schedule == Schedule::dualpipe || layout.schedule == Schedule::dualpipev
                                ? 2 * layout.pp
                                : layout.pp;
    int64_t m1 = std::max(options.max_simulated_microbatches, floor_m);
    m1 = (m1 + align - 1) / align * align;
    m_step = std::max<int64_t>(align, 2);
    if (m1 + m_step < r.microbatches) m_sim = m1;
  }
  const Cached<const PipelineSchedule> first = cache.schedule(
      layout.schedule, static_cast<int32_t>(layout.pp), static_cast<int32_t>(layout.vpp), static_cast<int32_t>(m_sim));
  const PipelineSchedule& sched = *first.value;
  const Cached<CostModel> cached_cost = cache.cost_model(r);
  CostModel& cost = *cached_cost.value;
  std::vector<StageMemory> memory;
  if (options.stop_if_out_of_memory) {
    memory = memory_per_rank(model, cluster, r, sched, cost.p2p_bytes());
    if (!std::all_of(memory.begin(), memory.end(), [](const StageMemory& x) { return x.fits; })) {
      SimReport rep;
      rep.model = model.name;
      rep.layout = layout.name;
      rep.memory = memory;
      rep.fits = false;
      return rep;
    }
  }

  // --- pipeline ---
  Cached<const PipelineSchedule> longer;
  if (m_sim != r.microbatches)
    longer = cache.schedule(layout.schedule, static_cast<int32_t>(layout.pp), static_cast<int32_t>(layout.vpp),
                            static_cast<int32_t>(m_sim + m_step));
  const PipelinePhase& phase = cache.pipeline(cached_cost, first, longer, r.microbatches);
  const PipelineRun& run = phase.run;
  const std::vector<double>& compute_s = phase.compute_s;
  const auto& exposed = phase.exposed_s;

  // --- data parallel: gradient reduce-scatter per stage as soon as its last gradient
  // op ends, then the optimizer, then the parameter all-gather (ZeRO-1/2) ---
  const std::vector<StageParams> stage_params = stage_parameters(model, r);
  const double dp = static_cast<double>(r.dp), edp = static_cast<double>(r.expert_dp);
  auto sync_s = [&](double dense_bytes, double expert_bytes) {
    const double dense = group_collective_s(dense_bytes, r.dp, layout.tp, cluster);
    const double expert = group_collective_s(expert_bytes, r.expert_dp, layout.ep * layout.tp, cluster);
    return dense + expert;
  };
  const double tp = static_cast<double>(layout.tp), ep = static_cast<double>(layout.ep);
  const double mem_rate = cluster.hbm_GBps * 1e9 * cluster.memory_efficiency;
  double step_time_s = run.makespan_s;
  double optimizer_s = 0;
  std::vector<double> rank_end(sched.ranks, 0);
  std::vector<Span> dp_spans;
  for (int32_t rank = 0; rank < sched.ranks; ++rank) {
    Channel dp_link;
    const std::vector<int32_t> held = sched.stages_of(rank);
    double grads_synced = 0;
    for (size_t k = 0; k < held.size(); ++k) {
      const StageParams& sp = stage_params[held[k]];
      const double dense = sp.dense / tp * static_cast<double>(layout.grad_bytes);
      const double expert = sp.expert / (ep * tp) * static_cast<double>(layout.grad_bytes);
      double t = sync_s(dense, expert);
      if (layout.zero_stage == 0) t *= 2.0;  // all-reduce = reduce-scatter + all-gather
      const double start = std::max(run.stage_grads_done_s[rank][k], dp_link.free_at_s());
      grads_synced = dp_link.occupy(run.stage_grads_done_s[rank][k], t);
      if (options.keep_spans) dp_spans.push_back(Span{rank, 1, 'D', -1, held[k], -1, -1, -1, -1, start, grads_synced});
    }
    // ZeRO-2 reduce-scatters every micro-batch's gradients and ZeRO-3 also gathers the
    // weights before every forward and backward; that traffic shares the DP link with
    // the compute of the whole step and only what does not fit is exposed.
    const RankParams rp = rank_parameters(stage_params, sched, r, rank);
    double extra = 0;
    if (layout.zero_stage >= 2) {
      const double m = static_cast<double>(r.microbatches) - 1.0;
      extra += m * sync_s(rp.dense * static_cast<double>(layout.grad_bytes), rp.expert * static_cast<double>(layout.grad_bytes));
      if (layout.zero_stage == 3)
        extra += 2.0 * (m + 1.0) *
                 sync_s(rp.dense * static_cast<double>(layout.weight_bytes), rp.expert * static_cast<double>(layout.weight_bytes));
    }
    grads_synced = std::max(grads_synced, extra);
    const double shard = layout.zero_stage >= 1 ? rp.dense / dp + rp.expert / edp : rp.total();
    const double opt = shard * cluster.optimizer_bytes_per_param_step / mem_rate;
    optimizer_s = std::max(optimizer_s, opt);
    double end = std::max(grads_synced, run.end_s[rank]) + opt;
    if (layout.zero_stage == 1 || layout.zero_stage == 2) {
      const double gather = sync_s(rp.dense * static_cast<double>(layout.weight_bytes),
                                   rp.expert * static_cast<double>(layout.weight_bytes));
      if (options.keep_spans) dp_spans.push_back(Span{rank, 1, 'D', -1, -1, -1, -1, -1, -1, end, end + gather});
      end += gather;
    }
    rank_end[rank] = end;
    step_time_s = std::max(step_time_s, end);
  }

  // --- report ---
  SimReport rep;
  rep.model = model.name;
  rep.cluster = cluster.name;
  rep.layout = layout.name;
  rep.schedule = to_string(layout.schedule);
  rep.pp = layout.pp;
  rep.vpp = layout.vpp;
  rep.tp = layout.tp;
  rep.ep = layout.ep;
  rep.dp = r.dp;
  rep.expert_dp = r.expert_dp;
  rep.zero_stage = layout.zero_stage;
  rep.microbatches = r.microbatches;
  rep.micro_batch_size = layout.micro_batch_size;
  rep.global_batch_size = layout.global_batch_size;
  rep.seq_len = layout.seq_len;
  rep.stage_layers = r.stage_layers;
  rep.extrapolated = m_sim != r.microbatches;
  rep.num_gpus = cluster.num_gpus;
  rep.step_time_s = step_time_s;
  rep.pipeline_time_s = run.makespan_s;
  rep.dp_exposed_s = step_time_s - run.makespan_s;
  rep.optimizer_s = optimizer_s;
  rep.tokens_per_step = static_cast<double>(layout.global_batch_size) * static_cast<double>(layout.seq_len);
  rep.tokens_per_s_per_gpu = rep.tokens_per_step / step_time_s / static_cast<double>(cluster.num_gpus);
  rep.gpu_hours_per_trillion_tokens = 1e12 / rep.tokens_per_s_per_gpu / 3600.0;

  // FLOPs: the model's (accounting.hpp, MTP included) and those recomputed.
  const FlopCounts f = count_flops(model, layout.seq_len);
  rep.model_flops_per_step = f.training_with_mtp() * rep.tokens_per_step;
  double recompute_per_mb = 0;  // one micro-batch through every stage, on one GPU of a TP group
  for (int32_t s = 0; s < cost.num_stages(); ++s)
    for (const UnitCost& u : cost.stage(s).units) recompute_per_mb += u.recompute_flops;
  rep.hardware_flops_per_step = rep.model_flops_per_step + recompute_per_mb * tp *
                                                               static_cast<double>(r.microbatches) * dp;
  const double peak = step_time_s * static_cast<double>(cluster.num_gpus) * cluster.bf16_tflops * 1e12;
  rep.mfu = rep.model_flops_per_step / peak;
  rep.hfu = rep.hardware_flops_per_step / peak;

  double idle_sum = 0;
  for (int32_t rank = 0; rank < sched.ranks; ++rank) {
    RankTime rt;
    rt.rank = rank;
    rt.busy_s = run.busy_s[rank];
    rt.idle_s = step_time_s - rt.busy_s;
    rt.bubble_fraction = rt.idle_s / step_time_s;
    rt.compute_s = compute_s[rank];
    for (double v : exposed[rank]) rt.exposed_comm_s += v;
    idle_sum += rt.idle_s;
    rep.ranks.push_back(rt);
  }
  size_t busiest = 0;
  for (size_t i = 1; i < rep.ranks.size(); ++i)
    if (rep.ranks[i].busy_s > rep.ranks[busiest].busy_s) busiest = i;
  rep.bubble_fraction = idle_sum / static_cast<double>(sched.ranks) / step_time_s;
  for (int k = 0; k < kNumCommKinds; ++k) rep.exposed_comm_s.emplace_back(comm_kind_name(k), exposed[busiest][k]);
  rep.exposed_comm_s.emplace_back("dp", rep.dp_exposed_s - optimizer_s > 0 ? rep.dp_exposed_s - optimizer_s : 0.0);

  double f_sum = 0, b_sum = 0, w_sum = 0;
  for (int32_t s = 0; s < cost.num_stages(); ++s) {
    f_sum += cost.op_s(Pass::F, s);
    b_sum += cost.op_s(Pass::B, s);
    w_sum += cost.op_s(Pass::W, s);
  }
  rep.f_chunk_s = f_sum / cost.num_stages();
  rep.b_chunk_s = b_sum / cost.num_stages();
  rep.w_chunk_s = w_sum / cost.num_stages();
  if (layout.schedule == Schedule::dualpipe || layout.schedule == Schedule::dualpipev) {
    // The main-phase pair of rank 0: forward of its first stage with the full backward of its second.
    const std::vector<int32_t> held = sched.stages_of(0);
    Step st;
    st.count = 2;
    st.op[0] = Op{Pass::F, 0, held.front()};
    st.op[1] = Op{Pass::X, 0, held.back()};
    rep.fb_pair_s = cost.step(st).duration_s;
  }

  rep.memory = options.stop_if_out_of_memory ? std::move(memory) : memory_per_rank(model, cluster, r, sched, cost.p2p_bytes());
  rep.fits = std::all_of(rep.memory.begin(), rep.memory.end(), [](const StageMemory& m) { return m.fits; });
  const ParamBreakdown params = count_parameters(model);
  const double total_params = static_cast<double>(params.with_mtp().total);
  rep.checkpoint_bytes =
      total_params * static_cast<double>((layout.master_weight_bytes > 0 ? layout.master_weight_bytes : layout.weight_bytes) +
                                         2 * layout.adam_moment_bytes);

  if (options.keep_spans) {
    auto chunk_of = [&](int32_t rank, const Op& op) -> int32_t {
      if (layout.schedule == Schedule::dualpipe) return sched.mb_direction[op.mb];
      const std::vector<int32_t> held = sched.stages_of(rank);
      if (held.size() < 2) return -1;
      return static_cast<int32_t>(std::find(held.begin(), held.end(), op.stage) - held.begin());
    };
    for (const StepRecord& rec : run.steps) {
      const Step& st = sched.programs[rec.rank][rec.index];
      Span sp;
      sp.rank = rec.rank;
      sp.stream = 0;
      sp.pass = st.count == 2 ? 'P' : pass_letter(st.op[0].pass);
      sp.microbatch = st.op[0].mb;
      sp.stage = st.op[0].stage;
      sp.chunk = chunk_of(rec.rank, st.op[0]);
      if (st.count == 2) {
        sp.microbatch2 = st.op[1].mb;
        sp.stage2 = st.op[1].stage;
        sp.chunk2 = chunk_of(rec.rank, st.op[1]);
      }
      sp.start_s = rec.start_s;
      sp.end_s = rec.end_s;
      rep.spans.push_back(sp);
    }
    rep.spans.insert(rep.spans.end(), dp_spans.begin(), dp_spans.end());
  }
  return rep;
}

double days_for_tokens(const SimReport& r, double tokens) {
  return tokens / (r.tokens_per_s_per_gpu * static_cast<double>(r.num_gpus)) / 86400.0;
}

}  // namespace preflight::sim
