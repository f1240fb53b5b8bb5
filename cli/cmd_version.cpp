// `preflight version` (also `preflight --version`): the version and how this binary was
// built. It reports where the CUDA path would be loaded from without loading it.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <system_error>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/cuda_loader.hpp"

namespace preflight::cli {

namespace {

bool host_fma() {
#if defined(__FMA__)
  return true;
#else
  return false;
#endif
}

void print_version(bool json) {
  const bool built = cuda_cli_built();
  const std::string library = built ? cuda_cli_library_path() : "";
  std::error_code ec;
  const bool present = built && !library.empty() && std::filesystem::is_regular_file(library, ec);
  if (json) {
    nlohmann::json j;
    j["version"] = PREFLIGHT_VERSION;
    j["cuda_path"] = {{"built", built}, {"library", library}, {"library_present", present}};
    j["host_fma"] = host_fma() ? "hardware" : "libm";
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("preflight %s\n", PREFLIGHT_VERSION);
  if (built) {
    std::printf("cuda path: compiled (sm_90), loaded by `parity` only, from %s%s\n", library.c_str(),
                present ? "" : " (MISSING)");
  } else {
    std::printf("cuda path: not compiled\n");
  }
  std::printf("host fma: %s\n", host_fma() ? "hardware" : "libm (same bits, slower)");
}

}  // namespace

std::string version_line() { return std::string("preflight ") + PREFLIGHT_VERSION; }

void register_version(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("version", "Print the version and how this binary was built");
  cmd->add_flag("--json", *json, "Print machine-readable JSON");
  cmd->callback([json] { print_version(*json); });
}

}  // namespace preflight::cli
