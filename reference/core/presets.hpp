// Presets shipped in configs/ and compiled into the binary. Kinds are the
// sub-directories of configs/: "models", "hardware", "layouts", "faults", ...
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

namespace detail {
struct EmbeddedFile {
  const char* path;      // relative to configs/, e.g. "models/tiny.json"
  const char* contents;
};
const std::vector<EmbeddedFile>& embedded_files();
}  // namespace detail

// Names (file stems) of the presets of one kind, sorted.
std::vector<std::string> preset_names(std::string_view kind);

// Text of preset `name` of `kind`, or nullopt.
std::optional<std::string> preset_text(std::string_view kind, std::string_view name);

// Resolves NAME|PATH: an existing file path wins; for kind "models" a directory holding
// config.json (a Hugging Face model directory) is read as that file; otherwise a preset of `kind`.
// Returns the JSON text and sets `origin` to the path or "preset 'NAME'". Throws
// preflight::Error listing the available presets when neither exists.
std::string load_preset_or_file(std::string_view kind, const std::string& name_or_path,
                                std::string* origin);

}  // namespace preflight
