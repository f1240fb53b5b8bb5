// The `sim`, `plan` and `model` commands as a user runs them: exit status, one-line
// errors, units of the text report, command-line layout overrides, and the SVG's text
// (inside the picture, no overlapping tick labels, OOM in the title).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "sim/units.hpp"
#include "tests/cli_run.hpp"
#include "tests/sim/svg_text.hpp"

namespace preflight::sim {
namespace {

using nlohmann::json;

using test::CliRun;
CliRun run(const std::string& args) { return test::run_cli(args); }

// rc 1, nothing on stdout, exactly one line on stderr that names `what`.
void expect_one_line_error(const std::string& args, const std::string& what) {
  const CliRun r = run(args);
  EXPECT_EQ(r.rc, 1) << args << "\n" << r.out << r.err;
  EXPECT_EQ(r.out, "") << args;
  ASSERT_FALSE(r.err.empty()) << args;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << args << ": " << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
  EXPECT_LT(r.wall_s, 10.0) << args;
}

// Every "<number> GiB" in the text is as format_gib writes it: at most two decimals
// (no "97.189522 GiB"), and no memory in GB.
void expect_gib_formatting(const std::string& text) {
  const std::regex gib_number(R"(([0-9]+(\.[0-9]+)?) GiB)");
  int n = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), gib_number); it != std::sregex_iterator(); ++it) {
    ++n;
    const std::string num = (*it)[1].str();
    const size_t dot = num.find('.');
    EXPECT_TRUE(dot == std::string::npos || num.size() - dot - 1 <= 2) << num << " GiB";
  }
  EXPECT_GT(n, 0);
  EXPECT_EQ(text.find(" GB\n"), std::string::npos) << text;
  EXPECT_EQ(text.find(" GB "), std::string::npos) << text;
}

TEST(SimCli, FittingLayoutExitsZeroWithGiB) {
  const CliRun r = run("sim");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("every rank fits"), std::string::npos) << r.out;
  expect_gib_formatting(r.out);
  // The checkpoint in GiB, as format_gib writes the JSON's raw bytes.
  const CliRun j = run("sim --json");
  ASSERT_EQ(j.rc, 0) << j.err;
  const json rep = json::parse(j.out);
  const std::string ckpt = "checkpoint (weights + optimizer state): " + format_gib(rep.at("checkpoint_bytes").get<double>());
  EXPECT_NE(r.out.find(ckpt + "\n"), std::string::npos) << r.out;
}

TEST(SimCli, OutOfMemoryExitsOneAfterTheReport) {
  // pp 4 with every expert on every GPU (ep 1): 15 MoE layers' experts per GPU.
  const std::string svg = testing::TempDir() + "sim_oom_" + std::to_string(getpid()) + ".svg";
  std::remove(svg.c_str());
  const CliRun r = run("sim --pp 4 --ep 1 --svg " + svg);
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("OUT OF MEMORY"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("does not fit in memory"), std::string::npos) << r.err;
  expect_gib_formatting(r.out);
  // OOM lines: "rank R needs X GiB of C GiB; biggest: a X GiB, b Y GiB, ..." with no stray commas.
  int oom_lines = 0;
  const std::regex oom_line(R"(^  rank [0-9]+ needs [0-9.]+ GiB of [0-9.]+ GiB; biggest: ([a-z]+ [0-9.]+ GiB)(, [a-z]+ [0-9.]+ GiB)*$)");
  size_t pos = 0;
  while ((pos = r.out.find("  rank ", pos)) != std::string::npos) {
    const size_t end = r.out.find('\n', pos);
    const std::string line = r.out.substr(pos, end - pos);
    ++oom_lines;
    EXPECT_TRUE(std::regex_match(line, oom_line)) << line;
    EXPECT_EQ(line.find(",,"), std::string::npos) << line;
    EXPECT_NE(line.back(), ',') << line;
    pos = end;
  }
  EXPECT_GT(oom_lines, 0) << r.out;
  // The SVG is still written, and its title says so.
  const std::string picture = read_file(svg);
  const std::vector<SvgText> texts = svg_texts(picture);
  ASSERT_FALSE(texts.empty());
  EXPECT_NE(texts.front().body.find("OUT OF MEMORY"), std::string::npos) << texts.front().body;
  expect_text_inside_and_apart(picture);
  // --json: the same status, raw bytes.
  const CliRun j = run("sim --pp 4 --ep 1 --json");
  EXPECT_EQ(j.rc, 1);
  const json rep = json::parse(j.out);
  EXPECT_FALSE(rep.at("fits").get<bool>());
  EXPECT_EQ(rep.at("inputs").at("pp"), 4);
  EXPECT_EQ(rep.at("inputs").at("ep"), 1);
  EXPECT_GT(rep.at("memory").at(0).at("total_bytes").get<double>(), 1e9);  // bytes, not GiB
}

// --svg, --trace and --json go through write_file_atomic: the files appear whole (they
// parse), an existing file is replaced, and no temporary file is left next to them.
TEST(SimCli, PicturesAndTracesAreWrittenWhole) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(testing::TempDir()) / ("sim_cli_atomic_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file_atomic((dir / "p.svg").string(), "stale");
  const CliRun r = run("sim --svg " + (dir / "p.svg").string() + " --trace " + (dir / "t.json").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"p.svg", "t.json"}));
  const std::string svg = read_file((dir / "p.svg").string());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_NO_THROW(json::parse(read_file((dir / "t.json").string())));
  // An unwritable target is one line, rc 1.
  expect_one_line_error("sim --svg " + (dir / "no-such-dir" / "p.svg").string(), "p.svg");
  fs::remove_all(dir);
}

TEST(SimCli, HelpDocumentsTheExitStatus) {
  const CliRun r = run("sim --help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("Exit status 1 when a pipeline rank"), std::string::npos) << r.out;
}

TEST(SimCli, LayoutOverridesAreValidatedLikeTheFile) {
  // --pp 8 re-derives dp (2048 / 8 = 256) and splits the 61 layers over 8 DualPipe stages.
  const CliRun r = run("sim --pp 8 --json");
  ASSERT_EQ(r.rc == 0 || r.rc == 1, true) << r.err;
  const json rep = json::parse(r.out);
  EXPECT_EQ(rep.at("inputs").at("pp"), 8);
  EXPECT_EQ(rep.at("inputs").at("dp"), 256);
  int64_t layers = 0;
  for (const json& n : rep.at("inputs").at("stage_layers")) layers += n.get<int64_t>();
  EXPECT_EQ(layers, 61);
  EXPECT_EQ(rep.at("inputs").at("stage_layers").size(), 8u);
  // --pp and --dp together must multiply to the GPU count, as in a file.
  const CliRun both = run("sim --pp 16 --dp 128 --json");
  ASSERT_EQ(both.rc, 0) << both.err;
  EXPECT_EQ(json::parse(both.out).at("inputs").at("dp"), 128);
  expect_one_line_error("sim --pp 16 --dp 64", "GPU count mismatch");
  expect_one_line_error("sim --dp 3", "GPU count mismatch");
  expect_one_line_error("sim --tp 3", "tp");
  expect_one_line_error("sim --ep 3", "ep = 3");
  expect_one_line_error("sim --pp 0", "--pp");
  expect_one_line_error("sim --pp 99999999999999999999", "--pp");
  expect_one_line_error("sim --dp -4", "--dp");
  expect_one_line_error("sim --pp 4096", "pp");
}

TEST(SimCli, TokenBudgetMustBeFinitePositive) {
  for (const char* v : {"inf", "nan", "0", "-1", "1e400", "x"}) expect_one_line_error(std::string("sim --tokens ") + v, "--tokens");
}

TEST(ModelCli, SeqLenOutOfRangeIsOneLine) {
  expect_one_line_error("model --seq-len 0", "--seq-len");
  expect_one_line_error("model --seq-len 1e20", "--seq-len");
  expect_one_line_error("model --seq-len 99999999999999999999", "--seq-len");
}

TEST(PlanCli, NoLayoutFitsSaysWhy) {
  const CliRun r = run("plan --global-batch 7");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("no layout fits"), std::string::npos) << r.out;
  // 7 sequences cannot be split over any dp >= 2 with any micro-batch size.
  EXPECT_NE(r.out.find("global_batch_size = N is not a multiple of micro_batch_size·dp = N"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("e.g. "), std::string::npos) << r.out;
  const CliRun j = run("plan --global-batch 7 --json");
  ASSERT_EQ(j.rc, 0) << j.err;
  const json p = json::parse(j.out);
  EXPECT_EQ(p.at("format"), "preflight-plan/1");
  // Every candidate is accounted for once, and every rejection has a reason.
  EXPECT_EQ(p.at("enumerated").get<int64_t>(),
            p.at("invalid").get<int64_t>() + p.at("out_of_memory").get<int64_t>() + p.at("fit").get<int64_t>());
  int64_t reasons = 0;
  for (const json& rj : p.at("rejections")) {
    reasons += rj.at("count").get<int64_t>();
    EXPECT_NE(rj.at("example_message").get<std::string>(), "");
  }
  EXPECT_EQ(reasons, p.at("invalid").get<int64_t>());
  EXPECT_EQ(p.at("fit"), 0);
  EXPECT_TRUE(p.at("best").empty());
}

TEST(PlanCli, ReasonsGroupValuesButKeepNames) {
  const CliRun r = run("plan --global-batch 15360 --top 2 --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json p = json::parse(r.out);
  EXPECT_EQ(p.at("enumerated").get<int64_t>(),
            p.at("invalid").get<int64_t>() + p.at("out_of_memory").get<int64_t>() + p.at("fit").get<int64_t>());
  bool interleaved = false, dualpipe = false;
  int64_t reasons = 0;
  for (const json& rj : p.at("rejections")) {
    const std::string c = rj.at("constraint").get<std::string>();
    reasons += rj.at("count").get<int64_t>();
    EXPECT_EQ(c.find("NfNb"), std::string::npos) << c;  // a schedule's name is not a value
    interleaved |= c.find("interleaved-1f1b needs micro-batches to be a multiple of pp = N, got N") != std::string::npos;
    dualpipe |= c.find("dualpipe needs an even number >= 2·pp = N, got N") != std::string::npos;
  }
  EXPECT_TRUE(interleaved) << r.out.substr(0, 2000);
  EXPECT_TRUE(dualpipe) << r.out.substr(0, 2000);
  EXPECT_EQ(reasons, p.at("invalid").get<int64_t>());
  // The closest out-of-memory candidate is over its capacity.
  const json& oom = p.at("closest_out_of_memory");
  EXPECT_GT(oom.at("peak_bytes").get<double>(), oom.at("capacity_bytes").get<double>());
}

TEST(PlanCli, AbsurdInputsAreRefusedOrSane) {
  expect_one_line_error("plan --global-batch 0", "--global-batch");
  expect_one_line_error("plan --global-batch 1e20", "--global-batch");
  expect_one_line_error("plan --global-batch 99999999999999999999", "--global-batch");
  expect_one_line_error("plan --seq-len 0", "--seq-len");
  expect_one_line_error("plan --top 0", "--top");
  // The largest accepted batch: every layout either is refused with a reason or has a
  // finite step no longer than the work (tokens x FLOPs) at 1% of the peak would take.
  const CliRun r = run("plan --global-batch 1073741824 --json --top 3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_LT(r.wall_s, 30.0);
  const json p = json::parse(r.out);
  int64_t reasons = 0;
  for (const json& rj : p.at("rejections")) reasons += rj.at("count").get<int64_t>();
  EXPECT_EQ(reasons, p.at("invalid").get<int64_t>());
  for (const json& b : p.at("best")) {
    const double step = b.at("step").at("step_time_s").get<double>();
    EXPECT_TRUE(std::isfinite(step) && step > 0) << step;
    EXPECT_GE(b.at("step").at("mfu").get<double>(), 0.01) << step;
  }
}

}  // namespace
}  // namespace preflight::sim
