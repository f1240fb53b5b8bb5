// `preflight train`: the reference trainer (reference/train/, docs/TRAINING.md), and
// `preflight corpus`: turns text files into a token file for it (byte-level tokenizer).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/train/checkpoint.hpp"
#include "reference/train/data.hpp"
#include "reference/train/trainer.hpp"

namespace fs = std::filesystem;

namespace preflight::cli {
namespace {

struct RunFlags {
  train::TrainOptions o;
  std::string out;             // checkpoint directory ("" = none; on --resume: the checkpoint's directory)
  std::string resume;
  std::string metrics;         // JSONL path ("" = none)
  int64_t stop_at = -1;        // stop after this many steps (a checkpoint is written when --out)
  int64_t log_every = 1;
  bool quiet = false;
};

// The training flags that also live in TrainOptions: on --resume, the given ones are applied
// to the checkpoint's options (Trainer::resume decides which may change).
struct OptionFlag {
  const char* flag;
  std::function<void(const train::TrainOptions& from, train::TrainOptions& to)> copy;
};
#define PREFLIGHT_OPTION_FLAG(flag, field) \
  OptionFlag { flag, [](const train::TrainOptions& a, train::TrainOptions& b) { b.field = a.field; } }
const std::vector<OptionFlag>& option_flags() {
  static const std::vector<OptionFlag> flags = {
      PREFLIGHT_OPTION_FLAG("--config", config),
      PREFLIGHT_OPTION_FLAG("--data", data),
      PREFLIGHT_OPTION_FLAG("--seed", seed),
      PREFLIGHT_OPTION_FLAG("--precision", precision),
      PREFLIGHT_OPTION_FLAG("--batch", batch),
      PREFLIGHT_OPTION_FLAG("--seq-len", seq_len),
      PREFLIGHT_OPTION_FLAG("--micro-batches", micro_batches),
      PREFLIGHT_OPTION_FLAG("--steps", steps),
      PREFLIGHT_OPTION_FLAG("--optimizer", optimizer),
      PREFLIGHT_OPTION_FLAG("--schedule", schedule),
      PREFLIGHT_OPTION_FLAG("--lr", lr),
      PREFLIGHT_OPTION_FLAG("--lr-min", lr_min),
      PREFLIGHT_OPTION_FLAG("--warmup", warmup),
      PREFLIGHT_OPTION_FLAG("--weight-decay", weight_decay),
      PREFLIGHT_OPTION_FLAG("--max-grad-norm", max_grad_norm),
      PREFLIGHT_OPTION_FLAG("--bf16-moments", bf16_moments),
      PREFLIGHT_OPTION_FLAG("--mtp-lambda", mtp_lambda),
      PREFLIGHT_OPTION_FLAG("--seq-aux-alpha", seq_aux_alpha),
      PREFLIGHT_OPTION_FLAG("--bias-gamma", bias_gamma),
      PREFLIGHT_OPTION_FLAG("--bias-centre", bias_centre),
      PREFLIGHT_OPTION_FLAG("--qk-clip", qk_clip),
      PREFLIGHT_OPTION_FLAG("--qk-tau", qk_tau),
      PREFLIGHT_OPTION_FLAG("--on-nonfinite", on_nonfinite),
      PREFLIGHT_OPTION_FLAG("--spike-threshold", spike_threshold),
      PREFLIGHT_OPTION_FLAG("--spike-warmup", spike_warmup),
      PREFLIGHT_OPTION_FLAG("--spike-max-skips", spike_max_skips),
      PREFLIGHT_OPTION_FLAG("--checkpoint-every", checkpoint_every),
      PREFLIGHT_OPTION_FLAG("--keep", keep),
      PREFLIGHT_OPTION_FLAG("--poison-step", poison_steps),
  };
  return flags;
}
#undef PREFLIGHT_OPTION_FLAG

std::string num(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no inf or nan
  char b[48];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string metrics_line(const train::StepReport& r, double tok_per_s) {
  std::string s = "{\"step\":" + std::to_string(r.step) + ",\"applied\":" + (r.applied ? "true" : "false");
  if (!r.event.empty()) s += ",\"event\":" + nlohmann::json(r.event).dump();
  s += ",\"loss\":" + num(r.loss) + ",\"ce\":" + num(r.ce) + ",\"mtp_loss\":" + num(r.mtp) + ",\"aux_loss\":" + num(r.aux);
  s += ",\"grad_norm\":" + num(r.grad_norm) + ",\"lr\":" + num(r.lr) + ",\"tokens\":" + std::to_string(r.tokens);
  s += ",\"tokens_per_s\":" + num(tok_per_s) + ",\"load_max_over_min\":" + num(r.load_max_over_min);
  s += ",\"load_cv\":" + num(r.load_cv) + ",\"max_attn_logit\":" + num(r.max_attn_logit);
  s += ",\"ms_fwd_bwd\":" + num(r.step_ms_fwd_bwd) + ",\"ms_optimizer\":" + num(r.step_ms_optim) + "}";
  return s;
}

// Two paths name the same file: the same inode when both exist, else the same normalised path.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool eq = fs::equivalent(a, b, ec);
    if (!ec) return eq;
  }
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path cb = fs::weakly_canonical(b, ec);
  return !ec && ca == cb;
}

// The metrics stream: every write checked (a full disk or /dev/full is an error, not a
// silently shorter file).
class MetricsFile {
 public:
  MetricsFile(const std::string& path, bool append) : path_(path) {
    if (path.empty()) return;
    f_ = std::fopen(path.c_str(), append ? "a" : "w");
    if (!f_) fail("--metrics '", path, "': cannot open: ", std::strerror(errno));
  }
  ~MetricsFile() {
    if (f_) std::fclose(f_);
  }
  void line(const std::string& s) {
    if (!f_) return;
    if (std::fprintf(f_, "%s\n", s.c_str()) < 0 || std::fflush(f_) != 0) failed();
  }
  void close() {
    if (!f_) return;
    std::FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) failed();
  }

 private:
  [[noreturn]] void failed() {
    const int e = errno;
    if (f_) std::fclose(f_), f_ = nullptr;
    fail("--metrics '", path_, "': write failed: ", std::strerror(e));
  }
  std::string path_;
  std::FILE* f_ = nullptr;
};

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }

// SIGINT/SIGTERM end the run after the current step; a second one ends it at once (the
// default action: SA_RESETHAND), which is safe too, as every checkpoint write is atomic.
// SA_RESTART: a write to a pipe interrupted by the signal resumes instead of losing output.
void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::string newest_name(const std::vector<std::string>& cks) { return fs::path(cks.back()).filename().string(); }

void run_train(RunFlags f, const std::vector<std::string>& given) {
  std::unique_ptr<train::Trainer> t;
  std::vector<std::string> notes;  // said once, on stderr, before training
  if (!f.resume.empty()) {
    const std::string ck = train::resolve_checkpoint(f.resume);
    std::vector<std::string> changed;
    t = train::Trainer::resume(
        ck,
        [&](train::TrainOptions& next) {
          for (const OptionFlag& of : option_flags())
            if (std::find(given.begin(), given.end(), of.flag) != given.end()) of.copy(f.o, next);
        },
        changed);
    if (!changed.empty()) {
      std::string list;
      for (const auto& c : changed) list += (list.empty() ? "" : ", ") + c;
      notes.push_back("--resume: " + list + " changed from the checkpoint's value" + (changed.size() > 1 ? "s" : ""));
    }
    const std::string parent = fs::path(ck).parent_path().string();
    if (f.out.empty()) {
      f.out = parent.empty() ? "." : parent;
      notes.push_back("--resume without --out: checkpoints go to '" + f.out + "' (the resumed checkpoint's directory)");
    }
    // A continuation must not interleave with checkpoints of another run or of this run's
    // own later steps (keep would prune the new ones, a roll-back could jump ahead).
    const auto there = train::list_checkpoints(f.out);
    if (!there.empty()) {
      if (!same_file(f.out, parent.empty() ? "." : parent))
        fail("--out '", f.out, "' already holds checkpoints of another run (newest ", newest_name(there),
             "); choose an empty or new directory");
      if (train::checkpoint_step(there.back()) > t->step_index())
        fail("--resume '", f.resume, "': '", f.out, "' holds ", newest_name(there), ", later than the resumed step ",
             t->step_index(), "; continuing there would mix two histories: give --out NEWDIR");
    }
  } else {
    if (!f.out.empty()) {
      const auto there = train::list_checkpoints(f.out);
      if (!there.empty())
        fail("--out '", f.out, "' already holds checkpoints (newest ", newest_name(there), "): continue them with --resume '",
             f.out, "', or choose another directory");
    }
    // The default warm-up (10 steps) must be below --steps; for a short run the user did not
    // ask for one, so a tenth of the run is used instead of refusing `train --steps 5`.
    const bool warmup_given = std::find(given.begin(), given.end(), "--warmup") != given.end();
    if (!warmup_given && f.o.schedule != "constant" && f.o.warmup >= f.o.steps) {
      const int64_t short_warmup = f.o.steps / 10;
      notes.push_back("--warmup " + std::to_string(short_warmup) + " (a tenth of --steps " + std::to_string(f.o.steps) +
                      ": the default " + std::to_string(f.o.warmup) + " is not below it)");
      f.o.warmup = short_warmup;
    }
    t = std::make_unique<train::Trainer>(f.o);
  }
  const train::TrainOptions& o = t->options();
  if (!f.metrics.empty()) {
    if (o.data != "synthetic" && same_file(f.metrics, o.data))
      fail("--metrics '", f.metrics, "' is the --data file '", o.data, "': refusing to overwrite an input");
    std::error_code ec;
    if (fs::is_regular_file(o.config, ec) && same_file(f.metrics, o.config))
      fail("--metrics '", f.metrics, "' is the --config file '", o.config, "': refusing to overwrite an input");
  }
  if (!f.out.empty()) {
    train::ensure_output_dir(f.out, "--out");
    t->set_rollback_dir(f.out);
  }
  MetricsFile metrics(f.metrics, !f.resume.empty());
  for (const auto& n : notes) std::fprintf(stderr, "preflight train: %s\n", n.c_str());
  const bool tty = ::isatty(1) != 0;
  if (!f.quiet)
    std::printf("preflight train: %s, %lld parameters, data %s, %s, B=%lld T=%lld K=%lld, %s, steps %lld..%lld%s\n",
                o.config.c_str(), static_cast<long long>(t->n_params()), t->stream().describe().c_str(),
                o.precision.c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.seq_len),
                static_cast<long long>(o.micro_batches), o.optimizer.c_str(), static_cast<long long>(t->step_index()),
                static_cast<long long>(o.steps),
                f.out.empty() ? ", no checkpoints (no --out)"
                              : (", checkpoints in " + f.out + (o.checkpoint_every > 0
                                                                    ? " every " + std::to_string(o.checkpoint_every) + " steps"
                                                                    : " at the end")).c_str());
  const int64_t end = f.stop_at >= 0 ? std::min(f.stop_at, o.steps) : o.steps;
  const double step_tokens = static_cast<double>(o.batch * o.seq_len * o.micro_batches);
  double tok_total = 0, sec_total = 0;
  install_stop_handlers();
  while (t->step_index() < end && g_signal == 0) {
    const train::StepReport r = t->step();
    const double tps = r.seconds > 0 ? step_tokens / r.seconds : 0;
    tok_total += step_tokens, sec_total += r.seconds;
    metrics.line(metrics_line(r, tps));
    if (!f.quiet) {
      if (tty) {
        const int width = 30, fill = static_cast<int>(width * (r.step + 1) / std::max<int64_t>(1, o.steps));
        std::printf("\r[%-*s] %lld/%lld loss %.4f gnorm %.3f lr %.2e %.0f tok/s%s", width,
                    std::string(static_cast<size_t>(std::clamp(fill, 0, width)), '#').c_str(),
                    static_cast<long long>(r.step + 1), static_cast<long long>(o.steps), r.loss, r.grad_norm, r.lr, tps,
                    r.event.empty() ? "   " : (" " + r.event + "\n").c_str());
        std::fflush(stdout);
      } else if (!r.applied || !r.event.empty() || (r.step + 1) % f.log_every == 0 || r.step + 1 == end) {
        std::printf("step %lld loss %.6f ce %.6f mtp %.6f grad_norm %.4f lr %.3e tok/s %.0f load_max/min %s load_cv %.3f max_logit %.2f%s%s\n",
                    static_cast<long long>(r.step), r.loss, r.ce, r.mtp, r.grad_norm, r.lr, tps,
                    num(r.load_max_over_min).c_str(), r.load_cv, r.max_attn_logit, r.event.empty() ? "" : " event ",
                    r.event.c_str());
        std::fflush(stdout);
      }
    }
    if (!f.out.empty() && r.applied && o.checkpoint_every > 0 && t->step_index() % o.checkpoint_every == 0 &&
        t->step_index() < end && g_signal == 0) {
      const std::string p = t->save(f.out, o.keep);
      if (!f.quiet && !tty) std::printf("checkpoint %s\n", p.c_str());
    }
  }
  metrics.close();
  if (!f.quiet && tty) std::printf("\n");
  std::string saved;
  if (!f.out.empty()) {
    saved = t->save(f.out, o.keep);
    if (!f.quiet && g_signal == 0) std::printf("checkpoint %s\n", saved.c_str());
  }
  if (g_signal != 0) {
    const int sig = g_signal;
    std::fflush(stdout);
    if (saved.empty())
      std::fprintf(stderr, "preflight: interrupted by %s after step %lld; no checkpoint (no --out)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(t->step_index()));
    else
      std::fprintf(stderr, "preflight: interrupted by %s after step %lld; checkpoint %s (continue: preflight train --resume %s)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(t->step_index()), saved.c_str(),
                   f.out.c_str());
    std::fflush(stderr);
    std::exit(128 + sig);
  }
  if (!f.quiet && sec_total > 0)
    std::printf("done: step %lld, %.0f tokens/s over this run\n", static_cast<long long>(t->step_index()),
                tok_total / sec_total);
}

// `corpus` inputs: files, and directories searched recursively for regular files (sorted by
// path, so the token file does not depend on the directory order). A file holding a NUL
// byte is binary, not text: skipped and counted.
struct CorpusFlags {
  std::vector<std::string> inputs;
  std::string out;
  uint32_t vocab = 512;
  bool json = false;
};

void run_corpus(const CorpusFlags& c) {
  std::vector<std::string> files;
  for (const auto& in : c.inputs) {
    std::error_code ec;
    const auto st = fs::status(in, ec);
    if (!fs::exists(st)) fail("corpus input '", in, "': no such file or directory");
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(in, fs::directory_options::none, ec);
      if (ec) fail("corpus input '", in, "': cannot list: ", ec.message());
      for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) fail("corpus input '", in, "': cannot list: ", ec.message());
        std::error_code e2;
        if (it->is_regular_file(e2)) found.push_back(it->path().string());
      }
      if (ec) fail("corpus input '", in, "': cannot list: ", ec.message());
      std::sort(found.begin(), found.end());
      if (found.empty()) fail("corpus input '", in, "': a directory with no regular file in it");
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(st)) {
      files.push_back(in);
    } else {
      fail("corpus input '", in, "': not a regular file or a directory");
    }
  }
  for (const auto& p : files)
    if (same_file(p, c.out)) fail("--out '", c.out, "' is the input '", p, "': refusing to overwrite an input");
  train::TokenFile tf;
  tf.vocab_size = c.vocab;
  tf.token_bytes = c.vocab <= 65536 ? 2 : 4;
  std::vector<std::string> used, binary, empty;
  for (const auto& p : files) {
    const std::string text = read_file(p);
    if (text.empty()) {
      empty.push_back(p);
      continue;
    }
    if (text.find('\0') != std::string::npos) {
      binary.push_back(p);
      continue;
    }
    const auto t = train::encode_bytes(text);
    tf.doc_starts.push_back(tf.tokens.size());
    tf.tokens.insert(tf.tokens.end(), t.begin(), t.end());
    used.push_back(p);
  }
  if (tf.tokens.empty())
    fail("no text in the ", files.size(), " input file", files.size() == 1 ? "" : "s", " (", empty.size(), " empty, ",
         binary.size(), " binary: holding a NUL byte)");
  train::write_token_file(c.out, tf);
  if (c.json) {
    const nlohmann::json j = {{"format", "preflight-corpus-summary/1"},
                              {"out", c.out},
                              {"tokens", tf.tokens.size()},
                              {"documents", tf.doc_starts.size()},
                              {"vocab_size", tf.vocab_size},
                              {"token_bytes", tf.token_bytes},
                              {"files", used},
                              {"skipped_empty", empty},
                              {"skipped_binary", binary}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: %zu tokens, %zu documents, %u-byte tokens", c.out.c_str(), tf.tokens.size(), tf.doc_starts.size(),
              tf.token_bytes);
  if (!empty.empty() || !binary.empty()) std::printf(" (skipped %zu empty, %zu binary files)", empty.size(), binary.size());
  std::printf("\n");
}

// --poison-step N (repeatable): each value strictly parsed like add_number's.
CLI::Option* add_attempts(CLI::App* cmd, const std::string& name, std::vector<int64_t>& var, const std::string& desc) {
  CLI::Option* opt = cmd->add_option(
      name,
      [&var, name](const CLI::results_t& res) {
        var.clear();
        for (const auto& text : res) {
          int64_t v = 0;
          const std::string err = detail::parse_number<int64_t>(text, 0, train::limits::kMaxAttempt, false, v);
          if (!err.empty()) throw CLI::ValidationError(name, err);
          var.push_back(v);
        }
        return true;
      },
      desc);
  opt->type_name("INT")->expected(1, 1 << 20)->allow_extra_args(false);
  return opt;
}

}  // namespace

void register_train(CLI::App& app) {
  namespace L = train::limits;
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model on the CPU reference (bit-exact, resumable). Every step prints loss, grad-norm, LR, tokens/s,\n"
      "expert load balance and the max attention logit; --metrics writes them as JSON lines. See docs/TRAINING.md.");
  train::TrainOptions& o = f->o;
  const int64_t kCount = L::kMaxCount, kSteps = L::kMaxSteps;
  cmd->add_option("--config", o.config, "Model preset name or config file")->capture_default_str();
  cmd->add_option("--data", o.data, "'synthetic' (seeded stream) or a token file (.tok, `preflight corpus`)")->capture_default_str();
  add_number<uint64_t>(cmd, "--seed", o.seed, "Initialisation and synthetic-data seed", 0, UINT64_MAX);
  cmd->add_option("--precision", o.precision, "GEMM precision: fp32 | bf16 | fp8 (bf16/fp8 also store bf16 activations)")->capture_default_str();
  add_number<int64_t>(cmd, "--batch", o.batch, "Sequences per micro-batch (B)", 1, kCount);
  add_number<int64_t>(cmd, "--seq-len", o.seq_len, "Tokens per sequence (T)", 2, kCount);
  add_number<int64_t>(cmd, "--micro-batches", o.micro_batches, "Micro-batches per step (K), summed along a binary tree", 1, kCount);
  add_number<int64_t>(cmd, "--steps", o.steps, "Optimizer steps (the LR schedule's length)", 1, kSteps);
  cmd->add_option("--optimizer", o.optimizer, "adamw | muon (Muon for hidden matrices, AdamW for the rest)")->capture_default_str();
  cmd->add_option("--schedule", o.schedule, "cosine | wsd | constant (all with linear warm-up)")->capture_default_str();
  add_number<double>(cmd, "--lr", o.lr, "Peak learning rate", 0, L::kMaxLr);
  add_number<double>(cmd, "--lr-min", o.lr_min, "Final learning rate (cosine, wsd); at most --lr", 0, L::kMaxLr);
  add_number<int64_t>(cmd, "--warmup", o.warmup, "Warm-up steps (below --steps, except for constant; when not given and --steps <= 10: --steps / 10)", 0, kSteps);
  add_number<double>(cmd, "--weight-decay", o.weight_decay, "Decoupled weight decay", 0, L::kMaxWeight);
  add_number<double>(cmd, "--max-grad-norm", o.max_grad_norm, "Global-norm clip (0: off)", 0, L::kMaxGradNorm);
  cmd->add_flag("--bf16-moments", o.bf16_moments, "AdamW moments in bf16");
  add_number<double>(cmd, "--mtp-lambda", o.mtp_lambda, "MTP loss weight", 0, L::kMaxWeight);
  add_number<double>(cmd, "--seq-aux-alpha", o.seq_aux_alpha, "Sequence-wise balance loss alpha", 0, L::kMaxWeight);
  add_number<double>(cmd, "--bias-gamma", o.bias_gamma, "Aux-loss-free router bias step (0: off)", 0, 1);
  cmd->add_flag("--bias-centre", o.bias_centre, "Centre the router biases after each update");
  cmd->add_option("--qk-clip", o.qk_clip, "QK-Clip after each step (true/false)")->capture_default_str();
  add_number<double>(cmd, "--qk-tau", o.qk_tau, "QK-Clip threshold tau (a max attention logit)", L::kMinQkTau, L::kMaxQkTau);
  cmd->add_option("--on-nonfinite", o.on_nonfinite, "NaN/Inf in a step: stop | skip")->capture_default_str();
  add_number<double>(cmd, "--spike-threshold", o.spike_threshold,
                     "Loss spike candidate: loss > X * running average (0: off); see docs/TRAINING.md section 4", 0,
                     L::kMaxSpikeThreshold);
  add_number<int64_t>(cmd, "--spike-warmup", o.spike_warmup, "Accepted steps before spike detection starts", 0, kSteps);
  add_number<int64_t>(cmd, "--spike-max-skips", o.spike_max_skips,
                      "Consecutive skipped batches before rolling back to the newest checkpoint in --out (0: never)", 0,
                      L::kMaxSpikeSkips);
  add_attempts(cmd, "--poison-step", o.poison_steps, "Test hook: these step attempts (0-based) get targets vocab_size-1 (a loss spike)");
  cmd->add_option("--out", f->out,
                  "Checkpoint directory (ckpt-NNNNNNNN/ inside; a final checkpoint is always written; on --resume the "
                  "default is the resumed checkpoint's directory)");
  add_number<int64_t>(cmd, "--checkpoint-every", o.checkpoint_every,
                      "With --out: also checkpoint every N steps (0: only at the end); remembered on --resume", 0, kSteps);
  add_number<int64_t>(cmd, "--keep", o.keep, "Checkpoints kept, newest (0: all)", 0, L::kMaxKeep);
  cmd->add_option("--resume", f->resume,
                  "Resume from a checkpoint (ckpt-* directory, or an --out directory: its newest). Options come from it; "
                  "--steps, --lr, --lr-min, --warmup, --schedule, the --spike-*/--on-nonfinite safeguards, "
                  "--checkpoint-every, --keep and --data (a moved copy of the same tokens) may be changed, others are refused");
  add_number<int64_t>(cmd, "--stop-at", f->stop_at, "Stop after this step (as if interrupted; the schedule still spans --steps)", 0,
                      kSteps);
  cmd->add_option("--metrics", f->metrics, "Per-step metrics as JSON lines (appended on --resume)");
  add_number<int64_t>(cmd, "--log-every", f->log_every, "Plain-output line every N steps (non-terminal stdout)", 1, kSteps);
  cmd->add_flag("--quiet", f->quiet, "No per-step output");
  cmd->callback([f, cmd]() {
    std::vector<std::string> given;
    for (const OptionFlag& of : option_flags())
      if (cmd->count(of.flag) > 0) given.push_back(of.flag);
    run_train(*f, given);
  });

  auto c = std::make_shared<CorpusFlags>();
  CLI::App* corpus = app.add_subcommand(
      "corpus",
      "Tokenise text into a token file for `preflight train --data` (byte-level: token = byte; one document per file).\n"
      "Inputs are files or directories (searched recursively for regular files, in sorted path order); empty files\n"
      "and binary files (holding a NUL byte) are skipped and counted.");
  corpus->add_option("inputs", c->inputs, "Text files or directories")->required();
  corpus->add_option("--out", c->out, "Token file to write")->required();
  add_number<uint32_t>(corpus, "--vocab", c->vocab, "vocab_size recorded in the file (>= 256)", 256, UINT32_MAX);
  corpus->add_flag("--json", c->json, "Print the summary as JSON (tokens, documents, files used and skipped)");
  corpus->callback([c]() { run_corpus(*c); });
}

}  // namespace preflight::cli
