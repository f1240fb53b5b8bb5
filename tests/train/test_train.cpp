// The reference trainer: data, checkpoint format, determinism, bit-exact resume, a real
// SIGKILL during a checkpoint write, refusal of corrupted checkpoints, the safeguards.
// Kept cheap: `tiny` with B = 2, T = 16..32, a handful of steps per test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "reference/core/atomic_file.hpp"
#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/layers/model.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/data.hpp"
#include "reference/train/hf_names.hpp"
#include "reference/train/safetensors.hpp"
#include "reference/train/sha256.hpp"
#include "reference/train/trainer.hpp"
#include "tests/train/train_test_util.hpp"

namespace fs = std::filesystem;
using namespace preflight;
using namespace preflight::train;

namespace {

std::string tmpdir(const std::string& name) { return test::fresh_tmpdir("train-" + name); }
std::string corpus() { return test::corpus_path(); }
using test::small;




bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

std::vector<float> losses_of(Trainer& t, int64_t until) {
  std::vector<float> l;
  while (t.step_index() < until) l.push_back(t.step().loss);
  return l;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TrainSha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000, 'a')), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(TrainData, TokenFileRoundTripAndRefusal) {
  const std::string d = tmpdir("tok");
  TokenFile f;
  f.vocab_size = 300, f.token_bytes = 2, f.doc_starts = {0, 5}, f.tokens = {1, 2, 3, 4, 5, 299, 7, 8, 9};
  write_token_file(d + "/a.tok", f);
  const TokenFile g = read_token_file(d + "/a.tok");
  EXPECT_EQ(g.tokens, f.tokens);
  EXPECT_EQ(g.doc_starts, f.doc_starts);
  std::string bytes = read_file(d + "/a.tok");
  write_file_atomic(d + "/t.tok", bytes.substr(0, bytes.size() - 1));
  EXPECT_NE(error_of([&] { read_token_file(d + "/t.tok"); }).find("truncated"), std::string::npos);
  bytes[bytes.size() - 3] ^= 1;
  write_file_atomic(d + "/c.tok", bytes);
  EXPECT_NE(error_of([&] { read_token_file(d + "/c.tok"); }).find("checksum mismatch"), std::string::npos);
  fs::remove_all(d);
}

TEST(TrainData, PackingMasksDocumentEndsAndWraps) {
  const std::string d = tmpdir("pack");
  TokenFile f;
  f.vocab_size = 512, f.doc_starts = {0, 3}, f.tokens = {10, 11, 12, 20, 21, 22, 23, 24};
  write_token_file(d + "/p.tok", f);
  const TokenStream s = TokenStream::from_file(d + "/p.tok", 512);
  LoaderState st;
  PackedBatch b;
  next_batch(b, st, s, 1, 4);  // tokens 10 11 12 20 → targets 11 12 −100 21
  EXPECT_EQ(b.tokens, (std::vector<int32_t>{10, 11, 12, 20}));
  EXPECT_EQ(b.targets, (std::vector<int32_t>{11, 12, -100, 21}));
  EXPECT_EQ(b.doc, (std::vector<int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(st.position, 4);
  next_batch(b, st, s, 1, 4);  // 4 + T + 1 > 8 tokens: wraps to 0 (the tail 21..24 is not used this epoch)
  EXPECT_EQ(st.epoch, 1);
  EXPECT_EQ(st.position, 4);
  EXPECT_EQ(b.tokens[0], 10);
  fs::remove_all(d);
}

TEST(TrainData, ShippedCorpusLoads) {
  const TokenStream s = TokenStream::from_file(corpus(), 512);
  EXPECT_GT(s.size(), 50000);
}

TEST(TrainCheckpoint, HuggingFaceNamesCoverTheFlatBuffer) {
  const ModelConfig c = load_model_config("tiny");
  const auto t = hf_param_tensors(c);
  std::vector<std::string> names;
  int64_t end = 0;
  for (const auto& x : t) {
    EXPECT_EQ(x.offset, end) << x.name;  // contiguous: the safetensors blob is the flat buffer
    end = x.offset + x.numel();
    names.push_back(x.name);
  }
  EXPECT_EQ(end, ref::model_layout(c).total);
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_a_proj.weight",
                        "model.layers.0.self_attn.q_a_layernorm.weight", "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                        "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.experts.7.down_proj.weight",
                        "model.layers.1.mlp.gate.e_score_correction_bias", "model.layers.2.mlp.shared_experts.up_proj.weight",
                        "model.norm.weight", "lm_head.weight", "model.layers.3.eh_proj.weight", "model.layers.3.enorm.weight",
                        "model.layers.3.shared_head.norm.weight", "model.layers.3.self_attn.kv_b_proj.weight"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  for (const auto& n : names) EXPECT_EQ(n.find("preflight."), std::string::npos) << n;
}

TEST(TrainDeterminism, SameSeedSameLossesBitForBit) {
  TrainOptions o = small(4);
  o.micro_batches = 2;
  Trainer a(o), b(o);
  const auto la = losses_of(a, 4), lb = losses_of(b, 4);
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(std::memcmp(&la[i], &lb[i], 4), 0) << i;
  EXPECT_TRUE(same_bits(a.params(), b.params()));
}

// Train N; train k, checkpoint, resume from disk, train N − k: identical losses and weights.
void resume_case(TrainOptions o, int64_t N, int64_t k, const std::string& name) {
  const std::string d = tmpdir(name);
  Trainer full(o);
  const auto lf = losses_of(full, N);
  std::vector<float> lr;
  {
    Trainer first(o);
    lr = losses_of(first, k);
    first.save(d, 2);
  }
  auto second = Trainer::resume(d);
  EXPECT_EQ(second->step_index(), k);
  const auto l2 = losses_of(*second, N);
  lr.insert(lr.end(), l2.begin(), l2.end());
  ASSERT_EQ(lr.size(), lf.size());
  for (size_t i = 0; i < lf.size(); ++i) EXPECT_EQ(std::memcmp(&lf[i], &lr[i], 4), 0) << name << " step " << i;
  EXPECT_TRUE(same_bits(full.params(), second->params())) << name;
  fs::remove_all(d);
}

TEST(TrainResume, BitExactAdamWMicroBatchesCorpus) {
  TrainOptions o = small(6);
  o.micro_batches = 2, o.data = corpus();
  resume_case(o, 6, 3, "adamw");
}

TEST(TrainResume, BitExactMuonBf16MomentsBf16Synthetic) {
  TrainOptions o = small(5);
  o.optimizer = "muon", o.bf16_moments = true, o.precision = "bf16";
  resume_case(o, 5, 2, "muon");
}

TEST(TrainCheckpoint, SafetensorsHoldsTheWeights) {
  const std::string d = tmpdir("st");
  Trainer t(small(3));
  t.step();
  const std::string ck = t.save(d, 1);
  const StFile f = read_safetensors(ck + "/model.safetensors", read_file(ck + "/model.safetensors"));
  EXPECT_EQ(f.meta.at("format"), "pt");
  const auto& e = f.at("model.embed_tokens.weight");
  EXPECT_EQ(e.dtype, "F32");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{512, 64}));
  // The data section is the flat parameter buffer, little-endian fp32.
  const int64_t data_begin = f.blob.size() - t.params().size() * 4;
  EXPECT_EQ(std::memcmp(f.blob.data() + data_begin, t.params().data(), t.params().size() * 4), 0);
  fs::remove_all(d);
}

TEST(TrainCheckpoint, KeepsTheLastK) {
  const std::string d = tmpdir("keep");
  Trainer t(small(4));
  for (int i = 0; i < 4; ++i) t.step(), t.save(d, 2);
  const auto all = list_checkpoints(d);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::path(all[0]).filename().string(), "ckpt-00000003");
  EXPECT_EQ(fs::path(all[1]).filename().string(), "ckpt-00000004");
  fs::remove_all(d);
}

TEST(TrainCheckpoint, CorruptedOrTruncatedIsRefused) {
  const std::string d = tmpdir("corrupt");
  Trainer t(small(3));
  t.step();
  const std::string ck = t.save(d, 1);
  const std::string model = ck + "/model.safetensors";
  const std::string good = read_file(model);
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x40;
  write_file_atomic(model, bad);
  std::string msg = error_of([&] { Trainer::resume(ck); });
  EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  write_file_atomic(model, good.substr(0, good.size() - 100));
  msg = error_of([&] { Trainer::resume(ck); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  write_file_atomic(model, good);
  const std::string tj = ck + "/trainer.json";
  std::string j = read_file(tj);
  j[j.find("\"step\"") + 9] ^= 1;
  write_file_atomic(tj, j);
  msg = error_of([&] { Trainer::resume(ck); });
  EXPECT_NE(msg.find("trainer.json"), std::string::npos) << msg;
  fs::remove(ck + "/MANIFEST.sha256");
  msg = error_of([&] { Trainer::resume(ck); });
  EXPECT_NE(msg.find("MANIFEST"), std::string::npos) << msg;
  fs::remove_all(d);
}

// Really kills `preflight train` (SIGKILL) while it is half-way through writing a checkpoint:
// the previous checkpoint stays complete, verifiable and resumes bit-exactly.
TEST(TrainCheckpoint, SigkillDuringWriteLeavesPreviousCheckpointIntact) {
  const char* bin = std::getenv("PREFLIGHT_BIN");
  const std::string exe = bin ? bin : PREFLIGHT_BIN_PATH;
  const std::string d = tmpdir("kill");
  const std::string err = d + "/stderr.txt";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("PREFLIGHT_TEST_STALL_CHECKPOINT", "4", 1);
    std::freopen(err.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    ::execl(exe.c_str(), exe.c_str(), "train", "--steps", "4", "--batch", "2", "--seq-len", "16", "--warmup", "2",
            "--lr", "0.003", "--out", (d + "/out").c_str(), "--checkpoint-every", "2", "--quiet", nullptr);
    std::_Exit(127);
  }
  bool stalled = false;
  for (int i = 0; i < 1200 && !stalled; ++i) {  // up to 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(err);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    stalled = s.find("checkpoint write stalled") != std::string::npos;
    int status = 0;
    if (!stalled && ::waitpid(pid, &status, WNOHANG) == pid) FAIL() << "preflight exited early: " << s;
  }
  ASSERT_TRUE(stalled);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const auto all = list_checkpoints(d + "/out");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(fs::path(all[0]).filename().string(), "ckpt-00000002");
  EXPECT_TRUE(fs::exists(d + "/out/.tmp-ckpt-00000004"));  // the half-written one, never renamed
  auto resumed = Trainer::resume(d + "/out");               // the newest complete checkpoint
  EXPECT_EQ(resumed->step_index(), 2);
  losses_of(*resumed, 4);
  TrainOptions o = small(4);
  Trainer full(o);
  losses_of(full, 4);
  EXPECT_TRUE(same_bits(full.params(), resumed->params()));
  fs::remove_all(d);
}

TEST(TrainSafeguards, NonFiniteNamesTheLayerStopsOrSkips) {
  TrainOptions o = small(3);
  Trainer t(o);
  const auto lay = ref::model_layout(t.config());
  for (const auto& x : lay.tensors)
    if (x.name == "layers.1.attn.wo") t.mutable_params()[x.offset + 3] = std::numeric_limits<float>::quiet_NaN();
  const std::string msg = error_of([&] { t.step(); });
  EXPECT_NE(msg.find("layer 1"), std::string::npos) << msg;
  o.on_nonfinite = "skip", o.spike_max_skips = 0;
  Trainer s(o);
  for (const auto& x : lay.tensors)
    if (x.name == "layers.1.attn.wo") s.mutable_params()[x.offset + 3] = std::numeric_limits<float>::infinity();
  const StepReport r = s.step();
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.event, "nonfinite-skip");
  EXPECT_EQ(s.step_index(), 0);
}

// An isolated outlier batch (attempt 8 poisoned, attempt 9 clean) is skipped; with
// spike_max_skips = 1 that skip rolls back to the newest checkpoint.
TEST(TrainSafeguards, SpikeSkipsThenRollsBack) {
  const std::string d = tmpdir("spike");
  TrainOptions o = small(12);
  o.data = corpus(), o.seq_len = 32;
  o.spike_threshold = 1.1, o.spike_warmup = 6, o.spike_max_skips = 1;
  o.poison_steps = {8};  // attempt 8: every target = 511 (a loss spike); the next batch is ordinary
  Trainer t(o);
  t.set_rollback_dir(d);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(t.step().applied);
  t.save(d, 1);  // ckpt-00000007
  const std::vector<float> at7 = t.params();
  EXPECT_TRUE(t.step().applied);  // attempt 7
  const StepReport r = t.step();  // attempt 8: poisoned, an outlier → skip → roll back to step 7
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.event, "spike-skip+rollback:ckpt-00000007");
  EXPECT_EQ(t.step_index(), 7);
  EXPECT_TRUE(same_bits(t.params(), at7));
  EXPECT_TRUE(t.step().applied);  // training goes on with fresh data
  fs::remove_all(d);
}

// A shift in the data (the spiking batch's successor is as far off: attempts 8 and 9 both
// poisoned) is not a spike: the step is applied and marked "data-shift" (README run, step 120).
TEST(TrainSafeguards, DataShiftIsAppliedNotSkipped) {
  TrainOptions o = small(12);
  o.data = corpus(), o.seq_len = 32;
  o.spike_threshold = 1.1, o.spike_warmup = 6, o.spike_max_skips = 1;
  o.poison_steps = {8, 9};
  Trainer t(o);  // no checkpoint directory: a skip here would end the run
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(t.step().applied);
  const StepReport r = t.step();  // attempt 8
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.event, "data-shift");
  EXPECT_EQ(t.step_index(), 9);
}
