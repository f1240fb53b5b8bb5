// `preflight train` and `preflight corpus` run as a user runs them (the real binary,
// PREFLIGHT_BIN): flag errors, --resume and its flags, SIGTERM/SIGINT, outputs that are inputs,
// the corpus command. Kept cheap: `tiny` with B = 2, T = 16, a few steps per run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/data.hpp"
#include "reference/train/trainer.hpp"
#include "tests/train/train_test_util.hpp"
#include "tests/train/reseal.hpp"

namespace fs = std::filesystem;
using namespace preflight;
using namespace preflight::train;

namespace {

std::string tmpdir(const std::string& name) { return test::fresh_tmpdir("train-cli-" + name); }
using test::corpus_path;

std::string exe() {
  const char* bin = std::getenv("PREFLIGHT_BIN");
  return bin ? bin : PREFLIGHT_BIN_PATH;
}


struct CliRun {
  int rc = -1;   // exit status; -1 when killed by a signal
  int sig = 0;   // the signal that killed it
  std::string out, err;
};

// Starts the binary with argv (no shell: "" is an argument) and stdout/stderr in files.
pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    // As under ctest (tests/CMakeLists.txt): OpenMP's spinning workers of many short runs on a
    // loaded 2-core machine cost seconds each; passive waiting changes no result.
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    if (!std::freopen(out.c_str(), "w", stdout) || !std::freopen(err.c_str(), "w", stderr)) std::_Exit(126);
    std::vector<char*> argv;
    const std::string e = exe();
    argv.push_back(const_cast<char*>(e.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(e.c_str(), argv.data());
    std::_Exit(127);
  }
  return pid;
}

CliRun finish(pid_t pid, const std::string& out, const std::string& err) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliRun r;
  if (WIFEXITED(status)) r.rc = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.sig = WTERMSIG(status);
  r.out = read_file(out), r.err = read_file(err);
  fs::remove(out), fs::remove(err);
  return r;
}

CliRun run(const std::vector<std::string>& args) {
  static int n = 0;
  const std::string base = (fs::temp_directory_path() / ("preflight-cli-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(n++))).string();
  return finish(spawn(args, base + ".out", base + ".err"), base + ".out", base + ".err");
}

// The tiny run every test starts from, plus `more`.
std::vector<std::string> train_args(std::vector<std::string> more) {
  std::vector<std::string> a = {"train", "--batch", "2", "--seq-len", "16", "--warmup", "2", "--quiet"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

void expect_one_line_error(const CliRun& r, const std::string& fragment, const std::string& what) {
  EXPECT_EQ(r.rc, 1) << what << ": " << r.err;
  EXPECT_EQ(r.sig, 0) << what;
  ASSERT_FALSE(r.err.empty()) << what;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << what << ": exactly one line: " << r.err;
  EXPECT_EQ(r.err.rfind("preflight: error: ", 0), 0u) << what << ": " << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << what << ": " << r.err;
}

std::string file_of(const std::string& dir, int64_t step, const std::string& name) {
  return (fs::path(dir) / checkpoint_dir_name(step) / name).string();
}

nlohmann::json trainer_json(const std::string& dir, int64_t step) {
  return nlohmann::json::parse(read_file(file_of(dir, step, "trainer.json")));
}

// The "lr" of each metrics line, by step.
std::map<int64_t, std::string> lr_by_step(const std::string& metrics) {
  std::map<int64_t, std::string> m;
  const std::string text = read_file(metrics);
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const auto j = nlohmann::json::parse(text.substr(at, nl - at));
    m[j["step"].get<int64_t>()] = j["lr"].dump();
    at = nl + 1;
  }
  return m;
}

}  // namespace

// cmd_train.cpp divided by --log-every when stdout is not a terminal: 0 (or "") was SIGFPE.
TEST(TrainCli, LogEveryZeroOrEmptyIsAFlagError) {
  expect_one_line_error(run(train_args({"--steps", "3", "--log-every", "0"})), "--log-every", "--log-every 0");
  expect_one_line_error(run(train_args({"--steps", "3", "--log-every", ""})), "--log-every", "--log-every ''");
  // Non-terminal stdout (a file here), not --quiet: a line at steps 1 and 2 (every 2nd, and the last).
  const CliRun ok = run({"train", "--batch", "2", "--seq-len", "16", "--warmup", "1", "--steps", "3", "--log-every", "2"});
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.out.find("step 0 "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("step 1 "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("step 2 "), std::string::npos) << ok.out;
}

// `train --steps 5` without --warmup: the default warm-up (10) is not below the run's length;
// a tenth of the run is used (and said) instead of refusing. An explicit --warmup is checked.
TEST(TrainCli, ShortRunWithoutWarmupUsesATenth) {
  const CliRun r = run({"train", "--batch", "2", "--seq-len", "16", "--steps", "5", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("--warmup 0 (a tenth of --steps 5"), std::string::npos) << r.err;
  expect_one_line_error(run({"train", "--batch", "2", "--seq-len", "16", "--steps", "5", "--warmup", "10", "--quiet"}),
                        "--warmup = 10 must be below --steps = 5", "explicit --warmup 10");
  const CliRun ok = run({"train", "--batch", "2", "--seq-len", "16", "--steps", "11", "--stop-at", "1", "--quiet"});
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(ok.err.find("--warmup"), std::string::npos) << ok.err;  // the default fits: nothing to say
}

// Every out-of-range training number: one line naming the flag, rc 1, before any step.
TEST(TrainCli, OutOfRangeNumbersNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--micro-batches", "1e20"}, "--micro-batches"},
      {{"--batch", "1e20"}, "--batch"},
      {{"--micro-batches", "99999999999999999999"}, "--micro-batches"},
      {{"--steps", "1e20"}, "--steps"},
      {{"--lr", "-1"}, "--lr"},
      {{"--lr", "nan"}, "--lr"},
      {{"--lr", "0.001", "--lr-min", "0.01"}, "--lr-min"},
      {{"--weight-decay", "-0.1"}, "--weight-decay"},
      {{"--mtp-lambda", "-1"}, "--mtp-lambda"},
      {{"--seq-aux-alpha", "-1"}, "--seq-aux-alpha"},
      {{"--bias-gamma", "nan"}, "--bias-gamma"},
      {{"--seed", "-1"}, "--seed"},
      {{"--seed", "18446744073709551616"}, "--seed"},
      {{"--max-grad-norm", "inf"}, "--max-grad-norm"},
      {{"--qk-tau", "0"}, "--qk-tau"},
      {{"--warmup", "5"}, "--warmup"},  // not below --steps 4
      {{"--optimizer", "sgd"}, "--optimizer"},
      {{"--precision", "fp16"}, "--precision"},
  };
  for (const auto& [flags, name] : cases) {
    // A valid tiny run but for `flags` (a flag given twice would be a syntax error instead).
    std::vector<std::string> a = {"train", "--quiet"};
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--batch", "2"}, {"--seq-len", "16"}, {"--steps", "4"}, {"--warmup", "2"}})
      if (std::find(flags.begin(), flags.end(), flag) == flags.end()) a.insert(a.end(), {flag, value});
    a.insert(a.end(), flags.begin(), flags.end());
    const CliRun r = run(a);
    expect_one_line_error(r, name, flags[0] + " " + flags[1]);
    // The message is about this flag ("--lr: ...", "--lr-min = ..."), not another that contains its name.
    const std::string head = "preflight: error: " + name;
    EXPECT_TRUE(r.err.rfind(head, 0) == 0 && (r.err[head.size()] == ':' || r.err[head.size()] == ' ')) << r.err;
  }
  expect_one_line_error(run({"train", "--batch", "1024", "--seq-len", "1024", "--micro-batches", "1024", "--steps", "2",
                             "--warmup", "1", "--quiet"}),
                        "--micro-batches", "K*B*T");
}

// A model config the CPU reference cannot run (Qwen2's q/k/v-only biases) is refused, naming
// the unsupported field, before 7B parameters are allocated.
TEST(TrainCli, ConfigTheReferenceCannotRunIsRefused) {
  const std::string qwen2 = std::string(PREFLIGHT_SOURCE_DIR_PATH) + "/tests/data/hf-qwen2-7b-config.json";
  expect_one_line_error(run(train_args({"--steps", "4", "--config", qwen2})), "'qkv_bias'", "qwen2-7b");
  TrainOptions o;
  o.config = qwen2, o.batch = 2, o.seq_len = 16, o.steps = 4, o.warmup = 2;
  try {
    Trainer t(o);
    FAIL() << "trained a config with unsupported features";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot train this model"), std::string::npos) << e.what();
  }
}

// --resume without --out continues into the checkpoint's directory and writes the final
// checkpoint there; the result is the uninterrupted run's, byte for byte (every file).
TEST(TrainCli, ResumeWithoutOutWritesTheFinalCheckpointBitIdentical) {
  const std::string d = tmpdir("resume");
  const std::string a = d + "/a", b = d + "/b";
  ASSERT_EQ(run(train_args({"--steps", "5", "--out", a, "--stop-at", "2"})).rc, 0);
  ASSERT_EQ(list_checkpoints(a).size(), 1u);
  const CliRun r = run(train_args({"--resume", a}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("--resume without --out"), std::string::npos) << r.err;
  ASSERT_TRUE(fs::exists(file_of(a, 5, "trainer.json"))) << "no final checkpoint in the resumed directory";
  ASSERT_EQ(run(train_args({"--steps", "5", "--out", b})).rc, 0);
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json", "MANIFEST.sha256"})
    EXPECT_EQ(read_file(file_of(a, 5, f)), read_file(file_of(b, 5, f))) << f;
  fs::remove_all(d);
}

// The safe flags take effect on --resume and are reported; the result equals a fresh run
// with those values where the schedule is a pure function of the step (the lr of each step).
TEST(TrainCli, ResumeAppliesSafeFlagsAndReportsThem) {
  const std::string d = tmpdir("safe");
  const std::string a = d + "/a", m = d + "/m.jsonl", fresh = d + "/fresh.jsonl";
  const std::string data1 = d + "/one.tok", data2 = d + "/two.tok";
  fs::copy_file(corpus_path(), data1);
  ASSERT_EQ(run(train_args({"--steps", "4", "--data", data1, "--out", a, "--stop-at", "2", "--checkpoint-every", "0"})).rc, 0);
  fs::rename(data1, data2);  // the data moved: the same tokens under another name
  const CliRun r = run(train_args({"--resume", a, "--data", data2, "--steps", "6", "--lr", "0.002", "--lr-min", "0.0001",
                           "--schedule", "wsd", "--spike-threshold", "3", "--on-nonfinite", "skip",
                           "--checkpoint-every", "2", "--keep", "0", "--metrics", m}));
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* flag : {"--data", "--steps", "--lr", "--lr-min", "--schedule", "--spike-threshold", "--on-nonfinite",
                           "--checkpoint-every", "--keep"})
    EXPECT_NE(r.err.find(std::string(flag) + (std::string(flag) == "--lr" ? "," : "")), std::string::npos)
        << flag << " not reported: " << r.err;
  // --checkpoint-every 2 and --steps 6 took effect: checkpoints 4 and 6 (and the resumed 2: --keep 0).
  std::vector<int64_t> steps;
  for (const auto& c : list_checkpoints(a)) steps.push_back(checkpoint_step(c));
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6}));
  const auto o = trainer_json(a, 6)["options"];
  EXPECT_EQ(o["data"], data2);
  EXPECT_EQ(o["lr"], 0.002);
  EXPECT_EQ(o["schedule"], "wsd");
  EXPECT_EQ(o["spike_threshold"], 3.0);
  EXPECT_EQ(o["on_nonfinite"], "skip");
  // The resumed steps used the new schedule: the lr a fresh run with these flags computes.
  ASSERT_EQ(run(train_args({"--steps", "6", "--data", data2, "--lr", "0.002", "--lr-min", "0.0001", "--schedule", "wsd",
                       "--metrics", fresh})).rc, 0);
  const auto got = lr_by_step(m), want = lr_by_step(fresh);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& [step, lr] : got) EXPECT_EQ(lr, want.at(step)) << "step " << step;
  fs::remove_all(d);
}

// Flags that would make the run another one are refused by name; nothing is written.
TEST(TrainCli, ResumeRefusesUnsafeFlagsByName) {
  const std::string d = tmpdir("unsafe");
  const std::string a = d + "/a", other = d + "/other.tok";
  ASSERT_EQ(run(train_args({"--steps", "4", "--out", a, "--stop-at", "2"})).rc, 0);
  TokenFile tf;
  tf.vocab_size = 512, tf.doc_starts = {0}, tf.tokens = encode_bytes(std::string(200, 'x'));
  write_token_file(other, tf);
  const std::vector<std::vector<std::string>> cases = {
      {"--batch", "3"},         {"--seq-len", "8"},          {"--micro-batches", "2"}, {"--seed", "7"},
      {"--optimizer", "muon"},  {"--precision", "bf16"},     {"--weight-decay", "0"},  {"--max-grad-norm", "2"},
      {"--bf16-moments"},       {"--mtp-lambda", "0.5"},     {"--qk-tau", "50"},       {"--poison-step", "3"},
      {"--config", "tiny-gqa"}, {"--data", other},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"train", "--quiet", "--resume", a};
    args.insert(args.end(), c.begin(), c.end());
    expect_one_line_error(run(args), c[0], "--resume with " + c[0]);
  }
  EXPECT_EQ(list_checkpoints(a).size(), 1u);
  fs::remove_all(d);
}

// --checkpoint-every is part of the run's options: a plain --resume keeps the cadence.
TEST(TrainCli, CheckpointEveryIsRememberedAcrossResume) {
  const std::string d = tmpdir("cadence");
  ASSERT_EQ(run(train_args({"--steps", "6", "--out", d, "--checkpoint-every", "2", "--stop-at", "1"})).rc, 0);
  ASSERT_EQ(run(train_args({"--resume", d, "--keep", "0"})).rc, 0);
  std::vector<int64_t> steps;
  for (const auto& c : list_checkpoints(d)) steps.push_back(checkpoint_step(c));
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 4, 6}));
  fs::remove_all(d);
}

// SIGTERM or SIGINT after the first steps: the step in flight finishes, a checkpoint is
// written, the process exits 128 + signal (143, 130) with one line saying how to continue;
// --resume then continues bit-identically to an uninterrupted run.
TEST(TrainCli, StopSignalWritesACheckpointAndResumeContinues) {
  for (const int sig : {SIGTERM, SIGINT}) {
    const std::string d = tmpdir("signal-" + std::to_string(sig));
    const std::string out = d + "/stdout", err = d + "/stderr", ck = d + "/ck";
    const pid_t pid = spawn({"train", "--batch", "2", "--seq-len", "16", "--warmup", "2", "--steps", "100000",
                             "--checkpoint-every", "0", "--out", ck, "--log-every", "1"},
                            out, err);
    ASSERT_GT(pid, 0);
    bool started = false;
    for (int i = 0; i < 3000 && !started; ++i) {  // up to 60 s: the second step line is out
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      started = read_file(out).find("\nstep 1 ") != std::string::npos;
    }
    ASSERT_TRUE(started) << read_file(err);
    ASSERT_EQ(::kill(pid, sig), 0);
    const CliRun r = finish(pid, out, err);
    EXPECT_EQ(r.sig, 0) << "killed by signal " << r.sig << " instead of exiting";
    EXPECT_EQ(r.rc, 128 + sig) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find(sig == SIGTERM ? "interrupted by SIGTERM" : "interrupted by SIGINT"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--resume " + ck), std::string::npos) << r.err;
    const auto cks = list_checkpoints(ck);
    ASSERT_EQ(cks.size(), 1u);
    const int64_t n = checkpoint_step(cks[0]);
    EXPECT_GE(n, 2);
    const CliRun more = run(train_args({"--resume", ck, "--stop-at", std::to_string(n + 2)}));
    ASSERT_EQ(more.rc, 0) << more.err;
    const std::string full = d + "/full";
    ASSERT_EQ(run(train_args({"--steps", "100000", "--checkpoint-every", "0", "--out", full, "--stop-at",
                              std::to_string(n + 2)})).rc, 0);
    for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
      EXPECT_EQ(read_file(file_of(ck, n + 2, f)), read_file(file_of(full, n + 2, f)))
          << "signal " << sig << ": " << f << " of the resumed run differs from the uninterrupted run's";
    fs::remove_all(d);
  }
}

// Outputs that name an input (directly, via a symbolic link or a hard link) are refused and
// the input is untouched; unusable --out and a full --metrics device are one-line errors.
TEST(TrainCli, OutputsThatAreInputsOrUnusableAreRefused) {
  const std::string d = tmpdir("outputs");
  const std::string data = d + "/data.tok";
  fs::copy_file(corpus_path(), data);
  fs::create_symlink(data, d + "/sym.tok");
  fs::create_hard_link(data, d + "/hard.tok");
  const std::string before = read_file(data);
  for (const std::string& m : {data, d + "/sym.tok", d + "/hard.tok", d + "/./data.tok"})
    expect_one_line_error(run(train_args({"--steps", "3", "--data", data, "--metrics", m})), "refusing to overwrite an input",
                          "--metrics " + m);
  EXPECT_EQ(read_file(data), before);

  const std::string text = d + "/in.txt";
  write_file_atomic(text, "some text for the corpus\n");
  fs::create_symlink(text, d + "/in-sym.txt");
  fs::create_hard_link(text, d + "/in-hard.txt");
  fs::create_directories(d + "/texts");
  fs::copy_file(text, d + "/texts/a.txt");
  const std::vector<std::pair<std::string, std::string>> corpus_cases = {
      {text, text}, {text, d + "/in-sym.txt"}, {d + "/in-sym.txt", text}, {text, d + "/in-hard.txt"},
      {d + "/texts", d + "/texts/a.txt"}};
  for (const auto& [in, out] : corpus_cases)
    expect_one_line_error(run({"corpus", in, "--out", out}), "refusing to overwrite an input", "corpus " + in + " --out " + out);
  EXPECT_EQ(read_file(text), "some text for the corpus\n");
  EXPECT_EQ(read_file(d + "/texts/a.txt"), "some text for the corpus\n");

  expect_one_line_error(run(train_args({"--steps", "3", "--out", "/proc/x"})), "--out '/proc/x'", "--out /proc/x");
  expect_one_line_error(run(train_args({"--steps", "3", "--out", text})), "is not a directory", "--out a regular file");
  if (fs::exists("/dev/full"))
    expect_one_line_error(run(train_args({"--steps", "3", "--metrics", "/dev/full"})), "No space left on device",
                          "--metrics /dev/full");
  fs::remove_all(d);
}

// `corpus DIR`: the regular files under DIR, recursively, in sorted path order (one document
// each); empty and binary files skipped and listed; the same bytes on every run; --json.
TEST(TrainCli, CorpusReadsADirectoryInSortedOrder) {
  const std::string d = tmpdir("corpus");
  const std::string in = d + "/texts";
  fs::create_directories(in + "/sub");
  fs::create_directories(in + "/none");
  write_file_atomic(in + "/b.txt", "second\n");
  write_file_atomic(in + "/a.txt", "first");
  write_file_atomic(in + "/sub/c.txt", "third");
  write_file_atomic(in + "/empty.txt", "");
  write_file_atomic(in + "/blob.bin", std::string("a\0b", 3));
  const CliRun r = run({"corpus", in, "--out", d + "/one.tok", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], (std::vector<std::string>{in + "/a.txt", in + "/b.txt", in + "/sub/c.txt"}));
  EXPECT_EQ(j["skipped_empty"], (std::vector<std::string>{in + "/empty.txt"}));
  EXPECT_EQ(j["skipped_binary"], (std::vector<std::string>{in + "/blob.bin"}));
  EXPECT_EQ(j["tokens"], 17);
  EXPECT_EQ(j["documents"], 3);
  const TokenFile tf = read_token_file(d + "/one.tok");
  EXPECT_EQ(decode_bytes(tf.tokens), "firstsecond\nthird");
  EXPECT_EQ(tf.doc_starts, (std::vector<uint64_t>{0, 5, 12}));
  const CliRun text = run({"corpus", in, "--out", d + "/two.tok"});
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("17 tokens, 3 documents"), std::string::npos) << text.out;
  EXPECT_EQ(read_file(d + "/one.tok"), read_file(d + "/two.tok"));
  expect_one_line_error(run({"corpus", in + "/none", "--out", d + "/x.tok"}), "no regular file", "empty directory");
  expect_one_line_error(run({"corpus", d + "/missing", "--out", d + "/x.tok"}), "no such file", "missing input");
  fs::remove_all(d);
}

// Bad checkpoint files given to the binary (each resealed, so only the edit is wrong): rc 1
// and one line, never an internal error (rc 3) or a crash.
TEST(TrainCli, BadCheckpointFilesAreOneLineErrors) {
  const std::string d = tmpdir("badck");
  const std::string good = d + "/good";
  ASSERT_EQ(run(train_args({"--steps", "4", "--data", corpus_path(), "--out", good, "--stop-at", "2"})).rc, 0);
  using Edit = std::function<void(const std::string& ck)>;
  auto trainer_json = [](std::function<void(nlohmann::json&)> f) -> Edit {
    return [f](const std::string& ck) {
      nlohmann::json j = nlohmann::json::parse(read_file(ck + "/trainer.json"));
      f(j);
      write_file_atomic(ck + "/trainer.json", j.dump(2));
    };
  };
  const std::vector<std::tuple<std::string, Edit, std::string>> cases = {
      {"bad JSON", [](const std::string& ck) { write_file_atomic(ck + "/trainer.json", "{\"step\": "); }, "not valid JSON"},
      {"missing key", trainer_json([](nlohmann::json& j) { j.erase("tokens"); }), "'tokens'"},
      {"wrong type", trainer_json([](nlohmann::json& j) { j["step"] = "2"; }), "'step'"},
      {"optimizer", trainer_json([](nlohmann::json& j) { j["options"]["optimizer"] = "sgd"; }), "'options.optimizer'"},
      {"position", trainer_json([](nlohmann::json& j) { j["loader"]["position"] = 1000000000; }), "'loader.position'"},
      {"offsets", [](const std::string& ck) {
         test::edit_safetensors_header(ck + "/model.safetensors", [](nlohmann::json& h) {
           h["lm_head.weight"]["data_offsets"] = {int64_t{9223372036854775000}, INT64_MAX};
           return h.dump();
         });
       }, "'lm_head.weight'"},
      {"header array", [](const std::string& ck) {
         test::edit_safetensors_header(ck + "/model.safetensors", [](nlohmann::json& h) { return "[" + h.dump() + "]"; });
       }, "expected a JSON object"},
  };
  for (const auto& [what, edit, fragment] : cases) {
    const std::string ck = d + "/case/" + checkpoint_dir_name(2);
    fs::remove_all(d + "/case");
    fs::create_directories(d + "/case");
    fs::copy(good + "/" + checkpoint_dir_name(2), ck, fs::copy_options::recursive);
    edit(ck);
    test::reseal(ck, 2);
    expect_one_line_error(run({"train", "--quiet", "--resume", ck}), fragment, what);
  }
  fs::remove_all(d);
}
