// The preflight binary end to end: exit codes, one-line errors, JSON output.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "tests/cli_run.hpp"
#include "tests/core/test_util.hpp"

namespace preflight {
namespace {

using CliResult = test::CliRun;

CliResult run(const std::string& args) { return test::run_cli(args); }

// Runs the binary with `dir` as the working directory.
CliResult run_cd(const std::string& dir, const std::string& args) { return test::run_cli(args, "cd '" + dir + "' && "); }

void expect_one_line_error(const CliResult& r, const std::string& fragment) {
  EXPECT_NE(r.rc, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "exactly one line: " << r.err;
  EXPECT_EQ(r.err.rfind("preflight: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
}

std::string temp_file(const std::string& name, const std::string& contents) {
  const auto path = std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name);
  write_file_atomic(path.string(), contents);
  return path.string();
}

TEST(Cli, ModelDefaultPrintsDeepSeekAccounting) {
  const CliResult r = run("model");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("deepseek-v3-671b"), std::string::npos);
  EXPECT_NE(r.out.find("671.026 B"), std::string::npos) << r.out;
}

TEST(Cli, ModelJsonIsMachineReadable) {
  const CliResult r = run("model --config llama3-405b --json --seq-len 8192");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flops_per_token"]["seq_len"], 8192);
  const double total = j["parameters"]["total_without_mtp"]["total"].get<double>();
  EXPECT_NEAR(total / 405e9, 1.0, 0.01);
}

TEST(Cli, ModelAcceptsHuggingFaceConfigPath) {
  const CliResult r = run("model --json --config " + test::data_path("hf-deepseek-v3-config.json"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["parameters"]["total_without_mtp"]["total"].get<double>() / 671.0e9, 1.0, 0.001);
}

TEST(Cli, VersionAndHelp) {
  EXPECT_EQ(run("version").rc, 0);
  const CliResult help = run("model --help");
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.out.find("--config"), std::string::npos);
}

TEST(Cli, BadInputsGiveOneLineAndNonZeroExit) {
  expect_one_line_error(run("model --config no-such-model"), "'no-such-model' is neither a file nor a models preset");
  expect_one_line_error(run("model --config " + temp_file("truncated.json", "{\"format\": \"preflight-mo")),
                        "invalid JSON");
  expect_one_line_error(run("model --config " + temp_file("garbage.json", "\x01\x02 not json")), "invalid JSON");
  expect_one_line_error(
      run("model --config " + temp_file("bad-topk.json", "{\"format\":\"preflight-model/1\",\"attention_kind\":\"gqa\","
                                                          "\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,"
                                                          "\"num_attention_heads\":2,\"intermediate_size\":16,"
                                                          "\"n_routed_experts\":4,\"num_experts_per_tok\":5,"
                                                          "\"moe_intermediate_size\":4}")),
      "num_experts_per_tok");
  expect_one_line_error(run("model --seq-len -3"), "--seq-len");
  expect_one_line_error(run("no-such-command"), "");
  // A directory is read as a model directory: without config.json it says so.
  expect_one_line_error(run("model --config " + std::filesystem::temp_directory_path().string()),
                        "is a directory without a config.json");
}

TEST(Cli, BadFlagValuesAreBadInputRcOne) {
  // A value out of range or unparseable: one line naming the flag, rc 1.
  for (const char* args : {"model --seq-len 0", "model --seq-len 1e20", "model --seq-len 99999999999999999999",
                           "model --seq-len ''", "model --seq-len 12x"}) {
    SCOPED_TRACE(args);
    const CliResult r = run(args);
    EXPECT_EQ(r.rc, 1);
    expect_one_line_error(r, "--seq-len");
  }
  // A config whose number a double cannot hold names the file and the field.
  const std::string huge = temp_file("huge.json", "{\"format\": \"preflight-model/1\", \"hidden_size\": 1e400}");
  const CliResult r = run("model --config " + huge);
  EXPECT_EQ(r.rc, 1);
  expect_one_line_error(r, "field 'hidden_size'");
  EXPECT_NE(r.err.find(huge), std::string::npos) << r.err;
  std::filesystem::remove(huge);
}

TEST(Cli, SyntaxErrorsAreRcTwo) {
  for (const char* args : {"model --no-such-flag", "model --seq-len", "model --json extra-positional"}) {
    SCOPED_TRACE(args);
    const CliResult r = run(args);
    EXPECT_EQ(r.rc, 2) << r.err;
    expect_one_line_error(r, "");
  }
}

TEST(Cli, VersionFlagAndJson) {
  const CliResult flag = run("--version");
  EXPECT_EQ(flag.rc, 0) << flag.err;
  EXPECT_EQ(flag.out.rfind("preflight ", 0), 0u) << flag.out;
  const CliResult j = run("version --json");
  ASSERT_EQ(j.rc, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ("preflight " + doc.at("version").get<std::string>() + "\n", flag.out);
  EXPECT_TRUE(doc.at("cuda_path").at("built").is_boolean());
}

TEST(Cli, ModelSaysWhichSequenceLengthItUsed) {
  const CliResult r = run("model --json --config " + test::data_path("hf-qwen3-8b-config.json"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("seq_len"), j.at("config").at("max_position_embeddings"));
  EXPECT_EQ(j.at("seq_len_source"), "max_position_embeddings");
  const CliResult t = run("model --config " + test::data_path("hf-qwen3-8b-config.json"));
  EXPECT_NE(t.out.find("sequence length for FLOPs: " + j.at("seq_len").dump()), std::string::npos) << t.out;
  const auto k = nlohmann::json::parse(run("model --json --seq-len 4096 --config tiny").out);
  EXPECT_EQ(k.at("seq_len"), 4096);
  EXPECT_EQ(k.at("seq_len_source"), "--seq-len");
}

// --- check: readiness apart from the project's regression goldens -------------------------


std::string scratch_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("pf-cli-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

std::string layout_copy(const std::string& dir, const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(read_file(test::source_dir() + "/configs/layouts/deepseek-v3-dualpipe.json"));
  j["name"] = name;
  edit(j);
  const std::string path = dir + "/" + name + ".json";
  write_file_atomic(path, j.dump(2));
  return path;
}

TEST(CliCheck, FindsItsGoldensFromAnyWorkingDirectory) {
  const std::string d = scratch_dir("cwd");  // empty: no goldens/ here
  const CliResult r = run_cd(d, "check");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("READY: every pipeline rank fits in memory"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("golden: every value matches "), std::string::npos) << r.out;
  std::filesystem::remove_all(d);
}

TEST(CliCheck, NoGoldenSaysNothingWasCompared) {
  const CliResult r = run("check --no-golden");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("golden: not compared (--no-golden)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("matches"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(run("check --no-golden --json").out);
  EXPECT_TRUE(j.at("ready").get<bool>());
  EXPECT_TRUE(j.at("golden").at("regressions").empty());
}

TEST(CliCheck, UsersLayoutWithoutAGoldenIsReady) {
  const std::string d = scratch_dir("mine");
  const std::string layout = layout_copy(d, "my-layout", [](nlohmann::json&) {});
  const CliResult r = run_cd(d, "check --layout " + layout);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("READY: every pipeline rank fits in memory"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("golden: none stored"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(run_cd(d, "check --json --layout " + layout).out);
  EXPECT_TRUE(j.at("ready").get<bool>());
  std::filesystem::remove_all(d);
}

TEST(CliCheck, LayoutThatDoesNotFitIsNotReadyInGiB) {
  const std::string d = scratch_dir("oom");
  // Four sequences per micro-batch without recompute or ZeRO: ~500 GiB per rank on 80 GB GPUs.
  const std::string layout = layout_copy(d, "oom", [](nlohmann::json& j) {
    j["micro_batch_size"] = 4, j["global_batch_size"] = 30720, j["recompute"] = "none", j["zero_stage"] = 0;
  });
  const CliResult r = run("check --layout " + layout);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("NOT READY"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("check failed: pipeline rank 0 needs "), std::string::npos) << r.err;
  // Sizes as "441.1 GiB", not std::to_string's six decimals.
  EXPECT_EQ(r.out.find(".000000"), std::string::npos);
  EXPECT_NE(r.err.find(" GiB > 79.07 GiB per GPU"), std::string::npos) << r.err;
  std::filesystem::remove_all(d);
}

TEST(CliCheck, GoldenMismatchIsReportedApartFromReadiness) {
  const std::string d = scratch_dir("golden");
  auto g = nlohmann::json::parse(
      read_file(test::source_dir() + "/goldens/check/deepseek-v3-671b__h800-2048__deepseek-v3-dualpipe.json"));
  auto& v = g.at("values").at("step_time_s");
  v["value"] = v.at("value").get<double>() * 1.5;
  const std::string path = d + "/changed.json";
  write_file_atomic(path, g.dump(2));
  const CliResult r = run("check --golden " + path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("READY: every pipeline rank fits in memory"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("golden: 1 value(s) differ from " + path), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'step_time_s'"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("does not match the stored golden"), std::string::npos) << r.err;
  expect_one_line_error(run("check --golden " + d + "/absent.json"), "option --golden: no such file");
  std::filesystem::remove_all(d);
}

TEST(CliCheck, GoldenComparisonIsExactAtAnyThreadCount) {
  // The stored golden reproduces bit for bit, also on one thread (the default is every core).
  const CliResult one = run("check --threads 1");
  EXPECT_EQ(one.rc, 0) << one.err;
  EXPECT_NE(one.out.find("golden: every value matches "), std::string::npos) << one.out;
  // One ulp off in a Monte Carlo mean (far inside its noise) is a difference.
  const std::string d = scratch_dir("ulp");
  auto g = nlohmann::json::parse(
      read_file(test::source_dir() + "/goldens/check/deepseek-v3-671b__h800-2048__deepseek-v3-dualpipe.json"));
  auto& v = g.at("values").at("interruptions.mean");
  v["value"] = std::nextafter(v.at("value").get<double>(), 1e300);
  write_file_atomic(d + "/ulp.json", g.dump(2));
  const CliResult r = run("check --golden " + d + "/ulp.json");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("DIFFERS (within noise)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("'interruptions.mean'"), std::string::npos) << r.err;
  std::filesystem::remove_all(d);
}

TEST(CliCheck, NumbersAreRangeChecked) {
  expect_one_line_error(run("check --tokens 1e20"), "--tokens");
  expect_one_line_error(run("check --trials 0"), "--trials");
  expect_one_line_error(run("check --trials 1e20"), "--trials");
  expect_one_line_error(run("check --seed -1"), "--seed");
  expect_one_line_error(run("check --threads -2"), "--threads");
}

#ifndef PREFLIGHT_CLI_CUDA
TEST(Cli, ParityWithoutTheCudaPathIsOneLineRcOne) {
  for (const char* args : {"parity", "parity --json"}) {
    const CliResult r = run(args);
    EXPECT_EQ(r.rc, 1);
    expect_one_line_error(r, "without the CUDA path");
  }
}
#endif

}  // namespace
}  // namespace preflight
