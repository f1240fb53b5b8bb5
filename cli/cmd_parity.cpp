// `preflight parity`: compares every layer's GPU result with the CPU reference (the table is
// described in cli/parity_cuda.cpp and docs/CUDA.md). This file only parses and checks the
// options; the CUDA code lives in libpreflight_cuda_cli.so, loaded on demand (cli/cuda_loader),
// so that no other command needs a CUDA library. Exits non-zero on any failure.
#include <stdexcept>
#include <string>

#include "cli/commands.hpp"
#include "cli/cuda_cli_abi.hpp"
#include "cli/cuda_loader.hpp"
#include "reference/core/error.hpp"

namespace preflight::cli {

namespace {

struct ParityOptions {
  std::string layers = "all";
  std::string mode = "deterministic";
  std::string config = "tiny";
  bool json = false;
};

void run_parity(const ParityOptions& o) {
  if (o.mode != "deterministic" && o.mode != "fast")
    fail("--mode '", o.mode, "': expected deterministic or fast");
  if (o.config != "tiny" && o.config != "small") fail("--config '", o.config, "': expected tiny or small");
  if (o.layers.empty()) fail("--layers '': expected all or a comma-separated list of layers");
  auto parity = reinterpret_cast<PreflightCudaCliParityFn>(cuda_cli_symbol("preflight_cuda_cli_parity"));
  const PreflightParityArgs args{o.layers.c_str(), o.mode.c_str(), o.config.c_str(), o.json ? 1 : 0};
  char error[1024] = {0};
  const int rc = parity(&args, error, sizeof error);
  if (rc == 0) return;
  if (rc == 1) fail("parity failed: see the rows marked DIFFERS or EXCEEDS above");
  if (rc == PREFLIGHT_CUDA_CLI_ERROR) fail(error);
  // A defect inside the library: main() reports std::exception as an internal error (rc 3).
  throw std::runtime_error(error);
}

}  // namespace

void register_parity(CLI::App& app) {
  auto opts = std::make_shared<ParityOptions>();
  CLI::App* cmd = app.add_subcommand("parity", "Compare every layer's GPU result with the CPU reference");
  cmd->add_option("--layers", opts->layers, "all, or a comma-separated list (matmul,linear_bf16,linear_fp8,...)")
      ->capture_default_str();
  cmd->add_option("--mode", opts->mode, "deterministic (bit-equal) or fast (cuBLAS, derived bounds)")
      ->capture_default_str();
  cmd->add_option("--config", opts->config, "shape set: tiny or small")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON document (device, rows, passed) instead of the table");
  cmd->callback([opts] { run_parity(*opts); });
}

}  // namespace preflight::cli
