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
  // At most 18 digits, so the number fits an int64 (a longer name is not a checkpoint).
  if (name.rfind("ckpt-", 0) != 0 || name.size() < 6 || name.size() > 5 + 18) return -1;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  return std::stoll(name.substr(5));
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

void remove_all_or_fail(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) fail("cannot remove '", p.string(), "': ", ec.message());
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) fail("cannot rename '", from.string(), "' to '", to.string(), "': ", ec.message());
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A manifest line quoted for an error message: non-printable bytes as \xNN, at most 80 bytes.
std::string printable(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size() && out.size() < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  if (line.size() > 80) out += "...";
  return out;
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char b[32];
  std::snprintf(b, sizeof b, "ckpt-%08lld", static_cast<long long>(step));
  return b;
}

int64_t checkpoint_step(const std::string& dir) { return step_of(fs::path(dir).filename().string()); }

std::vector<std::string> list_checkpoints(const std::string& out_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!is_dir(out_dir)) return {};
  std::error_code ec;
  fs::directory_iterator it(out_dir, ec);
  if (ec) fail("cannot list '", out_dir, "': ", ec.message());
  for (const auto& e : it) {
    const std::string n = e.path().filename().string();
    const int64_t s = step_of(n);
    if (s >= 0 && is_dir(e.path())) found.push_back({s, e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!is_dir(path)) fail("checkpoint '", path, "': no such directory");
  if (fs::exists(fs::path(path) / kManifest, ec) || step_of(fs::path(path).filename().string()) >= 0) return path;
  const auto all = list_checkpoints(path);
  if (all.empty()) fail("checkpoint '", path, "': no ckpt-* directory in it");
  return all.back();
}

void ensure_output_dir(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) fail(flag, " '", dir, "': exists and is not a directory");
  } else {
    fs::create_directories(dir, ec);
    if (ec) fail(flag, " '", dir, "': cannot create the directory: ", ec.message());
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) fail(flag, " '", dir, "': not writable: ", std::strerror(errno));
}

std::string manifest_files_digest(std::vector<std::pair<std::string, std::string>> files) {
  std::sort(files.begin(), files.end());
  std::string body;
  for (const auto& [name, sha] : files) body += sha + "  " + name + "\n";
  return sha256_hex(body);
}

std::string write_checkpoint_dir(const std::string& out_dir, int64_t step, const std::vector<CkptFile>& files,
                                 int64_t keep) {
  ensure_output_dir(out_dir, "checkpoint directory");
  const std::string name = checkpoint_dir_name(step);
  const fs::path tmp = fs::path(out_dir) / (".tmp-" + name);
  const fs::path dst = fs::path(out_dir) / name;
  remove_all_or_fail(tmp);
  std::error_code ec;
  fs::create_directory(tmp, ec);
  if (ec) fail("cannot create '", tmp.string(), "': ", ec.message());
  bool stall = false;
  if (const char* h = std::getenv("PREFLIGHT_TEST_STALL_CHECKPOINT")) stall = std::atoll(h) == step;
  std::vector<std::pair<std::string, std::string>> listed;
  for (size_t i = 0; i < files.size(); ++i) {
    write_synced((tmp / files[i].name).string(), files[i].bytes, stall && i == 0);
    listed.push_back({files[i].name, sha256_hex(files[i].bytes)});
  }
  std::sort(listed.begin(), listed.end());
  std::string manifest = "# preflight checkpoint step " + std::to_string(step) + ", files sha256 " +
                         manifest_files_digest(listed) + "\n";
  for (const auto& [file, sha] : listed) manifest += sha + "  " + file + "\n";
  write_synced((tmp / kManifest).string(), manifest, false);
  fsync_path(tmp.string(), true);
  // Replacing an existing checkpoint of the same step (a resumed run re-saving it): move the
  // old one aside first, so a crash leaves one complete copy under a ckpt-* or .old-* name.
  if (fs::exists(dst, ec)) {
    const fs::path old = fs::path(out_dir) / (".old-" + name);
    remove_all_or_fail(old);
    rename_or_fail(dst, old);
    rename_or_fail(tmp, dst);
    fsync_path(out_dir, true);
    remove_all_or_fail(old);
  } else {
    rename_or_fail(tmp, dst);
  }
  fsync_path(out_dir, true);
  if (keep > 0) {
    const auto all = list_checkpoints(out_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) remove_all_or_fail(all[i]);
  }
  return dst.string();
}

Manifest parse_manifest(const std::string& text, const std::string& origin) {
  Manifest m;
  size_t at = 0;
  for (int64_t line_no = 1; at < text.size(); ++line_no) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    if (!line.empty() && line.back() == '\r')
      fail(origin, ": line ", line_no, " ends in a carriage return (CRLF line endings); rewrite it with LF endings, ",
           "e.g. sed -i 's/\\r$//' ", kManifest);
    if (line.empty()) continue;
    if (line[0] == '#') {  // sha256sum skips comments; ours is the header
      const std::string tag = "# preflight checkpoint step ";
      if (line.rfind(tag, 0) != 0) continue;
      const size_t comma = line.find(", files sha256 ", tag.size());
      const std::string step = comma == std::string::npos ? "" : line.substr(tag.size(), comma - tag.size());
      const std::string digest = comma == std::string::npos ? "" : line.substr(comma + 15);
      bool ok = !step.empty() && step.size() <= 18 && digest.size() == 64 && m.step < 0;
      for (char c : step) ok = ok && c >= '0' && c <= '9';
      for (char c : digest) ok = ok && is_hex(c);
      if (!ok) fail(origin, ": line ", line_no, ": malformed header '", printable(line), "'");
      m.step = std::stoll(step);
      for (char c : digest) m.files_sha256.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      continue;
    }
    // "<64 hex><space><space or *><name>", as sha256sum writes (text or binary mode).
    bool ok = line.size() >= 67 && line[64] == ' ' && (line[65] == ' ' || line[65] == '*');
    for (size_t i = 0; ok && i < 64; ++i) ok = is_hex(line[i]);
    if (!ok) fail(origin, ": line ", line_no, ": malformed '", printable(line), "': expected '<sha256 hex>  <file>'");
    const std::string file = line.substr(66);
    bool plain = file != "." && file != ".." && file[0] != '\\';  // sha256sum marks escaped names with '\'
    for (char c : file) plain = plain && c != '/' && static_cast<unsigned char>(c) >= 0x20;
    if (!plain) fail(origin, ": line ", line_no, ": '", printable(file), "' is not a file name inside the checkpoint");
    for (const auto& f : m.files)
      if (f.first == file) fail(origin, ": line ", line_no, ": '", file, "' is listed twice");
    std::string sha;
    for (size_t i = 0; i < 64; ++i) sha.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))));
    m.files.push_back({file, sha});
  }
  if (m.files.empty()) fail(origin, ": lists no file");
  if (m.step >= 0 && manifest_files_digest(m.files) != m.files_sha256)
    fail(origin, ": the header's files sha256 does not match the listed files (files of different checkpoints mixed?)");
  return m;
}

VerifiedCheckpoint read_verified_checkpoint(const std::string& dir) {
  const fs::path mpath = fs::path(dir) / kManifest;
  std::error_code ec;
  if (!fs::exists(mpath, ec)) fail("checkpoint '", dir, "': no ", kManifest, " (incomplete or not a checkpoint)");
  const Manifest m = parse_manifest(read_file(mpath.string()), "checkpoint file '" + mpath.string() + "'");
  VerifiedCheckpoint out;
  out.manifest_step = m.step;
  for (const auto& [file, want] : m.files) {
    const fs::path p = fs::path(dir) / file;
    if (!fs::is_regular_file(p, ec)) fail("checkpoint file '", p.string(), "': missing");
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
    out.files[file] = std::move(bytes);
  }
  return out;
}

}  // namespace preflight::train
