// Files preflight writes (goldens, traces, reports, checkpoints) are written to a
// temporary file in the same directory, flushed, fsync'ed and renamed over the
// target, so an interrupted run never leaves a half-written file behind.
#pragma once

#include <string>
#include <string_view>

namespace preflight {

// Throws preflight::Error naming the path when any step fails.
void write_file_atomic(const std::string& path, std::string_view contents);

// Whole file as a string; throws preflight::Error naming the path if unreadable.
std::string read_file(const std::string& path);

}  // namespace preflight
