// `preflight sim`: simulate one optimizer step of a model on a cluster with a layout.
#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "sim/api.hpp"
#include "sim/planner.hpp"
#include "sim/trace.hpp"
#include "sim/units.hpp"

namespace preflight::cli {

namespace {

struct SimCliOptions {
  std::string model = "deepseek-v3-671b";
  std::string cluster = "h800-2048";
  std::string layout = "deepseek-v3-dualpipe";
  int64_t gpus = 0;          // 0: the cluster's num_gpus
  // 0: as the layout file says; else replaces its field (validated as the file's would be)
  int64_t pp = 0, dp = 0, tp = 0, ep = 0;
  double tokens = 14.8e12;   // token budget for "days" (DeepSeek-V3: 14.8T)
  bool json = false;
  std::string trace_path, svg_path;
  std::string golden_path;   // write the --json report wrapped as a golden (scripts/regen_sim_goldens.sh)
};

using sim::format_gib;
using sim::gib;

void print_text(const sim::SimReport& r, double tokens) {
  std::printf("%s on %s (%lld GPUs), layout %s\n", r.model.c_str(), r.cluster.c_str(),
              static_cast<long long>(r.num_gpus), r.layout.c_str());
  std::printf("  PP %lld (%s, %lld chunks/rank)  TP %lld  EP %lld  DP %lld (expert DP %lld)  ZeRO-%lld\n",
              static_cast<long long>(r.pp), r.schedule.c_str(), static_cast<long long>(r.vpp),
              static_cast<long long>(r.tp), static_cast<long long>(r.ep), static_cast<long long>(r.dp),
              static_cast<long long>(r.expert_dp), static_cast<long long>(r.zero_stage));
  std::printf("  batch %lld x %lld tokens, %lld micro-batches of %lld per pipeline\n\n",
              static_cast<long long>(r.global_batch_size), static_cast<long long>(r.seq_len),
              static_cast<long long>(r.microbatches), static_cast<long long>(r.micro_batch_size));
  std::printf("step time                 %10.3f s   (pipeline %.3f s, DP sync + optimizer exposed %.3f s)\n",
              r.step_time_s, r.pipeline_time_s, r.dp_exposed_s);
  std::printf("bubble fraction           %10.2f %%\n", 100 * r.bubble_fraction);
  std::printf("MFU / HFU (BF16 peak)     %10.2f %% / %.2f %%\n", 100 * r.mfu, 100 * r.hfu);
  std::printf("tokens/s per GPU          %10.1f\n", r.tokens_per_s_per_gpu);
  std::printf("GPU-hours per 1T tokens   %10.0f\n", r.gpu_hours_per_trillion_tokens);
  std::printf("days for %.4g tokens     %10.2f\n", tokens, sim::days_for_tokens(r, tokens));
  std::printf("per micro-batch, mean over stages: F %.2f ms  B %.2f ms  W %.2f ms", 1e3 * r.f_chunk_s,
              1e3 * r.b_chunk_s, 1e3 * r.w_chunk_s);
  if (r.fb_pair_s > 0) std::printf("  F&B pair (rank 0) %.2f ms", 1e3 * r.fb_pair_s);
  std::printf("\n\nexposed communication on the busiest rank (s per step):");
  for (const auto& [kind, s] : r.exposed_comm_s) std::printf("  %s %.3f", kind.c_str(), s);
  std::printf("\n\n%-6s %10s %10s %8s %10s %12s | %9s %9s %9s %9s %9s %9s %s\n", "rank", "busy s", "idle s", "bubble",
              "compute s", "exposed s", "weights", "grads", "optim", "activ", "buffers", "total", "GiB");
  for (size_t i = 0; i < r.ranks.size(); ++i) {
    const sim::RankTime& t = r.ranks[i];
    const sim::StageMemory& m = r.memory[i];
    std::printf("%-6lld %10.3f %10.3f %7.1f%% %10.3f %12.3f | %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %s\n",
                static_cast<long long>(t.rank), t.busy_s, t.idle_s, 100 * t.bubble_fraction, t.compute_s,
                t.exposed_comm_s, gib(m.weights_bytes), gib(m.grads_bytes), gib(m.optimizer_bytes),
                gib(m.activations_bytes), gib(m.buffers_bytes), gib(m.total_bytes), m.fits ? "fits" : "OOM");
  }
  std::printf("\nmemory: capacity %s per GPU: %s\n", format_gib(r.memory.front().capacity_bytes).c_str(),
              r.fits ? "every rank fits" : "OUT OF MEMORY");
  if (!r.fits) {
    for (const sim::StageMemory& m : r.memory) {
      if (m.fits) continue;
      std::string parts;
      for (const auto& [name, bytes] : m.biggest()) parts += (parts.empty() ? "" : ", ") + name + " " + format_gib(bytes);
      std::printf("  rank %lld needs %s of %s; biggest: %s\n", static_cast<long long>(m.stage),
                  format_gib(m.total_bytes).c_str(), format_gib(m.capacity_bytes).c_str(), parts.c_str());
    }
  }
  std::printf("checkpoint (weights + optimizer state): %s\n", format_gib(r.checkpoint_bytes).c_str());
}

}  // namespace

void register_sim(CLI::App& app) {
  auto o = std::make_shared<SimCliOptions>();
  auto* cmd = app.add_subcommand(
      "sim",
      "Simulate one training step: step time, bubble, MFU, memory per stage. Exit status 1 when a pipeline rank "
      "does not fit in memory (after the full report, --json, --svg and --trace are written), or on bad input");
  cmd->add_option("--model", o->model, "Model preset name or config path")->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Hardware preset (configs/hardware) or path")->capture_default_str();
  cmd->add_option("--layout", o->layout, "Layout preset (configs/layouts) or path")->capture_default_str();
  add_number<int64_t>(cmd, "--gpus", o->gpus, "Override the cluster's GPU count", 1, int64_t{1} << 24)->default_str("");
  add_number<int64_t>(cmd, "--pp", o->pp, "Override the layout's pipeline size (layers split evenly, remainder to the middle stages; dp derived unless --dp)", 1,
                      int64_t{1} << 24)
      ->default_str("");
  add_number<int64_t>(cmd, "--dp", o->dp, "Override the layout's data-parallel size (pp*tp*dp must be the GPU count)",
                      1, int64_t{1} << 24)
      ->default_str("");
  add_number<int64_t>(cmd, "--tp", o->tp, "Override the layout's tensor-parallel size (dp derived unless --dp)", 1, int64_t{1} << 24)
      ->default_str("");
  add_number<int64_t>(cmd, "--ep", o->ep, "Override the layout's expert-parallel size", 1, int64_t{1} << 24)
      ->default_str("");
  // A finite positive budget: 0, nan and inf give no meaningful number of days.
  add_number<double>(cmd, "--tokens", o->tokens, "Token budget for the days estimate", 1.0, 1e18);
  cmd->add_flag("--json", o->json, "Machine-readable report on stdout");
  cmd->add_option("--trace", o->trace_path, "Write a Chrome/Perfetto trace of the step");
  cmd->add_option("--svg", o->svg_path, "Write an SVG pipeline diagram of the step");
  cmd->add_option("--write-golden", o->golden_path, "Write the JSON report as a golden file (see scripts/regen_sim_goldens.sh)");
  cmd->callback([o] {
    const ModelConfig model = load_model_config(o->model);
    sim::ClusterConfig cluster = sim::load_cluster(o->cluster);
    if (o->gpus > 0) cluster.num_gpus = o->gpus;
    sim::LayoutConfig layout = sim::load_layout(o->layout);
    // Command-line overrides replace the file's fields before resolve_layout, which checks
    // them exactly as it checks a file's (ranges, divisibility, GPU count), naming the field.
    std::string overrides;
    auto override_field = [&](const char* flag, int64_t v, int64_t& field) {
      if (v <= 0) return;
      field = v;
      overrides += std::string(overrides.empty() ? "" : " ") + flag + " " + std::to_string(v);
    };
    override_field("--pp", o->pp, layout.pp);
    override_field("--dp", o->dp, layout.dp);
    override_field("--tp", o->tp, layout.tp);
    override_field("--ep", o->ep, layout.ep);
    // A new pp or tp with the file's dp would rarely multiply to the GPU count: derive dp
    // from it (pp·tp·dp = GPUs) unless --dp is given too.
    if ((o->pp > 0 || o->tp > 0) && o->dp == 0) layout.dp = 0;
    // The file's per-stage layer split is for its own pp: a new pp gets the planner's
    // split (even, the remainder to the middle stages).
    if (o->pp > 0 && o->pp <= cluster.num_gpus) {
      const int64_t stages = layout.schedule == sim::Schedule::dualpipev ? 2 * layout.pp
                             : layout.schedule == sim::Schedule::dualpipe ? layout.pp
                                                                          : layout.pp * layout.vpp;
      layout.stage_layers.clear();
      if (stages > 0 && stages <= model.num_hidden_layers && model.num_hidden_layers % stages != 0)
        layout.stage_layers = sim::balanced_stage_layers(model.num_hidden_layers, stages);
    }
    if (!overrides.empty()) layout.name += " with " + overrides;
    sim::SimOptions opts;
    opts.keep_spans = !o->trace_path.empty() || !o->svg_path.empty();
    const sim::SimReport r = sim::simulate(model, cluster, layout, opts);
    if (!o->trace_path.empty()) write_file_atomic(o->trace_path, sim::chrome_trace_json(r));
    if (!o->svg_path.empty()) write_file_atomic(o->svg_path, sim::pipeline_svg(r));
    nlohmann::json j = r.to_json();
    j["days_for_tokens"] = {{"tokens", o->tokens}, {"days", std::round(sim::days_for_tokens(r, o->tokens) * 1e4) / 1e4}};
    if (!o->golden_path.empty()) {
      const std::string args = "--model " + o->model + " --cluster " + o->cluster + " --layout " + o->layout +
                               (o->gpus > 0 ? " --gpus " + std::to_string(o->gpus) : std::string()) +
                               (overrides.empty() ? std::string() : " " + overrides);
      const nlohmann::json golden = {
          {"format_version", 1},
          {"regenerate", "scripts/regen_sim_goldens.sh (runs: preflight sim " + args + " --write-golden PATH)"},
          {"args", args},
          {"report", j}};
      write_file_atomic(o->golden_path, golden.dump(2) + "\n");
    }
    if (o->json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      print_text(r, o->tokens);
    }
    std::fflush(stdout);
    if (!r.fits) {
      // The report above says where; the exit status says that the layout is not usable.
      std::string ranks;
      for (const sim::StageMemory& m : r.memory)
        if (!m.fits) ranks += (ranks.empty() ? "" : ", ") + std::to_string(m.stage);
      fail("layout '", layout.name, "' does not fit in memory on pipeline rank(s) ", ranks, " (see the report above)");
    }
  });
}

}  // namespace preflight::cli
