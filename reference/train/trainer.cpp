#include "reference/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "reference/core/config_io.hpp"
#include "reference/core/error.hpp"
#include "reference/optim/qk_clip.hpp"
#include "reference/optim/schedules.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/hf_names.hpp"
#include "reference/train/safetensors.hpp"

namespace preflight::train {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void add_into(float* a, const float* b, int64_t n) {  // a = a + b, one float add per element
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] + b[i];
}

// The tree of trainer.hpp over scalars (the same shape as the gradient tree).
float tree_sum(const std::vector<float>& v) {
  std::vector<float> st;
  std::vector<int> lv;
  for (float x : v) {
    st.push_back(x), lv.push_back(0);
    while (st.size() >= 2 && lv[lv.size() - 1] == lv[lv.size() - 2]) {
      const float r = st.back();
      st.pop_back(), lv.pop_back();
      st.back() = st.back() + r, lv.back() += 1;
    }
  }
  float r = st.back();
  for (size_t i = st.size() - 1; i-- > 0;) r = st[i] + r;
  return r;
}

std::string hex_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", u);
  return b;
}
float from_hex_bits(const std::string& s) {
  const uint32_t u = static_cast<uint32_t>(std::stoul(s, nullptr, 16));
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
                      {"poison_steps", o.poison_steps}};
  return j.dump(2);
}

TrainOptions options_from_json(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  TrainOptions o;
#define PF_GET(field) o.field = j.at(#field).get<decltype(o.field)>()
  PF_GET(config); PF_GET(data); PF_GET(seed); PF_GET(precision); PF_GET(batch); PF_GET(seq_len);
  PF_GET(micro_batches); PF_GET(steps); PF_GET(optimizer); PF_GET(schedule); PF_GET(lr); PF_GET(lr_min);
  PF_GET(warmup); PF_GET(weight_decay); PF_GET(max_grad_norm); PF_GET(bf16_moments); PF_GET(mtp_lambda);
  PF_GET(seq_aux_alpha); PF_GET(bias_gamma); PF_GET(bias_centre); PF_GET(qk_clip); PF_GET(qk_tau);
  PF_GET(on_nonfinite); PF_GET(spike_threshold); PF_GET(spike_warmup); PF_GET(spike_max_skips); PF_GET(poison_steps);
#undef PF_GET
  return o;
}

Trainer::Trainer(TrainOptions options) : Trainer(options, load_model_config(options.config)) {
  ref::model_init(params_.data(), config_, opt_.seed);
}

Trainer::Trainer(TrainOptions options, ModelConfig config) : opt_(std::move(options)), config_(std::move(config)) {
  const TrainOptions& o = opt_;
  if (o.batch < 1 || o.seq_len < 2 || o.micro_batches < 1 || o.steps < 1)
    fail("batch (", o.batch, "), micro-batches (", o.micro_batches, ") and steps (", o.steps, ") must be >= 1, seq-len (",
         o.seq_len, ") >= 2");
  if (o.seq_len > config_.max_position_embeddings)
    fail("--seq-len ", o.seq_len, " > max_position_embeddings ", config_.max_position_embeddings, " of '", o.config, "'");
  if (o.on_nonfinite != "stop" && o.on_nonfinite != "skip") fail("--on-nonfinite '", o.on_nonfinite, "': expected stop or skip");
  if (o.schedule != "constant" && o.warmup >= o.steps)
    fail("--warmup ", o.warmup, " must be below --steps ", o.steps, " (the ", o.schedule, " schedule decays after it)");
  if (o.schedule != "cosine" && o.schedule != "wsd" && o.schedule != "constant")
    fail("--schedule '", o.schedule, "': expected cosine, wsd or constant");
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

void Trainer::accumulate(std::vector<std::vector<float>>& st, std::vector<int>& lv, std::vector<float>&& g) const {
  st.push_back(std::move(g)), lv.push_back(0);
  while (st.size() >= 2 && lv[lv.size() - 1] == lv[lv.size() - 2]) {
    add_into(st[st.size() - 2].data(), st.back().data(), static_cast<int64_t>(st.back().size()));
    st.pop_back(), lv.pop_back();
    lv.back() += 1;
  }
}

StepReport Trainer::step() {
  const auto t0 = Clock::now();
  const TrainOptions& o = opt_;
  const int64_t K = o.micro_batches, B = o.batch, T = o.seq_len, n = n_params();
  StepReport r;
  r.step = step_;
  r.lr = lr_at_step(step_);
  const bool poison = std::find(o.poison_steps.begin(), o.poison_steps.end(), attempts_) != o.poison_steps.end();
  attempts_ += 1;

  std::vector<std::vector<float>> stack;
  std::vector<int> levels;
  std::vector<float> losses, ces, mtps, auxs;
  std::vector<std::vector<int64_t>> counts;
  std::vector<std::vector<float>> max_logit;
  PackedBatch mb;
  std::string nonfinite;
  for (int64_t j = 0; j < K; ++j) {
    next_batch(mb, loader_, stream_, B, T);
    if (poison && j == 0)
      for (int64_t i = 0; i < B * T; ++i)
        if (mb.targets[i] >= 0)
          mb.targets[i] = static_cast<int32_t>(config_.vocab_size - 1);
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
    accumulate(stack, levels, std::move(g));
  }
  r.tokens = tokens_ + K * B * T;
  auto skip = [&](const std::string& event) {
    r.applied = false, r.event = event;
    consecutive_skips_ += 1;
    tokens_ = r.tokens;
    if (o.spike_max_skips > 0 && consecutive_skips_ >= o.spike_max_skips) {
      if (rollback_dir_.empty() || list_checkpoints(rollback_dir_).empty())
        fail("step ", step_, ": ", consecutive_skips_, " consecutive skipped batches and no checkpoint to roll back to");
      if (++rollbacks_ > 3) fail("step ", step_, ": still skipping batches after 3 roll-backs; giving up");
      const std::string ck = list_checkpoints(rollback_dir_).back();
      load_state(ck, /*restore_loader=*/false);
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
  std::vector<float> g = std::move(stack.back());
  for (size_t i = stack.size() - 1; i-- > 0;) {  // fold from the top: r = below + r
    add_into(stack[i].data(), g.data(), n);
    g = std::move(stack[i]);
  }
  const float inv_k = static_cast<float>(1.0 / static_cast<double>(K));
  if (K > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] * inv_k;
  }
  auto mean = [&](const std::vector<float>& v) { return K > 1 ? tree_sum(v) * inv_k : v[0]; };
  r.loss = mean(losses), r.ce = mean(ces), r.mtp = mean(mtps), r.aux = mean(auxs);
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

  // spike check
  if (o.spike_threshold > 0 && accepted_ >= o.spike_warmup &&
      !(static_cast<double>(r.loss) <= o.spike_threshold * static_cast<double>(spike_avg_)))
    return skip("spike-skip");

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
  step_ += 1, tokens_ = r.tokens;
  r.applied = true;
  r.seconds = ms_since(t0) / 1e3;
  return r;
}

std::string Trainer::save(const std::string& out_dir, int64_t keep) {
  const auto tensors = hf_param_tensors(config_);
  std::vector<StTensor> wt;
  for (const auto& t : tensors) wt.push_back({t.name, "F32", t.shape, params_.data() + t.offset, t.numel() * 4});
  std::vector<StTensor> st;
  for (const auto& s : optimizer_->state_tensors())
    st.push_back({s.name, s.dtype == optim::StateDtype::fp32 ? "F32" : "BF16", {s.numel}, s.data, s.bytes()});
  nlohmann::json tj = {{"format", "preflight-train-checkpoint/1"},
                       {"step", step_},
                       {"tokens", tokens_},
                       {"attempts", attempts_},
                       {"optimizer_step_count", optimizer_->step_count()},
                       {"loader", {{"position", loader_.position}, {"epoch", loader_.epoch}, {"stream", stream_.describe()}}},
                       {"rng", {{"generator", "philox4x32-10, counter-based: (seed, stream, index)"}, {"seed", opt_.seed}}},
                       {"spike", {{"running_average_bits", hex_bits(spike_avg_)}, {"running_average", spike_avg_},
                                  {"accepted", accepted_}, {"consecutive_skips", consecutive_skips_}, {"rollbacks", rollbacks_}}},
                       {"options", nlohmann::json::parse(options_to_json(opt_))},
                       {"model_config", to_json(config_)}};
  std::vector<CkptFile> files;
  files.push_back({"model.safetensors", safetensors_bytes(wt, {{"format", "pt"}, {"producer", "preflight train"}})});
  files.push_back({"optimizer.safetensors",
                   safetensors_bytes(st, {{"step_count", std::to_string(optimizer_->step_count())}})});
  files.push_back({"trainer.json", tj.dump(2) + "\n"});
  return write_checkpoint_dir(out_dir, step_, files, keep);
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& path) {
  const std::string dir = resolve_checkpoint(path);
  const auto files = read_verified_checkpoint(dir);
  auto it = files.find("trainer.json");
  if (it == files.end()) fail("checkpoint '", dir, "': no trainer.json");
  const nlohmann::json tj = nlohmann::json::parse(it->second);
  TrainOptions o = options_from_json(tj.at("options").dump());
  ModelConfig c = model_config_from_json(tj.at("model_config"), dir + "/trainer.json");
  std::unique_ptr<Trainer> t(new Trainer(o, c));
  t->load_state(dir, true);
  return t;
}

void Trainer::load_state(const std::string& dir, bool restore_loader) {
  const auto files = read_verified_checkpoint(dir);
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
    if (!files.count(f)) fail("checkpoint '", dir, "': ", f, " not in the manifest");
  const nlohmann::json tj = nlohmann::json::parse(files.at("trainer.json"));
  const StFile mf = read_safetensors(dir + "/model.safetensors", files.at("model.safetensors"));
  for (const auto& t : hf_param_tensors(config_)) {
    const auto& e = mf.at(t.name);
    if (e.dtype != "F32" || e.shape != t.shape)
      fail("checkpoint file '", mf.path, "': tensor '", t.name, "' has dtype ", e.dtype, " and another shape than the model's");
    std::memcpy(params_.data() + t.offset, mf.blob.data() + e.begin, t.numel() * 4);
  }
  const StFile of = read_safetensors(dir + "/optimizer.safetensors", files.at("optimizer.safetensors"));
  for (const auto& s : optimizer_->state_tensors()) {
    const auto& e = of.at(s.name);
    if (e.end - e.begin != s.bytes()) fail("checkpoint file '", of.path, "': state '", s.name, "' has the wrong size");
    std::memcpy(s.data, of.blob.data() + e.begin, s.bytes());
  }
  optimizer_->set_step_count(tj.at("optimizer_step_count").get<int64_t>());
  step_ = tj.at("step").get<int64_t>();
  tokens_ = tj.at("tokens").get<int64_t>();
  const auto& sp = tj.at("spike");
  spike_avg_ = from_hex_bits(sp.at("running_average_bits").get<std::string>());
  accepted_ = sp.at("accepted").get<int64_t>();
  if (restore_loader) {
    loader_.position = tj.at("loader").at("position").get<int64_t>();
    loader_.epoch = tj.at("loader").at("epoch").get<int64_t>();
    attempts_ = tj.at("attempts").get<int64_t>();
    consecutive_skips_ = sp.at("consecutive_skips").get<int64_t>();
    rollbacks_ = sp.at("rollbacks").get<int64_t>();
  }
}

}  // namespace preflight::train
