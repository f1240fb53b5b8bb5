// `preflight plan`: enumerate layouts, drop those that do not fit, rank by step time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "sim/api.hpp"
#include "sim/planner.hpp"

namespace preflight::cli {

namespace {

struct PlanCliOptions {
  std::string model = "deepseek-v3-671b";
  std::string cluster = "h800-2048";
  int64_t global_batch = 15360;
  int64_t seq_len = 0;
  int64_t gpus = 0;
  int64_t top = 10;
};

}  // namespace

void register_plan(CLI::App& app) {
  auto o = std::make_shared<PlanCliOptions>();
  auto* cmd = app.add_subcommand("plan", "Enumerate parallel layouts, drop those that do not fit, rank by step time");
  cmd->add_option("--model", o->model, "Model preset name or config path")->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Hardware preset or path")->capture_default_str();
  cmd->add_option("--global-batch", o->global_batch, "Sequences per optimizer step")->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: the model's context)");
  cmd->add_option("--gpus", o->gpus, "Override the cluster's GPU count");
  cmd->add_option("--top", o->top, "How many layouts to print")->capture_default_str();
  cmd->callback([o] {
    const ModelConfig model = load_model_config(o->model);
    sim::ClusterConfig cluster = sim::load_cluster(o->cluster);
    if (o->gpus < 0) fail("option --gpus = ", o->gpus, ": expected a positive integer");
    if (o->gpus > 0) cluster.num_gpus = o->gpus;
    if (o->top <= 0) fail("option --top = ", o->top, ": expected a positive integer");
    sim::PlanOptions po;
    po.global_batch_size = o->global_batch;
    po.seq_len = o->seq_len;
    po.top = static_cast<size_t>(o->top);
    const auto t0 = std::chrono::steady_clock::now();
    const sim::PlanResult r = sim::plan(model, cluster, po);
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s on %s (%lld GPUs), global batch %lld: %lld layouts, %lld invalid, %lld out of memory, %zu fit "
                "shown (%.0f layouts/s)\n\n",
                model.name.c_str(), cluster.name.c_str(), static_cast<long long>(cluster.num_gpus),
                static_cast<long long>(o->global_batch), static_cast<long long>(r.enumerated),
                static_cast<long long>(r.invalid), static_cast<long long>(r.out_of_memory), r.best.size(),
                static_cast<double>(r.enumerated) / wall_s);
    if (r.best.empty()) {
      std::printf("no layout fits\n");
      return;
    }
    std::printf("%-4s %-58s %9s %8s %7s %9s %9s\n", "#", "layout", "step s", "bubble", "MFU", "tok/s/GPU", "peak GiB");
    for (size_t i = 0; i < r.best.size(); ++i) {
      const sim::SimReport& s = r.best[i].report;
      double peak = 0;
      for (const auto& m : s.memory) peak = std::max(peak, m.total_bytes);
      std::printf("%-4zu %-58s %9.3f %7.1f%% %6.1f%% %9.1f %9.1f\n", i + 1, r.best[i].layout.name.c_str(),
                  s.step_time_s, 100 * s.bubble_fraction, 100 * s.mfu, s.tokens_per_s_per_gpu, peak / 1073741824.0);
    }
    const sim::SimReport& b = r.best.front().report;
    std::printf("\nwhy #1 wins: step %.3f s = pipeline %.3f s (bubble %.1f%%, exposed in-op comm %.3f s on the busiest "
                "rank) + DP sync/optimizer %.3f s",
                b.step_time_s, b.pipeline_time_s, 100 * b.bubble_fraction,
                b.exposed_comm_s[0].second + b.exposed_comm_s[1].second + b.exposed_comm_s[2].second, b.dp_exposed_s);
    if (r.best.size() > 1) {
      const sim::SimReport& n = r.best[1].report;
      std::printf("; #2 is %.1f%% slower (bubble %.1f%%, DP/optimizer %.3f s)", 100 * (n.step_time_s / b.step_time_s - 1),
                  100 * n.bubble_fraction, n.dp_exposed_s);
    }
    std::printf("\n");
  });
}

}  // namespace preflight::cli
