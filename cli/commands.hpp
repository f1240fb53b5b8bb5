// Each subcommand lives in its own cli/cmd_*.cpp and registers itself here. A
// command's callback throws preflight::Error for user errors; main() turns that into
// one line on stderr and exit code 1.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace preflight::cli {

void register_model(CLI::App& app);
void register_version(CLI::App& app);
std::string version_line();  // "preflight 0.1.0", for `preflight --version`
void register_sim(CLI::App& app);
void register_plan(CLI::App& app);
void register_faults(CLI::App& app);
void register_check(CLI::App& app);
void register_parity(CLI::App& app);  // cmd_parity.cpp: loads the CUDA path on demand (cli/cuda_loader.hpp)
void register_train(CLI::App& app);   // cmd_train.cpp: `train` and `corpus`

}  // namespace preflight::cli
