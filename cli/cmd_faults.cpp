// `preflight faults`: Monte Carlo of a whole training run under a fault model
// (sim/faults/), with an optional checkpoint-interval sweep. See docs/FAULTS.md.
#include <cmath>
#include <limits>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/accounting.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"
#include "sim/api.hpp"
#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"
#include "sim/faults/report.hpp"

namespace preflight::cli {

namespace {

using namespace preflight::faults;

struct FaultsOptions {
  std::string faults = "deepseek-v3-2048";
  std::string model = "deepseek-v3-671b";  // checkpoint size when the fault config gives none; simulated model
  // With no run length given, one step of model on cluster with layout is simulated
  // (as `preflight check` does) for the step time, tokens per step, GPUs and checkpoint size.
  std::string cluster = "h800-2048";
  std::string layout = "deepseek-v3-dualpipe";
  int64_t gpus = 0;                        // 0: the fault config's job.gpus
  double tokens = 14.8e12;
  double tokens_per_step = 0;
  double step_time_s = 0;
  double train_days = 0;
  double wall_days = 0;
  double interval_s = 0;
  int64_t keep_last = 0;
  int64_t trials = 2000;
  uint64_t seed = 1;
  int threads = 0;
  bool sweep = false;
  int64_t sweep_trials = 500;
  bool json = false;
  std::string svg;
  std::string golden_path;  // write the --json report and the exact samples as a golden (scripts/regen_sim_goldens.sh)
  bool list = false;
  bool show_config = false;
};

// Every option that changes the result, explicitly, so that a golden re-runs exactly
// (numbers to 17 significant digits read back as the same double).
std::string result_args(const FaultsOptions& o) {
  auto num = [](double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  std::string a = "--faults " + o.faults + " --model " + o.model + " --cluster " + o.cluster + " --layout " + o.layout +
                  " --tokens " + num(o.tokens) + " --trials " + std::to_string(o.trials) + " --seed " +
                  std::to_string(o.seed);
  if (o.gpus > 0) a += " --gpus " + std::to_string(o.gpus);
  if (o.tokens_per_step > 0) a += " --tokens-per-step " + num(o.tokens_per_step);
  if (o.step_time_s > 0) a += " --step-time-s " + num(o.step_time_s);
  if (o.train_days > 0) a += " --train-days " + num(o.train_days);
  if (o.wall_days > 0) a += " --wall-days " + num(o.wall_days);
  if (o.interval_s > 0) a += " --interval-s " + num(o.interval_s);
  if (o.keep_last > 0) a += " --keep-last " + std::to_string(o.keep_last);
  if (o.sweep) a += " --sweep --sweep-trials " + std::to_string(o.sweep_trials);
  return a;
}

// A fixed seed gives the same bits on every run and thread count, so a golden stores the
// per-trial samples exactly (C99 hexadecimal floats) next to the rounded report.
nlohmann::json golden_json(const FaultsOptions& o, const nlohmann::json& report, const McSummary& s) {
  auto hex = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%a", x);
      a.push_back(buf);
    }
    return a;
  };
  return {{"format_version", 1},
          {"regenerate", "scripts/regen_sim_goldens.sh (runs: preflight faults ARGS --write-golden PATH)"},
          {"args", result_args(o)},
          {"report", report},
          {"exact", {{"wall_days_samples", hex(s.wall_days_samples)}, {"goodput_samples", hex(s.goodput_samples)}}}};
}

void run_faults(const FaultsOptions& o) {
  if (o.list) {
    for (const auto& n : preset_names("faults")) std::printf("%s\n", n.c_str());
    return;
  }
  FaultModel m = load_fault_model(o.faults);
  if (o.gpus > 0) m.job.gpus = o.gpus;
  if (o.interval_s > 0) m.checkpoint.interval_s = o.interval_s;
  if (o.keep_last > 0) m.checkpoint.keep_last = o.keep_last;

  RunOrigin origin;
  RunSpec spec;
  if (o.wall_days > 0) spec.max_wall_s = o.wall_days * 86400.0;
  const bool have_throughput = o.tokens_per_step > 0 || o.step_time_s > 0;
  if (o.train_days > 0 && have_throughput) fail("option --train-days conflicts with --step-time-s/--tokens-per-step: give one");
  // No run length at all: the throughput (and GPUs and checkpoint size) of one simulated
  // step, as `preflight check` takes them.
  const bool from_simulator = !have_throughput && !(o.train_days > 0) && !(o.wall_days > 0);
  double sim_step_time_s = 0, sim_tokens_per_step = 0;
  if (from_simulator) {
    const ModelConfig cfg = load_model_config(o.model);
    sim::ClusterConfig cluster = sim::load_cluster(o.cluster);
    if (o.gpus > 0) cluster.num_gpus = o.gpus;
    const sim::SimReport rep = sim::simulate(cfg, cluster, sim::load_layout(o.layout));
    if (!(rep.step_time_s > 0) || !(rep.tokens_per_step > 0))
      fail("simulator report: step_time_s = ", rep.step_time_s, ", tokens_per_step = ", rep.tokens_per_step,
           ": expected positive values");
    sim_step_time_s = rep.step_time_s;
    sim_tokens_per_step = rep.tokens_per_step;
    m.job.gpus = rep.num_gpus;
    if (m.job.gpus % m.job.gpus_per_node != 0) m.job.gpus_per_node = cluster.gpus_per_node;
    if (rep.checkpoint_bytes > 0) m.checkpoint.size_bytes = rep.checkpoint_bytes;
    origin.throughput_source = "simulator: preflight sim --model " + o.model + " --cluster " + o.cluster + " --layout " +
                               o.layout + (rep.fits ? "" : " (that layout does NOT fit in memory)");
    origin.checkpoint_size_source = "simulator: weights + optimizer state of " + o.model;
  } else {
    origin.checkpoint_size_source = "faults config";
    if (m.checkpoint.size_bytes == 0) {
      const ModelConfig cfg = load_model_config(o.model);
      const auto params = static_cast<double>(count_parameters(cfg).with_mtp().total);
      m.checkpoint.size_bytes = params * m.checkpoint.bytes_per_param;
      char buf[160];
      std::snprintf(buf, sizeof buf, "model %s: %.4g params x %g bytes", o.model.c_str(), params, m.checkpoint.bytes_per_param);
      origin.checkpoint_size_source = buf;
    }
  }
  validate(m, o.faults + " (after command-line overrides)");
  if (o.show_config) {
    std::printf("%s\n", to_json(m).dump(2).c_str());
    return;
  }

  if (have_throughput || from_simulator) {
    if (have_throughput && !(o.tokens_per_step > 0))
      fail("option --tokens-per-step: missing; --step-time-s needs it (or give neither to use the simulator)");
    if (have_throughput && !(o.step_time_s > 0))
      fail("option --step-time-s: missing; --tokens-per-step needs it (or give neither to use the simulator)");
    const double step_s = from_simulator ? sim_step_time_s : o.step_time_s;
    const double tokens_per_step = from_simulator ? sim_tokens_per_step : o.tokens_per_step;
    spec.step_time_s = step_s;
    spec.work_s = o.tokens / tokens_per_step * step_s;
    if (!from_simulator) origin.throughput_source = "--step-time-s/--tokens-per-step";
    origin.tokens = o.tokens;
    origin.tokens_per_step = tokens_per_step;
    origin.step_time_s = step_s;
  } else if (o.train_days > 0) {
    spec.work_s = o.train_days * 86400.0;
    origin.throughput_source = "--train-days";
  } else {
    spec.work_s = spec.max_wall_s;  // cannot finish before the horizon: a fixed-length window
    origin.throughput_source = "--wall-days window";
  }

  McOptions mc;
  mc.trials = o.trials;
  mc.seed = o.seed;
  mc.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  McOptions so = mc;
  so.trials = o.sweep_trials;
  // Refuse an unbounded run (or sweep) before any of it runs.
  check_run_budget(m, spec, mc);
  if (o.sweep) check_sweep_budget(m, spec, so);
  const McSummary s = run_monte_carlo(m, spec, mc);
  IntervalSweep sweep;
  if (o.sweep) sweep = sweep_checkpoint_interval(m, spec, so);
  if (!o.svg.empty()) write_file_atomic(o.svg, render_svg(m, s));
  const nlohmann::json report = summary_to_json(m, s, origin, o.sweep ? &sweep : nullptr);
  if (!o.golden_path.empty()) write_file_atomic(o.golden_path, golden_json(o, report, s).dump(2) + "\n");
  if (o.json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::fputs(format_text(m, s, origin, o.sweep ? &sweep : nullptr).c_str(), stdout);
  }
}

}  // namespace

void register_faults(CLI::App& app) {
  auto o = std::make_shared<FaultsOptions>();
  auto* cmd = app.add_subcommand("faults", "Monte Carlo of failures, recovery and checkpoints over a whole training run");
  cmd->add_option("--faults,-f", o->faults, "Fault model: preset name (see --list) or path to a JSON file")->capture_default_str();
  cmd->add_option("--model,-m", o->model, "Model preset or file, for the checkpoint size when the fault model gives none")->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Hardware preset or path: simulated when no run length is given")->capture_default_str();
  cmd->add_option("--layout", o->layout, "Layout preset or path: simulated when no run length is given")->capture_default_str();
  add_number<int64_t>(cmd, "--gpus", o->gpus, "GPUs of the job (default: the fault model's job.gpus); rates scale with it",
                      1, int64_t{1} << 24)
      ->default_str("");
  add_number<double>(cmd, "--tokens", o->tokens, "Token budget", 1.0, 1e30);
  add_number<double>(cmd, "--tokens-per-step", o->tokens_per_step, "Tokens per optimizer step", 1.0, 1e15)->default_str("");
  add_number<double>(cmd, "--step-time-s", o->step_time_s,
                     "Seconds per optimizer step (measured); without it and --tokens-per-step, --train-days or "
                     "--wall-days, one step of --model on --cluster with --layout is simulated",
                     1e-6, 1e9)
      ->default_str("");
  add_number<double>(cmd, "--train-days", o->train_days, "Failure-free training days (instead of tokens and throughput)",
                     1e-6, 1e6)
      ->default_str("");
  add_number<double>(cmd, "--wall-days", o->wall_days,
                     "Stop every run after this many wall-clock days (alone: simulate a fixed window)", 1e-6, 1e6)
      ->default_str("");
  add_number<double>(cmd, "--interval-s", o->interval_s, "Override the checkpoint interval (training seconds)", 1e-3, 1e9)
      ->default_str("");
  add_number<int64_t>(cmd, "--keep-last", o->keep_last, "Override the number of checkpoints kept", 1, 1000000)->default_str("");
  add_number<int64_t>(cmd, "--trials", o->trials, "Monte Carlo trials", 1, 1000000000);
  add_number<uint64_t>(cmd, "--seed", o->seed, "Random seed (results depend on it only)", 0,
                       std::numeric_limits<uint64_t>::max());
  add_number<int>(cmd, "--threads", o->threads, "Worker threads (default: all cores; results do not depend on it)", 1, 4096)
      ->default_str("");
  cmd->add_flag("--sweep", o->sweep, "Sweep the checkpoint interval and compare with Young/Daly");
  add_number<int64_t>(cmd, "--sweep-trials", o->sweep_trials, "Trials per sweep point", 1, 1000000000);
  cmd->add_flag("--json", o->json, "Print machine-readable JSON");
  cmd->add_option("--svg", o->svg, "Write an SVG: histogram of wall-clock days and the timeline of one sampled run");
  cmd->add_option("--write-golden", o->golden_path,
                  "Write the JSON report and the exact per-trial samples as a golden (see scripts/regen_sim_goldens.sh)");
  cmd->add_flag("--list", o->list, "List the fault-model presets");
  cmd->add_flag("--show-config", o->show_config, "Print the resolved fault model (rates per GPU-hour) and exit");
  cmd->callback([o] { run_faults(*o); });
}

}  // namespace preflight::cli
