// Checkpoints as untrusted input: safetensors headers (offsets, dtypes, spans), trainer.json
// (syntax, keys, types, ranges), and the manifest (files of different checkpoints mixed,
// sha256sum's own formats, CRLF). Each bad input is edited into a real checkpoint and then
// re-sealed (trainer.json's file hashes and MANIFEST.sha256 recomputed), so only the edited
// field is wrong and the refusal cannot come from a checksum.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/safetensors.hpp"
#include "reference/train/sha256.hpp"
#include "reference/train/trainer.hpp"
#include "tests/train/train_test_util.hpp"
#include "tests/train/reseal.hpp"

namespace fs = std::filesystem;
using namespace preflight;
using namespace preflight::train;
using nlohmann::json;
using preflight::train::test::reseal;

namespace {

std::string tmpdir(const std::string& name) { return test::fresh_tmpdir("ckpt-" + name); }
using test::small;



std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A refusal: one line holding every fragment.
void expect_refused(const std::string& msg, const std::vector<std::string>& fragments, const std::string& what) {
  ASSERT_FALSE(msg.empty()) << what << ": accepted";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
  EXPECT_EQ(msg.find('\r'), std::string::npos) << what << ": " << msg;
  for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << what << ": '" << f << "' not in: " << msg;
}

// ---- safetensors bytes ------------------------------------------------------------------

// A file with this header text (padded to 8 like the writer) and `data_bytes` zero bytes.
std::string st_file(const std::string& header, size_t data_bytes) {
  std::string h = header;
  while (h.size() % 8 != 0) h.push_back(' ');
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + std::string(data_bytes, '\0');
}

struct StParts {
  json header;
  std::string data;
};
StParts split_st(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}
std::string join_st(const std::string& header_text, const std::string& data) {
  return st_file(header_text, 0) + data;
}

// ---- checkpoints --------------------------------------------------------------------------

struct RemoveAtExit {
  std::string dir;
  ~RemoveAtExit() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// One trained checkpoint, made once per test binary; each case works on a copy.
struct Base {
  std::string root, ck;  // root/ckpt-00000002
  std::vector<float> params;
};
const Base& base() {
  static Base b = [] {
    Base x;
    x.root = tmpdir("base");
    static const RemoveAtExit cleanup{x.root};
    TrainOptions o = small(4);
    o.data = std::string(PREFLIGHT_SOURCE_DIR_PATH) + "/data/debian-licenses.tok";
    Trainer t(o);
    t.step(), t.step();
    x.ck = t.save(x.root, 0);
    x.params = t.params();
    return x;
  }();
  return b;
}

std::string copy_base(const std::string& name) {
  const std::string d = tmpdir(name) + "/ckpt-00000002";
  fs::copy(base().ck, d, fs::copy_options::recursive);
  return d;
}

std::string resume_error(const std::string& ck) {
  return error_of([&] { Trainer::resume(ck); });
}

bool same_params(const Trainer& t, const std::vector<float>& p) {
  return t.params().size() == p.size() && std::memcmp(t.params().data(), p.data(), p.size() * 4) == 0;
}

}  // namespace

TEST(TrainCheckpointSafetensors, BadHeadersAreOneLineErrorsNamingFileAndTensor) {
  const std::string path = "/x/model.safetensors";
  struct Case {
    std::string header;
    size_t data;
    std::vector<std::string> fragments;
  };
  const std::string f32x4 = R"("dtype":"F32","shape":[4],)";
  const std::vector<Case> cases = {
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0,9223372036854775807]}})", 16, {"'w'", "past the end"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[9223372036854775791,9223372036854775807]}})", 16, {"'w'", "past the end"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[18446744073709551600,18446744073709551615]}})", 16, {"'w'", "past the end"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[-16,0]}})", 16, {"'w'", "data_offsets"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0,-16]}})", 16, {"'w'", "data_offsets"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":["0","16"]}})", 16, {"'w'", "data_offsets"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0.0,16.0]}})", 16, {"'w'", "data_offsets"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0]}})", 16, {"'w'", "data_offsets"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0,32]}})", 16, {"'w'", "past the end", "truncated"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[16,0]}})", 16, {"'w'", "end before they begin"}},
      {R"({"w":{)" + f32x4 + R"("data_offsets":[0,8]}})", 16, {"'w'", "hold 8 bytes", "need 16"}},
      {R"({"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,16]}})", 16, {"'w'", "hold 16 bytes", "need 8"}},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}})", 16,
       {"'w'", "more than 2^64"}},
      {R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", 16, {"'w'", "'shape'"}},
      {R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", 16, {"'w'", "'shape'"}},
      {R"({"w":{"shape":[4],"data_offsets":[0,16]}})", 16, {"'w'", "'dtype'"}},
      {R"({"w":{"dtype":4,"shape":[4],"data_offsets":[0,16]}})", 16, {"'w'", "'dtype'"}},
      {R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", 16, {"'w'", "unknown dtype 'Q4'"}},
      {R"({"w":5})", 16, {"'w'", "expected a JSON object"}},
      {R"([{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}])", 16, {"header is", "expected a JSON object"}},
      {R"("a string")", 16, {"expected a JSON object"}},
      {R"({"__metadata__":{"format":1},"w":{)" + f32x4 + R"("data_offsets":[0,16]}})", 16, {"'__metadata__'", "'format'"}},
      {R"({"__metadata__":["pt"],"w":{)" + f32x4 + R"("data_offsets":[0,16]}})", 16, {"'__metadata__'"}},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, {"'b'", "overlap or leave a gap"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
       16, {"'b'", "overlap or leave a gap"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 16, {"8 bytes after the last tensor"}},
      {R"({"w":)", 16, {"bad safetensors header"}},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of([&] { read_safetensors(path, st_file(c.header, c.data)); });
    std::vector<std::string> want = c.fragments;
    want.push_back("'" + path + "'");
    expect_refused(msg, want, c.header);
  }
  // A header length beyond the file.
  std::string huge = st_file("{}", 0);
  const uint64_t n = uint64_t{1} << 62;
  std::memcpy(huge.data(), &n, 8);
  expect_refused(error_of([&] { read_safetensors(path, huge); }), {path, "truncated"}, "header length 2^62");
  // The well-formed file these cases were derived from is accepted.
  const StFile ok = read_safetensors(path, st_file(R"({"w":{)" + f32x4 + R"("data_offsets":[0,16]}})", 16));
  EXPECT_EQ(ok.at("w").end - ok.at("w").begin, 16);
}

// The same bad offsets inside a real checkpoint whose manifest and trainer.json hashes match:
// resuming is refused naming the file and the tensor (it read out of bounds before).
TEST(TrainCheckpointSafetensors, BadOffsetsInAResealedCheckpointAreRefused) {
  const std::string tensor = "model.norm.weight";
  const std::vector<std::pair<std::string, std::function<void(json&)>>> edits = {
      {"near INT64_MAX", [&](json& h) { h[tensor]["data_offsets"] = {int64_t{9223372036854775000}, INT64_MAX}; }},
      {"negative", [&](json& h) { h[tensor]["data_offsets"][0] = -256; }},
      {"strings", [&](json& h) { h[tensor]["data_offsets"] = {"0", "256"}; }},
      {"past the data", [&](json& h) { h[tensor]["data_offsets"][1] = h[tensor]["data_offsets"][1].get<int64_t>() + (1 << 20); }},
      {"length != numel x 4", [&](json& h) { h[tensor]["shape"] = {32}; }},
      {"missing dtype", [&](json& h) { h[tensor].erase("dtype"); }},
      {"overlap", [&](json& h) { h[tensor]["data_offsets"] = h["model.embed_tokens.weight"]["data_offsets"];
                                 h[tensor]["shape"] = h["model.embed_tokens.weight"]["shape"]; }},
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    const auto& [what, edit] = edits[i];
    const std::string ck = copy_base("st-" + std::to_string(i));
    StParts p = split_st(read_file(ck + "/model.safetensors"));
    edit(p.header);
    write_file_atomic(ck + "/model.safetensors", join_st(p.header.dump(), p.data));
    reseal(ck, 2);
    const std::string msg = resume_error(ck);
    expect_refused(msg, {ck + "/model.safetensors", "'" + tensor + "'"}, what);
    fs::remove_all(fs::path(ck).parent_path());
  }
  {  // header as an array, non-string metadata
    const std::string ck = copy_base("st-array");
    StParts p = split_st(read_file(ck + "/model.safetensors"));
    write_file_atomic(ck + "/model.safetensors", join_st("[" + p.header.dump() + "]", p.data));
    reseal(ck, 2);
    expect_refused(resume_error(ck), {ck + "/model.safetensors", "expected a JSON object"}, "header array");
    p.header["__metadata__"]["format"] = 7;
    write_file_atomic(ck + "/model.safetensors", join_st(p.header.dump(), p.data));
    reseal(ck, 2);
    expect_refused(resume_error(ck), {ck + "/model.safetensors", "'__metadata__' field 'format'"}, "metadata number");
    fs::remove_all(fs::path(ck).parent_path());
  }
  {  // an optimizer state of another dtype with the same byte size (F32 → I32) and an unknown one
    const std::string ck = copy_base("st-opt");
    StParts p = split_st(read_file(ck + "/optimizer.safetensors"));
    std::string name;
    for (auto it = p.header.begin(); it != p.header.end(); ++it)
      if (it.key() != "__metadata__") name = it.key();
    p.header[name]["dtype"] = "I32";
    write_file_atomic(ck + "/optimizer.safetensors", join_st(p.header.dump(), p.data));
    reseal(ck, 2);
    expect_refused(resume_error(ck), {ck + "/optimizer.safetensors", name, "expected F32"}, "optimizer I32");
    fs::remove_all(fs::path(ck).parent_path());
  }
  // Unedited, a resealed copy resumes (reseal itself breaks nothing).
  const std::string ck = copy_base("st-none");
  reseal(ck, 2);
  EXPECT_TRUE(same_params(*Trainer::resume(ck), base().params));
  fs::remove_all(fs::path(ck).parent_path());
}

// trainer.json edited (and resealed): bad JSON, missing keys, wrong types, out-of-range values
// are one line naming the file and the field; never an internal error.
TEST(TrainCheckpointTrainerJson, BadFieldsAreOneLineErrorsNamingTheField) {
  const std::vector<std::pair<std::function<void(json&)>, std::vector<std::string>>> edits = {
      {[](json& j) { j.erase("tokens"); }, {"'tokens'"}},
      {[](json& j) { j.erase("options"); }, {"'options'"}},
      {[](json& j) { j["options"].erase("lr"); }, {"'options.lr'"}},
      {[](json& j) { j["step"] = "2"; }, {"'step'"}},
      {[](json& j) { j["step"] = 2.5; }, {"'step'"}},
      {[](json& j) { j["step"] = -1; }, {"'step'"}},
      {[](json& j) { j["step"] = 5; }, {"'step'"}},  // beyond options.steps = 4
      {[](json& j) { j["loader"] = 5; }, {"loader"}},
      {[](json& j) { j["loader"]["position"] = "0"; }, {"'loader.position'"}},
      {[](json& j) { j["loader"]["position"] = -1; }, {"'loader.position'"}},
      {[](json& j) { j["loader"]["position"] = INT64_MAX; }, {"'loader.position'"}},
      {[](json& j) { j["loader"]["position"] = 1000000000; }, {"'loader.position'", "past the end"}},
      {[](json& j) { j["last_accepted"]["position"] = 1000000000; }, {"'last_accepted.position'", "past the end"}},
      {[](json& j) { j["last_accepted"]["attempt"] = "x"; }, {"'last_accepted.attempt'"}},
      {[](json& j) { j["spike"]["running_average_bits"] = "0xZZZZZZZZ"; }, {"'spike.running_average_bits'"}},
      {[](json& j) { j["spike"]["running_average_bits"] = "0x7fc00000"; }, {"'spike.running_average_bits'"}},  // NaN
      {[](json& j) { j["options"]["optimizer"] = "sgd"; }, {"'options.optimizer'"}},
      {[](json& j) { j["options"]["precision"] = "fp16"; }, {"'options.precision'"}},
      {[](json& j) { j["options"]["bf16_moments"] = "yes"; }, {"'options.bf16_moments'"}},
      {[](json& j) { j["options"]["batch"] = 1e20; }, {"'options.batch'"}},
      {[](json& j) { j["options"]["lr_min"] = 1.0; }, {"'options.lr_min'"}},
      {[](json& j) { j["options"]["seed"] = -1; }, {"'options.seed'"}},
      {[](json& j) { j["options"]["poison_steps"] = {"x"}; }, {"'options.poison_steps'"}},
      {[](json& j) { j["options"]["typo"] = 1; }, {"'options.typo'"}},
      {[](json& j) { j["options"] = 5; }, {"options"}},
      {[](json& j) { j["rng"]["seed"] = 99; }, {"'rng.seed'"}},
      {[](json& j) { j["model_config"] = "tiny"; }, {"'model_config'"}},
      {[](json& j) { j["optimizer_step_count"] = 3; }, {"'optimizer_step_count'"}},  // above step 2
      {[](json& j) { j["format"] = "preflight-train-checkpoint/1"; }, {"'format'"}},
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    const std::string ck = copy_base("tj-" + std::to_string(i));
    json j = json::parse(read_file(ck + "/trainer.json"));
    edits[i].first(j);
    write_file_atomic(ck + "/trainer.json", j.dump(2));
    reseal(ck, 2);
    std::vector<std::string> want = edits[i].second;
    want.push_back("trainer.json");
    expect_refused(resume_error(ck), want, "edit " + std::to_string(i) + " (" + want[0] + ")");
    fs::remove_all(fs::path(ck).parent_path());
  }
  for (const std::string& text : {std::string("{\"format\": "), std::string("[]"), std::string("\x01\x02"),
                                  std::string("{\"step\": 1e400}")}) {
    const std::string ck = copy_base("tj-text");
    write_file_atomic(ck + "/trainer.json", text);
    reseal(ck, 2);
    expect_refused(resume_error(ck), {"trainer.json"}, "trainer.json = " + text);
    fs::remove_all(fs::path(ck).parent_path());
  }
}

// The files of one checkpoint are tied together: a model file from step 2 with the optimizer
// and trainer.json of step 4, each file matching its own manifest line, is refused however
// the manifest was regenerated.
TEST(TrainCheckpointManifest, FilesOfDifferentCheckpointsAreRefused) {
  const std::string d = tmpdir("mixed");
  Trainer t(small(4));
  t.step(), t.step();
  const std::string ck2 = t.save(d, 0);
  t.step(), t.step();
  const std::string ck4 = t.save(d, 0);
  const std::string model4 = read_file(ck4 + "/model.safetensors");
  fs::copy_file(ck2 + "/model.safetensors", ck4 + "/model.safetensors", fs::copy_options::overwrite_existing);
  auto line = [&](const char* f) { return sha256_hex(read_file(ck4 + "/" + f)) + "  " + f + "\n"; };
  // 1. `sha256sum * > MANIFEST.sha256` (no header): every line matches its file.
  write_file_atomic(ck4 + "/MANIFEST.sha256", line("model.safetensors") + line("optimizer.safetensors") + line("trainer.json"));
  expect_refused(resume_error(ck4), {"model.safetensors", "files of different checkpoints mixed"}, "no header");
  // 2. Our header kept, only the model line updated: the header's digest no longer matches.
  const std::string old = read_file(ck2 + "/MANIFEST.sha256");  // any header of this format
  write_file_atomic(ck4 + "/MANIFEST.sha256", old.substr(0, old.find('\n') + 1) + line("model.safetensors") +
                                                  line("optimizer.safetensors") + line("trainer.json"));
  expect_refused(resume_error(ck4), {"MANIFEST.sha256", "header"}, "stale header");
  // 3. A fully consistent header for the mixed set: trainer.json's own hash of the model refuses it.
  auto consistent_manifest = [&] {
    std::vector<std::pair<std::string, std::string>> listed;
    for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
      listed.push_back({f, sha256_hex(read_file(ck4 + "/" + f))});
    write_file_atomic(ck4 + "/MANIFEST.sha256", "# preflight checkpoint step 4, files sha256 " +
                                                    manifest_files_digest(listed) + "\n" + line("model.safetensors") +
                                                    line("optimizer.safetensors") + line("trainer.json"));
  };
  consistent_manifest();
  expect_refused(resume_error(ck4), {"model.safetensors", "files of different checkpoints mixed"}, "regenerated header");
  // 4. All of step 4 but trainer.json of step 2, under a consistent header saying step 4.
  write_file_atomic(ck4 + "/model.safetensors", model4);
  fs::copy_file(ck2 + "/trainer.json", ck4 + "/trainer.json", fs::copy_options::overwrite_existing);
  consistent_manifest();
  expect_refused(resume_error(ck4), {"MANIFEST.sha256 says step 4", "trainer.json step 2"}, "trainer.json of another step");
  fs::remove_all(d);
}

// Manifests as sha256sum writes them (binary marker '*', upper-case hex from other tools, no
// '#' header) are accepted and resume the same weights; CRLF endings are refused, printably;
// `sha256sum -c` verifies a checkpoint preflight wrote.
TEST(TrainCheckpointManifest, Sha256sumFormatsAcceptedCrlfRefused) {
  const std::string ck = copy_base("sha256sum");
  std::string plain;
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"}) {
    std::string sha = sha256_hex(read_file(ck + "/" + f));
    for (char& c : sha) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    plain += sha + " *" + f + "\n";
  }
  write_file_atomic(ck + "/MANIFEST.sha256", plain);
  std::unique_ptr<Trainer> t;
  ASSERT_NO_THROW(t = Trainer::resume(ck));
  EXPECT_TRUE(same_params(*t, base().params));
  std::string crlf;
  for (size_t at = 0, nl; (nl = plain.find('\n', at)) != std::string::npos; at = nl + 1)
    crlf += plain.substr(at, nl - at) + "\r\n";
  write_file_atomic(ck + "/MANIFEST.sha256", crlf);
  expect_refused(resume_error(ck), {"MANIFEST.sha256", "line 1", "carriage return"}, "CRLF");

  if (std::system("command -v sha256sum >/dev/null 2>&1") == 0) {
    const std::string cmd = "cd '" + base().ck + "' && sha256sum --quiet -c MANIFEST.sha256 >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;
  }
  fs::remove_all(fs::path(ck).parent_path());
}
