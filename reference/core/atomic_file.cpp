#include "reference/core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "reference/core/error.hpp"

namespace preflight {
namespace {

// write(2) until done; returns 0 or the errno of the failure.
int write_all(int fd, std::string_view contents) {
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

// A character device, FIFO or socket: written in place (renaming over it would replace the
// device node, e.g. /dev/null, with a regular file). No fsync: devices and pipes refuse it.
void write_in_place(const std::string& path, std::string_view contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot write '", path, "': ", std::strerror(errno));
  const int err = write_all(fd, contents);
  if (err != 0) {
    ::close(fd);
    fail("cannot write '", path, "': ", std::strerror(err));
  }
  if (::close(fd) != 0) fail("cannot write '", path, "': ", std::strerror(errno));
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view contents) {
  std::string target = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("cannot write '", path, "': it is a directory");
    if (!S_ISREG(st.st_mode)) return write_in_place(path, contents);
    // An existing regular file reached through a symbolic link: replace the file the link
    // points to, keeping the link.
    char resolved[PATH_MAX];
    struct stat lst {};
    if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode) && ::realpath(path.c_str(), resolved)) target = resolved;
  }
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write '", path, "': ", std::strerror(errno));
  const int err = write_all(fd, contents);
  if (err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot write '", path, "': ", std::strerror(err));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write '", path, "': ", std::strerror(e));
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write '", path, "': ", std::strerror(e));
  }
}

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("cannot read '", path, "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail("cannot read '", path, "': I/O error");
  return buf.str();
}

}  // namespace preflight
