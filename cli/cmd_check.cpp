// `preflight check`: the launch readiness report for model + cluster + layout. It runs
// the timing simulator (sim/api.hpp) for one step, feeds its throughput and checkpoint
// size into the fault Monte Carlo (sim/faults/), prints every number with the
// assumptions behind it, and gives two separate verdicts:
//   readiness  every pipeline rank fits in memory (any layout, a user's own included);
//   golden     the project's regression check: when goldens/check/ stores a golden for this
//              model + cluster + layout, every value must match it exactly (see "the values compared").
//              No stored golden is not a failure (a user's layout has none); --no-golden skips it.
// Exit status 1 when the layout is not ready or a stored golden does not match. The goldens
// directory is found from any working directory: $PREFLIGHT_GOLDENS_DIR, else goldens/
// next to the build tree the binary lives in, else the source tree it was built from.
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "sim/api.hpp"
#include "sim/faults/fault_model.hpp"
#include "sim/faults/monte_carlo.hpp"
#include "sim/faults/report.hpp"
#include "sim/units.hpp"

namespace preflight::cli {

namespace {

using nlohmann::json;
using namespace preflight::faults;

constexpr const char* kGoldenFormat = "preflight-check-golden/2";
constexpr const char* kRegenerate = "scripts/regen_check_goldens.sh";

struct CheckOptions {
  std::string model = "deepseek-v3-671b";
  std::string cluster = "h800-2048";
  std::string layout = "deepseek-v3-dualpipe";
  std::string faults = "deepseek-v3-2048";
  double tokens = 14.8e12;
  int64_t trials = 2000;
  uint64_t seed = 1;
  int threads = 0;
  std::string golden;  // default: goldens/check/<model>__<cluster>__<layout>.json
  bool update_golden = false;
  bool no_golden = false;
  bool json_out = false;
};

// One compared value. The golden stores it exactly (JSON's shortest round-trip decimal) and
// the comparison is exact; `noise_95` (the Monte Carlo's own 95% half-width, 0 for the
// deterministic simulator values) is stored for the reader, to judge a deliberate change.
struct Checked {
  std::string name;
  double value = 0;
  double noise_95 = 0;
};

std::string stem(const std::string& name_or_path) { return std::filesystem::path(name_or_path).stem().string(); }

// The goldens/ directory of the project: see the header comment for the order.
std::filesystem::path goldens_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("PREFLIGHT_GOLDENS_DIR"); env != nullptr && *env != '\0') return env;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // build/cli/preflight → <checkout>/goldens
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (fs::is_directory(dir / "goldens" / "check", ec)) return dir / "goldens";
    }
  }
#ifdef PREFLIGHT_SOURCE_DIR
  if (fs::is_directory(fs::path(PREFLIGHT_SOURCE_DIR) / "goldens", ec)) return fs::path(PREFLIGHT_SOURCE_DIR) / "goldens";
#endif
  return "goldens";
}

std::string golden_path(const CheckOptions& o) {
  if (!o.golden.empty()) return o.golden;
  const std::string name = stem(o.model) + "__" + stem(o.cluster) + "__" + stem(o.layout) + ".json";
  return (goldens_dir() / "check" / name).string();
}

std::string command_line(const CheckOptions& o) {
  char seed[32];
  std::snprintf(seed, sizeof seed, "%llu", static_cast<unsigned long long>(o.seed));
  char tokens[32];
  std::snprintf(tokens, sizeof tokens, "%g", o.tokens);
  return "preflight check --model " + o.model + " --cluster " + o.cluster + " --layout " + o.layout + " --faults " + o.faults +
         " --tokens " + tokens + " --trials " + std::to_string(o.trials) + " --seed " + seed;
}

void run_check(const CheckOptions& o) {
  if (o.trials < 1) fail("option --trials = ", o.trials, ": expected an integer >= 1");
  if (!(o.tokens > 0)) fail("option --tokens = ", o.tokens, ": expected a positive token budget");
  if (o.update_golden && o.no_golden) fail("options --update-golden and --no-golden conflict: give one");

  // --- one step on the simulator ---
  const ModelConfig model = load_model_config(o.model);
  const sim::ClusterConfig cluster = sim::load_cluster(o.cluster);
  const sim::LayoutConfig layout = sim::load_layout(o.layout);
  const sim::SimReport rep = sim::simulate(model, cluster, layout);
  if (!(rep.step_time_s > 0) || !(rep.tokens_per_step > 0))
    fail("simulator report: step_time_s = ", rep.step_time_s, ", tokens_per_step = ", rep.tokens_per_step, ": expected positive values");

  // --- the whole run under faults ---
  FaultModel fm = load_fault_model(o.faults);
  fm.job.gpus = rep.num_gpus;
  if (fm.job.gpus % fm.job.gpus_per_node != 0) fm.job.gpus_per_node = cluster.gpus_per_node;
  if (rep.checkpoint_bytes > 0) fm.checkpoint.size_bytes = rep.checkpoint_bytes;
  validate(fm, o.faults + " (with the simulator's GPU count and checkpoint size)");
  RunSpec spec;
  spec.step_time_s = rep.step_time_s;
  spec.work_s = o.tokens / rep.tokens_per_step * rep.step_time_s;
  McOptions mc;
  mc.trials = o.trials;
  mc.seed = o.seed;
  mc.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  mc.record_timeline = false;
  const McSummary s = run_monte_carlo(fm, spec, mc);

  // --- the values compared with the golden ---
  // Every value is reproducible bit for bit: the simulator is deterministic, and the Monte
  // Carlo is for a fixed seed and trial count at any thread count (each trial has its own
  // Philox stream; results are combined in trial order). So the golden comparison is exact:
  // any change of the model, cluster, layout, cost model or fault simulation shows, and a
  // deliberate one is regenerated (kRegenerate) with the diff reviewed against noise_95.
  std::vector<Checked> vals;
  auto det = [&](const std::string& n, double v) { vals.push_back({n, v, 0.0}); };
  auto mcv = [&](const std::string& n, double v, double sd, double k) {
    vals.push_back({n, v, round6(k * 1.96 * sd / std::sqrt(static_cast<double>(s.trials)))});
  };
  det("step_time_s", rep.step_time_s);
  det("bubble_fraction", rep.bubble_fraction);
  det("mfu", rep.mfu);
  det("tokens_per_s_per_gpu", rep.tokens_per_s_per_gpu);
  det("checkpoint_bytes", fm.checkpoint.size_bytes);
  det("failure_free_days", spec.work_s / 86400.0);
  for (const sim::StageMemory& m : rep.memory) det("memory_total_bytes.rank" + std::to_string(m.stage), m.total_bytes);
  mcv("wall_days.mean", s.wall_days.mean, s.wall_days.stddev, 1);
  mcv("wall_days.p5", s.wall_days.p5, s.wall_days.stddev, 3);
  mcv("wall_days.p50", s.wall_days.p50, s.wall_days.stddev, 3);
  mcv("wall_days.p95", s.wall_days.p95, s.wall_days.stddev, 3);
  mcv("goodput.mean", s.goodput.mean, s.goodput.stddev, 1);
  mcv("goodput.p5", s.goodput.p5, s.goodput.stddev, 3);
  mcv("goodput.p95", s.goodput.p95, s.goodput.stddev, 3);
  mcv("interruptions.mean", s.interruptions.mean, s.interruptions.stddev, 1);

  std::vector<std::string> problems;
  for (const sim::StageMemory& m : rep.memory)
    if (!m.fits)
      problems.push_back("pipeline rank " + std::to_string(m.stage) + " needs " + sim::format_gib(m.total_bytes) + " > " +
                         sim::format_gib(m.capacity_bytes) + " per GPU");
  if (!rep.fits && problems.empty()) problems.push_back("the simulator reports that the layout does not fit");

  // --- golden ---
  const std::string gpath = golden_path(o);
  std::vector<std::string> golden_lines;
  std::vector<std::string> regressions;  // golden mismatches, reported apart from readiness
  std::string golden_verdict;
  if (o.update_golden) {
    json g;
    g["format"] = kGoldenFormat;
    g["regenerate"] = kRegenerate;
    g["command"] = command_line(o);
    g["tolerance_rule"] = "exact: the simulator is deterministic and the Monte Carlo reproduces bit for bit for a fixed seed and trial count; "
                          "noise_95 (informative only) is the Monte Carlo's 95% half-width, 1.96*sd/sqrt(trials), 3x that for percentiles";
    json v = json::object();
    for (const Checked& c : vals) v[c.name] = {{"value", c.value}, {"noise_95", c.noise_95}};
    g["values"] = v;
    g["fits"] = rep.fits;
    write_file_atomic(gpath, g.dump(2) + "\n");
    golden_lines.push_back("golden written: " + gpath);
    golden_verdict = "golden written: " + gpath;
  } else if (o.no_golden) {
    golden_verdict = "golden: not compared (--no-golden)";
  } else {
    if (!o.golden.empty() && !std::filesystem::exists(gpath)) fail("option --golden: no such file '", gpath, "'");
    if (!std::filesystem::exists(gpath)) {
      golden_verdict = "golden: none stored for this model, cluster and layout (" + gpath +
                       "); readiness above does not depend on one";
    } else {
      json g;
      try {
        g = json::parse(read_file(gpath));
      } catch (const json::parse_error& e) {
        fail(gpath, ": not valid JSON: ", e.what());
      }
      if (g.value("format", "") != kGoldenFormat)
        fail(gpath, ": field 'format' = ", g.value("format", json("")).dump(), ": expected \"", kGoldenFormat, "\" (regenerate with ", kRegenerate, ")");
      const json& gv = g.at("values");
      for (const Checked& c : vals) {
        if (!gv.contains(c.name)) {
          regressions.push_back("golden has no value '" + c.name + "' (regenerate with " + kRegenerate + ")");
          continue;
        }
        const json& gvalue = gv[c.name];
        if (!gvalue.is_object() || !gvalue.contains("value") || !gvalue["value"].is_number())
          fail(gpath, ": field 'values.", c.name, ".value': expected a number (regenerate with ", kRegenerate, ")");
        const double want = gvalue["value"].get<double>();
        const double noise = gvalue.value("noise_95", 0.0);
        const bool ok = c.value == want;
        char buf[256];
        std::snprintf(buf, sizeof buf, "  %-32s %16.6g %16.6g %12.3g  %s", c.name.c_str(), c.value, want, noise,
                      ok ? "ok" : std::fabs(c.value - want) <= noise ? "DIFFERS (within noise)" : "DIFFERS");
        golden_lines.push_back(buf);
        if (!ok) {
          char d[256];
          std::snprintf(d, sizeof d, "'%s' = %.17g, golden %.17g (difference %.3g; Monte Carlo noise %.3g)", c.name.c_str(),
                        c.value, want, c.value - want, noise);
          regressions.push_back(d);
        }
      }
      if (g.value("fits", true) != rep.fits) regressions.push_back("memory fit differs from the golden");
      golden_verdict = regressions.empty() ? "golden: every value matches " + gpath
                                           : "golden: " + std::to_string(regressions.size()) + " value(s) differ from " + gpath;
    }
  }

  // --- report ---
  const CheckpointPlan& ck = fm.checkpoint;
  if (o.json_out) {
    json j;
    j["format"] = "preflight-check-report/1";
    j["command"] = command_line(o);
    j["simulator"] = rep.to_json();
    j["faults"] = summary_to_json(fm, s, {"simulator", o.tokens, rep.tokens_per_step, rep.step_time_s, "simulator report"}, nullptr);
    j["fault_model"] = to_json(fm);
    j["problems"] = problems;
    j["ready"] = problems.empty();
    j["golden"] = {{"path", gpath}, {"verdict", golden_verdict}, {"regressions", regressions}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("launch readiness: %s on %s (%lld GPUs), layout %s\n", rep.model.c_str(), rep.cluster.c_str(),
                static_cast<long long>(rep.num_gpus), rep.layout.c_str());
    std::printf("  PP %lld  TP %lld  EP %lld  DP %lld (expert DP %lld)  ZeRO-%lld  schedule %s, batch %lld x %lld tokens\n\n",
                static_cast<long long>(rep.pp), static_cast<long long>(rep.tp), static_cast<long long>(rep.ep),
                static_cast<long long>(rep.dp), static_cast<long long>(rep.expert_dp), static_cast<long long>(rep.zero_stage),
                rep.schedule.c_str(), static_cast<long long>(rep.global_batch_size), static_cast<long long>(rep.seq_len));
    std::printf("memory per pipeline rank (GiB):\n");
    for (const sim::StageMemory& m : rep.memory)
      std::printf("  rank %-3lld %8.2f of %6.2f  %s\n", static_cast<long long>(m.stage), sim::gib(m.total_bytes),
                  sim::gib(m.capacity_bytes), m.fits ? "fits" : "DOES NOT FIT");
    std::printf("\none step (timing simulator):\n");
    std::printf("  step time %.3f s, bubble %.2f%%, MFU %.2f%%, %.1f tokens/s per GPU, %.4g tokens/step\n", rep.step_time_s,
                100 * rep.bubble_fraction, 100 * rep.mfu, rep.tokens_per_s_per_gpu, rep.tokens_per_step);
    std::printf("  %.4g tokens: %.2f days failure-free\n\n", o.tokens, spec.work_s / 86400.0);
    std::printf("whole run under faults (%s, %lld trials, seed %llu):\n", fm.name.c_str(), static_cast<long long>(s.trials),
                static_cast<unsigned long long>(s.seed));
    std::printf("  wall-clock days  mean %.2f  p5 %.2f  p50 %.2f  p95 %.2f\n", s.wall_days.mean, s.wall_days.p5, s.wall_days.p50, s.wall_days.p95);
    std::printf("  goodput          mean %.2f%%  p5 %.2f%%  p95 %.2f%%\n", 100 * s.goodput.mean, 100 * s.goodput.p5, 100 * s.goodput.p95);
    std::printf("  interruptions    mean %.1f  p5 %.0f  p95 %.0f\n\n", s.interruptions.mean, s.interruptions.p5, s.interruptions.p95);
    std::printf("checkpoint plan: %s every %.0f min, %s (simulator: weights + optimizer state), write %.1f s at %g GB/s, "
                "stall %.1f s, load %.1f s at %g GB/s, keep last %lld%s\n\n",
                ck.async ? "async" : "sync", ck.interval_s / 60, sim::format_gib(ck.size_bytes).c_str(), ck.write_s(), ck.write_GBps, ck.stall_s(),
                ck.read_s(), ck.read_GBps, static_cast<long long>(ck.keep_last),
                ck.keep_every_n > 0 ? (" + every " + std::to_string(ck.keep_every_n) + "th kept forever").c_str() : "");
    std::printf("assumptions:\n");
    std::printf("  - throughput is the simulator's steady state for the final batch (%lld sequences); the batch ramp and the\n"
                "    context-extension phases are not modelled; 1-2%% day/night throughput drift is ignored\n",
                static_cast<long long>(rep.global_batch_size));
    std::printf("  - failure rates: %s, measured on %lld GPUs over %g days; per_gpu classes scale with GPU count,\n"
                "    network switch/cable with GPU count x fat-tree tiers (%lld here vs %lld), planned maintenance and loss spikes per job\n",
                fm.reference_source.c_str(), static_cast<long long>(fm.reference_gpus), fm.reference_days,
                static_cast<long long>(fabric_tiers(fm.job.gpus, fm.job.switch_radix)),
                static_cast<long long>(fabric_tiers(fm.reference_gpus, fm.job.switch_radix)));
    std::printf("  - failures are a Poisson process in wall-clock time; a failure during recovery restarts the recovery\n");
    std::printf("  - recovery: requeue %.0f s + rendezvous %.0f s + checkpoint load + warm-up %.0f s; %lld hot-spare nodes "
                "(swap %.0f s), repair %.0f h\n",
                fm.recovery.requeue_s, fm.recovery.rendezvous_s, fm.recovery.warmup_s,
                static_cast<long long>(fm.recovery.hot_spare_nodes), fm.recovery.spare_swap_s, fm.recovery.repair_h);
    std::printf("  - detection: NCCL watchdog %.0f s; cross-DP check every %.0f s, p = %g per check; loss alert %g + %g steps\n",
                fm.detection.watchdog_timeout_s, fm.detection.cross_dp_check_interval_s, fm.detection.cross_dp_detect_probability,
                fm.detection.loss_alert_steps, fm.detection.loss_observe_steps);
    std::printf("  - storage bandwidths (%g GB/s write, %g GB/s read) are planning figures from the fault model, not measurements\n\n",
                ck.write_GBps, ck.read_GBps);
    if (!golden_lines.empty()) {
      std::printf("golden %s:\n", gpath.c_str());
      if (!o.update_golden) std::printf("  %-32s %16s %16s %12s\n", "value", "now", "golden", "noise 95%");
      for (const std::string& l : golden_lines) std::printf("%s\n", l.c_str());
      std::printf("\n");
    }
    std::printf("%s\n", problems.empty() ? "READY: every pipeline rank fits in memory"
                                         : ("NOT READY: " + std::to_string(problems.size()) + " problem(s)").c_str());
    for (const std::string& p : problems) std::printf("  - %s\n", p.c_str());
    std::printf("%s\n", golden_verdict.c_str());
    for (const std::string& r : regressions) std::printf("  - %s\n", r.c_str());
  }
  std::fflush(stdout);
  if (!problems.empty()) fail("check failed: ", problems.front(), problems.size() > 1 ? " (and more, see the report)" : "");
  if (!regressions.empty())
    fail("check: does not match the stored golden ", gpath, ": ", regressions.front(),
         regressions.size() > 1 ? " (and more, see the report)" : "");
}

}  // namespace

void register_check(CLI::App& app) {
  auto o = std::make_shared<CheckOptions>();
  auto* cmd = app.add_subcommand("check", "Launch readiness report (memory, step time, MFU, days and goodput under faults) vs goldens");
  cmd->add_option("--model", o->model, "Model preset or config path")->capture_default_str();
  cmd->add_option("--cluster", o->cluster, "Hardware preset (configs/hardware) or path")->capture_default_str();
  cmd->add_option("--layout", o->layout, "Layout preset (configs/layouts) or path")->capture_default_str();
  cmd->add_option("--faults", o->faults, "Fault model preset (configs/faults) or path")->capture_default_str();
  // 1e16 tokens is ~700x DeepSeek-V3's 14.8T; the Monte Carlo's event budget refuses runs
  // too long to simulate in seconds with its own message.
  add_number<double>(cmd, "--tokens", o->tokens, "Token budget", 1.0, 1e16);
  add_number<int64_t>(cmd, "--trials", o->trials, "Monte Carlo trials", 1, 10'000'000);
  add_number<uint64_t>(cmd, "--seed", o->seed, "Random seed", 0, UINT64_MAX);
  add_number<int>(cmd, "--threads", o->threads, "Worker threads (0: all cores; results do not depend on it)", 0, 4096);
  cmd->add_option("--golden", o->golden, "Golden file (default goldens/check/<model>__<cluster>__<layout>.json)");
  cmd->add_flag("--update-golden", o->update_golden, "Write the golden instead of comparing (see " + std::string(kRegenerate) + ")");
  cmd->add_flag("--no-golden", o->no_golden, "Skip the golden comparison");
  cmd->add_flag("--json", o->json_out, "Print machine-readable JSON");
  cmd->callback([o] { run_check(*o); });
}

}  // namespace preflight::cli
