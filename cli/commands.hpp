// Each subcommand lives in its own cli/cmd_*.cpp and registers itself here. A
// command's callback throws preflight::Error for user errors; main() turns that into
// one line on stderr and exit code 1.
#pragma once

#include <CLI/CLI.hpp>

namespace preflight::cli {

void register_model(CLI::App& app);
void register_version(CLI::App& app);
void register_sim(CLI::App& app);
void register_plan(CLI::App& app);
void register_faults(CLI::App& app);
void register_check(CLI::App& app);
void register_parity(CLI::App& app);  // cmd_parity.cpp: needs PREFLIGHT_WITH_CUDA to do work
void register_train(CLI::App& app);   // cmd_train.cpp: `train` and `corpus`

}  // namespace preflight::cli
