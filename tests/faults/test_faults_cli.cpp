// The `faults` command as a user runs it: with no arguments it takes its numbers from the
// simulator (as `check` does) and says so; unbounded runs and bad values are refused fast
// with one line; `check --tokens 1e20` too (cmd_check.cpp is tested here, not changed).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "tests/cli_run.hpp"

namespace preflight::faults {
namespace {

using nlohmann::json;

using test::CliRun;
CliRun run(const std::string& args) { return test::run_cli(args); }

// rc 1 within a few seconds, nothing on stdout, one line on stderr naming `what`.
void expect_refused(const std::string& args, const std::string& what) {
  const CliRun r = run(args);
  EXPECT_EQ(r.rc, 1) << args << "\n" << r.out << r.err;
  EXPECT_EQ(r.out, "") << args;
  ASSERT_FALSE(r.err.empty()) << args;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << args << ": " << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
  // Refused before simulating: no run of these would end within minutes.
  EXPECT_LT(r.wall_s, 5.0) << args;
}

TEST(FaultsCliDefaults, NoArgumentsTakeTheSimulatorsNumbers) {
  const CliRun f = run("faults --trials 20 --threads 2 --json");
  ASSERT_EQ(f.rc, 0) << f.err;
  const CliRun s = run("sim --json");
  ASSERT_EQ(s.rc, 0) << s.err;
  const json fj = json::parse(f.out), sj = json::parse(s.out);
  // Both reports round to 6 significant digits the same double: equal exactly.
  EXPECT_EQ(fj.at("run").at("step_time_s"), sj.at("step").at("step_time_s"));
  EXPECT_EQ(fj.at("run").at("tokens_per_step"), sj.at("step").at("tokens_per_step"));
  EXPECT_EQ(fj.at("checkpoint").at("size_bytes"), sj.at("checkpoint_bytes"));
  EXPECT_EQ(fj.at("gpus"), sj.at("inputs").at("num_gpus"));
  const double tokens = fj.at("run").at("tokens").get<double>();
  EXPECT_EQ(tokens, 14.8e12);
  EXPECT_NEAR(fj.at("run").at("work_days").get<double>(),
              tokens / sj.at("step").at("tokens_per_step").get<double>() * sj.at("step").at("step_time_s").get<double>() /
                  86400.0,
              1e-5 * fj.at("run").at("work_days").get<double>());  // both inputs rounded to 6 digits
  const std::string src = fj.at("run").at("throughput_source").get<std::string>();
  EXPECT_EQ(src.rfind("simulator: preflight sim --model deepseek-v3-671b --cluster h800-2048 --layout deepseek-v3-dualpipe", 0), 0u)
      << src;
  EXPECT_EQ(fj.at("run").at("checkpoint_size_source").get<std::string>().rfind("simulator", 0), 0u);
  // The text report says so.
  const CliRun t = run("faults --trials 20 --threads 2");
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_NE(t.out.find("s/step; simulator: preflight sim --model deepseek-v3-671b"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("(simulator: weights + optimizer state"), std::string::npos) << t.out;
}

TEST(FaultsCliRefusals, UnboundedRunsAreRefusedFastInOneLine) {
  // Out of the flags' ranges.
  expect_refused("faults --wall-days 1e20", "--wall-days");
  expect_refused("faults --train-days 1e20", "--train-days");
  expect_refused("faults --step-time-s 1e20 --tokens-per-step 1000", "--step-time-s");
  expect_refused("faults --trials 1e20 --train-days 10", "--trials");
  expect_refused("faults --sweep --sweep-trials 1e20 --train-days 10", "--sweep-trials");
  // In range, but the event count is over the budget (kMaxSimulatedEvents).
  expect_refused("faults --wall-days 1e6", "over the limit");
  expect_refused("faults --train-days 1e6", "over the limit");
  expect_refused("faults --tokens 1e20 --tokens-per-step 1000 --step-time-s 0.001", "over the limit");
  expect_refused("faults --tokens-per-step 1.5 --step-time-s 1", "over the limit");
  expect_refused("faults --tokens 1e30 --tokens-per-step 1e6 --step-time-s 1e9", "over the limit");
  expect_refused("faults --train-days 10 --trials 1000000000", "over the limit");
  // The sweep's budget is checked before the single run is simulated.
  expect_refused("faults --train-days 100 --sweep --sweep-trials 1000000", "checkpoint-interval sweep");
  // check: its flag range, and the budget of the Monte Carlo it runs (1e16 tokens at the
  // simulated 16.7 s per 6.3e7 tokens: 1.5e6 checkpoints per trial x 2000 trials).
  expect_refused("check --tokens 1e20 --no-golden", "--tokens");
  expect_refused("check --tokens 1e16 --no-golden", "over the limit");
}

TEST(FaultsCliRefusals, BadOverridesAreErrorsNotDefaults) {
  for (const char* v : {"nan", "0", "-5", "inf", ""}) expect_refused(std::string("faults --train-days 10 --interval-s '") + v + "'", "--interval-s");
  expect_refused("faults --train-days 10 --keep-last 0", "--keep-last");
  expect_refused("faults --train-days 10 --keep-last -1", "--keep-last");
  expect_refused("faults --train-days 10 --gpus 0", "--gpus");
  expect_refused("faults --train-days 10 --seed -1", "--seed");
  expect_refused("faults --train-days 10 --threads 0", "--threads");
  expect_refused("faults --tokens-per-step 1000", "--step-time-s");
  expect_refused("faults --step-time-s 10", "--tokens-per-step");
  expect_refused("faults --train-days 10 --step-time-s 10 --tokens-per-step 1000", "--train-days");
  // The override is used, not a default: the report shows it.
  const CliRun r = run("faults --train-days 5 --trials 10 --interval-s 777 --keep-last 7 --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j.at("checkpoint").at("interval_s"), 777);
  EXPECT_EQ(j.at("checkpoint").at("keep_last"), 7);
}

}  // namespace
}  // namespace preflight::faults

namespace preflight::faults {
namespace {

std::string source_dir() {
  const char* s = std::getenv("PREFLIGHT_SOURCE_DIR");
  return s && *s ? s : PREFLIGHT_SOURCE_DIR_PATH;
}

// A fixed seed gives the same bits for any thread count, so the goldens are compared
// exactly: the whole rounded report and every per-trial sample bit for bit (hex floats).
TEST(FaultsGoldens, MonteCarloReproducesBitForBit) {
  int found = 0;
  for (const char* name : {"deepseek-v3-2048-from-sim", "llama3-54d-window"}) {
    SCOPED_TRACE(name);
    const std::string path = source_dir() + "/goldens/faults/" + name + ".json";
    const json golden = json::parse(read_file(path));
    ASSERT_EQ(golden.at("format_version"), 1);
    ASSERT_GT(golden.at("exact").at("wall_days_samples").size(), 0u);
    const std::string out = testing::TempDir() + "faults_golden_" + std::to_string(getpid()) + ".json";
    // Another thread count than the regeneration's (2): the bits must not depend on it.
    const CliRun r = run("faults " + golden.at("args").get<std::string>() + " --threads 3 --write-golden " + out);
    ASSERT_EQ(r.rc, 0) << r.err;
    const json now = json::parse(read_file(out));
    std::remove(out.c_str());
    EXPECT_EQ(now.at("args"), golden.at("args"));
    EXPECT_EQ(now.at("exact"), golden.at("exact")) << "per-trial samples differ; if intended, run scripts/regen_sim_goldens.sh";
    EXPECT_EQ(now.at("report").dump(2), golden.at("report").dump(2)) << "if intended, run scripts/regen_sim_goldens.sh";
    ++found;
  }
  EXPECT_EQ(found, 2);
}

}  // namespace
}  // namespace preflight::faults
