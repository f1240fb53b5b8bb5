// `preflight train`: the reference trainer (reference/train/, docs/TRAINING.md), and
// `preflight corpus`: turns text files into a token file for it (byte-level tokenizer).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/train/data.hpp"
#include "reference/train/trainer.hpp"

namespace preflight::cli {
namespace {

struct RunFlags {
  train::TrainOptions o;
  std::string out;             // checkpoint directory ("" = none)
  int64_t checkpoint_every = 0;
  int64_t keep = 3;
  std::string resume;
  std::string metrics;         // JSONL path ("" = none)
  int64_t stop_at = -1;        // stop after this many steps (a checkpoint is written when --out)
  int64_t log_every = 1;
  bool quiet = false;
};

std::string num(double v) {
  if (std::isinf(v)) return "null";
  if (std::isnan(v)) return "null";
  char b[48];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string metrics_line(const train::StepReport& r, double tok_per_s) {
  std::string s = "{\"step\":" + std::to_string(r.step) + ",\"applied\":" + (r.applied ? "true" : "false");
  if (!r.event.empty()) s += ",\"event\":\"" + r.event + "\"";
  s += ",\"loss\":" + num(r.loss) + ",\"ce\":" + num(r.ce) + ",\"mtp_loss\":" + num(r.mtp) + ",\"aux_loss\":" + num(r.aux);
  s += ",\"grad_norm\":" + num(r.grad_norm) + ",\"lr\":" + num(r.lr) + ",\"tokens\":" + std::to_string(r.tokens);
  s += ",\"tokens_per_s\":" + num(tok_per_s) + ",\"load_max_over_min\":" + num(r.load_max_over_min);
  s += ",\"load_cv\":" + num(r.load_cv) + ",\"max_attn_logit\":" + num(r.max_attn_logit);
  s += ",\"ms_fwd_bwd\":" + num(r.step_ms_fwd_bwd) + ",\"ms_optimizer\":" + num(r.step_ms_optim) + "}";
  return s;
}

void run_train(RunFlags f, bool steps_given) {
  std::unique_ptr<train::Trainer> t;
  if (!f.resume.empty()) {
    t = train::Trainer::resume(f.resume);
    if (steps_given && f.o.steps != t->options().steps)
      std::fprintf(stderr, "preflight train: --steps %lld overrides the checkpoint's %lld (the LR schedule changes)\n",
                   static_cast<long long>(f.o.steps), static_cast<long long>(t->options().steps));
    if (steps_given) t->set_steps(f.o.steps);
  } else {
    t = std::make_unique<train::Trainer>(f.o);
  }
  if (!f.out.empty()) {
    std::filesystem::create_directories(f.out);
    t->set_rollback_dir(f.out);
  }
  const train::TrainOptions& o = t->options();
  std::FILE* metrics = nullptr;
  if (!f.metrics.empty()) {
    metrics = std::fopen(f.metrics.c_str(), f.resume.empty() ? "w" : "a");
    if (!metrics) fail("cannot open metrics file '", f.metrics, "'");
  }
  const bool tty = ::isatty(1) != 0;
  if (!f.quiet)
    std::printf("preflight train: %s, %lld parameters, data %s, %s, B=%lld T=%lld K=%lld, %s, steps %lld..%lld\n",
                o.config.c_str(), static_cast<long long>(t->n_params()), t->stream().describe().c_str(),
                o.precision.c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.seq_len),
                static_cast<long long>(o.micro_batches), o.optimizer.c_str(), static_cast<long long>(t->step_index()),
                static_cast<long long>(o.steps));
  const int64_t end = f.stop_at >= 0 ? std::min(f.stop_at, o.steps) : o.steps;
  double tok_total = 0, sec_total = 0;
  while (t->step_index() < end) {
    const train::StepReport r = t->step();
    const double tps = static_cast<double>(o.batch * o.seq_len * o.micro_batches) / r.seconds;
    tok_total += static_cast<double>(o.batch * o.seq_len * o.micro_batches), sec_total += r.seconds;
    if (metrics) std::fprintf(metrics, "%s\n", metrics_line(r, tps).c_str()), std::fflush(metrics);
    if (!f.quiet) {
      if (tty) {
        const int width = 30, fill = static_cast<int>(width * (r.step + 1) / std::max<int64_t>(1, o.steps));
        std::printf("\r[%-*s] %lld/%lld loss %.4f gnorm %.3f lr %.2e %.0f tok/s%s", width,
                    std::string(static_cast<size_t>(std::min(fill, width)), '#').c_str(),
                    static_cast<long long>(r.step + 1), static_cast<long long>(o.steps), r.loss, r.grad_norm, r.lr, tps,
                    r.event.empty() ? "   " : (" " + r.event + "\n").c_str());
        std::fflush(stdout);
      } else if (!r.applied || (r.step + 1) % f.log_every == 0 || r.step + 1 == end) {
        std::printf("step %lld loss %.6f ce %.6f mtp %.6f grad_norm %.4f lr %.3e tok/s %.0f load_max/min %s load_cv %.3f max_logit %.2f%s%s\n",
                    static_cast<long long>(r.step), r.loss, r.ce, r.mtp, r.grad_norm, r.lr, tps,
                    num(r.load_max_over_min).c_str(), r.load_cv, r.max_attn_logit, r.event.empty() ? "" : " event ",
                    r.event.c_str());
        std::fflush(stdout);
      }
    }
    if (!f.out.empty() && r.applied && f.checkpoint_every > 0 && t->step_index() % f.checkpoint_every == 0 &&
        t->step_index() < end) {
      const std::string p = t->save(f.out, f.keep);
      if (!f.quiet && !tty) std::printf("checkpoint %s\n", p.c_str());
    }
  }
  if (metrics) std::fclose(metrics);
  if (!f.quiet && tty) std::printf("\n");
  if (!f.out.empty()) {
    const std::string p = t->save(f.out, f.keep);
    if (!f.quiet) std::printf("checkpoint %s\n", p.c_str());
  }
  if (!f.quiet && sec_total > 0)
    std::printf("done: step %lld, %.0f tokens/s over this run\n", static_cast<long long>(t->step_index()),
                tok_total / sec_total);
}

}  // namespace

void register_train(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model on the CPU reference (bit-exact, resumable). Every step prints loss, grad-norm, LR, tokens/s,\n"
      "expert load balance and the max attention logit; --metrics writes them as JSON lines. See docs/TRAINING.md.");
  train::TrainOptions& o = f->o;
  cmd->add_option("--config", o.config, "Model preset name or config file")->capture_default_str();
  cmd->add_option("--data", o.data, "'synthetic' (seeded stream) or a token file (.tok, `preflight corpus`)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Initialisation and synthetic-data seed")->capture_default_str();
  cmd->add_option("--precision", o.precision, "GEMM precision: fp32 | bf16 | fp8 (bf16/fp8 also store bf16 activations)")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Sequences per micro-batch (B)")->capture_default_str();
  cmd->add_option("--seq-len", o.seq_len, "Tokens per sequence (T)")->capture_default_str();
  cmd->add_option("--micro-batches", o.micro_batches, "Micro-batches per step (K), summed along a binary tree")->capture_default_str();
  cmd->add_option("--steps", o.steps, "Optimizer steps (the LR schedule's length)")->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "adamw | muon (Muon for hidden matrices, AdamW for the rest)")->capture_default_str();
  cmd->add_option("--schedule", o.schedule, "cosine | wsd | constant (all with linear warm-up)")->capture_default_str();
  cmd->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--lr-min", o.lr_min, "Final learning rate (cosine, wsd)")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Warm-up steps")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "Decoupled weight decay")->capture_default_str();
  cmd->add_option("--max-grad-norm", o.max_grad_norm, "Global-norm clip (<= 0: off)")->capture_default_str();
  cmd->add_flag("--bf16-moments", o.bf16_moments, "AdamW moments in bf16");
  cmd->add_option("--mtp-lambda", o.mtp_lambda, "MTP loss weight")->capture_default_str();
  cmd->add_option("--seq-aux-alpha", o.seq_aux_alpha, "Sequence-wise balance loss alpha")->capture_default_str();
  cmd->add_option("--bias-gamma", o.bias_gamma, "Aux-loss-free router bias step (0: off)")->capture_default_str();
  cmd->add_flag("--bias-centre", o.bias_centre, "Centre the router biases after each update");
  cmd->add_option("--qk-clip", o.qk_clip, "QK-Clip after each step (true/false)")->capture_default_str();
  cmd->add_option("--qk-tau", o.qk_tau, "QK-Clip threshold tau")->capture_default_str();
  cmd->add_option("--on-nonfinite", o.on_nonfinite, "NaN/Inf in a step: stop | skip")->capture_default_str();
  cmd->add_option("--spike-threshold", o.spike_threshold, "Loss spike: loss > X * running average (0: off)")->capture_default_str();
  cmd->add_option("--spike-warmup", o.spike_warmup, "Accepted steps before spike detection starts")->capture_default_str();
  cmd->add_option("--spike-max-skips", o.spike_max_skips, "Consecutive skipped batches before rolling back to the newest checkpoint in --out")->capture_default_str();
  cmd->add_option("--poison-step", o.poison_steps, "Test hook: these step attempts (0-based) get targets vocab_size-1 (a loss spike)");
  cmd->add_option("--out", f->out, "Checkpoint directory (ckpt-NNNNNNNN/ inside; a final checkpoint is always written)");
  cmd->add_option("--checkpoint-every", f->checkpoint_every, "Also checkpoint every N steps (0: only at the end)")->capture_default_str();
  cmd->add_option("--keep", f->keep, "Checkpoints kept (newest)")->capture_default_str();
  cmd->add_option("--resume", f->resume, "Resume from a checkpoint (ckpt-* directory, or an --out directory: its newest); the run options come from it");
  cmd->add_option("--stop-at", f->stop_at, "Stop after this step (as if interrupted; the schedule still spans --steps)");
  cmd->add_option("--metrics", f->metrics, "Per-step metrics as JSON lines (appended on --resume)");
  cmd->add_option("--log-every", f->log_every, "Plain-output line every N steps (non-terminal stdout)")->capture_default_str();
  cmd->add_flag("--quiet", f->quiet, "No per-step output");
  cmd->callback([f, cmd]() { run_train(*f, cmd->count("--steps") > 0); });

  auto files = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto vocab = std::make_shared<uint32_t>(512);
  CLI::App* corpus = app.add_subcommand(
      "corpus", "Tokenise text files into a token file for `preflight train --data` (byte-level: token = byte; one document per file)");
  corpus->add_option("files", *files, "Text files")->required();
  corpus->add_option("--out", *out, "Token file to write")->required();
  corpus->add_option("--vocab", *vocab, "vocab_size recorded in the file (>= 256)")->capture_default_str();
  corpus->callback([files, out, vocab]() {
    if (*vocab < 256) fail("--vocab ", *vocab, ": a byte-level token file needs at least 256");
    train::TokenFile tf;
    tf.vocab_size = *vocab;
    tf.token_bytes = *vocab <= 65536 ? 2 : 4;
    for (const auto& p : *files) {
      const auto t = train::encode_bytes(read_file(p));
      if (t.empty()) continue;
      tf.doc_starts.push_back(tf.tokens.size());
      tf.tokens.insert(tf.tokens.end(), t.begin(), t.end());
    }
    if (tf.tokens.empty()) fail("no text in the given files");
    train::write_token_file(*out, tf);
    std::printf("%s: %zu tokens, %zu documents, %u-byte tokens\n", out->c_str(), tf.tokens.size(), tf.doc_starts.size(),
                tf.token_bytes);
  });
}

}  // namespace preflight::cli
