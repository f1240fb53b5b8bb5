// `preflight faults`: Monte Carlo of a whole training run under a fault model
// (sim/faults/), with an optional checkpoint-interval sweep. See docs/FAULTS.md.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "reference/core/accounting.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/presets.hpp"
#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"
#include "sim/faults/report.hpp"

namespace preflight::cli {

namespace {

using namespace preflight::faults;

struct FaultsOptions {
  std::string faults = "deepseek-v3-2048";
  std::string model = "deepseek-v3-671b";  // checkpoint size when the fault config gives none
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
  bool list = false;
  bool show_config = false;
};

void run_faults(const FaultsOptions& o) {
  if (o.list) {
    for (const auto& n : preset_names("faults")) std::printf("%s\n", n.c_str());
    return;
  }
  FaultModel m = load_fault_model(o.faults);
  if (o.gpus < 0) fail("option --gpus = ", o.gpus, ": expected a positive GPU count");
  if (o.gpus > 0) m.job.gpus = o.gpus;
  if (o.interval_s < 0) fail("option --interval-s = ", o.interval_s, ": expected a positive time in seconds");
  if (o.interval_s > 0) m.checkpoint.interval_s = o.interval_s;
  if (o.keep_last < 0) fail("option --keep-last = ", o.keep_last, ": expected an integer >= 1");
  if (o.keep_last > 0) m.checkpoint.keep_last = o.keep_last;

  RunOrigin origin;
  origin.checkpoint_size_source = "faults config";
  if (m.checkpoint.size_bytes == 0) {
    const ModelConfig cfg = load_model_config(o.model);
    const auto params = static_cast<double>(count_parameters(cfg).with_mtp().total);
    m.checkpoint.size_bytes = params * m.checkpoint.bytes_per_param;
    char buf[160];
    std::snprintf(buf, sizeof buf, "model %s: %.4g params x %g bytes", o.model.c_str(), params, m.checkpoint.bytes_per_param);
    origin.checkpoint_size_source = buf;
  }
  validate(m, o.faults + " (after command-line overrides)");
  if (o.show_config) {
    std::printf("%s\n", to_json(m).dump(2).c_str());
    return;
  }

  RunSpec spec;
  if (o.wall_days < 0) fail("option --wall-days = ", o.wall_days, ": expected a positive number of days");
  if (o.train_days < 0) fail("option --train-days = ", o.train_days, ": expected a positive number of days");
  if (o.wall_days > 0) spec.max_wall_s = o.wall_days * 86400.0;
  const bool have_throughput = o.tokens_per_step > 0 || o.step_time_s > 0;
  if (have_throughput) {
    if (!(o.tokens_per_step > 0)) fail("option --tokens-per-step = ", o.tokens_per_step, ": expected a positive token count (with --step-time-s)");
    if (!(o.step_time_s > 0)) fail("option --step-time-s = ", o.step_time_s, ": expected a positive time in seconds (with --tokens-per-step)");
    if (!(o.tokens > 0)) fail("option --tokens = ", o.tokens, ": expected a positive token budget");
    spec.step_time_s = o.step_time_s;
    spec.work_s = o.tokens / o.tokens_per_step * o.step_time_s;
    origin.throughput_source = "--step-time-s/--tokens-per-step";
    origin.tokens = o.tokens;
    origin.tokens_per_step = o.tokens_per_step;
    origin.step_time_s = o.step_time_s;
  } else if (o.train_days > 0) {
    spec.work_s = o.train_days * 86400.0;
    origin.throughput_source = "--train-days";
  } else if (o.wall_days > 0) {
    spec.work_s = spec.max_wall_s;  // cannot finish before the horizon: a fixed-length window
    origin.throughput_source = "--wall-days window";
  } else {
    fail("no run length: give --step-time-s and --tokens-per-step (with --tokens), or --train-days, or --wall-days");
  }
  if (o.train_days > 0 && have_throughput) fail("option --train-days conflicts with --step-time-s/--tokens-per-step: give one");

  McOptions mc;
  mc.trials = o.trials;
  mc.seed = o.seed;
  mc.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.trials < 1) fail("option --trials = ", o.trials, ": expected an integer >= 1");
  const McSummary s = run_monte_carlo(m, spec, mc);
  IntervalSweep sweep;
  if (o.sweep) {
    if (o.sweep_trials < 1) fail("option --sweep-trials = ", o.sweep_trials, ": expected an integer >= 1");
    McOptions so = mc;
    so.trials = o.sweep_trials;
    sweep = sweep_checkpoint_interval(m, spec, so);
  }
  if (!o.svg.empty()) write_file_atomic(o.svg, render_svg(m, s));
  if (o.json) {
    std::printf("%s\n", summary_to_json(m, s, origin, o.sweep ? &sweep : nullptr).dump(2).c_str());
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
  cmd->add_option("--gpus", o->gpus, "GPUs of the job (default: the fault model's job.gpus); rates scale with it");
  cmd->add_option("--tokens", o->tokens, "Token budget")->capture_default_str();
  cmd->add_option("--tokens-per-step", o->tokens_per_step, "Tokens per optimizer step");
  cmd->add_option("--step-time-s", o->step_time_s, "Seconds per optimizer step (from the timing simulator or a measurement)");
  cmd->add_option("--train-days", o->train_days, "Failure-free training days (instead of tokens and throughput)");
  cmd->add_option("--wall-days", o->wall_days, "Stop every run after this many wall-clock days (alone: simulate a fixed window)");
  cmd->add_option("--interval-s", o->interval_s, "Override the checkpoint interval (training seconds)");
  cmd->add_option("--keep-last", o->keep_last, "Override the number of checkpoints kept");
  cmd->add_option("--trials", o->trials, "Monte Carlo trials")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (results depend on it only)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores; results do not depend on it)");
  cmd->add_flag("--sweep", o->sweep, "Sweep the checkpoint interval and compare with Young/Daly");
  cmd->add_option("--sweep-trials", o->sweep_trials, "Trials per sweep point")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print machine-readable JSON");
  cmd->add_option("--svg", o->svg, "Write an SVG: histogram of wall-clock days and the timeline of one sampled run");
  cmd->add_flag("--list", o->list, "List the fault-model presets");
  cmd->add_flag("--show-config", o->show_config, "Print the resolved fault model (rates per GPU-hour) and exit");
  cmd->callback([o] { run_faults(*o); });
}

}  // namespace preflight::cli
