#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "reference/core/atomic_file.hpp"
#include "reference/core/error.hpp"

namespace preflight {
namespace {

TEST(AtomicFile, WritesReplacesAndLeavesNoTemporary) {
  const auto dir = std::filesystem::temp_directory_path() / ("preflight-atomic-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "out.json").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
  std::filesystem::remove_all(dir);
}

TEST(AtomicFile, UnwritableDirectoryIsAClearError) {
  try {
    write_file_atomic("/nonexistent-dir/x.json", "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '/nonexistent-dir/x.json'"), std::string::npos);
  }
}


// A FIFO (like /dev/stdout into a pipe) is written in place: renaming a temporary over it
// would replace the node with a regular file and the reader would get nothing.
TEST(AtomicFile, FifoIsWrittenInPlaceAndKept) {
  const auto dir = std::filesystem::temp_directory_path() / ("preflight-atomic-fifo-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string fifo = (dir / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  // Our own read end (O_RDWR never blocks on Linux), so the writer's open does not wait and a
  // wrong implementation fails instead of hanging.
  const int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct stat before {};
  ASSERT_EQ(::lstat(fifo.c_str(), &before), 0);
  write_file_atomic(fifo, "through the pipe");
  char buf[64] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "through the pipe");
  struct stat after {};
  ASSERT_EQ(::lstat(fifo.c_str(), &after), 0);
  EXPECT_TRUE(S_ISFIFO(after.st_mode)) << "the FIFO was replaced";
  EXPECT_EQ(after.st_ino, before.st_ino);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1) << "a temporary file was left behind";
  std::filesystem::remove_all(dir);
}

// Character devices likewise, and ENOSPC from /dev/full is an error. Root (a user may be)
// could rename over the real /dev/null — the very bug, breaking the machine for everyone —
// so root tests its own nodes of the same devices (1,3) and (1,7) made with mknod in a
// temporary directory; a non-root user's rename into /dev fails, so /dev itself is safe.
TEST(AtomicFile, CharacterDevicesAreWrittenInPlaceAndFullIsENOSPC) {
  const auto dir = std::filesystem::temp_directory_path() / ("preflight-atomic-dev-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string null_dev = "/dev/null", full_dev = "/dev/full";
  if (::geteuid() == 0) {
    null_dev = (dir / "null").string(), full_dev = (dir / "full").string();
    if (::mknod(null_dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0 ||
        ::mknod(full_dev.c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) {
      std::filesystem::remove_all(dir);
      GTEST_SKIP() << "root without CAP_MKNOD: no device node of our own to test on";
    }
  }
  struct stat before {};
  ASSERT_EQ(::stat(null_dev.c_str(), &before), 0);
  write_file_atomic(null_dev, "discarded");
  struct stat after {};
  ASSERT_EQ(::stat(null_dev.c_str(), &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode)) << null_dev << " was replaced";
  EXPECT_EQ(after.st_rdev, before.st_rdev);
  EXPECT_EQ(after.st_ino, before.st_ino);
  if (::access(full_dev.c_str(), W_OK) == 0) {
    try {
      write_file_atomic(full_dev, "x");
      ADD_FAILURE() << "ENOSPC on " << full_dev << " ignored";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::strerror(ENOSPC)), std::string::npos) << e.what();
    }
    struct stat full {};
    ASSERT_EQ(::stat(full_dev.c_str(), &full), 0);
    EXPECT_TRUE(S_ISCHR(full.st_mode)) << full_dev << " was replaced";
  }
  std::filesystem::remove_all(dir);
}

// A symbolic link to a regular file keeps the link; the file it points to is replaced.
TEST(AtomicFile, SymlinkIsKeptAndItsTargetReplaced) {
  const auto dir = std::filesystem::temp_directory_path() / ("preflight-atomic-link-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string target = (dir / "target.txt").string(), link = (dir / "link.txt").string();
  write_file_atomic(target, "old");
  std::filesystem::create_symlink(target, link);
  write_file_atomic(link, "new");
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_file(target), "new");
  EXPECT_THROW(write_file_atomic(dir.string(), "x"), Error);  // a directory is an error, not replaced
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace preflight
