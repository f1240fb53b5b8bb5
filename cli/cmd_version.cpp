#include <cstdio>

#include "cli/commands.hpp"

namespace preflight::cli {

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the version and how this binary was built");
  cmd->callback([] {
    std::printf("preflight %s\n", PREFLIGHT_VERSION);
#ifdef PREFLIGHT_WITH_CUDA
    std::printf("cuda path: compiled (sm_90)\n");
#else
    std::printf("cuda path: not compiled\n");
#endif
#if defined(__FMA__)
    std::printf("host fma: hardware\n");
#else
    std::printf("host fma: libm (same bits, slower)\n");
#endif
  });
}

}  // namespace preflight::cli
