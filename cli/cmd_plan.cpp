// `preflight plan`: enumerate layouts, drop those that do not fit, rank by step time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "sim/api.hpp"
#include "sim/planner.hpp"
#include "sim/units.hpp"

namespace preflight::cli {

namespace {

struct PlanCliOptions {
  std::string model = "deepseek-v3-671b";
  std::string cluster = "h800-2048";
  int64_t global_batch = 15360;
  int64_t seq_len = 0;
  int64_t gpus = 0;
  int64_t top = 10;
  bool json = false;
};

// Why no layout (or so few) fit: each constraint with its count and one example.
void print_reasons(const sim::PlanResult& r) {
  if (r.invalid > 0) {
    std::printf("%lld rejected by a constraint:\n", static_cast<long long>(r.invalid));
    for (const sim::Rejection& rj : r.rejections)
      std::printf("  %6lld  %s\n          e.g. %s: %s\n", static_cast<long long>(rj.count), rj.constraint.c_str(),
                  rj.example_layout.c_str(), rj.example_message.c_str());
  }
  if (r.out_of_memory > 0)
    std::printf("%lld out of memory; closest: %s needs %s of %s (%.2f%%) on its fullest rank\n",
                static_cast<long long>(r.out_of_memory), r.closest_oom_layout.c_str(),
                sim::format_gib(r.closest_oom_peak_bytes).c_str(), sim::format_gib(r.closest_oom_capacity_bytes).c_str(),
                100 * r.closest_oom_peak_bytes / r.closest_oom_capacity_bytes);
}

nlohmann::json plan_json(const ModelConfig& model, const sim::ClusterConfig& cluster, const PlanCliOptions& o,
                         const sim::PlanResult& r) {
  using nlohmann::json;
  json j;
  j["format"] = "preflight-plan/1";
  j["model"] = model.name;
  j["cluster"] = cluster.name;
  j["num_gpus"] = cluster.num_gpus;
  j["global_batch_size"] = o.global_batch;
  j["enumerated"] = r.enumerated;
  j["invalid"] = r.invalid;
  j["out_of_memory"] = r.out_of_memory;
  j["fit"] = r.fit;
  j["fit_shown"] = r.best.size();
  json rej = json::array();
  for (const sim::Rejection& rj : r.rejections)
    rej.push_back({{"constraint", rj.constraint}, {"count", rj.count}, {"example_layout", rj.example_layout},
                   {"example_message", rj.example_message}});
  j["rejections"] = rej;
  j["closest_out_of_memory"] = r.out_of_memory > 0 ? json{{"layout", r.closest_oom_layout},
                                                           {"peak_bytes", r.closest_oom_peak_bytes},
                                                           {"capacity_bytes", r.closest_oom_capacity_bytes}}
                                                     : json(nullptr);
  json best = json::array();
  for (const sim::PlanEntry& e : r.best) {
    json one = e.report.to_json();
    one["layout_config"] = sim::to_json(e.layout);
    best.push_back(one);
  }
  j["best"] = best;
  return j;
}

}  // namespace

void register_plan(CLI::App& app) {
  auto o = std::make_shared<PlanCliOptions>();
  auto* cmd = app.add_subcommand("plan", "Enumerate parallel layouts, drop those that do not fit, rank by step time");
  cmd->add_option("--model", o->model, "Model preset name or config path")->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Hardware preset or path")->capture_default_str();
  add_number<int64_t>(cmd, "--global-batch", o->global_batch, "Sequences per optimizer step", 1, int64_t{1} << 30);
  add_number<int64_t>(cmd, "--seq-len", o->seq_len, "Tokens per sequence (default: the model's context)", 1,
                      int64_t{1} << 30)
      ->default_str("");
  add_number<int64_t>(cmd, "--gpus", o->gpus, "Override the cluster's GPU count", 1, int64_t{1} << 24)->default_str("");
  add_number<int64_t>(cmd, "--top", o->top, "How many layouts to print", 1, 1000000);
  cmd->add_flag("--json", o->json, "Machine-readable result on stdout (the shown layouts' full sim reports)");
  cmd->callback([o] {
    const ModelConfig model = load_model_config(o->model);
    sim::ClusterConfig cluster = sim::load_cluster(o->cluster);
    if (o->gpus > 0) cluster.num_gpus = o->gpus;
    sim::PlanOptions po;
    po.global_batch_size = o->global_batch;
    po.seq_len = o->seq_len;
    po.top = static_cast<size_t>(o->top);
    const auto t0 = std::chrono::steady_clock::now();
    const sim::PlanResult r = sim::plan(model, cluster, po);
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o->json) {
      std::printf("%s\n", plan_json(model, cluster, *o, r).dump(2).c_str());
      return;
    }
    std::printf("%s on %s (%lld GPUs), global batch %lld: %lld layouts, %lld invalid, %lld out of memory, %zu fit "
                "shown (%.0f layouts/s)\n\n",
                model.name.c_str(), cluster.name.c_str(), static_cast<long long>(cluster.num_gpus),
                static_cast<long long>(o->global_batch), static_cast<long long>(r.enumerated),
                static_cast<long long>(r.invalid), static_cast<long long>(r.out_of_memory), r.best.size(),
                static_cast<double>(r.enumerated) / wall_s);
    if (r.best.empty()) {
      std::printf("no layout fits: of %lld candidates\n", static_cast<long long>(r.enumerated));
      print_reasons(r);
      return;
    }
    std::printf("%-4s %-58s %9s %8s %7s %9s %9s\n", "#", "layout", "step s", "bubble", "MFU", "tok/s/GPU", "peak GiB");
    for (size_t i = 0; i < r.best.size(); ++i) {
      const sim::SimReport& s = r.best[i].report;
      double peak = 0;
      for (const auto& m : s.memory) peak = std::max(peak, m.total_bytes);
      std::printf("%-4zu %-58s %9.3f %7.1f%% %6.1f%% %9.1f %9.1f\n", i + 1, r.best[i].layout.name.c_str(),
                  s.step_time_s, 100 * s.bubble_fraction, 100 * s.mfu, s.tokens_per_s_per_gpu, sim::gib(peak));
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
    std::printf("\n\n");
    print_reasons(r);
  });
}

}  // namespace preflight::cli
