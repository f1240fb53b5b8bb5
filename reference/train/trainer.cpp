#include "reference/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/core/json_fields.hpp"
#include "reference/numerics/tree_sum.hpp"
#include "reference/optim/qk_clip.hpp"
#include "reference/optim/schedules.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/hf_names.hpp"
#include "reference/train/safetensors.hpp"
#include "reference/train/sha256.hpp"

namespace preflight::train {

// A checkpoint after every check that does not need the model: manifest verified, trainer.json
// parsed strictly, files tied together (manifest step, sha256 of both tensor files), tensor
// headers parsed and the weights' size matching the model config.
struct SavedState {
  std::string dir;
  TrainOptions options;
  ModelConfig config;
  int64_t step = 0, tokens = 0, attempts = 0, optimizer_step_count = 0;
  LoaderState loader;
  std::string data_fingerprint;
  float spike_avg = 0;
  int64_t accepted = 0, consecutive_skips = 0, rollbacks = 0;
  AcceptedBatch last;
  StFile model, optimizer;
};

namespace {

using Clock = std::chrono::steady_clock;

SavedState load_checkpoint(const std::string& dir);  // below

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void add_into(float* a, const float* b, int64_t n) {  // a = a + b, one float add per element
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] + b[i];
}

using num::tree_sum;  // the tree of trainer.hpp over scalars (reference/numerics/tree_sum.hpp)

std::string hex_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", u);
  return b;
}
// "0x" and 8 hex digits (as hex_bits writes); anything else is refused naming `field`.
float from_hex_bits(const nlohmann::json& v, const std::string& origin, const std::string& field) {
  const std::string s = v.is_string() ? v.get<std::string>() : "";
  bool ok = s.size() == 10 && s[0] == '0' && s[1] == 'x';
  for (size_t i = 2; ok && i < s.size(); ++i) ok = std::isxdigit(static_cast<unsigned char>(s[i])) != 0;
  if (!ok) fail(origin, ": field '", field, "': expected \"0x\" and 8 hex digits, got ", describe_json_value(v));
  const uint32_t u = static_cast<uint32_t>(std::strtoul(s.c_str() + 2, nullptr, 16));
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

optim::OptimizerConfig optimizer_config(const TrainOptions& o) {
  optim::OptimizerConfig c;
  if (o.optimizer != "adamw" && o.optimizer != "muon") fail("--optimizer '", o.optimizer, "': expected adamw or muon");
  c.use_muon = o.optimizer == "muon";
  c.adamw.weight_decay = o.weight_decay;
  c.adamw.moments = o.bf16_moments ? optim::MomentDtype::bf16 : optim::MomentDtype::fp32;
  c.muon.weight_decay = o.weight_decay;
  c.max_grad_norm = o.max_grad_norm;
  return c;
}

}  // namespace

std::string options_to_json(const TrainOptions& o) {
  nlohmann::json j = {{"config", o.config},
                      {"data", o.data},
                      {"seed", o.seed},
                      {"precision", o.precision},
                      {"batch", o.batch},
                      {"seq_len", o.seq_len},
                      {"micro_batches", o.micro_batches},
                      {"steps", o.steps},
                      {"optimizer", o.optimizer},
                      {"schedule", o.schedule},
                      {"lr", o.lr},
                      {"lr_min", o.lr_min},
                      {"warmup", o.warmup},
                      {"weight_decay", o.weight_decay},
                      {"max_grad_norm", o.max_grad_norm},
                      {"bf16_moments", o.bf16_moments},
                      {"mtp_lambda", o.mtp_lambda},
                      {"seq_aux_alpha", o.seq_aux_alpha},
                      {"bias_gamma", o.bias_gamma},
                      {"bias_centre", o.bias_centre},
                      {"qk_clip", o.qk_clip},
                      {"qk_tau", o.qk_tau},
                      {"on_nonfinite", o.on_nonfinite},
                      {"spike_threshold", o.spike_threshold},
                      {"spike_warmup", o.spike_warmup},
                      {"spike_max_skips", o.spike_max_skips},
                      {"checkpoint_every", o.checkpoint_every},
                      {"keep", o.keep},
                      {"poison_steps", o.poison_steps}};
  return j.dump(2);
}

TrainOptions options_from_json(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(origin, ": not valid JSON (", e.what(), ")");
  }
  JsonFields f(j, origin, "options");
  f.require({"config", "data", "seed", "precision", "batch", "seq_len", "micro_batches", "steps", "optimizer", "schedule",
             "lr", "lr_min", "warmup", "weight_decay", "max_grad_norm", "bf16_moments", "mtp_lambda", "seq_aux_alpha",
             "bias_gamma", "bias_centre", "qk_clip", "qk_tau", "on_nonfinite", "spike_threshold", "spike_warmup",
             "spike_max_skips", "checkpoint_every", "keep", "poison_steps"});
  TrainOptions o;
  f.read("config", o.config), f.read("data", o.data), f.read("precision", o.precision);
  const nlohmann::json& seed = f.raw("seed");
  if (!seed.is_number_unsigned()) f.bad("seed", "an integer in [0, 2^64 - 1]", seed);
  o.seed = seed.get<uint64_t>();
  f.read("batch", o.batch), f.read("seq_len", o.seq_len), f.read("micro_batches", o.micro_batches);
  f.read("steps", o.steps), f.read("optimizer", o.optimizer), f.read("schedule", o.schedule);
  f.read("lr", o.lr), f.read("lr_min", o.lr_min), f.read("warmup", o.warmup), f.read("weight_decay", o.weight_decay);
  f.read("max_grad_norm", o.max_grad_norm), f.read("bf16_moments", o.bf16_moments), f.read("mtp_lambda", o.mtp_lambda);
  f.read("seq_aux_alpha", o.seq_aux_alpha), f.read("bias_gamma", o.bias_gamma), f.read("bias_centre", o.bias_centre);
  f.read("qk_clip", o.qk_clip), f.read("qk_tau", o.qk_tau), f.read("on_nonfinite", o.on_nonfinite);
  f.read("spike_threshold", o.spike_threshold), f.read("spike_warmup", o.spike_warmup);
  f.read("spike_max_skips", o.spike_max_skips), f.read("checkpoint_every", o.checkpoint_every), f.read("keep", o.keep);
  f.read("poison_steps", o.poison_steps);
  f.reject_unknown();
  validate_options(o, origin);
  return o;
}

void validate_options(const TrainOptions& o, const std::string& origin) {
  // "--lr" on the command line, "<origin>: field 'options.lr'" for a file.
  auto name = [&](const char* field) {
    if (!origin.empty()) return origin + ": field 'options." + field + "'";
    std::string flag = std::string("--") + field;
    for (char& c : flag) c = c == '_' ? '-' : c;
    return flag == "--poison-steps" ? std::string("--poison-step") : flag;
  };
  auto count = [&](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) fail(name(field), " = ", v, ": expected an integer in [", lo, ", ", hi, "]");
  };
  auto real = [&](const char* field, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) fail(name(field), " = ", v, ": expected a number in [", lo, ", ", hi, "]");
  };
  auto choice = [&](const char* field, const std::string& v, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    fail(name(field), " '", v, "': expected one of ", list);
  };
  namespace L = limits;
  count("batch", o.batch, 1, L::kMaxCount);
  count("seq_len", o.seq_len, 2, L::kMaxCount);
  count("micro_batches", o.micro_batches, 1, L::kMaxCount);
  count("steps", o.steps, 1, L::kMaxSteps);
  count("warmup", o.warmup, 0, L::kMaxSteps);
  count("checkpoint_every", o.checkpoint_every, 0, L::kMaxSteps);
  count("keep", o.keep, 0, L::kMaxKeep);
  count("spike_warmup", o.spike_warmup, 0, L::kMaxSteps);
  count("spike_max_skips", o.spike_max_skips, 0, L::kMaxSpikeSkips);
  for (int64_t p : o.poison_steps) count("poison_steps", p, 0, L::kMaxAttempt);
  real("lr", o.lr, 0, L::kMaxLr);
  real("lr_min", o.lr_min, 0, L::kMaxLr);
  real("weight_decay", o.weight_decay, 0, L::kMaxWeight);
  real("max_grad_norm", o.max_grad_norm, 0, L::kMaxGradNorm);
  real("mtp_lambda", o.mtp_lambda, 0, L::kMaxWeight);
  real("seq_aux_alpha", o.seq_aux_alpha, 0, L::kMaxWeight);
  real("bias_gamma", o.bias_gamma, 0, 1);
  real("qk_tau", o.qk_tau, L::kMinQkTau, L::kMaxQkTau);
  real("spike_threshold", o.spike_threshold, 0, L::kMaxSpikeThreshold);
  choice("precision", o.precision, {"fp32", "bf16", "fp8"});
  choice("optimizer", o.optimizer, {"adamw", "muon"});
  choice("schedule", o.schedule, {"cosine", "wsd", "constant"});
  choice("on_nonfinite", o.on_nonfinite, {"stop", "skip"});
  if (o.lr_min > o.lr) fail(name("lr_min"), " = ", o.lr_min, " is above ", name("lr"), " = ", o.lr, " (the peak)");
  if (o.schedule != "constant" && o.warmup >= o.steps)
    fail(name("warmup"), " = ", o.warmup, " must be below ", name("steps"), " = ", o.steps, " (the ", o.schedule,
         " schedule decays after it)");
  // Each factor is at most 2^20, so the product cannot overflow.
  if (o.micro_batches * o.batch * o.seq_len > L::kMaxTokensPerStep)
    fail(name("micro_batches"), " × ", name("batch"), " × ", name("seq_len"), " = ", o.micro_batches, " × ", o.batch,
         " × ", o.seq_len, " tokens per step: at most ", L::kMaxTokensPerStep,
         " (a step that size would take hours on the CPU reference)");
  if (o.config.empty()) fail(name("config"), ": empty");
  if (o.data.empty()) fail(name("data"), ": empty (expected 'synthetic' or a token file)");
}

Trainer::Trainer(TrainOptions options) : Trainer(options, load_model_config(options.config)) {
  ref::model_init(params_.data(), config_, opt_.seed);
}

Trainer::Trainer(TrainOptions options, ModelConfig config) : opt_(std::move(options)), config_(std::move(config)) {
  const TrainOptions& o = opt_;
  validate_options(o);
  // Before anything is allocated: a config the reference layers cannot run would train
  // another model than the one named (and a 7B one would first exhaust the memory).
  if (const std::string why = reference_unsupported(config_); !why.empty())
    fail("--config '", o.config, "': the CPU reference cannot train this model: ", why);
  if (o.seq_len > config_.max_position_embeddings)
    fail("--seq-len ", o.seq_len, " > max_position_embeddings ", config_.max_position_embeddings, " of '", o.config, "'");
  mopt_.precision.kind = ref::precision_from_string(o.precision.c_str());
  mopt_.bf16_activations = mopt_.precision.kind != ref::Precision::fp32;
  mopt_.mtp_lambda = static_cast<float>(o.mtp_lambda);
  mopt_.seq_aux_alpha = static_cast<float>(o.seq_aux_alpha);
  stream_ = o.data == "synthetic" ? TokenStream::synthetic(o.seed, config_.vocab_size)
                                  : TokenStream::from_file(o.data, config_.vocab_size);
  const ref::ModelLayout lay = ref::model_layout(config_);
  params_.assign(lay.total, 0.0f);
  optimizer_ = std::make_unique<optim::Optimizer>(hf_param_tensors(config_), lay.total, optimizer_config(o));
  const ref::ModelWeights w = ref::model_weights_view(params_.data(), config_);
  for (const auto& b : w.layers)
    if (b.moe.bias) router_bias_.push_back(b.moe.bias);
  for (const auto& m : w.mtp)
    if (m.block.moe.bias) router_bias_.push_back(m.block.moe.bias);
}

float Trainer::lr_at_step(int64_t s) const {
  const TrainOptions& o = opt_;
  if (o.schedule == "constant") {
    const int64_t w = std::max<int64_t>(o.warmup, 0);
    return s < w ? static_cast<float>(o.lr * static_cast<double>(s + 1) / static_cast<double>(w)) : static_cast<float>(o.lr);
  }
  if (o.schedule == "wsd") {
    optim::Wsd w;
    w.lr_max = o.lr, w.lr_min = o.lr_min, w.warmup_steps = o.warmup, w.total_steps = o.steps;
    w.decay_steps = std::max<int64_t>(1, o.steps / 5);
    return optim::lr_at(w, s);
  }
  optim::WarmupCosine c;
  c.lr_max = o.lr, c.lr_min = o.lr_min, c.warmup_steps = o.warmup, c.total_steps = o.steps;
  return optim::lr_at(c, s);
}

bool Trainer::poisoned(int64_t attempt) const {
  return std::find(opt_.poison_steps.begin(), opt_.poison_steps.end(), attempt) != opt_.poison_steps.end();
}

void Trainer::draw(PackedBatch& mb, LoaderState& st, bool poison) const {
  next_batch(mb, st, stream_, opt_.batch, opt_.seq_len);
  if (poison)
    for (int32_t& t : mb.targets)
      if (t >= 0) t = static_cast<int32_t>(config_.vocab_size - 1);
}

float Trainer::micro_mean(const std::vector<float>& v) const {
  const int64_t K = opt_.micro_batches;
  return K > 1 ? tree_sum(v) * static_cast<float>(1.0 / static_cast<double>(K)) : v[0];
}

float Trainer::batch_loss(LoaderState from, int64_t attempt) {
  const bool poison = poisoned(attempt);
  std::vector<float> losses;
  PackedBatch mb;
  for (int64_t j = 0; j < opt_.micro_batches; ++j) {
    draw(mb, from, poison && j == 0);
    ref::Batch batch;
    batch.B = mb.B, batch.T = mb.T, batch.tokens = mb.tokens.data(), batch.targets = mb.targets.data(), batch.doc = mb.doc.data();
    try {
      losses.push_back(ref::model_forward(cache_, params_.data(), batch, config_, mopt_).total);
    } catch (const Error&) {
      return std::numeric_limits<float>::infinity();
    }
  }
  return micro_mean(losses);
}

std::string Trainer::classify_spike(float loss) {
  const double l = loss;
  if (last_.valid) {  // did the model get worse on the batch it last learned from?
    const double now = batch_loss(last_.from, last_.attempt);
    if (!(now < 0.5 * (static_cast<double>(last_.loss) + l))) return "degraded-skip";
  }
  // Is the next batch (attempts_ is already its index) as far off as this one?
  const double next = batch_loss(loader_, attempts_);
  if (!(next < 0.5 * (static_cast<double>(spike_avg_) + l))) return "data-shift";
  return "spike-skip";
}

StepReport Trainer::step() {
  const auto t0 = Clock::now();
  const TrainOptions& o = opt_;
  const int64_t K = o.micro_batches, B = o.batch, T = o.seq_len, n = n_params();
  StepReport r;
  r.step = step_;
  r.lr = lr_at_step(step_);
  const LoaderState drawn_from = loader_;
  const int64_t attempt = attempts_;
  const bool poison = poisoned(attempt);
  attempts_ += 1;

  num::TreeSum grads(add_into);  // the micro-batch tree (trainer.hpp)
  std::vector<float> losses, ces, mtps, auxs;
  std::vector<std::vector<int64_t>> counts;
  std::vector<std::vector<float>> max_logit;
  PackedBatch mb;
  std::string nonfinite;
  for (int64_t j = 0; j < K; ++j) {
    draw(mb, loader_, poison && j == 0);
    if (!nonfinite.empty()) continue;  // keep consuming this step's data
    ref::Batch batch;
    batch.B = B, batch.T = T, batch.tokens = mb.tokens.data(), batch.targets = mb.targets.data(), batch.doc = mb.doc.data();
    std::vector<float> g(n, 0.0f);
    try {
      const ref::ModelLoss l = ref::model_forward(cache_, params_.data(), batch, config_, mopt_);
      ref::model_backward(g.data(), cache_, params_.data(), batch, config_, mopt_);
      losses.push_back(l.total), ces.push_back(l.ce), mtps.push_back(l.mtp), auxs.push_back(l.aux);
      if (counts.empty()) counts = l.expert_counts;
      else
        for (size_t b = 0; b < counts.size(); ++b)
          for (size_t e = 0; e < counts[b].size(); ++e) counts[b][e] += l.expert_counts[b][e];
      if (max_logit.empty()) max_logit = l.max_logit_per_head;
      else
        for (size_t b = 0; b < max_logit.size(); ++b)
          for (size_t h = 0; h < max_logit[b].size(); ++h) max_logit[b][h] = std::max(max_logit[b][h], l.max_logit_per_head[b][h]);
    } catch (const Error& e) {
      nonfinite = e.what();
      continue;
    }
    grads.push(std::move(g));
  }
  r.tokens = tokens_ + K * B * T;
  auto skip = [&](const std::string& event) {
    r.applied = false, r.event = event;
    consecutive_skips_ += 1;
    tokens_ = r.tokens;
    if (o.spike_max_skips > 0 && consecutive_skips_ >= o.spike_max_skips) {
      // The newest checkpoint not ahead of this step (a directory may also hold later ones).
      std::string ck;
      if (!rollback_dir_.empty())
        for (const std::string& c : list_checkpoints(rollback_dir_))
          if (checkpoint_step(c) <= step_) ck = c;
      if (ck.empty())
        fail("step ", step_, ": ", consecutive_skips_, " consecutive skipped batches and no checkpoint to roll back to",
             rollback_dir_.empty() ? " (train with --out DIR to keep checkpoints)" : "");
      if (++rollbacks_ > 3) fail("step ", step_, ": still skipping batches after 3 roll-backs; giving up");
      apply_state(load_checkpoint(ck), /*restore_loader=*/false);
      r.event = event + "+rollback:" + std::filesystem::path(ck).filename().string();
      consecutive_skips_ = 0;
    }
    r.seconds = ms_since(t0) / 1e3;
    return r;
  };
  if (!nonfinite.empty()) {
    if (o.on_nonfinite == "stop") fail("step ", step_, ": ", nonfinite);
    r.loss = std::numeric_limits<float>::quiet_NaN();
    return skip("nonfinite-skip");
  }
  std::vector<float> g = grads.finish();
  const float inv_k = static_cast<float>(1.0 / static_cast<double>(K));
  if (K > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] * inv_k;
  }
  r.loss = micro_mean(losses), r.ce = micro_mean(ces), r.mtp = micro_mean(mtps), r.aux = micro_mean(auxs);
  r.step_ms_fwd_bwd = ms_since(t0);

  // load balance and attention logits (monitoring)
  for (const auto& c : counts) {
    if (c.empty()) continue;
    double sum = 0, mx = 0, mn = std::numeric_limits<double>::infinity();
    for (int64_t x : c) sum += static_cast<double>(x), mx = std::max(mx, double(x)), mn = std::min(mn, double(x));
    const double mu = sum / static_cast<double>(c.size());
    double var = 0;
    for (int64_t x : c) var += (double(x) - mu) * (double(x) - mu);
    var /= static_cast<double>(c.size());
    r.load_max_over_min = std::max(r.load_max_over_min, mn > 0 ? mx / mn : std::numeric_limits<double>::infinity());
    r.load_cv = std::max(r.load_cv, mu > 0 ? std::sqrt(var) / mu : 0.0);
  }
  for (const auto& v : max_logit)
    for (float x : v) r.max_attn_logit = std::max(r.max_attn_logit, x);

  // spike check (trainer.hpp): a candidate is classified by two extra forward passes
  if (o.spike_threshold > 0 && accepted_ >= std::max<int64_t>(1, o.spike_warmup) &&
      !(static_cast<double>(r.loss) <= o.spike_threshold * static_cast<double>(spike_avg_))) {
    const std::string verdict = classify_spike(r.loss);
    if (verdict != "data-shift") return skip(verdict);
    r.event = verdict;
  }

  const auto t1 = Clock::now();
  const optim::StepResult sr = optimizer_->step(params_.data(), g.data(), r.lr);
  r.grad_norm = sr.grad_norm;
  if (sr.skipped) {
    if (o.on_nonfinite == "stop") fail("step ", step_, ": non-finite gradient norm (", sr.grad_norm, ")");
    return skip("nonfinite-skip");
  }
  if (o.bias_gamma > 0) {
    PREFLIGHT_CHECK(counts.size() == router_bias_.size(), "expert counts of ", counts.size(), " MoE blocks, ",
                    router_bias_.size(), " router biases");
    for (size_t b = 0; b < counts.size(); ++b)
      optim::update_router_bias(router_bias_[b], counts[b].data(), static_cast<int64_t>(counts[b].size()),
                                static_cast<float>(o.bias_gamma), o.bias_centre);
  }
  if (o.qk_clip && !max_logit.empty()) {
    optim::QkClipConfig qc;
    qc.tau = o.qk_tau;
    ref::ModelWeights w = ref::model_weights_view(params_.data(), config_);
    std::vector<ref::BlockWeights*> blocks;
    for (auto& b : w.layers) blocks.push_back(&b);
    for (auto& m : w.mtp) blocks.push_back(&m.block);
    for (size_t b = 0; b < blocks.size() && b < max_logit.size(); ++b) {
      if (config_.attention == AttentionKind::mla) {
        optim::qk_clip_mla(blocks[b]->mla, ref::MlaDims::from(config_, T), max_logit[b], qc);
      } else {
        const int64_t H = config_.num_attention_heads, G = config_.num_key_value_heads ? config_.num_key_value_heads : H;
        optim::qk_clip_gqa(blocks[b]->gqa.wq, blocks[b]->gqa.wk, H, G, config_.qk_head_dim(), config_.hidden_size,
                           max_logit[b], qc);
      }
    }
  }
  r.step_ms_optim = ms_since(t1);
  spike_avg_ = accepted_ == 0 ? r.loss : static_cast<float>(0.9 * double(spike_avg_) + 0.1 * double(r.loss));
  accepted_ += 1, consecutive_skips_ = 0;
  last_.valid = true, last_.from = drawn_from, last_.attempt = attempt, last_.loss = r.loss;
  step_ += 1, tokens_ = r.tokens;
  r.applied = true;
  r.seconds = ms_since(t0) / 1e3;
  return r;
}

namespace {

constexpr const char* kCheckpointFormat = "preflight-train-checkpoint/2";
constexpr int64_t kMaxPosition = int64_t{1} << 62;  // a synthetic stream's position (far from overflow)

std::string lower_hex64(const nlohmann::json& v, JsonFields& f, const char* key) {
  const std::string s = v.is_string() ? v.get<std::string>() : "";
  bool ok = s.size() == 64;
  for (char c : s) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) f.bad(key, "a sha256 (64 lowercase hex digits)", v);
  return s;
}

LoaderState read_loader_position(JsonFields& f) {
  LoaderState st;
  st.position = f.integer("position", 0, 0, kMaxPosition);
  st.epoch = f.integer("epoch", 0, 0, kMaxPosition);
  return st;
}

}  // namespace

namespace {

SavedState load_checkpoint(const std::string& dir) {
  VerifiedCheckpoint v = read_verified_checkpoint(dir);
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
    if (!v.files.count(f)) fail("checkpoint '", dir, "': ", f, " is not in its MANIFEST.sha256");
  const std::string origin = "checkpoint file '" + dir + "/trainer.json'";
  nlohmann::json tj;
  try {
    tj = nlohmann::json::parse(v.files.at("trainer.json"));
  } catch (const std::exception& e) {
    fail(origin, ": not valid JSON (", e.what(), ")");
  }
  SavedState s;
  s.dir = dir;
  JsonFields f(tj, origin);
  f.require({"format", "step", "tokens", "attempts", "optimizer_step_count", "loader", "rng", "spike", "last_accepted",
             "files", "options", "model_config"});
  const std::string format = f.text("format", "", true);
  if (format != kCheckpointFormat)
    fail(origin, ": field 'format' = \"", format, "\": expected \"", kCheckpointFormat,
         "\" (a checkpoint of another preflight version cannot be resumed)");
  s.options = options_from_json(f.raw("options").dump(), origin);
  const nlohmann::json& mc = f.raw("model_config");
  if (!mc.is_object()) f.bad("model_config", "a JSON object", mc);
  s.config = model_config_from_json(mc, origin + " field 'model_config'");
  s.step = f.integer("step", 0, 0, s.options.steps);
  s.attempts = f.integer("attempts", 0, s.step, limits::kMaxAttempt);
  s.optimizer_step_count = f.integer("optimizer_step_count", 0, 0, s.step);
  {
    JsonFields l(f.raw("loader"), origin, "loader");
    l.require({"position", "epoch", "stream", "data"});
    s.loader = read_loader_position(l);
    l.text("stream", "", true);  // a description for people
    s.data_fingerprint = l.text("data", "", true);
    l.reject_unknown();
  }
  // tokens = K·B·T per attempt; bounded by attempts (skipped batches consume data too).
  const int64_t per_step = s.options.micro_batches * s.options.batch * s.options.seq_len;
  s.tokens = f.integer("tokens", 0, 0, s.attempts > kMaxPosition / per_step ? kMaxPosition : s.attempts * per_step);
  {
    JsonFields r(f.raw("rng"), origin, "rng");
    r.require({"generator", "seed"});
    r.text("generator", "", true);
    const nlohmann::json& seed = r.raw("seed");
    if (!seed.is_number_unsigned() || seed.get<uint64_t>() != s.options.seed)
      r.bad("seed", "the options' seed " + std::to_string(s.options.seed), seed);
    r.reject_unknown();
  }
  {
    JsonFields sp(f.raw("spike"), origin, "spike");
    sp.require({"running_average_bits", "running_average", "accepted", "consecutive_skips", "rollbacks"});
    s.spike_avg = from_hex_bits(sp.raw("running_average_bits"), origin, "spike.running_average_bits");
    if (!std::isfinite(s.spike_avg) || s.spike_avg < 0)
      fail(origin, ": field 'spike.running_average_bits': ", s.spike_avg, " is not a finite loss");
    sp.number("running_average", 0, 0, std::numeric_limits<double>::max(), true);  // for people; the bits rule
    s.accepted = sp.integer("accepted", 0, 0, s.step);
    s.consecutive_skips = sp.integer("consecutive_skips", 0, 0, limits::kMaxSpikeSkips);
    s.rollbacks = sp.integer("rollbacks", 0, 0, 3);
    sp.reject_unknown();
  }
  if (!f.raw("last_accepted").is_null()) {
    JsonFields la(f.raw("last_accepted"), origin, "last_accepted");
    la.require({"position", "epoch", "attempt", "loss_bits"});
    s.last.valid = true;
    s.last.from = read_loader_position(la);
    s.last.attempt = la.integer("attempt", 0, 0, s.attempts);
    s.last.loss = from_hex_bits(la.raw("loss_bits"), origin, "last_accepted.loss_bits");
    la.reject_unknown();
  }
  std::string model_sha, optimizer_sha;
  {
    JsonFields fl(f.raw("files"), origin, "files");
    fl.require({"model.safetensors", "optimizer.safetensors"});
    model_sha = lower_hex64(fl.raw("model.safetensors"), fl, "model.safetensors");
    optimizer_sha = lower_hex64(fl.raw("optimizer.safetensors"), fl, "optimizer.safetensors");
    fl.reject_unknown();
  }
  f.reject_unknown();
  // The files of one checkpoint, tied together: a model file from another step (with a
  // regenerated manifest) has another sha256 than the one trainer.json was saved with.
  if (v.manifest_step >= 0 && v.manifest_step != s.step)
    fail("checkpoint '", dir, "': MANIFEST.sha256 says step ", v.manifest_step, ", trainer.json step ", s.step,
         " (files of different checkpoints mixed)");
  for (const auto& [name, want] : {std::pair<std::string, std::string>{"model.safetensors", model_sha},
                                   {"optimizer.safetensors", optimizer_sha}})
    if (sha256_hex(v.files.at(name)) != want)
      fail("checkpoint file '", dir, "/", name, "': not the file this trainer.json was saved with (sha256 ",
           sha256_hex(v.files.at(name)).substr(0, 16), "..., trainer.json ", want.substr(0, 16),
           "...): files of different checkpoints mixed, refusing to load");
  s.model = read_safetensors(dir + "/model.safetensors", std::move(v.files.at("model.safetensors")));
  s.optimizer = read_safetensors(dir + "/optimizer.safetensors", std::move(v.files.at("optimizer.safetensors")));
  // Sized before anything is allocated for the model: the weights must be exactly the
  // config's parameters in fp32.
  const int64_t total = ref::model_layout(s.config).total;
  int64_t held = 0;
  for (const auto& [name, e] : s.model.tensors) held += e.end - e.begin;
  if (total > (INT64_MAX / 4) || held != total * 4)
    fail("checkpoint file '", dir, "/model.safetensors': holds ", held, " bytes of tensors, the model config needs ",
         total, " fp32 parameters");
  const auto meta = s.optimizer.meta.find("step_count");
  if (meta == s.optimizer.meta.end() || meta->second != std::to_string(s.optimizer_step_count))
    fail("checkpoint file '", dir, "/optimizer.safetensors': metadata step_count ",
         meta == s.optimizer.meta.end() ? std::string("missing") : "\"" + meta->second + "\"",
         ", trainer.json optimizer_step_count ", s.optimizer_step_count);
  return s;
}

}  // namespace

std::string Trainer::save(const std::string& out_dir, int64_t keep) {
  const auto tensors = hf_param_tensors(config_);
  std::vector<StTensor> wt;
  for (const auto& t : tensors) wt.push_back({t.name, "F32", t.shape, params_.data() + t.offset, t.numel() * 4});
  std::vector<StTensor> st;
  for (const auto& s : optimizer_->state_tensors())
    st.push_back({s.name, s.dtype == optim::StateDtype::fp32 ? "F32" : "BF16", {s.numel}, s.data, s.bytes()});
  std::vector<CkptFile> files;
  files.push_back({"model.safetensors", safetensors_bytes(wt, {{"format", "pt"}, {"producer", "preflight train"}})});
  files.push_back({"optimizer.safetensors",
                   safetensors_bytes(st, {{"step_count", std::to_string(optimizer_->step_count())}})});
  nlohmann::json last = nullptr;
  if (last_.valid)
    last = {{"position", last_.from.position}, {"epoch", last_.from.epoch}, {"attempt", last_.attempt},
            {"loss_bits", hex_bits(last_.loss)}};
  nlohmann::json tj = {{"format", kCheckpointFormat},
                       {"step", step_},
                       {"tokens", tokens_},
                       {"attempts", attempts_},
                       {"optimizer_step_count", optimizer_->step_count()},
                       {"loader", {{"position", loader_.position}, {"epoch", loader_.epoch}, {"stream", stream_.describe()},
                                   {"data", stream_.fingerprint()}}},
                       {"rng", {{"generator", "philox4x32-10, counter-based: (seed, stream, index)"}, {"seed", opt_.seed}}},
                       {"spike", {{"running_average_bits", hex_bits(spike_avg_)}, {"running_average", spike_avg_},
                                  {"accepted", accepted_}, {"consecutive_skips", consecutive_skips_}, {"rollbacks", rollbacks_}}},
                       {"last_accepted", last},
                       {"files", {{"model.safetensors", sha256_hex(files[0].bytes)},
                                  {"optimizer.safetensors", sha256_hex(files[1].bytes)}}},
                       {"options", nlohmann::json::parse(options_to_json(opt_))},
                       {"model_config", to_json(config_)}};
  files.push_back({"trainer.json", tj.dump(2) + "\n"});
  return write_checkpoint_dir(out_dir, step_, files, keep);
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& path) {
  std::vector<std::string> changed;
  return resume(path, [](TrainOptions&) {}, changed);
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& path, const std::function<void(TrainOptions&)>& change,
                                         std::vector<std::string>& changed) {
  const SavedState s = load_checkpoint(resolve_checkpoint(path));
  TrainOptions next = s.options;
  change(next);
  const OptionDiff d = diff_options(s.options, next);
  if (!d.unsafe.empty()) {
    const std::string& flag = d.unsafe.front();
    std::string field = flag.substr(2);
    std::replace(field.begin(), field.end(), '-', '_');
    if (field == "poison_step") field = "poison_steps";
    const auto was = nlohmann::json::parse(options_to_json(s.options)), now = nlohmann::json::parse(options_to_json(next));
    fail(flag, " ", now.value(field, nlohmann::json()).dump(), " cannot change on --resume: the checkpoint has ",
         was.value(field, nlohmann::json()).dump(), " (another value would make the run something other than a ",
         "continuation of the checkpoint's); start a new run instead");
  }
  if (!d.safe.empty()) {
    validate_options(next);
    if (next.steps < s.step) fail("--steps ", next.steps, ": the checkpoint is already at step ", s.step);
  }
  // The new options differ from the saved ones only where a continuation allows it, so the
  // trainer is built with them directly; apply_state checks that the data holds the same tokens.
  std::unique_ptr<Trainer> t(new Trainer(next, s.config));
  if (next.data != s.options.data && t->stream_.fingerprint() != s.data_fingerprint)
    fail("--data '", next.data, "': holds other tokens (", t->stream_.fingerprint(), ") than the checkpoint's data '",
         s.options.data, "' (", s.data_fingerprint, "); only a moved copy of the same file may be given on --resume");
  t->apply_state(s, true);
  changed = d.safe;
  return t;
}

void Trainer::apply_state(const SavedState& s, bool restore_loader) {
  const std::string where = "checkpoint '" + s.dir + "'";
  if (to_json(s.config) != to_json(config_)) fail(where, ": its model config differs from this run's (not from this run)");
  if (!restore_loader) {
    const OptionDiff d = diff_options(s.options, opt_);
    if (!d.unsafe.empty()) fail(where, ": not from this run (", d.unsafe.front(), " differs)");
  }
  if (s.data_fingerprint != stream_.fingerprint())
    fail(where, ": was trained on data ", s.data_fingerprint, ", but ", stream_.describe(), " is ", stream_.fingerprint(),
         " (the data file changed)");
  if (!stream_.infinite() && s.loader.position > stream_.size())
    fail(where, ": trainer.json field 'loader.position' ", s.loader.position, " is past the end of ", stream_.describe());
  if (!stream_.infinite() && s.last.valid && s.last.from.position > stream_.size())
    fail(where, ": trainer.json field 'last_accepted.position' ", s.last.from.position, " is past the end of ",
         stream_.describe());
  for (const auto& t : hf_param_tensors(config_)) {
    const auto& e = s.model.at(t.name);
    if (e.dtype != "F32" || e.shape != t.shape)
      fail("checkpoint file '", s.model.path, "': tensor '", t.name, "' has dtype ", e.dtype,
           " and another shape than the model's (expected F32)");
    std::memcpy(params_.data() + t.offset, s.model.blob.data() + e.begin, static_cast<size_t>(t.numel()) * 4);
  }
  for (const auto& st : optimizer_->state_tensors()) {
    const auto& e = s.optimizer.at(st.name);
    const std::string want = st.dtype == optim::StateDtype::fp32 ? "F32" : "BF16";
    if (e.dtype != want || e.shape != std::vector<int64_t>{st.numel})
      fail("checkpoint file '", s.optimizer.path, "': state '", st.name, "' is ", e.dtype, " of ", e.shape.size(),
           " dimensions, expected ", want, " [", st.numel, "]");
    std::memcpy(st.data, s.optimizer.blob.data() + e.begin, static_cast<size_t>(st.bytes()));
  }
  optimizer_->set_step_count(s.optimizer_step_count);
  step_ = s.step;
  tokens_ = s.tokens;
  spike_avg_ = s.spike_avg;
  accepted_ = s.accepted;
  last_ = s.last;
  if (restore_loader) {
    loader_ = s.loader;
    attempts_ = s.attempts;
    consecutive_skips_ = s.consecutive_skips;
    rollbacks_ = s.rollbacks;
  }
}

OptionDiff diff_options(const TrainOptions& a, const TrainOptions& b) {
  OptionDiff d;
  auto cmp = [&](bool differs, const char* flag, bool safe) {
    if (differs) (safe ? d.safe : d.unsafe).push_back(flag);
  };
  cmp(a.config != b.config, "--config", false);
  cmp(a.data != b.data, "--data", true);
  cmp(a.seed != b.seed, "--seed", false);
  cmp(a.precision != b.precision, "--precision", false);
  cmp(a.batch != b.batch, "--batch", false);
  cmp(a.seq_len != b.seq_len, "--seq-len", false);
  cmp(a.micro_batches != b.micro_batches, "--micro-batches", false);
  cmp(a.steps != b.steps, "--steps", true);
  cmp(a.optimizer != b.optimizer, "--optimizer", false);
  cmp(a.schedule != b.schedule, "--schedule", true);
  cmp(a.lr != b.lr, "--lr", true);
  cmp(a.lr_min != b.lr_min, "--lr-min", true);
  cmp(a.warmup != b.warmup, "--warmup", true);
  cmp(a.weight_decay != b.weight_decay, "--weight-decay", false);
  cmp(a.max_grad_norm != b.max_grad_norm, "--max-grad-norm", false);
  cmp(a.bf16_moments != b.bf16_moments, "--bf16-moments", false);
  cmp(a.mtp_lambda != b.mtp_lambda, "--mtp-lambda", false);
  cmp(a.seq_aux_alpha != b.seq_aux_alpha, "--seq-aux-alpha", false);
  cmp(a.bias_gamma != b.bias_gamma, "--bias-gamma", false);
  cmp(a.bias_centre != b.bias_centre, "--bias-centre", false);
  cmp(a.qk_clip != b.qk_clip, "--qk-clip", false);
  cmp(a.qk_tau != b.qk_tau, "--qk-tau", false);
  cmp(a.on_nonfinite != b.on_nonfinite, "--on-nonfinite", true);
  cmp(a.spike_threshold != b.spike_threshold, "--spike-threshold", true);
  cmp(a.spike_warmup != b.spike_warmup, "--spike-warmup", true);
  cmp(a.spike_max_skips != b.spike_max_skips, "--spike-max-skips", true);
  cmp(a.checkpoint_every != b.checkpoint_every, "--checkpoint-every", true);
  cmp(a.keep != b.keep, "--keep", true);
  cmp(a.poison_steps != b.poison_steps, "--poison-step", false);
  return d;
}

}  // namespace preflight::train
