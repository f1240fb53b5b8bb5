// Files preflight writes (goldens, traces, reports, checkpoints) are written to a
// temporary file in the same directory, flushed, fsync'ed and renamed over the
// target, so an interrupted run never leaves a half-written file behind. Only regular files
// (or new paths) are replaced that way: an existing character device, FIFO or socket
// (/dev/null, /dev/stdout, a named pipe) is written in place, so the node itself survives; a
// symbolic link to a regular file keeps the link and replaces the file it points to. Every
// write(2), fsync(2) and close(2) result is checked (ENOSPC on /dev/full is an error).
#pragma once

#include <string>
#include <string_view>

namespace preflight {

// Throws preflight::Error naming the path when any step fails.
void write_file_atomic(const std::string& path, std::string_view contents);

// Whole file as a string; throws preflight::Error naming the path if unreadable.
std::string read_file(const std::string& path);

}  // namespace preflight
