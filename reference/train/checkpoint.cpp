#include "reference/train/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"
#include "reference/train/safetensors.hpp"
#include "reference/train/sha256.hpp"

namespace fs = std::filesystem;

namespace preflight::train {
namespace {

constexpr const char* kManifest = "MANIFEST.sha256";

void fsync_path(const std::string& path, bool dir) {
  const int fd = ::open(path.c_str(), dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail("cannot open '", path, "' to fsync: ", std::strerror(errno));
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    fail("fsync '", path, "' failed: ", std::strerror(e));
  }
  ::close(fd);
}

void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write '", path, "' failed: ", std::strerror(errno));
    }
    p += w, n -= static_cast<size_t>(w);
  }
}

// Writes and fsyncs one file; `stall` stops half-way (test hook).
void write_synced(const std::string& path, const std::string& bytes, bool stall) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot create '", path, "': ", std::strerror(errno));
  const size_t n = stall ? bytes.size() / 2 : bytes.size();
  write_all(fd, bytes.data(), n, path);
  if (::fsync(fd) != 0) fail("fsync '", path, "' failed: ", std::strerror(errno));
  if (stall) {
    std::fprintf(stderr, "preflight: test hook: checkpoint write stalled at %s\n", path.c_str());
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::seconds(600));
    std::_Exit(9);
  }
  if (::close(fd) != 0) fail("close '", path, "' failed: ", std::strerror(errno));
}

int64_t step_of(const std::string& name) {
  if (name.rfind("ckpt-", 0) != 0 || name.size() < 6) return -1;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  return std::stoll(name.substr(5));
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char b[32];
  std::snprintf(b, sizeof b, "ckpt-%08lld", static_cast<long long>(step));
  return b;
}

std::vector<std::string> list_checkpoints(const std::string& out_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string n = e.path().filename().string();
    const int64_t s = step_of(n);
    if (s >= 0 && e.is_directory()) found.push_back({s, e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) fail("checkpoint '", path, "': no such directory");
  if (fs::exists(fs::path(path) / kManifest) || step_of(fs::path(path).filename().string()) >= 0) return path;
  const auto all = list_checkpoints(path);
  if (all.empty()) fail("checkpoint '", path, "': no ckpt-* directory in it");
  return all.back();
}

std::string write_checkpoint_dir(const std::string& out_dir, int64_t step, const std::vector<CkptFile>& files,
                                 int64_t keep) {
  fs::create_directories(out_dir);
  const std::string name = checkpoint_dir_name(step);
  const fs::path tmp = fs::path(out_dir) / (".tmp-" + name);
  const fs::path dst = fs::path(out_dir) / name;
  fs::remove_all(tmp);
  fs::create_directory(tmp);
  bool stall = false;
  if (const char* h = std::getenv("PREFLIGHT_TEST_STALL_CHECKPOINT")) stall = std::atoll(h) == step;
  std::string manifest;
  for (size_t i = 0; i < files.size(); ++i) {
    write_synced((tmp / files[i].name).string(), files[i].bytes, stall && i == 0);
    manifest += sha256_hex(files[i].bytes) + "  " + files[i].name + "\n";
  }
  write_synced((tmp / kManifest).string(), manifest, false);
  fsync_path(tmp.string(), true);
  // Replacing an existing checkpoint of the same step (a resumed run re-saving it): move the
  // old one aside first, so a crash leaves one complete copy under a ckpt-* or .old-* name.
  if (fs::exists(dst)) {
    const fs::path old = fs::path(out_dir) / (".old-" + name);
    fs::remove_all(old);
    fs::rename(dst, old);
    fs::rename(tmp, dst);
    fsync_path(out_dir, true);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, dst);
  }
  fsync_path(out_dir, true);
  if (keep > 0) {
    const auto all = list_checkpoints(out_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i]);
  }
  return dst.string();
}

std::map<std::string, std::string> read_verified_checkpoint(const std::string& dir) {
  const fs::path mpath = fs::path(dir) / kManifest;
  std::error_code ec;
  if (!fs::exists(mpath, ec)) fail("checkpoint '", dir, "': no ", kManifest, " (incomplete or not a checkpoint)");
  std::istringstream in(read_file(mpath.string()));
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.size() < 67 || line.substr(64, 2) != "  ") fail("checkpoint '", dir, "': malformed ", kManifest, " line '", line, "'");
    const std::string want = line.substr(0, 64), file = line.substr(66);
    const fs::path p = fs::path(dir) / file;
    if (!fs::exists(p, ec)) fail("checkpoint file '", p.string(), "': missing");
    std::string bytes = read_file(p.string());
    if (sha256_hex(bytes) != want) {
      if (file.size() > 12 && file.substr(file.size() - 12) == ".safetensors") {
        try {
          read_safetensors(p.string(), bytes);
        } catch (const Error& e) {
          if (std::string(e.what()).find("truncated") != std::string::npos) throw;
        }
      }
      fail("checkpoint file '", p.string(), "': checksum mismatch (sha256 ", sha256_hex(bytes).substr(0, 16),
           "..., manifest ", want.substr(0, 16), "...): corrupted, refusing to load");
    }
    out[file] = std::move(bytes);
  }
  if (out.empty()) fail("checkpoint '", dir, "': empty ", kManifest);
  return out;
}

}  // namespace preflight::train
