#include "reference/core/presets.hpp"

#include <algorithm>
#include <filesystem>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"

namespace preflight {

std::vector<std::string> preset_names(std::string_view kind) {
  std::vector<std::string> names;
  const std::string prefix = std::string(kind) + "/";
  for (const auto& f : detail::embedded_files()) {
    std::string_view p = f.path;
    if (p.substr(0, prefix.size()) != prefix) continue;
    p.remove_prefix(prefix.size());
    if (p.find('/') != std::string_view::npos || p.size() < 6) continue;
    names.emplace_back(p.substr(0, p.size() - 5));  // strip ".json"
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> preset_text(std::string_view kind, std::string_view name) {
  const std::string path = std::string(kind) + "/" + std::string(name) + ".json";
  for (const auto& f : detail::embedded_files()) {
    if (path == f.path) return std::string(f.contents);
  }
  return std::nullopt;
}

std::string load_preset_or_file(std::string_view kind, const std::string& name_or_path,
                                std::string* origin) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) {
    if (origin) *origin = name_or_path;
    return read_file(name_or_path);
  }
  // A Hugging Face model directory: its config.json describes the model.
  if (kind == "models" && std::filesystem::is_directory(name_or_path, ec)) {
    const std::string config = (std::filesystem::path(name_or_path) / "config.json").string();
    if (!std::filesystem::is_regular_file(config, ec))
      fail("'", name_or_path, "' is a directory without a config.json (expected a model directory or a config file)");
    if (origin) *origin = config;
    return read_file(config);
  }
  if (auto text = preset_text(kind, name_or_path)) {
    if (origin) *origin = "preset '" + name_or_path + "'";
    return *text;
  }
  std::string known;
  for (const auto& n : preset_names(kind)) known += (known.empty() ? "" : ", ") + n;
  fail("'", name_or_path, "' is neither a file nor a ", kind, " preset (presets: ", known, ")");
}

}  // namespace preflight
